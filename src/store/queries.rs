//! Recording a pass (runs, observations, incident changes and their mails in one
//! transaction) and reading incidents back.

use super::rows::{EventRow, INCIDENT_COLUMNS, IncidentRow, TimelineRow, format_time};
use super::{Store, StoreError, with_pool};
use crate::incidents::{Event, Incident};
use crate::model::{CheckId, Outcome};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Rows per batch statement.
pub(super) const BATCH: usize = 5000;

/// Columns of the batch inserts, with their PostgreSQL types.
pub(super) const RUN_COLUMNS: &[(&str, &str)] = &[
    ("check_id", "text"),
    ("started_at", "text"),
    ("duration_ms", "bigint"),
    ("outcome", "text"),
    ("severity", "text"),
    ("error_kind", "text"),
    ("error_message", "text"),
    ("row_count", "bigint"),
    ("capped", "bigint"),
];
pub(super) const OBSERVATION_COLUMNS: &[(&str, &str)] = &[
    ("run_id", "bigint"),
    ("check_id", "text"),
    ("fingerprint", "text"),
    ("key_json", "text"),
    ("status", "text"),
    ("severity", "text"),
    ("metric", "float8"),
    ("observed_at", "text"),
    ("value", "float8"),
];
pub(super) const CHECK_STATE_COLUMNS: &[(&str, &str)] = &[
    ("check_id", "text"),
    ("error_streak", "bigint"),
    ("last_run_at", "text"),
    ("last_pass_at", "text"),
];

/// `INSERT INTO table (cols) SELECT … FROM <a JSON array of objects in $1>` for the backend.
pub(super) fn json_insert(pg: bool, table: &str, columns: &[(&str, &str)], tail: &str) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let select = if pg {
        let typed: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
        format!(
            "SELECT {} FROM json_to_recordset($1::json) AS x({})",
            names.join(", "),
            typed.join(", ")
        )
    } else {
        let fields: Vec<String> = names
            .iter()
            .map(|n| format!("json_extract(value, '$.{n}')"))
            .collect();
        // `WHERE true` keeps SQLite from reading a following ON CONFLICT as a join clause.
        format!("SELECT {} FROM json_each($1) WHERE true", fields.join(", "))
    };
    format!("INSERT INTO {table} ({}) {select}{tail}", names.join(", "))
}

/// One check's run, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct RunRow<'a> {
    /// The check.
    pub check_id: &'a CheckId,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i64,
    /// What it found.
    pub outcome: &'a Outcome,
    /// The check's consecutive-error count after this run.
    pub error_streak: u32,
    /// The schedule slot this run is for (daemon), settled in the same transaction.
    pub slot: Option<super::SlotClaim<'a>>,
}

/// What a recorded pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Incidents opened.
    pub opened: usize,
    /// Resolved incidents that breached again and reopened.
    pub reopened: usize,
    /// Incidents whose severity rose.
    pub raised: usize,
    /// Incidents resolved.
    pub resolved: usize,
    /// Mails written to the outbox.
    pub mails: usize,
    /// Mails not written because the incident's notifications are held (snooze, mute,
    /// maintenance window).
    pub held: usize,
}

impl Recorded {
    /// Counts an event that was written.
    pub fn count(&mut self, event: &Event) {
        match event.kind {
            crate::incidents::EventKind::Opened => self.opened += 1,
            crate::incidents::EventKind::Reopened => self.reopened += 1,
            crate::incidents::EventKind::SeverityRaised => self.raised += 1,
            crate::incidents::EventKind::Resolved => self.resolved += 1,
            _ => {}
        }
    }
}

/// Incidents and escalation counts for `incidents stats`.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Incidents first seen in the window.
    pub incidents: Vec<Incident>,
    /// Ids of those that were escalated at least once.
    pub escalated: Vec<i64>,
    /// Their timelines, by incident id (episodes are read from them).
    pub events: HashMap<i64, Vec<Event>>,
}

