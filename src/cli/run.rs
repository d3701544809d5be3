//! `dqwatch run`: run the selected checks once, print the report, exit by the verdict.

use super::args::RunArgs;
use super::exit::Exit;
use super::{load, state};
use crate::checks;
use crate::engine::Engine;
use crate::engine::run::{self as runner, CheckRun};
use crate::report::{self, Format};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

/// What a run whose outcomes could not be recorded says about it.
const NOT_RECORDED: &str = "the checks ran and are reported, but their outcomes were not recorded: no incident was opened, updated or resolved and no mail was queued or sent";

/// Runs `dqwatch run`.
pub async fn cmd(config: Option<&Path>, args: RunArgs) -> Exit {
    // Everything is loaded and self-tested before anything runs: a broken template is exit
    // 2 here, with validate's message, not a surprise in the middle of an incident.
    let Some(engine) = load::engine(config) else {
        return Exit::Invalid;
    };
    execute(engine, &args).await
}

/// Runs the selected checks of a loaded engine and reports (shared with `demo`).
pub async fn execute(engine: Engine, args: &RunArgs) -> Exit {
    let cfg = &engine.config;
    let clock = match super::now::clock() {
        Ok(c) => c,
        Err(m) => {
            eprintln!("error: {m}");
            return Exit::Invalid;
        }
    };
    let clock = clock.as_ref();
    let selected = match checks::select(&engine.checks, &args.select, &args.exclude) {
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
    let checks: Vec<_> = selected.into_iter().map(Arc::clone).collect();
    let warehouses = &engine.warehouses;
    let bar = progress(checks.len() as u64);
    // The bar names the checks in flight, so that a slow one is seen while it runs.
    let running = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let show = |running: &std::collections::BTreeSet<String>| {
        bar.set_message(running_message(running));
    };
    let on_start = |check: &crate::checks::Check| {
        let mut r = running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.insert(check.id.to_string());
        show(&r);
    };
    let on_done = |run: &CheckRun| {
        let mut r = running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.remove(&run.check.id.to_string());
        show(&r);
        bar.inc(1);
    };
    // The state store is opened while the checks run, unless a check reads its history from
    // the store. A store that does not answer costs at most CONNECT_TIMEOUT, and the checks
    // still run and are reported: only recording their outcomes needs it.
    let (store, report) = if args.no_incidents {
        // History rules need the state store that --no-incidents leaves out: reported as
        // skipped, not as errors, so that a CI gate does not fail on them.
        let (checks, skipped) = runner::without_history(checks);
        let mut report =
            runner::run_watched(checks, warehouses, None, clock, &on_start, &on_done).await;
        report.skipped = skipped;
        (None, report)
    } else {
        let (store, report) = if checks.iter().any(|c| c.history.is_some()) {
            let store = state::connect(cfg).await;
            let report = runner::run_watched(
                checks,
                warehouses,
                store.as_ref().ok(),
                clock,
                &on_start,
                &on_done,
            )
            .await;
            (store, report)
        } else {
            tokio::join!(
                state::connect(cfg),
                runner::run_watched(checks, warehouses, None, clock, &on_start, &on_done)
            )
        };
        (Some(store), report)
    };
    bar.finish_and_clear();
    warehouses.close().await;

    let verdict = report::verdict(&report, args.fail_on);
    // The JSON report is written after recording (it ends with whether that worked), a check
    // at a time: held whole, a large run's report would be its largest allocation.
    let mut rendered = if args.format == Format::Json {
        String::new()
    } else {
        report::render(&report, args.format, args.fail_on)
    };
    // Whether the outcomes were recorded: `None` with --no-incidents (nothing to record).
    let mut recorded: Option<Result<(), String>> = None;
    match &store {
        None => {}
        Some(Err(e)) => {
            recorded = Some(Err(e.chain()));
        }
        Some(Ok(store)) => {
            match crate::engine::apply::record_runs(
                &report.runs,
                &[],
                store,
                &engine.composer,
                cfg,
                clock.now(),
            )
            .await
            {
                Ok(mut rec) => {
                    recorded = Some(Ok(()));
                    // Holds that are over (a snooze ran out, a window closed) are told once.
                    match crate::engine::apply::end_holds(
                        store,
                        &engine.composer,
                        cfg,
                        &engine.infos,
                        clock.now(),
                    )
                    .await
                    {
                        Ok(ended) => rec.mails += ended.mails,
                        Err(e) => eprintln!("warning: {}; the next run tells it", e.chain()),
                    }
                    let delivery =
                        state::deliver(store, engine.mailer.as_ref(), &engine.channels, clock)
                            .await;
                    let (pending, dead) = store.outbox_counts().await.unwrap_or_default();
                    let mut line = incidents_line(&rec, delivery.as_ref(), pending, dead);
                    if let Ok(w) = store.outbox_waiting(clock.now()).await {
                        // After the counts, before the newline: which mails wait, and until when.
                        let waiting = super::outbox::waiting_line(&w);
                        if let Some(at) = line.find('\n') {
                            line.insert_str(at, &waiting);
                        }
                    }
                    if args.format == Format::Text {
                        rendered.push_str(&line);
                    } else {
                        eprint!("{line}");
                    }
                }
                Err(e) => recorded = Some(Err(e.chain())),
            }
        }
    }
    if let Some(Err(why)) = &recorded {
        // The outcomes stand and decide the exit code; only the incident state and the mail
        // are missing. The next run reconciles again.
        eprintln!(
            "error: {why}\n  note: {NOT_RECORDED}\n  hint: check `state` in {} (sqlite://PATH or postgres://…); the next run records again",
            cfg.path.display()
        );
        match args.format {
            Format::Text => {
                let _ = writeln!(rendered, "incidents: not recorded ({NOT_RECORDED})");
            }
            Format::Github => {
                let _ = writeln!(
                    rendered,
                    "::warning title=dqwatch::outcomes not recorded: {}",
                    github_escape(why)
                );
            }
            Format::Json | Format::Junit => {}
        }
    }
    let mut stdout = super::exit::Stdout;
    // Colours only for people: a terminal, and no NO_COLOR; never in a file or a pipe.
    let color = report::text::use_color(std::io::stdout().is_terminal());
    let for_terminal = |text: String| {
        if color {
            report::text::paint(&text)
        } else {
            text
        }
    };
    let recorded = recorded
        .as_ref()
        .map(|r| r.as_ref().copied().map_err(String::as_str));
    let json = |out: &mut dyn Write| {
        report::json::write(
            &report,
            args.fail_on,
            recorded,
            std::io::BufWriter::new(out),
        )
    };
    let written = match &args.output {
        Some(path) => if args.format == Format::Json {
            std::fs::File::create(path).and_then(|mut f| json(&mut f))
        } else {
            std::fs::write(path, &rendered)
        }
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
        .and_then(|()| {
            let text = if args.format == Format::Text {
                rendered.clone()
            } else {
                report::render(&report, Format::Text, args.fail_on)
            };
            stdout
                .write_all(for_terminal(text).as_bytes())
                .map_err(|e| e.to_string())
        }),
        None if args.format == Format::Text => stdout
            .write_all(for_terminal(rendered).as_bytes())
            .map_err(|e| e.to_string()),
        None if args.format == Format::Json => json(&mut stdout).map_err(|e| e.to_string()),
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

/// Text for a GitHub workflow command's message.
fn github_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn incidents_line(
    rec: &crate::store::Recorded,
    delivery: Option<&crate::engine::deliver::Delivery>,
    pending: i64,
    dead: i64,
) -> String {
    let mut line = format!("incidents: {} opened", rec.opened);
    if rec.reopened > 0 {
        let _ = write!(line, ", {} reopened", rec.reopened);
    }
    let _ = write!(
        line,
        ", {} raised, {} resolved; mail: {} queued",
        rec.raised, rec.resolved, rec.mails
    );
    if rec.held > 0 {
        let _ = write!(
            line,
            ", {} held (snoozed, muted or in maintenance)",
            rec.held
        );
    }
    if let Some(d) = delivery {
        let _ = write!(line, ", {} sent", d.sent);
    }
    if pending > 0 {
        let _ = write!(line, ", {pending} pending");
    }
    if dead > 0 {
        let _ = write!(line, ", {dead} dead (dqwatch outbox list --state dead)");
    }
    if let Some(d) = delivery {
        if let Some(err) = &d.last_error
            && d.last_channel.as_deref().is_none_or(|c| c == "mail")
        {
            let _ = write!(
                line,
                "\nwarning: mail delivery failed: {err}; pending mail is sent by the next run or the daemon"
            );
        }
        for (channel, why) in d.down.iter().filter(|(c, _)| *c != "mail") {
            let _ = write!(
                line,
                "\nwarning: {channel} is unreachable ({why}); its messages wait in the outbox for the next run or the daemon"
            );
        }
        if let Some(err) = &d.last_error
            && d.last_channel
                .as_ref()
                .is_some_and(|c| c != "mail" && !d.down.contains_key(c))
        {
            let _ = write!(line, "\nwarning: delivery failed: {err}");
        }
    }
    line.push('\n');
    line
}

/// A progress bar on stderr, drawn at once and redrawn every 100 ms (so that it shows before
/// the first check finishes); hidden when stderr is not a terminal.
fn progress(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

/// `running: a, b, c (+N)`: the first few checks in flight.
fn running_message(running: &std::collections::BTreeSet<String>) -> String {
    const SHOWN: usize = 3;
    if running.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = running.iter().take(SHOWN).map(String::as_str).collect();
    let mut message = format!("running: {}", names.join(", "));
    if running.len() > SHOWN {
        let _ = write!(message, " (+{})", running.len() - SHOWN);
    }
    message
}
