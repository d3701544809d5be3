//! [`Check`], the validated form of one check file, and the types it is made of: how its
//! rows are judged, what no data means, its reconciliation sides and history engine. Data
//! only; parsing is in `sql_check.rs` and `rule_check.rs`.

use super::Schedule;
use crate::config::Lifecycle;
use crate::model::{Category, CheckId, Severity, Threshold};
use std::path::PathBuf;

/// How a check's rows become verdicts.
#[derive(Debug, Clone, PartialEq)]
pub enum Judge {
    /// No metric: every returned row is a failure at this severity (the dbt convention).
    RowsFail {
        /// Severity of a breach.
        severity: Severity,
    },
    /// A numeric column compared with threshold levels, worst first.
    Thresholds {
        /// The metric column.
        metric: String,
        /// Levels, sorted worst first; the first that holds wins.
        levels: Vec<Threshold>,
    },
    /// A text column mapped to severities (`HIGH_RISK = "P1"`, `LOW = "pass"`).
    SeverityMap {
        /// The label column.
        column: String,
        /// An optional numeric column shown beside it.
        metric: Option<String>,
        /// Label → severity; `None` means the label passes.
        map: Vec<(String, Option<Severity>)>,
    },
}

/// What an empty result or a NULL metric means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNoData {
    /// A check error (the default: never a silent pass).
    Error,
    /// Fine: recorded as `no_data`.
    Pass,
    /// A breach at this severity.
    Breach(Severity),
}

/// A validated check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Path under `checks_dir` without extension.
    pub id: CheckId,
    /// The file, as found under `checks_dir`.
    pub path: PathBuf,
    /// What the check guards, for people.
    pub description: Option<String>,
    /// The `[connections.NAME]` it runs on.
    pub connection: String,
    /// When the daemon runs it; `None` runs only with `dqwatch run`.
    pub schedule: Option<Schedule>,
    /// Incident category.
    pub category: Category,
    /// Always told about its incidents.
    pub owners: Vec<String>,
    /// Free-form labels for routes and `--select tag:x`.
    pub tags: Vec<String>,
    /// Impact modifiers (`revenue`, `customer-facing`, …).
    pub impact: Vec<String>,
    /// The severity floor its impact tags give (the worst `[impact.NAME] min_severity`),
    /// resolved at load; evaluation raises every breach to it, once, so the report, the
    /// exit code and the incident agree.
    pub min_severity: Option<Severity>,
    /// An http(s) link.
    pub runbook: Option<String>,
    /// BigQuery: the dry-run limit and `maximumBytesBilled` of its jobs, over the
    /// connection's `max_bytes_billed`.
    pub max_bytes_billed: Option<u64>,
    /// Columns that split the check into one subject per distinct value.
    pub keys: Vec<String>,
    /// How rows are judged.
    pub judge: Judge,
    /// What no data means.
    pub on_no_data: OnNoData,
    /// Lifecycle counts, config defaults overridden by the header.
    pub lifecycle: Lifecycle,
    /// The query, verbatim.
    pub sql: String,
    /// 1-based line of the file where the query starts.
    pub sql_line: usize,
    /// The built-in or `rules_dir` rule this check uses.
    pub rule: Option<String>,
    /// For `reconciliation_gap`: the two sides joined in dqwatch (`sql` is the source's).
    pub reconcile: Option<Reconcile>,
    /// For rules judged against dqwatch's own stored history.
    pub history: Option<HistoryEngine>,
    /// Its part in a scan shared with other rule checks on the same table (`None`: it runs
    /// alone, because its rule has no fused form or the check says `fuse = false`).
    pub fuse: Option<super::fuse::Fusable>,
}

/// Rules that compare a run with dqwatch's stored history.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryEngine {
    /// `volume_anomaly`: the count per key against its past counts (robust z-score).
    Volume {
        /// Past runs needed before judging.
        min_history: usize,
        /// |z| beyond this is an anomaly.
        sensitivity: f64,
        /// Compare only with the same weekday.
        day_of_week: bool,
        /// Severity of an anomaly.
        severity: Severity,
    },
    /// `schema_change`: columns and types against the previous snapshot.
    Schema {
        /// Severity of a dropped or retyped column.
        severity: Severity,
        /// Severity of an added column (`None`: a pass).
        added: Option<Severity>,
    },
    /// `trend_risk` with `of`: another check's stored metric history.
    TrendOf {
        /// The other check.
        of: CheckId,
        /// Day and week drop limits (percent) and severity of HIGH risk.
        high: (f64, f64, Severity),
        /// The same for MEDIUM risk.
        medium: (f64, f64, Severity),
    },
}

/// One side of a reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// Its connection; the check's when `None`.
    pub connection: Option<String>,
    /// A query returning `key, value`.
    pub sql: String,
}

/// A reconciliation: two sides joined by key, with a tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconcile {
    /// The reference side.
    pub source: Side,
    /// The side that must agree.
    pub target: Side,
    /// An absolute gap up to this is fine.
    pub tolerance_abs: f64,
    /// A gap up to this percent of the source value is fine.
    pub tolerance_pct: f64,
}

impl Check {
    /// The metric column, if the check has one.
    pub fn metric(&self) -> Option<&str> {
        match &self.judge {
            Judge::RowsFail { .. } => None,
            Judge::Thresholds { metric, .. } => Some(metric),
            Judge::SeverityMap { metric, .. } => metric.as_deref(),
        }
    }
}

/// A minimal valid check for tests elsewhere in the crate.
#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// A check `id` on connection `warehouse`, rows-fail at P2, no schedule.
    pub fn check(id: &str) -> Check {
        Check {
            id: CheckId(id.into()),
            path: format!("checks/{id}.sql").into(),
            description: None,
            connection: "warehouse".into(),
            schedule: None,
            category: Category::QualityDegradation,
            owners: vec![],
            tags: vec![],
            impact: vec![],
            min_severity: None,
            runbook: None,
            max_bytes_billed: None,
            keys: vec![],
            judge: Judge::RowsFail {
                severity: Severity::P2,
            },
            on_no_data: OnNoData::Error,
            lifecycle: Lifecycle::default(),
            sql: "SELECT 1".into(),
            sql_line: 2,
            rule: None,
            reconcile: None,
            history: None,
            fuse: None,
        }
    }
}
