//! `dqwatch render ID`: the exact SQL a check runs, ready to paste into a SQL client.

use super::args::RenderArgs;
use super::exit::Exit;
use super::load;
use std::io::Write;
use std::path::Path;

/// Runs `dqwatch render`.
pub fn cmd(config: Option<&Path>, args: &RenderArgs) -> Exit {
    let Some(engine) = load::engine(config) else {
        return Exit::Invalid;
    };
    let id = args.id.trim_end_matches(".sql");
    let Some(check) = engine.checks.iter().find(|c| c.id.0 == id) else {
        let close: Vec<&str> = engine
            .checks
            .iter()
            .map(|c| c.id.0.as_str())
            .filter(|c| c.contains(id) || id.contains(c.rsplit('/').next().unwrap_or(c)))
            .take(5)
            .collect();
        let hint = if close.is_empty() {
            "`dqwatch list` shows every check id".to_string()
        } else {
            format!("did you mean: {}", close.join(", "))
        };
        eprintln!("error: no check with id \"{id}\"\n  hint: {hint}");
        return Exit::Invalid;
    };
    let mut out = super::exit::Stdout;
    let mut sql = match &check.reconcile {
        Some(r) => {
            let conn = |c: &Option<String>| c.clone().unwrap_or_else(|| check.connection.clone());
            format!(
                "-- source (connection {})\n{}\n\n-- target (connection {})\n{}",
                conn(&r.source.connection),
                r.source.sql.trim_end(),
                conn(&r.target.connection),
                r.target.sql.trim_end()
            )
        }
        None => check.sql.clone(),
    };
    if !sql.ends_with('\n') {
        sql.push('\n');
    }
    // A rule check that shares a scan in a pass of every check: that query too.
    let unit = crate::checks::fuse::scans(&engine.checks)
        .into_iter()
        .find(|unit| unit.iter().any(|&i| engine.checks[i].id == check.id))
        .unwrap_or_default();
    let members: Vec<&crate::checks::Check> = unit.iter().map(|&i| &*engine.checks[i]).collect();
    if let Some(parts) = crate::checks::fuse::shared(&members) {
        sql = format!(
            "{sql}\n-- In a run of every check it shares this scan with {} other checks on {} \
             (fuse = false runs it alone):\n{}\n",
            parts.len() - 1,
            parts[0].table,
            crate::checks::fuse::sql(&parts)
        );
    }
    if out.write_all(sql.as_bytes()).is_err() {
        return Exit::Invalid;
    }
    Exit::Clean
}