impl Store {
    /// The latest incident of every fingerprint that is unresolved or resolved since `since`.
    pub async fn known_incidents(&self, since: DateTime<Utc>) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state <> 'resolved' OR resolved_at >= $1 ORDER BY id"
        );
        let rows: Vec<IncidentRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(format_time(since)).fetch_all(p).await)
            .map_err(StoreError::query("load incidents"))?;
        let mut latest: HashMap<String, Incident> = HashMap::new();
        for row in rows {
            let inc = row.into_incident()?;
            latest.insert(inc.fingerprint.clone(), inc);
        }
        Ok(latest.into_values().collect())
    }

    /// [`Store::known_incidents`] of the checks `ids` only (asked a batch of ids at a time), so
    /// that a pass reads the state of what it ran, not of every check in the store.
    pub async fn known_incidents_of(
        &self,
        since: DateTime<Utc>,
        ids: &[&str],
    ) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE check_id IN ({}) \
             AND (state <> 'resolved' OR resolved_at >= $1) ORDER BY id",
            self.id_list("$2")
        );
        let mut latest: HashMap<String, Incident> = HashMap::new();
        for chunk in ids.chunks(BATCH) {
            let list = serde_json::to_string(chunk).unwrap_or_default();
            let rows: Vec<IncidentRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(format_time(since)).bind(list).fetch_all(p).await)
                .map_err(StoreError::query("load incidents"))?;
            // A fingerprint belongs to one check, so to one chunk.
            for row in rows {
                let inc = row.into_incident()?;
                latest.insert(inc.fingerprint.clone(), inc);
            }
        }
        Ok(latest.into_values().collect())
    }

    /// [`Store::check_states`] of the checks `ids` only.
    pub async fn check_states_of(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, (u32, Option<String>)>, StoreError> {
        let sql = format!(
            "SELECT check_id, error_streak, last_pass_at FROM check_state WHERE check_id IN ({})",
            self.id_list("$1")
        );
        let mut states = HashMap::new();
        for chunk in ids.chunks(BATCH) {
            let list = serde_json::to_string(chunk).unwrap_or_default();
            let rows: Vec<(String, i64, Option<String>)> =
                with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(list).fetch_all(p).await)
                    .map_err(StoreError::query("load check state"))?;
            states.extend(rows.into_iter().map(|(id, n, pass)| (id, (n as u32, pass))));
        }
        Ok(states)
    }

    /// A subquery listing the strings of the JSON array bound at `param`.
    fn id_list(&self, param: &str) -> String {
        match self {
            Store::Sqlite(_) => format!("SELECT value FROM json_each({param})"),
            Store::Postgres(_) => format!("SELECT json_array_elements_text({param}::json)"),
        }
    }

    /// Consecutive-error counts and last passing run of every check.
    pub async fn check_states(&self) -> Result<HashMap<String, (u32, Option<String>)>, StoreError> {
        let rows: Vec<(String, i64, Option<String>)> =
            with_pool!(self, p => sqlx::query_as("SELECT check_id, error_streak, last_pass_at FROM check_state").fetch_all(p).await)
                .map_err(StoreError::query("load check state"))?;
        Ok(rows
            .into_iter()
            .map(|(id, n, pass)| (id, (n as u32, pass)))
            .collect())
    }

    /// Incidents in `states` (all when empty), newest first.
    pub async fn incidents(&self, states: &[&str]) -> Result<Vec<Incident>, StoreError> {
        let filter = if states.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = states
                .iter()
                .map(|s| format!("'{}'", s.replace('\'', "")))
                .collect();
            format!(" WHERE state IN ({})", list.join(", "))
        };
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents{filter} ORDER BY id DESC");
        let rows: Vec<IncidentRow> =
            with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(p).await)
                .map_err(StoreError::query("list incidents"))?;
        rows.into_iter().map(IncidentRow::into_incident).collect()
    }

    /// One incident and its timeline.
    pub async fn incident(&self, id: i64) -> Result<Option<(Incident, Vec<Event>)>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        let row: Option<IncidentRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await)
            .map_err(StoreError::query("load an incident"))?;
        let Some(row) = row else { return Ok(None) };
        let events: Vec<EventRow> = with_pool!(self, p => sqlx::query_as("SELECT id, at, kind, actor, severity, note, fields_json FROM events WHERE incident_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(p)
            .await)
        .map_err(StoreError::query("load a timeline"))?;
        Ok(Some((
            row.into_incident()?,
            events
                .into_iter()
                .map(EventRow::into_event)
                .collect::<Result<_, _>>()?,
        )))
    }

    /// The breaching rows kept with an incident's latest told breach, as stored (JSON).
    pub async fn incident_sample(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> =
            with_pool!(self, p => sqlx::query_as("SELECT sample_json FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)
            .map_err(StoreError::query("load an incident's sample rows"))?;
        Ok(row.and_then(|(s,)| s))
    }

    /// Incidents first seen since `since`, and which of them escalated.
    pub async fn stats(&self, since: DateTime<Utc>) -> Result<Stats, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE first_seen_at >= $1 ORDER BY id"
        );
        let rows: Vec<IncidentRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(format_time(since)).fetch_all(p).await)
            .map_err(StoreError::query("load incidents"))?;
        let escalated: Vec<(i64,)> = with_pool!(self, p => sqlx::query_as("SELECT DISTINCT incident_id FROM events WHERE kind = 'escalated' AND at >= $1")
            .bind(format_time(since))
            .fetch_all(p)
            .await)
        .map_err(StoreError::query("load escalations"))?;
        let timeline: Vec<TimelineRow> = with_pool!(self, p => sqlx::query_as(
            "SELECT e.incident_id, e.id, e.at, e.kind, e.actor, e.severity, e.note, e.fields_json FROM events e \
             JOIN incidents i ON i.id = e.incident_id WHERE i.first_seen_at >= $1 ORDER BY e.id",
        )
        .bind(format_time(since))
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load timelines"))?;
        let mut events: HashMap<i64, Vec<Event>> = HashMap::new();
        for row in timeline {
            events
                .entry(row.incident_id)
                .or_default()
                .push(row.event.into_event()?);
        }
        Ok(Stats {
            incidents: rows
                .into_iter()
                .map(IncidentRow::into_incident)
                .collect::<Result<_, _>>()?,
            escalated: escalated.into_iter().map(|(i,)| i).collect(),
            events,
        })
    }

    /// The metric history of a check's key (oldest first), for charts and trend rules.
    pub async fn metric_history(
        &self,
        fingerprint: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<f64>)>, StoreError> {
        let rows: Vec<(String, Option<f64>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT observed_at, metric FROM observations WHERE fingerprint = $1 ORDER BY observed_at DESC LIMIT $2",
        )
        .bind(fingerprint)
        .bind(limit)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load metric history"))?;
        Ok(rows.into_iter().rev().collect())
    }
}
