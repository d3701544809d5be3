//! A [`RunReport`] rendered for people and for CI: text, JSON, JUnit XML and GitHub
//! workflow annotations, one file per format. Also the pass's verdict against `--fail-on`.

pub mod github;
pub mod json;
pub mod junit;
pub mod origin;
pub mod text;

use crate::engine::run::RunReport;
use crate::model::{Outcome, Severity, Status};
use std::collections::BTreeMap;

/// Output formats of `dqwatch run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A line per check and key, then a summary.
    Text,
    /// One JSON document (see README).
    Json,
    /// JUnit XML: a testcase per check.
    Junit,
    /// GitHub workflow annotations pointing at check files.
    Github,
}

/// What a pass means for CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing at or above `--fail-on`, every check ran.
    Clean,
    /// Breaches at or above `--fail-on`.
    Breach,
    /// Nothing breached at or above `--fail-on`, but a check could not run.
    CheckFailed,
}

/// Counts over a pass.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Checks run.
    pub checks: usize,
    /// Checks without breach or error.
    pub passed: usize,
    /// Checks with at least one breaching key.
    pub breached: usize,
    /// Checks that could not run, or could not judge a key (a check may also have breached).
    pub errors: usize,
    /// Selected checks not run (history rules under `--no-incidents`).
    pub skipped: usize,
    /// Breaching keys (not checks) by severity.
    pub breaches: BTreeMap<Severity, usize>,
}

/// Counts checks and breaches.
pub fn summarize(report: &RunReport) -> Summary {
    let mut s = Summary {
        checks: report.runs.len(),
        skipped: report.skipped.len(),
        ..Summary::default()
    };
    for run in &report.runs {
        match &run.outcome {
            Outcome::Error { .. } => s.errors += 1,
            Outcome::Evaluated { observations, .. } => {
                let mut breached = false;
                let mut unjudged = false;
                for o in observations {
                    match o.status {
                        Status::Breach { severity } => {
                            *s.breaches.entry(severity).or_default() += 1;
                            breached = true;
                        }
                        Status::Error { .. } => unjudged = true,
                        Status::Pass | Status::NoData => {}
                    }
                }
                // A key left unjudged is the check's error, beside its breaches.
                if unjudged {
                    s.errors += 1
                }
                if breached {
                    s.breached += 1
                } else if !unjudged {
                    s.passed += 1
                }
            }
        }
    }
    s
}

/// The verdict: breaches at or above `fail_on` win over check errors, which win over clean.
pub fn verdict(report: &RunReport, fail_on: Severity) -> Verdict {
    if report.breaches_at_least(fail_on) > 0 {
        Verdict::Breach
    } else if report.errors() > 0 {
        Verdict::CheckFailed
    } else {
        Verdict::Clean
    }
}

/// Renders `report` in `format`.
pub fn render(report: &RunReport, format: Format, fail_on: Severity) -> String {
    match format {
        Format::Text => text::render(report, fail_on),
        Format::Json => json::render(report, fail_on),
        Format::Junit => junit::render(report, fail_on, &origin::Origin::detect(report)),
        Format::Github => github::render(report, fail_on, &origin::Origin::detect(report)),
    }
}

/// `metric=value (threshold)` for a line of output, the value printed in its unit by
/// [`crate::model::Metric`] (as JSON, the page and mails print it).
pub(crate) fn metric_text(
    run: &crate::engine::run::CheckRun,
    o: &crate::model::Observation,
) -> String {
    let Some(name) = run.check.metric() else {
        if let Some(label) = &o.label {
            return format!(
                "{label} ({})",
                o.sample
                    .first()
                    .map(|r| r
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            );
        }
        let n = o.metric.unwrap_or(0.0) as u64;
        return format!("{n} row{}", if n == 1 { "" } else { "s" });
    };
    let value = o
        .metric_in_unit()
        .map_or_else(|| "NULL".into(), |m| m.to_string());
    let mut out = format!("{name}={value}");
    if let Some(label) = &o.label {
        out = format!("{label} {out}");
    }
    if let Some(t) = &o.threshold {
        out.push_str(" (");
        out.push_str(&t.to_string());
        out.push(')');
    }
    out
}
