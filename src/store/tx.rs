//! One transaction of the state store, written step by step: a pass's runs, observations
//! and check state; incidents with their timeline events; outbox mails; escalation steps
//! taken by conditional update. The caller renders the mails between the steps (a mail
//! carries the ids the transaction assigns); nothing here renders.

use super::queries::{
    BATCH, CHECK_STATE_COLUMNS, OBSERVATION_COLUMNS, RUN_COLUMNS, RunRow, json_insert,
};
use super::rows::{fields_json, format_time, key_json};
use super::{Store, StoreError};
use crate::incidents::{Event, Incident, fingerprint};
use crate::model::{Mail, Outcome, Status};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One row of `observations`, as the JSON that inserts a batch of them carries it.
#[derive(serde::Serialize)]
struct ObservationRow<'a> {
    run_id: i64,
    check_id: &'a str,
    fingerprint: String,
    key_json: String,
    status: &'static str,
    severity: Option<&'static str>,
    metric: Option<f64>,
    observed_at: String,
    value: Option<f64>,
}

/// An open state-store transaction; dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    /// On SQLite.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// On PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs the same body on whichever connection the transaction holds.
macro_rules! with_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            Tx::Sqlite($c) => $body,
            Tx::Postgres($c) => $body,
        }
    };
}

impl Store {
    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite(p) => Tx::Sqlite(
                p.begin()
                    .await
                    .map_err(StoreError::query("begin a transaction"))?,
            ),
            Store::Postgres(p) => Tx::Postgres(
                p.begin()
                    .await
                    .map_err(StoreError::query("begin a transaction"))?,
            ),
        })
    }
}

impl Tx {
    /// Commits everything written.
    pub async fn commit(self) -> Result<(), StoreError> {
        with_tx!(self, c => c.commit().await).map_err(StoreError::query("commit"))
    }

