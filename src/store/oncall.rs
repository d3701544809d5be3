//! On-call controls in the store: an incident's commander, snooze, mute and since when its
//! notifications are held (`incidents` columns of migration 0009), and which events were
//! mailed. The controls are written in the transaction of the change that sets them, after
//! [`Tx::write_incident`] checked and bumped the revision; ending a hold is a conditional
//! update on the revision, so one replica tells it.

use super::rows::{CONTROL_COLUMNS, ControlsRow, INCIDENT_COLUMNS, IncidentRow, format_time};
use super::{Store, StoreError, Tx, with_pool};
use crate::incidents::{Controls, Incident};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            Tx::Sqlite($c) => $body,
            Tx::Postgres($c) => $body,
        }
    };
}

impl Store {
    /// The controls of every incident that has any (a commander, a snooze, a mute or a
    /// held notification), by incident id.
    pub async fn controls(&self) -> Result<HashMap<i64, Controls>, StoreError> {
        let sql = format!(
            "SELECT id, {CONTROL_COLUMNS} FROM incidents WHERE assignee IS NOT NULL OR snoozed_until IS NOT NULL \
             OR muted <> 0 OR held_since IS NOT NULL"
        );
        let rows: Vec<ControlsRow> =
            with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(p).await)
                .map_err(StoreError::query("load incident controls"))?;
        rows.into_iter()
            .map(|r| Ok((r.id, r.into_controls()?)))
            .collect()
    }

    /// The controls of one incident (empty when it has none or does not exist).
    pub async fn controls_of(&self, id: i64) -> Result<Controls, StoreError> {
        let sql = format!("SELECT id, {CONTROL_COLUMNS} FROM incidents WHERE id = $1");
        let row: Option<ControlsRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await)
            .map_err(StoreError::query("load incident controls"))?;
        row.map_or_else(|| Ok(Controls::default()), ControlsRow::into_controls)
    }

    /// Incidents whose notifications are held (or were, and the end is not told yet), with
    /// their controls.
    pub async fn held_incidents(&self) -> Result<Vec<(Incident, Controls)>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE held_since IS NOT NULL ORDER BY id"
        );
        let rows: Vec<IncidentRow> =
            with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(p).await)
                .map_err(StoreError::query("load held incidents"))?;
        let controls = self.controls().await?;
        rows.into_iter()
            .map(|r| {
                let inc = r.into_incident()?;
                let c = controls.get(&inc.id).cloned().unwrap_or_default();
                Ok((inc, c))
            })
            .collect()
    }

    /// The ids of an incident's events that have a mail in the outbox.
    pub async fn mailed_events(&self, incident_id: i64) -> Result<HashSet<i64>, StoreError> {
        let rows: Vec<(i64,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT event_id FROM outbox WHERE incident_id = $1 AND event_id IS NOT NULL",
        )
        .bind(incident_id)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load an incident's mails"))?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

impl Tx {
    /// Writes an incident's controls. Call after [`Tx::write_incident`] in the same
    /// transaction: that write checked and bumped the revision.
    pub async fn write_controls(&mut self, id: i64, c: &Controls) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(
            "UPDATE incidents SET assignee = $1, snoozed_until = $2, muted = $3, hold_reason = $4, hold_by = $5, \
             held_since = $6 WHERE id = $7",
        )
        .bind(c.assignee.clone())
        .bind(c.snoozed_until.map(format_time))
        .bind(i64::from(c.muted))
        .bind(c.hold_reason.clone())
        .bind(c.hold_by.clone())
        .bind(c.held_since.map(format_time))
        .bind(id)
        .execute(&mut **conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::query("record incident controls"))?;
        Ok(())
    }

    /// Remembers that a notification of incident `id` was held at `now` (keeps an earlier
    /// start).
    pub async fn mark_held(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(
            "UPDATE incidents SET held_since = COALESCE(held_since, $1) WHERE id = $2",
        )
        .bind(format_time(now))
        .bind(id)
        .execute(&mut **conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::query("record a held notification"))?;
        Ok(())
    }

    /// Ends a hold: writes `c` (its snooze and mute cleared) with `held_since` cleared and
    /// the next reminder at `next_reminder_at`, if the incident is still at `inc`'s revision. False when another writer (a replica telling the
    /// same end, an acknowledgement) was first: nothing is written, the caller rolls back.
    pub async fn end_hold(
        &mut self,
        inc: &Incident,
        c: &Controls,
        next_reminder_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let done = on_tx!(self, conn => sqlx::query(
            "UPDATE incidents SET assignee = $1, snoozed_until = $2, muted = $3, hold_reason = $4, hold_by = $5, \
             held_since = NULL, next_reminder_at = $6, revision = revision + 1 WHERE id = $7 AND revision = $8",
        )
        .bind(c.assignee.clone())
        .bind(c.snoozed_until.map(format_time))
        .bind(i64::from(c.muted))
        .bind(c.hold_reason.clone())
        .bind(c.hold_by.clone())
        .bind(next_reminder_at.map(format_time))
        .bind(inc.id)
        .bind(inc.revision)
        .execute(&mut **conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::query("end a hold"))?;
        Ok(done == 1)
    }
}
