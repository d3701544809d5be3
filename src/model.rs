//! The vocabulary every stage shares: check ids, severities, categories, values from a
//! warehouse, observations and outcomes. Plain data, no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A check's id: its path under `checks_dir` without the extension (`finance/revenue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CheckId(pub String);

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Incident severity. `P0` is the worst; the derived order sorts worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    /// Critical.
    P0,
    /// High.
    P1,
    /// Medium.
    P2,
    /// Low.
    P3,
}

impl Severity {
    /// All severities, worst first.
    pub const ALL: [Severity; 4] = [Severity::P0, Severity::P1, Severity::P2, Severity::P3];

    /// True when `self` is as bad as `other` or worse (`P0.at_least(P1)`).
    pub fn at_least(self, other: Severity) -> bool {
        self <= other
    }

    /// The name as written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown severity \"{s}\" (expected P0, P1, P2 or P3)"))
    }
}

/// What kind of problem an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Expected data is absent (a partition, a day).
    MissingData,
    /// Data that existed is gone.
    DataLoss,
    /// Data is late.
    StaleData,
    /// Two systems disagree.
    Reconciliation,
    /// The same data was loaded more than once.
    DuplicateLoad,
    /// Columns were dropped or retyped.
    SchemaBreak,
    /// A quality measure got worse.
    QualityDegradation,
    /// A pipeline is failing.
    PipelineFailure,
    /// The check itself cannot run.
    CheckFailure,
}

impl Category {
    /// All categories, in documentation order.
    pub const ALL: [Category; 9] = [
        Category::MissingData,
        Category::DataLoss,
        Category::StaleData,
        Category::Reconciliation,
        Category::DuplicateLoad,
        Category::SchemaBreak,
        Category::QualityDegradation,
        Category::PipelineFailure,
        Category::CheckFailure,
    ];

    /// The name as written in check headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::MissingData => "missing_data",
            Category::DataLoss => "data_loss",
            Category::StaleData => "stale_data",
            Category::Reconciliation => "reconciliation",
            Category::DuplicateLoad => "duplicate_load",
            Category::SchemaBreak => "schema_break",
            Category::QualityDegradation => "quality_degradation",
            Category::PipelineFailure => "pipeline_failure",
            Category::CheckFailure => "check_failure",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Category::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown category \"{s}\" (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// One cell of a warehouse result, decoded into the few shapes dqwatch reasons about.
/// Dates and timestamps arrive as ISO 8601 text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer of any width that fits in 64 bits.
    Int(i64),
    /// A float, or a NUMERIC/DECIMAL converted to one.
    Float(f64),
    /// Text, or a date/time rendered as ISO 8601.
    Text(String),
    /// A type dqwatch does not read (the database's type name); a cast in the SQL fixes it.
    Unsupported(String),
}

impl Value {
    /// The value as a number, if it is one (booleans are not).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// A stable rendering: keys built from it must not change between runs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{}", format_number(*x)),
            Value::Text(s) => f.write_str(s),
            Value::Unsupported(t) => write!(f, "<{t}>"),
        }
    }
}

/// How times are written everywhere (stored, mailed, printed): fixed-width UTC with
/// milliseconds, so that text order is time order.
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// Formats a time: `2026-11-23T18:53:51.177Z`.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format(TIME_FORMAT).to_string()
}

/// Renders a metric without float noise: integers without `.0`, others to at most 6 decimals.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Renders seconds as a short duration (`"2h 5m"`, `"45s"`): the two largest units.
pub fn format_duration(seconds: f64) -> String {
    let neg = seconds < 0.0;
    let mut s = seconds.abs().round() as u64;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size {
            parts.push(format!("{}{unit}", s / size));
            s %= size;
        }
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    let out = parts.into_iter().take(2).collect::<Vec<_>>().join(" ");
    if neg { format!("-{out}") } else { out }
}

/// The unit of a metric, set by how its thresholds are written: `"> 100"` is a number,
/// `"> 5%"` a percent (the metric is already in percent), `"> 2h"` seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A plain number.
    #[default]
    Number,
    /// A percentage (`7.5` is 7.5%).
    Percent,
    /// A duration in seconds.
    Seconds,
}

impl Unit {
    /// The name stored and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Number => "number",
            Unit::Percent => "percent",
            Unit::Seconds => "seconds",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Unit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Unit::Number, Unit::Percent, Unit::Seconds]
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| format!("unknown unit \"{s}\" (expected number, percent or seconds)"))
    }
}

