//! The Prometheus families `/metrics` exports: one table of names, types and help texts, the
//! process-wide recorder, every counter and histogram registered at 0 from start-up, and the
//! text in a stable order (families by name, series by labels).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The exposition format's content type (text format 0.0.4, UTF-8).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Any value; set from the background check.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

/// Every family: name, type, help text (README's endpoint table lists the same).
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "dqwatch_escalations_total",
        Kind::Counter,
        "Escalation steps taken for incidents left unacknowledged.",
    ),
    (
        "dqwatch_mail_sent_total",
        Kind::Counter,
        "Mails handed to the transport (SMTP or .eml files) by this daemon.",
    ),
    (
        "dqwatch_open_incidents",
        Kind::Gauge,
        "Open and acknowledged incidents by severity and category.",
    ),
    (
        "dqwatch_outbox_failed",
        Kind::Gauge,
        "Outbox mails that gave up (dead); see dqwatch outbox list --state dead.",
    ),
    (
        "dqwatch_outbox_pending",
        Kind::Gauge,
        "Outbox mails waiting to be sent.",
    ),
    (
        "dqwatch_ready",
        Kind::Gauge,
        "1 when the state store and every connection answered the last check, as /readyz.",
    ),
    (
        "dqwatch_run_duration_seconds",
        Kind::Histogram,
        "Wall time of one check run, query and evaluation, in seconds.",
    ),
    (
        "dqwatch_runs_total",
        Kind::Counter,
        "Check runs by check and outcome (pass, breach, error: the check or a key could not be judged, no_data: every key without data, allowed by on_no_data).",
    ),
    (
        "dqwatch_scheduler_lag_seconds",
        Kind::Histogram,
        "How late a scheduled slot started, in seconds.",
    ),
    (
        "dqwatch_slots_skipped_total",
        Kind::Counter,
        "Scheduled slots skipped because the previous run of the check was still going.",
    ),
    (
        "dqwatch_slots_taken_over_total",
        Kind::Counter,
        "Slots claimed by another replica whose lease ran out, taken over by this one.",
    ),
];

/// The process's recorder handle: installed once, shared by every daemon in the process.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]);
            let recorder = builder
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (not in dqwatch itself): ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// Help texts, and every unlabelled counter and histogram registered at 0 (a rate over a
/// counter that appears only on its first increment misses that increment).
fn describe() {
    for &(name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => {
                metrics::describe_counter!(name, help);
                if name != "dqwatch_runs_total" {
                    metrics::counter!(name).increment(0);
                }
            }
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => {
                metrics::describe_histogram!(name, help);
                let _ = metrics::histogram!(name);
            }
        }
    }
}

/// `dqwatch_runs_total{check,outcome}` at 0 for each check and outcome, so that every series
/// exists from start-up.
pub fn register_checks<'a>(ids: impl IntoIterator<Item = &'a str>) {
    for id in ids {
        for outcome in ["pass", "breach", "error", "no_data"] {
            metrics::counter!("dqwatch_runs_total", "check" => id.to_string(), "outcome" => outcome)
                .increment(0);
        }
    }
}

/// The exposition text in a stable order: families by name, and within a counter or gauge
/// family the series sorted (a histogram's lines keep their bucket order).
pub fn render(handle: &PrometheusHandle) -> String {
    let text = handle.render();
    let mut families: Vec<(String, Vec<&str>)> = Vec::new();
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block.lines().filter(|l| !l.is_empty()).collect();
        let Some(name) = lines.iter().find_map(|l| {
            l.strip_prefix("# TYPE ")
                .and_then(|r| r.split_whitespace().next())
        }) else {
            continue;
        };
        families.push((name.to_string(), lines));
    }
    families.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (_, lines) in families {
        let (meta, mut series): (Vec<&str>, Vec<&str>) =
            lines.into_iter().partition(|l| l.starts_with('#'));
        let histogram = meta.iter().any(|l| {
            l.starts_with("# TYPE ") && !l.ends_with(" counter") && !l.ends_with(" gauge")
        });
        if !histogram {
            series.sort_unstable();
        }
        for line in meta.into_iter().chain(series) {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    /// The README's endpoint table names every family.
    #[test]
    fn readme_lists_every_family() {
        let readme = include_str!("../../README.md");
        for (name, _, _) in super::FAMILIES {
            assert!(readme.contains(name), "README lacks {name}");
        }
    }
}
