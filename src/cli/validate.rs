//! `dqwatch validate`: every problem in config and checks at once, one ✓/✗ line per stage;
//! with `--connect`, each query is prepared on its warehouse without running it, and a
//! connection whose login is a superuser or can write gets a warning.

use super::args::ValidateArgs;
use super::exit::Exit;
use super::load;
use crate::checks;
use crate::diag::Diagnostic;
use crate::model::ErrorKind;
use crate::warehouse::Warehouses;
use std::collections::BTreeSet;
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
    match checks::maintenance::windows(&cfg) {
        Ok(w) if w.is_empty() => {}
        Ok(w) => outln!(
            "✓ maintenance {} window{}: {}",
            w.len(),
            plural(w.len()),
            w.iter().map(|w| w.name()).collect::<Vec<_>>().join(", ")
        ),
        Err(diags) => {
            load::print_diagnostics(&diags);
            outln!(
                "✗ maintenance {} bad window{} in {}",
                diags.len(),
                plural(diags.len()),
                cfg.path.display()
            );
            return Exit::Invalid;
        }
    }
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
    // The engine's own stage: templates loaded and rendered against an example incident,
    // the same check (and message) that stops `run` and the daemon.
    if let Err(e) = crate::engine::load::templates(&cfg) {
        load::print_diagnostics(&e.0);
        outln!(
            "✗ templates  {} problem{} in {}",
            e.0.len(),
            plural(e.0.len()),
            cfg.templates_dir.display()
        );
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
        // The columns the check judges must be in its result, or every run fails.
        let judged = if check.reconcile.is_none() && check.history.is_none() {
            judged_columns(check)
        } else {
            Vec::new()
        };
        for (conn, sql) in queries {
            let Some(w) = warehouses.get(&conn).cloned() else {
                continue;
            };
            let (path, line) = (check.path.clone(), check.sql_line);
            let judged = judged.clone();
            let (id, limit) = (check.id.0.clone(), check.max_bytes_billed);
            tasks.spawn(async move {
                let job = crate::warehouse::Job {
                    check: &id,
                    max_bytes_billed: limit,
                };
                let err = match w.prepare(&sql, job).await {
                    Ok(columns) => {
                        let missing = missing_columns(&judged, &columns, &path, line);
                        return (!missing.is_empty()).then_some((conn, false, missing));
                    }
                    Err(err) => err,
                };
                let unreachable = err.kind() == ErrorKind::Connection;
                let diag = Diagnostic::at(
                    &path,
                    line,
                    1,
                    format!("query does not prepare on \"{conn}\": {err}"),
                )
                .hint("run `dqwatch render ID` to see the SQL, and try it in your SQL client");
                Some((conn, unreachable, vec![diag]))
            });
        }
    }
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut unreachable: BTreeSet<String> = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Some((conn, failed_to_connect, d))) = r {
            if failed_to_connect {
                unreachable.insert(conn);
            }
            diags.extend(d);
        }
    }
    warn_about_shared_scans(&catalog.checks, &warehouses, &unreachable).await;
    warn_about_privileges(&cfg, &warehouses, &unreachable).await;
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
        let failing: BTreeSet<&Path> = diags.iter().map(|d| d.path.as_path()).collect();
        outln!(
            "✗ warehouse  {} of {} checks do not prepare or lack a judged column",
            failing.len(),
            catalog.checks.len()
        );
        Exit::Invalid
    }
}

/// Prepares the query of each scan that rule checks share in a run of every check, and warns
/// (without changing the exit code) about one that does not prepare: its checks would each
/// run alone, as they do when a shared query fails.
async fn warn_about_shared_scans(
    checks: &[checks::Check],
    warehouses: &Warehouses,
    unreachable: &BTreeSet<String>,
) {
    for unit in crate::checks::fuse::scans(checks) {
        let members: Vec<&checks::Check> = unit.iter().map(|&i| &checks[i]).collect();
        let (Some(parts), Some(first)) = (crate::checks::fuse::shared(&members), members.first())
        else {
            continue;
        };
        let Some(w) = warehouses.get(&first.connection) else {
            continue;
        };
        if unreachable.contains(&first.connection) {
            continue;
        }
        let job = crate::warehouse::Job {
            check: &first.id.0,
            max_bytes_billed: first.max_bytes_billed,
        };
        if let Err(e) = w.prepare(&crate::checks::fuse::sql(&parts), job).await {
            eprintln!(
                "warning: the scan of {} shared by {} checks ({}, …) does not prepare on \"{}\": \
                 {e}; they will run alone\n  hint: `dqwatch render {}` prints it; \
                 `fuse = false` keeps a check out of it",
                parts[0].table,
                members.len(),
                first.id.0,
                first.connection,
                first.id.0
            );
        }
    }
}

/// Warns (without changing the exit code) about each connection whose login is a superuser
/// or can write: read-only transactions do not cover what such a role reaches on the server.
/// A connection its checks could not reach is skipped: it was reported already, and trying
/// again would only wait for it twice.
async fn warn_about_privileges(
    cfg: &crate::config::Config,
    warehouses: &Warehouses,
    unreachable: &BTreeSet<String>,
) {
    for name in cfg.connections.keys() {
        let Some(w) = warehouses.get(name) else {
            continue;
        };
        if unreachable.contains(name) {
            continue;
        }
        if let Ok(Some(what)) = w.privileges().await {
            eprintln!(
                "warning: connection \"{name}\" logs in as a role that {what}; checks run \
                 read-only, but such a role still reaches the server's side effects \
                 (COPY … TO PROGRAM, pg_terminate_backend, SELECT … INTO OUTFILE)\n  \
                 hint: connect as a role that can only SELECT (README: Safety)"
            );
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The columns a check judges, each with its role: `keys`, `metric`, `severity_column`.
fn judged_columns(check: &checks::Check) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> =
        check.keys.iter().map(|k| ("keys", k.clone())).collect();
    match &check.judge {
        checks::Judge::RowsFail { .. } => {}
        checks::Judge::Thresholds { metric, .. } => out.push(("metric", metric.clone())),
        checks::Judge::SeverityMap { column, metric, .. } => {
            out.push(("severity_column", column.clone()));
            if let Some(m) = metric {
                out.push(("metric", m.clone()));
            }
        }
    }
    out
}

/// A diagnostic for each judged column missing from the prepared query's `columns` (matched
/// without regard to case, as the evaluation does).
fn missing_columns(
    judged: &[(&'static str, String)],
    columns: &[String],
    path: &Path,
    line: usize,
) -> Vec<Diagnostic> {
    judged
        .iter()
        .filter(|(_, name)| !columns.iter().any(|c| c.eq_ignore_ascii_case(name)))
        .map(|(role, name)| {
            Diagnostic::at(
                path,
                line,
                1,
                format!("{role} column \"{name}\" is not in the query's result"),
            )
            .hint(format!("the query returns: {}", columns.join(", ")))
        })
        .collect()
}
