//! `--format json`: one document, described in README ("JSON report").

use super::{Summary, Verdict, summarize, verdict};
use crate::engine::run::RunReport;
use crate::model::{ErrorKind, Outcome, Severity, Status, Unit};
use serde::Serialize;
use std::collections::BTreeMap;

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
    checks: Vec<CheckDoc<'a>>,
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
    observations: Vec<ObservationDoc<'a>>,
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
    let checks = report
        .runs
        .iter()
        .map(|run| {
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
                observations: Vec::new(),
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
                    doc.observations = observations
                        .iter()
                        .map(|o| ObservationDoc {
                            key: o
                                .key
                                .0
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str()))
                                .collect(),
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
                        })
                        .collect();
                }
            }
            doc
        })
        .chain(report.skipped.iter().map(|skipped| CheckDoc {
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
            observations: Vec::new(),
        }))
        .collect();
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
        checks,
    };
    let mut out =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}
