//! `dqwatch validate`: every problem in config and checks at once, one ✓/✗ line per stage;
//! with `--connect`, each query is prepared on its warehouse without running it.

use super::args::ValidateArgs;
use super::exit::Exit;
use super::load;
use crate::checks;
use crate::compose::{Composer, Templates};
use crate::diag::Diagnostic;
use crate::warehouse::Warehouses;
use std::path::Path;

/// Runs `dqwatch validate`.
pub async fn cmd(config: Option<&Path>, args: ValidateArgs) -> Exit {
    let cfg = match load::config(config) {
        Ok(c) => c,
        Err(diags) => {
            load::print_diagnostics(&diags);
            outln!("✗ config");
            return Exit::Invalid;
        }
    };
    outln!(
        "✓ config     {} ({} connection{})",
        cfg.path.display(),
        cfg.connections.len(),
        plural(cfg.connections.len())
    );
    let catalog = match checks::load(&cfg) {
        Ok(c) => c,
        Err(diags) => {
            load::print_diagnostics(&diags);
            outln!(
                "✗ checks     {} problem{} in {}",
                diags.len(),
                plural(diags.len()),
                cfg.checks_dir.display()
            );
            return Exit::Invalid;
        }
    };
    outln!(
        "✓ checks     {} check{} in {}",
        catalog.checks.len(),
        plural(catalog.checks.len()),
        cfg.checks_dir.display()
    );
    let templates = match Templates::load(&cfg.templates_dir) {
        Ok(t) => t,
        Err(diags) => {
            load::print_diagnostics(&diags);
            outln!(
                "✗ templates  {} problem{} in {}",
                diags.len(),
                plural(diags.len()),
                cfg.templates_dir.display()
            );
            return Exit::Invalid;
        }
    };
    // Render every template against an example incident: a missing variable is caught
    // here, not in the middle of an incident.
    if let Err(message) = Composer::new(&cfg, templates).self_test() {
        eprintln!(
            "{}: error: {message}\n  hint: templates see the fields listed in README (Templates)",
            cfg.templates_dir.display()
        );
        outln!("✗ templates  {}", cfg.templates_dir.display());
        return Exit::Invalid;
    }
    outln!("✓ templates  {}", cfg.templates_dir.display());
    if !args.connect {
        return Exit::Clean;
    }
    let warehouses = Warehouses::new(&cfg);
    let mut tasks = tokio::task::JoinSet::new();
    for check in &catalog.checks {
        // A reconciliation prepares both sides, each on its own connection.
        let queries: Vec<(String, String)> = match &check.reconcile {
            Some(r) => [&r.source, &r.target]
                .iter()
                .map(|s| {
                    (
                        s.connection
                            .clone()
                            .unwrap_or_else(|| check.connection.clone()),
                        s.sql.clone(),
                    )
                })
                .collect(),
            None => vec![(check.connection.clone(), check.sql.clone())],
        };
        for (conn, sql) in queries {
            let Some(w) = warehouses.get(&conn).cloned() else {
                continue;
            };
            let (path, line) = (check.path.clone(), check.sql_line);
            tasks.spawn(async move {
                w.prepare(&sql).await.err().map(|e| {
                    Diagnostic::at(
                        &path,
                        line,
                        1,
                        format!("query does not prepare on \"{conn}\": {e}"),
                    )
                    .hint("run `dqwatch render ID` to see the SQL, and try it in your SQL client")
                })
            });
        }
    }
    let mut diags: Vec<Diagnostic> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Some(d)) = r {
            diags.push(d);
        }
    }
    diags.sort_by(|a, b| a.path.cmp(&b.path));
    if diags.is_empty() {
        outln!(
            "✓ warehouse  {} quer{} prepared",
            catalog.checks.len(),
            if catalog.checks.len() == 1 {
                "y"
            } else {
                "ies"
            }
        );
        Exit::Clean
    } else {
        load::print_diagnostics(&diags);
        outln!(
            "✗ warehouse  {} of {} queries do not prepare",
            diags.len(),
            catalog.checks.len()
        );
        Exit::Invalid
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
