//! `dqwatch run`: run the selected checks once, print the report, exit by the verdict.

use super::args::RunArgs;
use super::exit::Exit;
use super::{load, state};
use crate::checks::{self, Catalog};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::report::{self, Format};
use crate::runner::{self, CheckRun};
use crate::warehouse::Warehouses;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

/// Runs `dqwatch run`.
pub async fn cmd(config: Option<&Path>, args: RunArgs) -> Exit {
    let Some((cfg, catalog)) = load::all(config) else {
        return Exit::Invalid;
    };
    execute(&cfg, &catalog, &args).await
}

/// Runs the selected checks of a loaded catalog and reports (shared with `demo`).
pub async fn execute(cfg: &Config, catalog: &Catalog, args: &RunArgs) -> Exit {
    let selected = match checks::select(&catalog.checks, &args.select, &args.exclude) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!(
                "error: {msg}\n  hint: a selector is an id glob (finance/*), tag:NAME or connection:NAME; `dqwatch list` shows the checks"
            );
            return Exit::Invalid;
        }
    };
    if selected.is_empty() {
        eprintln!(
            "warning: no checks to run (checks_dir {})",
            cfg.checks_dir.display()
        );
    }
    let state = if args.no_incidents {
        None
    } else {
        match state::open(cfg).await {
            Ok(s) => Some(s),
            Err(exit) => return exit,
        }
    };
    let checks: Vec<_> = selected.into_iter().cloned().map(Arc::new).collect();
    let warehouses = Warehouses::new(cfg);
    let bar = progress(checks.len() as u64);
    let on_done = |run: &CheckRun| {
        bar.set_message(run.check.id.to_string());
        bar.inc(1);
    };
    let report = runner::run(
        checks,
        &warehouses,
        state.as_ref().map(|s| &s.store),
        &SystemClock,
        &on_done,
    )
    .await;
    bar.finish_and_clear();
    warehouses.close().await;

    let mut verdict = report::verdict(&report, args.fail_on);
    let mut rendered = report::render(&report, args.format, args.fail_on);
    if let Some(state) = &state {
        match runner::record(
            &report,
            &state.store,
            &state.composer,
            cfg,
            SystemClock.now(),
        )
        .await
        {
            Ok(rec) => {
                let delivery = state.deliver(&SystemClock, true).await;
                let (pending, dead) = state.store.outbox_counts().await.unwrap_or_default();
                let line = incidents_line(&rec, delivery.as_ref(), pending, dead);
                if args.format == Format::Text {
                    rendered.push_str(&line);
                } else {
                    eprint!("{line}");
                }
            }
            Err(e) => {
                // The outcomes are printed below; the incident state is not updated, and the
                // next run reconciles again.
                eprintln!("error: {}
  hint: outcomes were reported but not recorded; fix the state store (or the template) and run again", e.chain());
                if verdict == report::Verdict::Clean {
                    verdict = report::Verdict::CheckFailed;
                }
            }
        }
    }
    let mut stdout = super::exit::Stdout;
    let written = match &args.output {
        Some(path) => std::fs::write(path, &rendered)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
            .and_then(|()| {
                let text = if args.format == Format::Text {
                    rendered.clone()
                } else {
                    report::render(&report, Format::Text, args.fail_on)
                };
                stdout.write_all(text.as_bytes()).map_err(|e| e.to_string())
            }),
        None => stdout
            .write_all(rendered.as_bytes())
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = written {
        eprintln!("error: {e}");
        return Exit::Invalid;
    }
    verdict.into()
}

fn incidents_line(
    rec: &crate::store::Recorded,
    delivery: Option<&crate::outbox::Delivery>,
    pending: i64,
    dead: i64,
) -> String {
    let mut line = format!(
        "incidents: {} opened, {} raised, {} resolved; mail: {} queued",
        rec.opened, rec.raised, rec.resolved, rec.mails
    );
    if let Some(d) = delivery {
        let _ = write!(line, ", {} sent", d.sent);
    }
    if pending > 0 {
        let _ = write!(line, ", {pending} pending");
    }
    if dead > 0 {
        let _ = write!(line, ", {dead} dead (dqwatch outbox list --state dead)");
    }
    if let Some(err) = delivery.and_then(|d| d.last_error.as_ref()) {
        let _ = write!(
            line,
            "\nwarning: mail delivery failed: {err}; pending mail is sent by the next run or the daemon"
        );
    }
    line.push('\n');
    line
}

/// A progress bar on a terminal; hidden when stderr is not one.
fn progress(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}") {
        bar.set_style(style);
    }
    bar
}
