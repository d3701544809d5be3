//! `dqwatch demo`: (re)build the demo SQLite warehouse from `sql/demo/` with dates relative
//! to today, then run the demo checks exactly as `dqwatch run` would.

use super::args::RunArgs;
use super::exit::Exit;
use super::{load, run};
use crate::config::Dialect;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The demo warehouse: tables and planted breaches, dated relative to `date('now')`.
const DEMO_SQL: &str = include_str!("../../sql/demo/warehouse.sql");
/// The connection the demo config names.
const DEMO_CONNECTION: &str = "warehouse";

/// Runs `dqwatch demo`.
pub async fn cmd(config: Option<&Path>, args: RunArgs) -> Exit {
    let cfg = match load::config(config) {
        Ok(c) => c,
        Err(d) => {
            load::print_diagnostics(&d);
            return Exit::Invalid;
        }
    };
    let Some(conn) = cfg
        .connections
        .get(DEMO_CONNECTION)
        .filter(|c| c.dialect == Dialect::Sqlite)
    else {
        eprintln!(
            "error: the demo needs a sqlite connection named \"{DEMO_CONNECTION}\" in {}\n  hint: run the demo with config/dqwatch.toml",
            cfg.path.display()
        );
        return Exit::Invalid;
    };
    let url = conn.url.expose();
    let file = PathBuf::from(
        url.trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap_or_default(),
    );
    if let Err(e) = build(&file).await {
        eprintln!(
            "error: failed to build the demo warehouse at {}: {e}",
            file.display()
        );
        return Exit::CheckFailed;
    }
    eprintln!(
        "Built the demo warehouse {} (dates relative to today).\n",
        file.display()
    );
    let Some(engine) = load::engine(config) else {
        return Exit::Invalid;
    };
    run::execute(engine, &args).await
}

async fn build(file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(file);
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))?
        .create_if_missing(true);
    let mut conn = opts.connect().await?;
    sqlx::raw_sql(DEMO_SQL).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}
