//! `--format json`: one document, described in README ("JSON report").

use super::{Summary, Verdict, summarize, verdict};
use crate::engine::run::{CheckRun, RunReport, Skipped};
use crate::model::{ErrorKind, Observation, Outcome, Severity, Status, Unit};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The JSON report's shape; raised when a field changes meaning or goes away (adding one does
/// not raise it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Doc<'a> {
    schema_version: u32,
    version: &'static str,
    started_at: String,
    duration_ms: u128,
    fail_on: Severity,
    status: &'static str,
    summary: Summary,
    checks: Checks<'a>,
    /// Whether the run's outcomes were recorded; absent with `--no-incidents`.
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<bool>,
    /// Why they were not; only when `recorded` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    record_error: Option<&'a str>,
}

/// The checks, each turned into its document as it is written: a large run's report is never
/// held whole (200 k observations would be ~100 MiB of documents).
struct Checks<'a> {
    runs: &'a [CheckRun],
    skipped: &'a [Skipped],
}

impl Serialize for Checks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.runs
                .iter()
                .map(check_doc)
                .chain(self.skipped.iter().map(skipped_doc)),
        )
    }
}

/// A check's observations, each turned into its document as it is written.
struct Observations<'a>(&'a [Observation]);

impl Serialize for Observations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(observation_doc))
    }
}

#[derive(Serialize)]
struct CheckDoc<'a> {
    id: &'a str,
    path: String,
    connection: &'a str,
    category: &'a str,
    tags: &'a [String],
    status: &'static str,
    severity: Option<Severity>,
    duration_ms: u128,
    queue_ms: u128,
    rows: u64,
    capped: bool,
    error: Option<ErrorDoc<'a>>,
    /// Why a skipped check did not run; only on skipped checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// The warehouse's ids of the check's queries (Snowflake query ids, BigQuery job ids);
    /// only where the warehouse has them.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    query_ids: &'a [String],
    /// Bytes the check's queries processed (BigQuery); only where the warehouse says.
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_processed: Option<u64>,
    /// How many checks shared the check's one scan of its table; only on fused checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    fused: Option<usize>,
    observations: Observations<'a>,
}

#[derive(Serialize)]
struct ErrorDoc<'a> {
    kind: ErrorKind,
    message: &'a str,
}

#[derive(Serialize)]
struct ObservationDoc<'a> {
    key: BTreeMap<&'a str, &'a str>,
    status: &'static str,
    severity: Option<Severity>,
    metric: Option<f64>,
    /// The metric in its unit, as the terminal and mails print it (`1d 2h`).
    metric_text: Option<String>,
    unit: Unit,
    threshold: Option<String>,
    label: Option<&'a str>,
}

/// Renders the report as pretty JSON.
pub fn render(report: &RunReport, fail_on: Severity) -> String {
    let mut out = Vec::new();
    match write(report, fail_on, None, &mut out) {
        // serde_json writes valid UTF-8.
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
    }
}

/// Writes the report as pretty JSON (the document [`render`] gives) to `out`, a check at a
/// time; with `recorded` (a run that recorded its outcomes, or tried to) its last fields are
/// `"recorded"` and, when that failed, `"record_error"`.
pub fn write(
    report: &RunReport,
    fail_on: Severity,
    recorded: Option<Result<(), &str>>,
    mut out: impl Write,
) -> io::Result<()> {
    let doc = Doc {
        schema_version: SCHEMA_VERSION,
        version: env!("CARGO_PKG_VERSION"),
        started_at: report
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        duration_ms: report.duration.as_millis(),
        fail_on,
        status: match verdict(report, fail_on) {
            Verdict::Clean => "clean",
            Verdict::Breach => "breach",
            Verdict::CheckFailed => "check_failed",
        },
        summary: summarize(report),
        checks: Checks {
            runs: &report.runs,
            skipped: &report.skipped,
        },
        recorded: recorded.map(|r| r.is_ok()),
        record_error: recorded.and_then(Result::err),
    };
    serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

fn check_doc(run: &CheckRun) -> CheckDoc<'_> {
    let mut doc = CheckDoc {
        id: &run.check.id.0,
        path: run.check.path.display().to_string(),
        connection: &run.check.connection,
        category: run.check.category.as_str(),
        tags: &run.check.tags,
        status: "pass",
        severity: run.outcome.worst(),
        duration_ms: run.duration.as_millis(),
        queue_ms: run.queued.as_millis(),
        rows: 0,
        capped: false,
        error: None,
        reason: None,
        query_ids: &run.stats.query_ids,
        bytes_processed: run.stats.bytes_processed,
        fused: run.stats.fused,
        observations: Observations(&[]),
    };
    match &run.outcome {
        Outcome::Error { kind, message } => {
            doc.status = "error";
            doc.error = Some(ErrorDoc {
                kind: *kind,
                message,
            });
        }
        Outcome::Evaluated {
            observations,
            rows,
            capped,
            ..
        } => {
            doc.rows = *rows;
            doc.capped = *capped;
            if doc.severity.is_some() {
                doc.status = "breach";
            }
            doc.observations = Observations(observations);
        }
    }
    doc
}

fn skipped_doc(skipped: &Skipped) -> CheckDoc<'_> {
    CheckDoc {
        id: &skipped.check.id.0,
        path: skipped.check.path.display().to_string(),
        connection: &skipped.check.connection,
        category: skipped.check.category.as_str(),
        tags: &skipped.check.tags,
        status: "skipped",
        severity: None,
        duration_ms: 0,
        queue_ms: 0,
        rows: 0,
        capped: false,
        error: None,
        reason: Some(&skipped.reason),
        query_ids: &[],
        bytes_processed: None,
        fused: None,
        observations: Observations(&[]),
    }
}

fn observation_doc(o: &Observation) -> ObservationDoc<'_> {
    ObservationDoc {
        key: o.key.0.iter().map(|(k, v)| (&**k, v.as_str())).collect(),
        status: match o.status {
            Status::Pass => "pass",
            Status::Breach { .. } => "breach",
            Status::NoData => "no_data",
            Status::Error { .. } => "error",
        },
        severity: match o.status {
            Status::Breach { severity } => Some(severity),
            _ => None,
        },
        metric: o.metric,
        metric_text: o.metric_in_unit().map(|m| m.to_string()),
        unit: o.unit(),
        threshold: o.threshold.as_ref().map(|t| t.to_string()),
        label: o.label.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn written(report: &RunReport, recorded: Option<Result<(), &str>>) -> String {
        let mut out = Vec::new();
        write(report, Severity::P1, recorded, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    // `"recorded"` (and `"record_error"`) close the document, as they did when they were
    // spliced into the rendered string; without them it is `render`'s document.
    #[test]
    fn recorded_fields_come_last() {
        let report = RunReport {
            started_at: chrono::DateTime::UNIX_EPOCH,
            duration: Duration::from_millis(5),
            runs: Vec::new(),
            skipped: Vec::new(),
        };
        let plain = render(&report, Severity::P1);
        assert_eq!(written(&report, None), plain);
        assert!(plain.ends_with("  \"checks\": []\n}\n"), "{plain}");
        let body = plain.trim_end().trim_end_matches('}').trim_end();
        assert_eq!(
            written(&report, Some(Ok(()))),
            format!("{body},\n  \"recorded\": true\n}}\n")
        );
        assert_eq!(
            written(&report, Some(Err("failed to \"connect\""))),
            format!(
                "{body},\n  \"recorded\": false,\n  \"record_error\": \"failed to \\\"connect\\\"\"\n}}\n"
            )
        );
    }
}