/// A metric value in its unit. Its `Display` is the one way a metric is printed: in the
/// terminal, JSON's `metric_text`, the incidents page, `incidents show` and every mail
/// (`12500`, `7.5%`, `1d 2h`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// The number, as the check returned it (durations in seconds).
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Unit::Number => f.write_str(&format_number(self.value)),
            Unit::Percent => write!(f, "{}%", format_number(self.value)),
            Unit::Seconds => f.write_str(&format_duration(self.value)),
        }
    }
}

/// A threshold as printed everywhere: its level, then the text as written (`P2 > 24h`).
pub fn format_threshold(severity: Severity, text: &str) -> String {
    format!("{severity} {text}")
}

/// A comparison a metric is held against (`> 100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `value <op> limit` holds.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Eq => value == limit,
            Op::Ne => value != limit,
        }
    }
}

/// One threshold level: a metric breaching `op limit` is at `severity`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// The level a match gives.
    pub severity: Severity,
    /// The comparison.
    pub op: Op,
    /// The limit, in the metric's unit (durations are seconds).
    pub limit: f64,
    /// The unit the text was written in (`"> 2h"`: seconds), which is the metric's.
    pub unit: Unit,
    /// The text the user wrote (`"> 2h"`), for display. Shared: every observation judged
    /// against this level carries it.
    #[serde(serialize_with = "serialize_str")]
    pub text: Arc<str>,
}

fn serialize_str<S: serde::Serializer>(s: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(s)
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_threshold(self.severity, &self.text))
    }
}

/// A check's subject: the values of its `keys` columns, `(column, value)` in header order.
/// Empty for a check without keys. A column's name is shared by every key of a run (a run
/// holds 100 k keys and more). Serialized as `[[column, value], …]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub Vec<(Arc<str>, String)>);

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(c, v)| (&**c, v.as_str())))
    }
}

impl From<Vec<(String, String)>> for Key {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Key(pairs.into_iter().map(|(c, v)| (Arc::from(c), v)).collect())
    }
}

impl Key {
    /// True for a check without keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (col, val)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{col}={val}")?;
        }
        Ok(())
    }
}

/// Rows kept per key as a sample for tickets.
pub const SAMPLE_ROWS: usize = 10;

/// The verdict on one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Within thresholds.
    Pass,
    /// A threshold breach at `severity`.
    Breach {
        /// The worst matching level.
        severity: Severity,
    },
    /// No metric for this key, and `on_no_data = "pass"` said that is fine.
    NoData,
    /// This key could not be judged (a NULL metric with `on_no_data = "error"`): its
    /// incident is left as it is — neither a pass nor a breach — and the run counts as a
    /// check error; the other keys are judged.
    Error {
        /// Why, for people.
        message: String,
    },
}

/// What one run of a check saw for one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// The subject.
    pub key: Key,
    /// The verdict.
    #[serde(flatten)]
    pub status: Status,
    /// The metric, when the check has one and it was not NULL. For a check without a
    /// metric, the number of rows returned for this key.
    pub metric: Option<f64>,
    /// The measurement behind the metric, kept as history (for most checks the metric
    /// itself; for volume_anomaly the row count while the metric is its z-score).
    #[serde(skip)]
    pub value: Option<f64>,
    /// The threshold that matched (breach) or the mildest one not reached (pass).
    pub threshold: Option<Threshold>,
    /// The label read from `severity_column`, if the check maps one.
    pub label: Option<String>,
    /// Sample rows for this key (the worst row; for row-failure checks up to
    /// [`SAMPLE_ROWS`] of them), in the order of `Outcome::Evaluated::columns`. A finished
    /// run keeps them only where they are read (`evaluate::drop_unread_samples`).
    #[serde(skip)]
    pub sample: Vec<Vec<Value>>,
}

impl Observation {
    /// The metric's unit: its threshold's, else a plain number.
    pub fn unit(&self) -> Unit {
        self.threshold.as_ref().map_or(Unit::Number, |t| t.unit)
    }

    /// The metric in its unit, if there is one.
    pub fn metric_in_unit(&self) -> Option<Metric> {
        self.metric.map(|value| Metric {
            value,
            unit: self.unit(),
        })
    }
}

/// Rows read from a warehouse for one check, decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    /// Column names, as the database reports them.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
    /// True when more rows existed than `max_rows` allowed reading.
    pub capped: bool,
}

