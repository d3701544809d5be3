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

/// The summary lines.
pub fn summary(report: &RunReport, fail_on: Severity) -> String {
    let s = summarize(report);
    let mut out = format!(
        "\n{} checks in {:.2} s: {} passed, {} breached",
        s.checks,
        report.duration.as_secs_f64(),
        s.passed,
        s.breached
    );
    if !s.breaches.is_empty() {
        let by: Vec<String> = s
            .breaches
            .iter()
            .map(|(sev, n)| format!("{n} {sev}"))
            .collect();
        let _ = write!(out, " ({})", by.join(", "));
    }
    let _ = writeln!(
        out,
        ", {} {}",
        s.errors,
        if s.errors == 1 { "error" } else { "errors" }
    );
    let n = report.breaches_at_least(fail_on);
    let line = match verdict(report, fail_on) {
        Verdict::Breach => format!(
            "FAIL: {n} breach{} at {fail_on} or worse (--fail-on {fail_on})",
            if n == 1 { "" } else { "es" }
        ),
        Verdict::CheckFailed => format!(
            "FAIL: {} check{} could not run",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        ),
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
    out.push_str(&summary(report, fail_on));
    out
}
