//! Stored rows and their conversion to the incident vocabulary. Timestamps are stored as
//! fixed-width UTC text so that both backends compare them the same way.

use super::StoreError;
use crate::incidents::{Controls, Event, EventFields, EventKind, Incident};
use crate::model::{Category, CheckId, IncidentState, Key, Severity, Unit};
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::model::TIME_FORMAT;
pub use crate::model::format_time;

/// Parses a stored time.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|e| StoreError::Corrupt {
            what: "a timestamp",
            message: format!("\"{s}\": {e}"),
        })
}

fn opt_time(s: Option<&String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| parse_time(s)).transpose()
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str, what: &'static str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|message| StoreError::Corrupt { what, message })
}

/// Serializes a key as `[[col, value], …]`.
pub(crate) fn key_json(key: &Key) -> String {
    serde_json::to_string(&key.0).unwrap_or_else(|_| "[]".into())
}

/// The columns of `incidents`, in the order of [`IncidentRow`].
pub(crate) const INCIDENT_COLUMNS: &str = "id, fingerprint, check_id, key_json, state, category, severity, \
    current_severity, peak_severity, title, first_seen_at, opened_at, acknowledged_at, acknowledged_by, \
    resolved_at, resolved_by, last_seen_at, breach_streak, pass_streak, repeat_count, metric, threshold, detail, \
    escalation_json, escalation_step, next_escalation_at, renotify_secs, next_reminder_at, unit, threshold_severity, label, history, flapping, members_json, revision";

/// A row of `incidents`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct IncidentRow {
    id: i64,
    fingerprint: String,
    check_id: String,
    key_json: String,
    state: String,
    category: String,
    severity: String,
    current_severity: String,
    peak_severity: String,
    title: String,
    first_seen_at: String,
    opened_at: Option<String>,
    acknowledged_at: Option<String>,
    acknowledged_by: Option<String>,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    last_seen_at: String,
    breach_streak: i64,
    pass_streak: i64,
    repeat_count: i64,
    metric: Option<f64>,
    threshold: Option<String>,
    detail: Option<String>,
    escalation_json: Option<String>,
    escalation_step: i64,
    next_escalation_at: Option<String>,
    renotify_secs: Option<i64>,
    next_reminder_at: Option<String>,
    unit: String,
    threshold_severity: Option<String>,
    label: Option<String>,
    history: i64,
    flapping: bool,
    members_json: Option<String>,
    revision: i64,
}

impl IncidentRow {
    pub(crate) fn into_incident(self) -> Result<Incident, StoreError> {
        let key: Vec<(String, String)> =
            serde_json::from_str(&self.key_json).map_err(|e| StoreError::Corrupt {
                what: "an incident key",
                message: e.to_string(),
            })?;
        Ok(Incident {
            id: self.id,
            fingerprint: self.fingerprint,
            check_id: CheckId(self.check_id),
            key: Key::from(key),
            state: parse::<IncidentState>(&self.state, "an incident state")?,
            category: parse::<Category>(&self.category, "a category")?,
            severity: parse::<Severity>(&self.severity, "a severity")?,
            current_severity: parse::<Severity>(&self.current_severity, "a severity")?,
            peak_severity: parse::<Severity>(&self.peak_severity, "a severity")?,
            title: self.title,
            first_seen_at: parse_time(&self.first_seen_at)?,
            opened_at: opt_time(self.opened_at.as_ref())?,
            acknowledged_at: opt_time(self.acknowledged_at.as_ref())?,
            acknowledged_by: self.acknowledged_by,
            resolved_at: opt_time(self.resolved_at.as_ref())?,
            resolved_by: self.resolved_by,
            last_seen_at: parse_time(&self.last_seen_at)?,
            breach_streak: self.breach_streak as u32,
            pass_streak: self.pass_streak as u32,
            repeat_count: self.repeat_count as u32,
            metric: self.metric,
            unit: parse::<Unit>(&self.unit, "a metric unit")?,
            threshold: self.threshold,
            threshold_severity: self
                .threshold_severity
                .as_deref()
                .map(|s| parse::<Severity>(s, "a severity"))
                .transpose()?,
            label: self.label,
            detail: self.detail,
            escalation: match &self.escalation_json {
                Some(j) => serde_json::from_str(j).map_err(|e| StoreError::Corrupt {
                    what: "an escalation chain",
                    message: e.to_string(),
                })?,
                None => Vec::new(),
            },
            escalation_step: self.escalation_step as u32,
            next_escalation_at: opt_time(self.next_escalation_at.as_ref())?,
            renotify_secs: self.renotify_secs.map(|s| s as u64),
            next_reminder_at: opt_time(self.next_reminder_at.as_ref())?,
            history: self.history as u64,
            flapping: self.flapping,
            members: match &self.members_json {
                Some(j) => serde_json::from_str(j).map_err(|e| StoreError::Corrupt {
                    what: "a storm's keys",
                    message: e.to_string(),
                })?,
                None => Vec::new(),
            },
            revision: self.revision,
        })
    }
}

/// A row of `events`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    at: String,
    kind: String,
    actor: String,
    severity: String,
    note: Option<String>,
    fields_json: Option<String>,
}

/// A row of `events` with the incident it belongs to.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TimelineRow {
    pub(crate) incident_id: i64,
    #[sqlx(flatten)]
    pub(crate) event: EventRow,
}

impl EventRow {
    pub(crate) fn into_event(self) -> Result<Event, StoreError> {
        Ok(Event {
            id: self.id,
            kind: EventKind::parse(&self.kind).ok_or_else(|| StoreError::Corrupt {
                what: "an event kind",
                message: self.kind.clone(),
            })?,
            at: parse_time(&self.at)?,
            actor: self.actor,
            severity: parse::<Severity>(&self.severity, "a severity")?,
            note: self.note,
            fields: match &self.fields_json {
                Some(j) => serde_json::from_str(j).map_err(|e| StoreError::Corrupt {
                    what: "an event's fields",
                    message: e.to_string(),
                })?,
                None => EventFields::default(),
            },
        })
    }
}

/// The on-call columns of `incidents`, in the order of [`ControlsRow`] after `id`.
pub(crate) const CONTROL_COLUMNS: &str =
    "assignee, snoozed_until, muted, hold_reason, hold_by, held_since";

/// The on-call columns of a row of `incidents`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ControlsRow {
    pub(crate) id: i64,
    assignee: Option<String>,
    snoozed_until: Option<String>,
    muted: i64,
    hold_reason: Option<String>,
    hold_by: Option<String>,
    held_since: Option<String>,
}

impl ControlsRow {
    pub(crate) fn into_controls(self) -> Result<Controls, StoreError> {
        Ok(Controls {
            assignee: self.assignee,
            snoozed_until: opt_time(self.snoozed_until.as_ref())?,
            muted: self.muted != 0,
            hold_reason: self.hold_reason,
            hold_by: self.hold_by,
            held_since: opt_time(self.held_since.as_ref())?,
        })
    }
}

/// An event's fields as stored: NULL when empty.
pub(crate) fn fields_json(fields: &EventFields) -> Option<String> {
    (!fields.is_empty())
        .then(|| serde_json::to_string(fields).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_round_trip_and_sort() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 18, 53, 51).unwrap()
            + chrono::Duration::milliseconds(7);
        assert_eq!(format_time(t), "2026-11-23T18:53:51.007Z");
        assert_eq!(parse_time(&format_time(t)).unwrap(), t);
        assert!(format_time(t) < format_time(t + chrono::Duration::milliseconds(1)));
        assert!(parse_time("yesterday").is_err());
    }
}