/// What a warehouse told about the queries of one check (the JSON report's `query_ids` and
/// `bytes_processed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueryStats {
    /// The warehouse's own ids of the queries run: Snowflake query ids, BigQuery job ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query_ids: Vec<String>,
    /// Bytes the queries processed (BigQuery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_processed: Option<u64>,
    /// How many checks the query served: set when the check ran in a scan shared with
    /// other rule checks on its table (whose bytes are counted on its first check only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fused: Option<usize>,
}

impl QueryStats {
    /// Adds another query's figures (a reconciliation runs two).
    pub fn merge(&mut self, other: QueryStats) {
        self.query_ids.extend(other.query_ids);
        self.bytes_processed = match (self.bytes_processed, other.bytes_processed) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
        self.fused = self.fused.or(other.fused);
    }
}

/// Why a check could not give a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The warehouse could not be reached or refused the login.
    Connection,
    /// The database rejected or failed the query.
    Query,
    /// The statement timeout fired.
    Timeout,
    /// The result does not have the shape the header promised (missing or text metric).
    Result,
    /// No metric where one was expected, and `on_no_data = "error"`.
    NoData,
}

impl ErrorKind {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connection => "connection",
            ErrorKind::Query => "query",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Result => "result",
            ErrorKind::NoData => "no_data",
        }
    }
}

/// The result of evaluating one run of a check. A check that could not run is an
/// `Error`, never a pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The query ran and every row was judged.
    Evaluated {
        /// Result column names.
        columns: Vec<String>,
        /// One observation per distinct key, breaches first.
        observations: Vec<Observation>,
        /// Rows read from the warehouse.
        rows: u64,
        /// True when the result was cut at `max_rows`; later rows were not judged.
        capped: bool,
    },
    /// The check could not give a verdict.
    Error {
        /// The class of failure.
        kind: ErrorKind,
        /// The database's (or dqwatch's) message, free of secrets.
        message: String,
    },
}

impl Outcome {
    /// The worst breach severity, if any key breached.
    pub fn worst(&self) -> Option<Severity> {
        match self {
            Outcome::Evaluated { observations, .. } => observations
                .iter()
                .filter_map(|o| match o.status {
                    Status::Breach { severity } => Some(severity),
                    _ => None,
                })
                .min(),
            Outcome::Error { .. } => None,
        }
    }

    /// A run's verdict in one word, as the runs table, `/metrics` and the page give it:
    /// `breach` (a key breached), `error` (the check or one of its keys could not be judged),
    /// `no_data` (every key had no data and that was allowed), else `pass`.
    pub fn verdict(&self) -> &'static str {
        match self {
            Outcome::Error { .. } => "error",
            _ if self.worst().is_some() => "breach",
            _ if self.unjudged() > 0 => "error",
            Outcome::Evaluated { observations, .. }
                if !observations.is_empty()
                    && observations.iter().all(|o| o.status == Status::NoData) =>
            {
                "no_data"
            }
            Outcome::Evaluated { .. } => "pass",
        }
    }

    /// Keys that could not be judged ([`Status::Error`]).
    pub fn unjudged(&self) -> usize {
        match self {
            Outcome::Evaluated { observations, .. } => observations
                .iter()
                .filter(|o| matches!(o.status, Status::Error { .. }))
                .count(),
            Outcome::Error { .. } => 0,
        }
    }

    /// True for a check error.
    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::Error { .. })
    }
}

/// Where an incident is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Breaching, but fewer than `open_after` runs so far; nobody is told yet.
    Pending,
    /// Open and unacknowledged.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Over.
    Resolved,
}

impl IncidentState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Pending => "pending",
            IncidentState::Open => "open",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }

    /// True while the incident is not resolved.
    pub fn is_active(self) -> bool {
        self != IncidentState::Resolved
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(IncidentState::Pending),
            "open" => Ok(IncidentState::Open),
            "acknowledged" => Ok(IncidentState::Acknowledged),
            "resolved" => Ok(IncidentState::Resolved),
            other => Err(format!("unknown incident state \"{other}\"")),
        }
    }
}

/// A rendered email, ready for the outbox. Compose makes it, the store keeps it, a
/// transport sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    /// Recipients.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// `Message-ID`, with angle brackets; stable per incident event.
    pub message_id: String,
    /// The thread's first `Message-ID`, for every mail after the first.
    pub in_reply_to: Option<String>,
}