    /// Marks the schedule slots of `runs` finished (daemon runs carry one); fails with
    /// [`StoreError::SlotsLost`] when another replica took one over, so the whole
    /// transaction rolls back and the late result is not recorded.
    pub async fn finish_slots(
        &mut self,
        runs: &[RunRow<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let pg = matches!(self, Tx::Postgres(_));
        with_tx!(self, c => super::daemon::finish_slots!(&mut **c, pg, runs, now))
    }

    /// Writes a pass's runs, their observations and each check's state.
    pub async fn write_runs(&mut self, runs: &[RunRow<'_>]) -> Result<(), StoreError> {
        let pg = matches!(self, Tx::Postgres(_));
        with_tx!(self, c => {
            // Runs, observations and check state go in as one JSON parameter per statement
            // (json_to_recordset / json_each): thousands of rows cost one round trip and one
            // plan, where a VALUES list with thousands of placeholders is slow to plan on
            // PostgreSQL.
            let mut run_ids: HashMap<String, i64> = HashMap::new();
            for chunk in runs.chunks(BATCH) {
                let rows: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|r| {
                        let (outcome, kind, message, rows, capped) = match r.outcome {
                            Outcome::Error { kind, message } => ("error", Some(kind.as_str()), Some(message.clone()), 0, 0),
                            Outcome::Evaluated { rows, capped, .. } => {
                                (r.outcome.verdict(), None, None, *rows as i64, i64::from(*capped))
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
                    .fetch_all(&mut **c)
                    .await
                    .map_err(StoreError::query("record runs"))?;
                for (id, check) in ids {
                    run_ids.insert(check, id);
                }
            }

            // Their JSON is built BATCH rows at a time: that of every observation of a large run
            // at once would be the run's largest allocation.
            // Gathered a batch at a time (a cursor: run, observation), not as one list of all.
            let (mut run, mut next) = (0, 0);
            loop {
                let mut chunk = Vec::with_capacity(BATCH);
                while chunk.len() < BATCH && run < runs.len() {
                    let r = &runs[run];
                    match r.outcome {
                        Outcome::Evaluated { observations, .. } if next < observations.len() => {
                            chunk.push((r, &observations[next]));
                            next += 1;
                        }
                        _ => (run, next) = (run + 1, 0),
                    }
                }
                if chunk.is_empty() {
                    break;
                }
                // Written straight to JSON text: no `serde_json::Value` tree of 5,000 rows.
                let rows: Vec<ObservationRow> = chunk
                    .iter()
                    .filter_map(|(r, o)| {
                        let (status, severity) = match o.status {
                            Status::Pass => ("pass", None),
                            Status::NoData => ("no_data", None),
                            Status::Error { .. } => ("error", None),
                            Status::Breach { severity } => ("breach", Some(severity.as_str())),
                        };
                        Some(ObservationRow {
                            run_id: *run_ids.get(&r.check_id.0)?, check_id: &r.check_id.0,
                            fingerprint: fingerprint(r.check_id, &o.key), key_json: key_json(&o.key),
                            status, severity, metric: o.metric.filter(|m| m.is_finite()),
                            observed_at: format_time(r.started_at), value: o.value.filter(|v| v.is_finite()),
                        })
                    })
                    .collect();
                let rows = serde_json::to_string(&rows)
                    .map_err(|e| StoreError::query("record observations")(sqlx::Error::Encode(e.into())))?;
                sqlx::query(sqlx::AssertSqlSafe(json_insert(pg, "observations", OBSERVATION_COLUMNS, "")))
                    .bind(rows)
                    .execute(&mut **c)
                    .await
                    .map_err(StoreError::query("record observations"))?;
            }

            for chunk in runs.chunks(BATCH) {
                let rows: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|r| {
                        let passed = r.outcome.verdict() == "pass";
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
                    .execute(&mut **c)
                    .await
                    .map_err(StoreError::query("record check state"))?;
            }

            Ok(())
        })
    }

    /// Inserts (id 0) or updates an incident; returns its id. `arm` also writes its
    /// escalation chain (only opening does: later writes never touch the escalation columns,
    /// which escalation advances with conditional updates).
    pub async fn write_incident(&mut self, inc: &Incident, arm: bool) -> Result<i64, StoreError> {
        let i = inc;
        with_tx!(self, c => {
                let values = (
                    i.fingerprint.clone(), i.check_id.0.clone(), key_json(&i.key), i.state.as_str(), i.category.as_str(),
                    i.severity.as_str(), i.current_severity.as_str(), i.peak_severity.as_str(), i.title.clone(),
                    format_time(i.first_seen_at), i.opened_at.map(format_time), i.acknowledged_at.map(format_time),
                    i.acknowledged_by.clone(), i.resolved_at.map(format_time), i.resolved_by.clone(), format_time(i.last_seen_at),
                    i64::from(i.breach_streak), i64::from(i.pass_streak), i64::from(i.repeat_count), i.metric, i.threshold.clone(), i.detail.clone(),
                    i.unit.as_str(), i.threshold_severity.map(crate::model::Severity::as_str), i.label.clone(),
                    i.history as i64, i.flapping,
                    (!i.members.is_empty()).then(|| serde_json::to_string(&i.members).unwrap_or_default()),
                );
                let sql = if inc.id == 0 {
                    "INSERT INTO incidents (fingerprint, check_id, key_json, state, category, severity, current_severity, peak_severity, title, \
                     first_seen_at, opened_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, last_seen_at, breach_streak, \
                     pass_streak, repeat_count, metric, threshold, detail, unit, threshold_severity, label, history, flapping, members_json) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28) RETURNING id"
                } else {
                    "UPDATE incidents SET fingerprint = $1, check_id = $2, key_json = $3, state = $4, category = $5, severity = $6, \
                     current_severity = $7, peak_severity = $8, title = $9, first_seen_at = $10, opened_at = $11, acknowledged_at = $12, \
                     acknowledged_by = $13, resolved_at = $14, resolved_by = $15, last_seen_at = $16, breach_streak = $17, pass_streak = $18, \
                     repeat_count = $19, metric = $20, threshold = $21, detail = $22, unit = $23, threshold_severity = $24, \
                     label = $25, history = $26, flapping = $27, members_json = $28, revision = revision + 1 WHERE id = $29 AND revision = $30 RETURNING id"
                };
                let q = sqlx::query_as::<_, (i64,)>(sql)
                    .bind(values.0).bind(values.1).bind(values.2).bind(values.3).bind(values.4).bind(values.5)
                    .bind(values.6).bind(values.7).bind(values.8).bind(values.9).bind(values.10).bind(values.11)
                    .bind(values.12).bind(values.13).bind(values.14).bind(values.15).bind(values.16).bind(values.17)
                    .bind(values.18).bind(values.19).bind(values.20).bind(values.21).bind(values.22).bind(values.23)
                    .bind(values.24).bind(values.25).bind(values.26).bind(values.27);
                let q = if inc.id == 0 { q } else { q.bind(inc.id).bind(inc.revision) };
                let Some((id,)): Option<(i64,)> = q.fetch_optional(&mut **c).await.map_err(StoreError::query("record an incident"))? else {
                    return Err(StoreError::Conflict { incident: inc.id });
                };
                if arm {
                    let armed = Incident { id, ..inc.clone() };
                    super::daemon::arm!(&mut **c, &armed)?;
                }
                Ok(id)
        })
    }

    /// Keeps the breaching rows of a told breach on its incident (`sample` is the JSON
    /// document `{"columns", "rows", "capped"}` the page shows).
    pub async fn write_sample(&mut self, incident_id: i64, sample: &str) -> Result<(), StoreError> {
        with_tx!(self, c => {
            sqlx::query("UPDATE incidents SET sample_json = $1 WHERE id = $2")
                .bind(sample.to_string())
                .bind(incident_id)
                .execute(&mut **c)
                .await
                .map_err(StoreError::query("record an incident's sample rows"))?;
            Ok(())
        })
    }

    /// Appends an event to an incident's timeline; returns its id.
    pub async fn write_event(&mut self, incident_id: i64, ev: &Event) -> Result<i64, StoreError> {
        with_tx!(self, c => {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO events (incident_id, at, kind, actor, severity, note, fields_json) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(incident_id)
            .bind(format_time(ev.at))
            .bind(ev.kind.as_str())
            .bind(ev.actor.clone())
            .bind(ev.severity.as_str())
            .bind(ev.note.clone())
            .bind(fields_json(&ev.fields))
            .fetch_one(&mut **c)
            .await
            .map_err(StoreError::query("record an event"))?;
            Ok(id)
        })
    }

    /// Writes the mail that tells an incident event to the outbox (once per event).
    pub async fn write_mail(
        &mut self,
        incident_id: i64,
        event_id: i64,
        mail: &Mail,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_tx!(self, c => super::outbox::insert_mail!(&mut **c, Some(incident_id), Some(event_id), format!("incident-{incident_id}-event-{event_id}"), mail, now))
    }

    /// Writes a channel message that tells an incident event to the outbox (once per event
    /// and channel).
    pub async fn write_notice(
        &mut self,
        incident_id: i64,
        event_id: i64,
        notice: &crate::model::Notice,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_tx!(self, c => super::outbox::insert_notice!(&mut **c, Some(incident_id), Some(event_id), format!("incident-{incident_id}-event-{event_id}-{}", notice.channel), notice, now))
    }

    /// Takes an escalation step (`step_to` = (step, next due)) or a reminder (`reminder_next`)
    /// if nobody else did and the incident has not changed since `inc` was read (an
    /// acknowledgement in between stops it): a conditional update decides. False otherwise;
    /// the next tick decides again from the new state.
    pub async fn take_step(
        &mut self,
        inc: &Incident,
        step_to: Option<(u32, Option<DateTime<Utc>>)>,
        reminder_next: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let taken = with_tx!(self, c => match (step_to, reminder_next) {
            (Some((to, next_at)), _) => sqlx::query(
                "UPDATE incidents SET escalation_step = $1, next_escalation_at = $2, revision = revision + 1 \
                 WHERE id = $3 AND escalation_step = $4 AND revision = $5",
            )
            .bind(i64::from(to))
            .bind(next_at.map(format_time))
            .bind(inc.id)
            .bind(i64::from(inc.escalation_step))
            .bind(inc.revision)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()),
            (None, Some(next)) => sqlx::query(
                "UPDATE incidents SET next_reminder_at = $1, revision = revision + 1 \
                 WHERE id = $2 AND next_reminder_at = $3 AND revision = $4",
            )
            .bind(format_time(next))
            .bind(inc.id)
            .bind(inc.next_reminder_at.map(format_time))
            .bind(inc.revision)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()),
            (None, None) => return Ok(false),
        })
        .map_err(StoreError::query("take an escalation step"))?;
        Ok(taken == 1)
    }
}
