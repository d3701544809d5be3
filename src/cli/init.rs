//! `dqwatch init [DIR]`: a new project in an empty folder — a config with a SQLite connection
//! and a file outbox, one check, and the mail templates to edit — that `validate` and `run`
//! accept as written. Refuses a folder that has anything in it, so nothing is overwritten.

use super::exit::Exit;
use crate::compose::TEMPLATE_FILES;
use std::path::Path;

/// The config `init` writes.
const CONFIG: &str = r#"# dqwatch project, made by `dqwatch init`. Next: `dqwatch validate`, then `dqwatch run`.
# Relative paths are relative to this file's folder.
checks_dir = "checks"
templates_dir = "templates"
state = "sqlite://state.db"

[daemon]
timezone = "UTC"
listen = "127.0.0.1:8477"

# The warehouse the checks query. An empty SQLite file to start with; point WAREHOUSE_URL at
# yours (postgres://…, mysql://…, sqlite://…).
[connections.warehouse]
url = "${WAREHOUSE_URL:-sqlite://warehouse.db}"
statement_timeout = "60s"

# Mail goes to .eml files in outbox/ until you configure SMTP (see README, "Mail").
[mail]
from = "dqwatch <dqwatch@example.com>"
transport = "file"
dir = "outbox"

[[routes]]
severity = ["P0", "P1", "P2", "P3"]
email = ["data-quality@example.com"]
"#;

/// The check `init` writes.
const CHECK: &str = r#"-- dqwatch
-- description = "Example check: the warehouse has at least one table"
-- metric = "tables"
-- on_no_data = "error"
-- [thresholds]
-- P3 = "< 1"
-- # A check is one read-only query. Without `metric` every row it returns is a breach; with
-- # `metric` the value is judged against the thresholds (README, "Writing checks").
SELECT COUNT(*) AS tables FROM sqlite_master WHERE type = 'table'
"#;

/// Runs `dqwatch init`.
pub fn cmd(dir: &Path) -> Exit {
    match scaffold(dir) {
        Ok(()) => {
            println!(
                "Created a dqwatch project in {}:\n  dqwatch.toml   config: a SQLite connection, mail to outbox/\n  checks/example.sql\n  templates/     the mail templates, to edit\n  warehouse.db   an empty SQLite warehouse\nNext: cd {} && dqwatch validate && dqwatch run",
                dir.display(),
                dir.display()
            );
            Exit::Clean
        }
        Err(message) => {
            eprintln!("error: {message}");
            Exit::Invalid
        }
    }
}

fn scaffold(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty; dqwatch init writes only into an empty folder\n  hint: dqwatch init NEW_FOLDER",
                    dir.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    }
    let write = |rel: &str, text: &[u8]| {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("dqwatch.toml", CONFIG.as_bytes())?;
    write("checks/example.sql", CHECK.as_bytes())?;
    for (name, text) in TEMPLATE_FILES {
        write(&format!("templates/{name}"), text.as_bytes())?;
    }
    // A zero-length file is an empty SQLite database.
    write("warehouse.db", b"")?;
    Ok(())
}
