//! Recording a pass (runs, observations, incident changes and their mails in one
//! transaction) and reading incidents back.

use super::rows::{EventRow, INCIDENT_COLUMNS, IncidentRow, format_time, key_json};
use super::{Store, StoreError, with_pool};
use crate::incidents::{Change, Event, Incident, fingerprint};
use crate::model::{CheckId, Mail, Outcome, Status};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Rows per batch statement.
const BATCH: usize = 5000;

/// Columns of the batch inserts, with their PostgreSQL types.
const RUN_COLUMNS: &[(&str, &str)] = &[
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
const OBSERVATION_COLUMNS: &[(&str, &str)] = &[
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
const CHECK_STATE_COLUMNS: &[(&str, &str)] = &[
    ("check_id", "text"),
    ("error_streak", "bigint"),
    ("last_run_at", "text"),
    ("last_pass_at", "text"),
];

/// `INSERT INTO table (cols) SELECT … FROM <a JSON array of objects in $1>` for the backend.
fn json_insert(pg: bool, table: &str, columns: &[(&str, &str)], tail: &str) -> String {
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
    /// Incidents opened or reopened.
    pub opened: usize,
    /// Incidents whose severity rose.
    pub raised: usize,
    /// Incidents resolved.
    pub resolved: usize,
    /// Mails written to the outbox.
    pub mails: usize,
}

/// Incidents and escalation counts for `incidents stats`.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Incidents first seen in the window.
    pub incidents: Vec<Incident>,
    /// Ids of those that were escalated at least once.
    pub escalated: Vec<i64>,
}

/// Composes the mail for an incident event (`None`: nobody to tell).
pub type Compose<'a> = dyn Fn(&Incident, &Event) -> Result<Option<Mail>, String> + Sync + 'a;

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

    /// Records a pass in one transaction: runs, observations, check state, incident changes,
    /// their timeline events and their mails. Either all of it is stored or none.
    pub async fn record(
        &self,
        runs: &[RunRow<'_>],
        changes: &[Change],
        now: DateTime<Utc>,
        compose: &Compose<'_>,
    ) -> Result<Recorded, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::query("begin a transaction"))?;
            super::daemon::finish_slots!(&mut *tx, matches!(self, Store::Postgres(_)), runs, now)?;
            // Runs, observations and check state go in as one JSON parameter per statement
            // (json_to_recordset / json_each): thousands of rows cost one round trip and one
            // plan, where a VALUES list with thousands of placeholders is slow to plan on
            // PostgreSQL.
            let pg = matches!(self, Store::Postgres(_));
            let mut run_ids: HashMap<String, i64> = HashMap::new();
            for chunk in runs.chunks(BATCH) {
                let rows: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|r| {
                        let (outcome, kind, message, rows, capped) = match r.outcome {
                            Outcome::Error { kind, message } => ("error", Some(kind.as_str()), Some(message.clone()), 0, 0),
                            Outcome::Evaluated { rows, capped, .. } => {
                                (if r.outcome.worst().is_some() { "breach" } else { "pass" }, None, None, *rows as i64, i64::from(*capped))
                            }
                        };
                        serde_json::json!({
                            "check_id": r.check_id.0, "started_at": format_time(r.started_at), "duration_ms": r.duration_ms,
                            "outcome": outcome, "severity": r.outcome.worst().map(|s| s.as_str()), "error_kind": kind,
                            "error_message": message, "row_count": rows, "capped": capped,
                        })
                    })
                    .collect();
                let sql = json_insert(pg, "runs", RUN_COLUMNS, " RETURNING id, check_id");
                let ids: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(serde_json::Value::Array(rows).to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(StoreError::query("record runs"))?;
                for (id, check) in ids {
                    run_ids.insert(check, id);
                }
            }

            let observed: Vec<serde_json::Value> = runs
                .iter()
                .filter_map(|r| match r.outcome {
                    Outcome::Evaluated { observations, .. } => Some(observations.iter().map(move |o| (r, o))),
                    Outcome::Error { .. } => None,
                })
                .flatten()
                .filter_map(|(r, o)| {
                    let (status, severity) = match o.status {
                        Status::Pass => ("pass", None),
                        Status::NoData => ("no_data", None),
                        Status::Breach { severity } => ("breach", Some(severity.as_str())),
                    };
                    Some(serde_json::json!({
                        "run_id": run_ids.get(&r.check_id.0)?, "check_id": r.check_id.0,
                        "fingerprint": fingerprint(r.check_id, &o.key), "key_json": key_json(&o.key),
                        "status": status, "severity": severity, "metric": o.metric.filter(|m| m.is_finite()),
                        "observed_at": format_time(r.started_at), "value": o.value.filter(|v| v.is_finite()),
                    }))
                })
                .collect();
            for chunk in observed.chunks(BATCH) {
                sqlx::query(sqlx::AssertSqlSafe(json_insert(pg, "observations", OBSERVATION_COLUMNS, "")))
                    .bind(serde_json::Value::Array(chunk.to_vec()).to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("record observations"))?;
            }

            for chunk in runs.chunks(BATCH) {
                let rows: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|r| {
                        let passed = !r.outcome.is_error() && r.outcome.worst().is_none();
                        serde_json::json!({
                            "check_id": r.check_id.0, "error_streak": i64::from(r.error_streak),
                            "last_run_at": format_time(r.started_at), "last_pass_at": passed.then(|| format_time(r.started_at)),
                        })
                    })
                    .collect();
                let upsert = " ON CONFLICT (check_id) DO UPDATE SET error_streak = excluded.error_streak, last_run_at = excluded.last_run_at, \
                              last_pass_at = COALESCE(excluded.last_pass_at, check_state.last_pass_at)";
                sqlx::query(sqlx::AssertSqlSafe(json_insert(pg, "check_state", CHECK_STATE_COLUMNS, upsert)))
                    .bind(serde_json::Value::Array(rows).to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("record check state"))?;
            }

            let mut done = Recorded::default();
            for change in changes {
                let mut inc = change.incident.clone();
                let i = &inc;
                let values = (
                    i.fingerprint.clone(), i.check_id.0.clone(), key_json(&i.key), i.state.as_str(), i.category.as_str(),
                    i.severity.as_str(), i.current_severity.as_str(), i.peak_severity.as_str(), i.title.clone(),
                    format_time(i.first_seen_at), i.opened_at.map(format_time), i.acknowledged_at.map(format_time),
                    i.acknowledged_by.clone(), i.resolved_at.map(format_time), i.resolved_by.clone(), format_time(i.last_seen_at),
                    i64::from(i.breach_streak), i64::from(i.pass_streak), i64::from(i.repeat_count), i.metric, i.threshold.clone(), i.detail.clone(),
                );
                let sql = if inc.id == 0 {
                    "INSERT INTO incidents (fingerprint, check_id, key_json, state, category, severity, current_severity, peak_severity, title, \
                     first_seen_at, opened_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, last_seen_at, breach_streak, \
                     pass_streak, repeat_count, metric, threshold, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) RETURNING id"
                } else {
                    "UPDATE incidents SET fingerprint = $1, check_id = $2, key_json = $3, state = $4, category = $5, severity = $6, \
                     current_severity = $7, peak_severity = $8, title = $9, first_seen_at = $10, opened_at = $11, acknowledged_at = $12, \
                     acknowledged_by = $13, resolved_at = $14, resolved_by = $15, last_seen_at = $16, breach_streak = $17, pass_streak = $18, \
                     repeat_count = $19, metric = $20, threshold = $21, detail = $22 WHERE id = $23 RETURNING id"
                };
                let q = sqlx::query_as::<_, (i64,)>(sql)
                    .bind(values.0).bind(values.1).bind(values.2).bind(values.3).bind(values.4).bind(values.5)
                    .bind(values.6).bind(values.7).bind(values.8).bind(values.9).bind(values.10).bind(values.11)
                    .bind(values.12).bind(values.13).bind(values.14).bind(values.15).bind(values.16).bind(values.17)
                    .bind(values.18).bind(values.19).bind(values.20).bind(values.21);
                let q = if inc.id == 0 { q } else { q.bind(inc.id) };
                let (id,) = q.fetch_one(&mut *tx).await.map_err(StoreError::query("record an incident"))?;
                inc.id = id;
                let arming = change.events.iter().any(|e| {
                    matches!(e.kind, crate::incidents::EventKind::Opened | crate::incidents::EventKind::Reopened)
                });
                if arming {
                    // Only opening copies the chain: later writes never touch the escalation
                    // columns, which the escalator advances with conditional updates.
                    super::daemon::arm!(&mut *tx, &inc)?;
                }
                for ev in &change.events {
                    let (event_id,): (i64,) = sqlx::query_as(
                        "INSERT INTO events (incident_id, at, kind, actor, severity, note) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    )
                    .bind(id)
                    .bind(format_time(ev.at))
                    .bind(ev.kind.as_str())
                    .bind(ev.actor.clone())
                    .bind(ev.severity.as_str())
                    .bind(ev.note.clone())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::query("record an event"))?;
                    match ev.kind {
                        crate::incidents::EventKind::Opened | crate::incidents::EventKind::Reopened => done.opened += 1,
                        crate::incidents::EventKind::SeverityRaised => done.raised += 1,
                        crate::incidents::EventKind::Resolved => done.resolved += 1,
                        _ => {}
                    }
                    let event = Event { id: event_id, ..ev.clone() };
                    let mail = compose(&inc, &event).map_err(|message| StoreError::Compose { incident: id, message })?;
                    if let Some(mail) = mail {
                        super::outbox::insert_mail!(&mut *tx, Some(id), Some(event_id), format!("incident-{id}-event-{event_id}"), &mail, now)?;
                        done.mails += 1;
                    }
                }
            }
            tx.commit().await.map_err(StoreError::query("commit"))?;
            Ok(done)
        })
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
        let events: Vec<EventRow> = with_pool!(self, p => sqlx::query_as("SELECT id, at, kind, actor, severity, note FROM events WHERE incident_id = $1 ORDER BY id")
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
        Ok(Stats {
            incidents: rows
                .into_iter()
                .map(IncidentRow::into_incident)
                .collect::<Result<_, _>>()?,
            escalated: escalated.into_iter().map(|(i,)| i).collect(),
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
