//! The terminal report: a line per check and key, then a summary and the verdict.

use super::{Verdict, metric_text, summarize, verdict};
use crate::engine::run::{CheckRun, RunReport};
use crate::model::{Outcome, Severity, Status};
use std::fmt::Write as _;

/// One check's lines: breaching keys one by one, passing keys folded into one line.
pub fn lines(run: &CheckRun) -> Vec<String> {
    let id = &run.check.id;
    let ms = format!("{} ms", run.duration.as_millis());
    match &run.outcome {
        Outcome::Error { kind, message } => {
            vec![format!("! ERROR {id}  {}: {message}  {ms}", kind.as_str())]
        }
        Outcome::Evaluated {
            observations,
            capped,
            rows,
            ..
        } => {
            let mut out = Vec::new();
            let cap = if *capped {
                format!("  (capped at {rows} rows)")
            } else {
                String::new()
            };
            for o in observations {
                let key = if o.key.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", o.key)
                };
                match o.status {
                    Status::Breach { severity } => {
                        out.push(format!(
                            "✗ {severity}    {id}{key}  {}  {ms}{cap}",
                            metric_text(run, o)
                        ));
                    }
                    Status::NoData => out.push(format!(
                        "○ nodata {id}{key}  no data (on_no_data = \"pass\")  {ms}"
                    )),
                    Status::Error { ref message } => {
                        out.push(format!("! ERROR {id}{key}  {message}  {ms}"))
                    }
                    Status::Pass => {}
                }
            }
            let passing: Vec<_> = observations
                .iter()
                .filter(|o| o.status == Status::Pass)
                .collect();
            match passing.as_slice() {
                [] if observations.is_empty() => out.push(format!("✓ pass  {id}  0 rows  {ms}")),
                [] => {}
                [one] if one.key.is_empty() => out.push(format!(
                    "✓ pass  {id}  {}  {ms}{cap}",
                    metric_text(run, one)
                )),
                [one] => out.push(format!(
                    "✓ pass  {id}  [{}]  {}  {ms}{cap}",
                    one.key,
                    metric_text(run, one)
                )),
                many => out.push(format!(
                    "✓ pass  {id}  {} keys within thresholds  {ms}{cap}",
                    many.len()
                )),
            }
            out
        }
    }
}

/// `n thing` or `n things`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary lines: checks, then breaching keys (one check may breach on many keys), then
/// the verdict.
pub fn summary(report: &RunReport, fail_on: Severity) -> String {
    let s = summarize(report);
    let mut out = format!(
        "\n{} in {:.2} s: {} passed, {} breached, {}",
        count(s.checks, "check", "checks"),
        report.duration.as_secs_f64(),
        s.passed,
        s.breached,
        count(s.errors, "error", "errors"),
    );
    if s.skipped > 0 {
        let _ = write!(out, ", {} skipped", s.skipped);
    }
    if !s.breaches.is_empty() {
        let keys: usize = s.breaches.values().sum();
        let by: Vec<String> = s
            .breaches
            .iter()
            .map(|(sev, n)| format!("{n} {sev}"))
            .collect();
        let _ = write!(
            out,
            "; {} ({})",
            count(keys, "breaching key", "breaching keys"),
            by.join(", ")
        );
    }
    out.push('\n');
    let n = report.breaches_at_least(fail_on);
    let line = match verdict(report, fail_on) {
        Verdict::Breach => format!(
            "FAIL: {} at {fail_on} or worse (--fail-on {fail_on})",
            count(n, "breaching key", "breaching keys")
        ),
        Verdict::CheckFailed => {
            format!("FAIL: {} could not run", count(s.errors, "check", "checks"))
        }
        Verdict::Clean => format!("OK: nothing at {fail_on} or worse (--fail-on {fail_on})"),
    };
    out.push_str(&line);
    out.push('\n');
    out
}

/// The whole text report.
pub fn render(report: &RunReport, fail_on: Severity) -> String {
    let mut out = String::new();
    for run in &report.runs {
        for line in lines(run) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    for skipped in &report.skipped {
        let _ = writeln!(out, "○ skip   {}  {}", skipped.check.id, skipped.reason);
    }
    out.push_str(&summary(report, fail_on));
    out
}

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const GREEN: &str = "\x1b[32m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The text report with ANSI colours for a terminal: the ✗ and severity of a breach (P0 and
/// P1 red, P2 yellow, P3 cyan), ✓ green, errors and FAIL red, skipped and no-data lines dim.
/// The caller decides when (a terminal, and no `NO_COLOR`).
pub fn paint(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let mark =
            |colour: &str, head: &str| format!("{colour}{head}{RESET}{}", &body[head.len()..]);
        let painted = if let Some(rest) = body.strip_prefix("✗ ") {
            let sev = rest.get(..2).unwrap_or("");
            let colour = match sev {
                "P0" | "P1" => RED,
                "P2" => YELLOW,
                _ => CYAN,
            };
            mark(colour, &body[..("✗ ".len() + sev.len())])
        } else if body.starts_with("✓ pass") {
            mark(GREEN, "✓ pass")
        } else if body.starts_with("! ERROR") {
            mark(RED, "! ERROR")
        } else if body.starts_with('○') {
            format!("{DIM}{body}{RESET}")
        } else if body.starts_with("FAIL:") {
            mark(RED, "FAIL:")
        } else if body.starts_with("OK:") {
            mark(GREEN, "OK:")
        } else {
            body.to_string()
        };
        out.push_str(&painted);
        out.push_str(nl);
    }
    out
}

/// Whether to colour output on `stream`: a terminal, and `NO_COLOR` unset or empty
/// (no-color.org).
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