/// A composed message for a channel other than mail (Slack, PagerDuty, Teams, a webhook),
/// ready for the outbox. Compose makes it, the store keeps it, a transport sends it. It
/// never holds a secret: tokens, routing keys and signing secrets are the transport's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// The outbox channel: `slack:NAME`, `slack_webhook:NAME`, `pagerduty:NAME`,
    /// `teams:NAME` or `webhook:NAME`.
    pub channel: String,
    /// Where in the channel (a Slack channel, the PagerDuty service name…), for listings.
    pub target: String,
    /// One line saying what it tells, for listings.
    pub summary: String,
    /// A stable id per message: the webhook-id of a signed webhook, the dedup key of a
    /// PagerDuty event; the same on every retry.
    pub message_id: String,
    /// The message as the transport sends it (less its secrets).
    pub payload: serde_json::Value,
}

impl Notice {
    /// The channel's kind (`slack`, `pagerduty` …): what comes before the colon.
    pub fn kind(&self) -> &str {
        channel_kind(&self.channel)
    }
}

/// A Slack thread's root: where an incident's messages in a channel hang.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatThread {
    /// The Slack channel id the root was posted to.
    pub chat: String,
    /// The root message's ts.
    pub ts: String,
}

/// At most `max` characters of `s`, cut on a character boundary, with `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The kind of an outbox channel (`mail`, `slack`, `pagerduty` …): what comes before the
/// colon of `KIND:NAME`.
pub fn channel_kind(channel: &str) -> &str {
    channel.split(':').next().unwrap_or(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_is_worst_first() {
        assert!(Severity::P0.at_least(Severity::P1));
        assert!(Severity::P1.at_least(Severity::P1));
        assert!(!Severity::P2.at_least(Severity::P1));
        assert_eq!("p2".parse::<Severity>(), Ok(Severity::P2));
        assert!("P4".parse::<Severity>().is_err());
    }

    #[test]
    fn a_run_s_verdict_never_calls_no_data_or_an_unjudged_key_a_pass() {
        let obs = |status: Status| Observation {
            key: Key(vec![("k".into(), "a".into())]),
            status,
            metric: None,
            value: None,
            threshold: None,
            label: None,
            sample: vec![],
        };
        let run = |list: Vec<Observation>| Outcome::Evaluated {
            columns: vec![],
            observations: list,
            rows: 1,
            capped: false,
        };
        let error = Status::Error {
            message: "x".into(),
        };
        assert_eq!(run(vec![obs(Status::Pass)]).verdict(), "pass");
        assert_eq!(run(vec![]).verdict(), "pass");
        assert_eq!(run(vec![obs(Status::NoData)]).verdict(), "no_data");
        assert_eq!(
            run(vec![obs(Status::NoData), obs(Status::Pass)]).verdict(),
            "pass"
        );
        assert_eq!(
            run(vec![obs(error.clone()), obs(Status::Pass)]).verdict(),
            "error"
        );
        let breach = Status::Breach {
            severity: Severity::P2,
        };
        assert_eq!(run(vec![obs(error), obs(breach)]).verdict(), "breach");
    }

    #[test]
    fn numbers_render_without_noise() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(Value::Float(1e20).to_string(), "100000000000000000000");
        assert_eq!(
            Value::Unsupported("INTERVAL".into()).to_string(),
            "<INTERVAL>"
        );
    }

    #[test]
    fn durations_render_in_two_units() {
        assert_eq!(format_duration(45.0), "45s");
        assert_eq!(format_duration(7500.0), "2h 5m");
        assert_eq!(format_duration(90061.0), "1d 1h");
        assert_eq!(format_duration(0.0), "0s");
    }

    #[test]
    fn a_metric_prints_in_its_unit() {
        let m = |value, unit| Metric { value, unit }.to_string();
        assert_eq!(m(93600.0, Unit::Seconds), "1d 2h");
        assert_eq!(m(7.5, Unit::Percent), "7.5%");
        assert_eq!(m(12500.0, Unit::Number), "12500");
        for u in [Unit::Number, Unit::Percent, Unit::Seconds] {
            assert_eq!(u.as_str().parse::<Unit>(), Ok(u));
        }
    }
}

/// A value that must never be printed: `Debug` and `Display` show `****`, or, for a URL, the
/// URL with its password masked ([`Secret::url`]).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret {
    value: String,
    shown: Option<String>,
}

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Self { value, shown: None }
    }

    /// Wraps a URL holding a secret, shown as `shown` (the URL with its password masked).
    pub fn url(value: String, shown: String) -> Self {
        Self {
            value,
            shown: Some(shown),
        }
    }

    /// The secret itself, for the one place that needs it (a login).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// True when no secret was given.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown.as_deref().unwrap_or("****"))
    }
}
