//! What the daemon needs from the store: schedule slots and digests claimed once across
//! replicas (by primary key), and escalation steps and reminders taken by conditional
//! updates, each with its event and mail in one transaction.

use super::rows::{INCIDENT_COLUMNS, IncidentRow, format_time, parse_time};
use super::{Store, StoreError, with_pool};
use crate::incidents::Incident;
use crate::model::Mail;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Writes the escalation columns of a freshly opened (or reopened) incident.
macro_rules! arm {
    ($exec:expr, $inc:expr) => {{
        let inc: &$crate::incidents::Incident = $inc;
        let chain = serde_json::to_string(&inc.escalation).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "UPDATE incidents SET escalation_json = $1, escalation_step = $2, next_escalation_at = $3, \
             renotify_secs = $4, next_reminder_at = $5 WHERE id = $6",
        )
        .bind(chain)
        .bind(i64::from(inc.escalation_step))
        .bind(inc.next_escalation_at.map($crate::store::format_time))
        .bind(inc.renotify_secs.map(|s| s as i64))
        .bind(inc.next_reminder_at.map($crate::store::format_time))
        .bind(inc.id)
        .execute($exec)
        .await
        .map(drop)
        .map_err($crate::store::StoreError::query("arm an escalation"))
    }};
}
pub(crate) use arm;

/// A recent run: (check id, started at, outcome, severity, duration ms).
pub type RecentRun = (String, String, String, Option<String>, i64);

/// A schedule slot held by a replica: what a daemon run is recorded against.
#[derive(Debug, Clone, Copy)]
pub struct SlotClaim<'a> {
    /// The slot's fire time.
    pub fire_at: DateTime<Utc>,
    /// The replica that holds it.
    pub replica: &'a str,
}

/// A slot whose lease ran out before its run was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredSlot {
    /// The check.
    pub check_id: String,
    /// The fire time.
    pub fire_at: DateTime<Utc>,
    /// The replica that held it.
    pub claimed_by: String,
    /// When its lease ran out.
    pub lease_until: DateTime<Utc>,
}

/// `$n` matches one of the (check id, fire time, replica) triples in the JSON array bound as
/// `$n` (`[{"c": …, "f": …, "r": …}]`), for the backend.
pub(crate) fn slot_list(pg: bool, n: u32) -> String {
    if pg {
        format!(
            "(check_id, fire_at, claimed_by) IN (SELECT x.c, x.f, x.r FROM json_to_recordset(${n}::json) AS x(c text, f text, r text))"
        )
    } else {
        format!(
            "(check_id, fire_at, claimed_by) IN (SELECT json_extract(value, '$.c'), json_extract(value, '$.f'), json_extract(value, '$.r') FROM json_each(${n}))"
        )
    }
}

/// The JSON array for [`slot_list`].
pub(crate) fn slot_json<'a>(
    slots: impl Iterator<Item = (&'a str, DateTime<Utc>, &'a str)>,
) -> String {
    let list: Vec<serde_json::Value> = slots
        .map(|(c, f, r)| serde_json::json!({ "c": c, "f": format_time(f), "r": r }))
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// Settles the schedule slots of the runs being recorded, inside the recording transaction:
/// each must still be held, unfinished, by the replica that ran it. When one is not (its
/// lease ran out and another replica took it over), nothing is recorded:
/// `Err(StoreError::SlotsLost)` names those slots.
macro_rules! finish_slots {
    ($exec:expr, $pg:expr, $runs:expr, $now:expr) => {{
        let runs: &[$crate::store::RunRow<'_>] = $runs;
        let wanted: Vec<(&str, chrono::DateTime<chrono::Utc>, &str)> = runs
            .iter()
            .filter_map(|r| r.slot.map(|s| (r.check_id.0.as_str(), s.fire_at, s.replica)))
            .collect();
        if wanted.is_empty() {
            Ok(())
        } else {
            let sql = format!(
                "UPDATE slots SET finished_at = $1 WHERE finished_at IS NULL AND {} RETURNING check_id, fire_at",
                $crate::store::daemon::slot_list($pg, 2)
            );
            let done: Result<Vec<(String, String)>, _> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind($crate::store::format_time($now))
                .bind($crate::store::daemon::slot_json(wanted.iter().copied()))
                .fetch_all($exec)
                .await;
            match done {
                Err(e) => Err($crate::store::StoreError::query("settle schedule slots")(e)),
                Ok(done) => {
                    let done: std::collections::HashSet<(String, String)> = done.into_iter().collect();
                    let lost: Vec<(String, chrono::DateTime<chrono::Utc>)> = wanted
                        .iter()
                        .filter(|(c, f, _)| !done.contains(&(c.to_string(), $crate::store::format_time(*f))))
                        .map(|(c, f, _)| (c.to_string(), *f))
                        .collect();
                    if lost.is_empty() {
                        Ok(())
                    } else {
                        Err($crate::store::StoreError::SlotsLost(lost))
                    }
                }
            }
        }
    }};
}
pub(crate) use finish_slots;

fn lease_end(now: DateTime<Utc>, lease: std::time::Duration) -> String {
    format_time(
        now + chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::hours(1)),
    )
}

impl Store {
    /// Claims the slot (check, fire time) for this replica, leased until `now + lease`. True
    /// exactly once per slot.
    pub async fn claim_slot(
        &self,
        check_id: &str,
        fire_at: DateTime<Utc>,
        replica: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let won = self
            .claim_slots(&[(check_id.to_string(), fire_at)], replica, now, lease)
            .await?;
        Ok(!won.is_empty())
    }

    /// Claims many slots at once, each leased until `now + lease`; returns the ones this
    /// replica won.
    pub async fn claim_slots(
        &self,
        slots: &[(String, DateTime<Utc>)],
        replica: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<std::collections::HashSet<(String, DateTime<Utc>)>, StoreError> {
        let mut won = std::collections::HashSet::new();
        let until = lease_end(now, lease);
        for chunk in slots.chunks(500) {
            let rows: Vec<(String, String)> = with_pool!(self, p => {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO slots (check_id, fire_at, claimed_by, claimed_at, lease_until) ");
                q.push_values(chunk, |mut b, (id, t)| {
                    b.push_bind(id.clone())
                        .push_bind(format_time(*t))
                        .push_bind(replica.to_string())
                        .push_bind(format_time(now))
                        .push_bind(until.clone());
                });
                q.push(" ON CONFLICT DO NOTHING RETURNING check_id, fire_at");
                q.build_query_as().fetch_all(p).await
            })
            .map_err(StoreError::query("claim schedule slots"))?;
            for (id, t) in rows {
                won.insert((id, parse_time(&t)?));
            }
        }
        Ok(won)
    }

    /// The heartbeat: moves the lease of the slots this replica still holds unfinished to
    /// `now + lease`. Returns how many it renewed (a slot taken over meanwhile is not).
    pub async fn renew_slots(
        &self,
        slots: &[(String, DateTime<Utc>)],
        replica: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let pg = matches!(self, Store::Postgres(_));
        let sql = format!(
            "UPDATE slots SET lease_until = $1 WHERE finished_at IS NULL AND {}",
            slot_list(pg, 2)
        );
        let mut renewed = 0;
        for chunk in slots.chunks(5000) {
            let list = slot_json(chunk.iter().map(|(c, f)| (c.as_str(), *f, replica)));
            renewed += with_pool!(self, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(lease_end(now, lease))
                .bind(list)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            .map_err(StoreError::query("renew slot leases"))?;
        }
        Ok(renewed)
    }

    /// Unfinished slots whose lease ran out before `now`, oldest first (at most `limit`).
    pub async fn expired_slots(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ExpiredSlot>, StoreError> {
        let rows: Vec<(String, String, String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT check_id, fire_at, claimed_by, lease_until FROM slots \
             WHERE finished_at IS NULL AND lease_until < $1 ORDER BY fire_at, check_id LIMIT $2",
        )
        .bind(format_time(now))
        .bind(limit)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load expired slot leases"))?;
        rows.into_iter()
            .map(|(check_id, f, claimed_by, u)| {
                Ok(ExpiredSlot {
                    check_id,
                    fire_at: parse_time(&f)?,
                    claimed_by,
                    lease_until: parse_time(&u)?,
                })
            })
            .collect()
    }

    /// Takes over an unfinished slot whose lease ran out before `now`: it becomes this
    /// replica's, leased until `now + lease`. True for exactly one replica (the conditional
    /// update decides); false when it was finished, renewed or taken meanwhile.
    pub async fn take_over_slot(
        &self,
        check_id: &str,
        fire_at: DateTime<Utc>,
        replica: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE slots SET claimed_by = $1, claimed_at = $2, lease_until = $3, takeovers = takeovers + 1 \
             WHERE check_id = $4 AND fire_at = $5 AND finished_at IS NULL AND lease_until < $2",
        )
        .bind(replica.to_string())
        .bind(format_time(now))
        .bind(lease_end(now, lease))
        .bind(check_id.to_string())
        .bind(format_time(fire_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::query("take over a schedule slot"))?;
        Ok(n == 1)
    }

    /// The latest claimed slot of every check (for catch-up after a restart).
    pub async fn last_slots(&self) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, p => sqlx::query_as("SELECT check_id, MAX(fire_at) FROM slots GROUP BY check_id").fetch_all(p).await)
            .map_err(StoreError::query("load schedule slots"))?;
        rows.into_iter()
            .map(|(c, t)| Ok((c, parse_time(&t)?)))
            .collect()
    }

    /// Claims a digest period of a route for this replica. True exactly once.
    pub async fn claim_digest(
        &self,
        route: &str,
        period: &str,
        replica: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = with_pool!(self, p => sqlx::query(
            "INSERT INTO digests (route, period, claimed_by, claimed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(route.to_string())
        .bind(period.to_string())
        .bind(replica.to_string())
        .bind(format_time(now))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::query("claim a digest"))?;
        Ok(n == 1)
    }

    /// Whether this replica already claimed a digest period (for tests and the page).
    pub async fn digest_claimed(&self, route: &str, period: &str) -> Result<bool, StoreError> {
        let n: (i64,) = with_pool!(self, p => sqlx::query_as("SELECT COUNT(*) FROM digests WHERE route = $1 AND period = $2")
            .bind(route.to_string())
            .bind(period.to_string())
            .fetch_one(p)
            .await)
        .map_err(StoreError::query("read digests"))?;
        Ok(n.0 > 0)
    }

    /// Incidents with an escalation step or a reminder due at `now`.
    pub async fn due_escalations(&self, now: DateTime<Utc>) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state IN ('open', 'acknowledged') \
             AND (next_escalation_at <= $1 OR next_reminder_at <= $1) ORDER BY id"
        );
        let rows: Vec<IncidentRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(format_time(now)).fetch_all(p).await)
            .map_err(StoreError::query("load due escalations"))?;
        rows.into_iter().map(IncidentRow::into_incident).collect()
    }

    /// Incidents opened (or still open) since `since`, for digests.
    pub async fn incidents_since(&self, since: DateTime<Utc>) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE opened_at >= $1 OR state IN ('open', 'acknowledged') ORDER BY id"
        );
        let rows: Vec<IncidentRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(format_time(since)).fetch_all(p).await)
            .map_err(StoreError::query("load incidents for a digest"))?;
        rows.into_iter().map(IncidentRow::into_incident).collect()
    }

    /// Writes a digest mail to the outbox (deduplicated by route and period).
    pub async fn queue_digest(
        &self,
        route: &str,
        period: &str,
        mail: &Mail,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, p => super::outbox::insert_mail!(p, None::<i64>, None::<i64>, format!("digest-{route}-{period}"), mail, now))
    }

    /// Writes a digest's channel message to the outbox (deduplicated by route, period and
    /// channel).
    pub async fn queue_digest_notice(
        &self,
        route: &str,
        period: &str,
        notice: &crate::model::Notice,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, p => super::outbox::insert_notice!(p, None::<i64>, None::<i64>, format!("digest-{route}-{period}-{}", notice.channel), notice, now))
    }

    /// Recent runs of every check, oldest first per check.
    pub async fn recent_runs(&self, per_check: i64) -> Result<Vec<RecentRun>, StoreError> {
        let rows: Vec<RecentRun> = with_pool!(self, p => sqlx::query_as(
            "SELECT check_id, started_at, outcome, severity, duration_ms FROM runs r WHERE id IN \
             (SELECT id FROM runs r2 WHERE r2.check_id = r.check_id ORDER BY id DESC LIMIT $1) ORDER BY check_id, id",
        )
        .bind(per_check)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load recent runs"))?;
        Ok(rows)
    }

    /// The metric history of a check (all keys), oldest first: (observed at, key, metric).
    pub async fn check_history(
        &self,
        check_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, String, Option<f64>)>, StoreError> {
        let rows: Vec<(String, String, Option<f64>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT observed_at, key_json, metric FROM observations WHERE check_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(check_id.to_string())
        .bind(limit)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load metric history"))?;
        Ok(rows.into_iter().rev().collect())
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(drop))
            .map_err(StoreError::query("ping"))
    }
}

impl Store {
    /// The stored values of one fingerprint, newest first: (observed at, value, breached).
    pub async fn value_history(
        &self,
        fingerprint: &str,
        limit: i64,
    ) -> Result<Vec<(DateTime<Utc>, f64, bool)>, StoreError> {
        let rows: Vec<(String, Option<f64>, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT observed_at, value, status FROM observations WHERE fingerprint = $1 AND value IS NOT NULL ORDER BY id DESC LIMIT $2",
        )
        .bind(fingerprint.to_string())
        .bind(limit)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load value history"))?;
        rows.into_iter()
            .filter_map(|(t, v, s)| Some((t, v?, s)))
            .map(|(t, v, s)| Ok((parse_time(&t)?, v, s == "breach")))
            .collect()
    }

    /// The stored values of every key of a check since `since`, oldest first:
    /// (key json, observed at, value).
    pub async fn check_values(
        &self,
        check_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>, f64)>, StoreError> {
        let rows: Vec<(String, String, Option<f64>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT key_json, observed_at, value FROM observations WHERE check_id = $1 AND observed_at >= $2 AND value IS NOT NULL ORDER BY id",
        )
        .bind(check_id.to_string())
        .bind(format_time(since))
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("load check history"))?;
        rows.into_iter()
            .filter_map(|(k, t, v)| Some((k, t, v?)))
            .map(|(k, t, v)| Ok((k, parse_time(&t)?, v)))
            .collect()
    }

    /// The last schema snapshot of a check, with when it was taken.
    pub async fn snapshot(
        &self,
        check_id: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let row: Option<(String, String)> = with_pool!(self, p => sqlx::query_as("SELECT body, taken_at FROM snapshots WHERE check_id = $1").bind(check_id.to_string()).fetch_optional(p).await)
            .map_err(StoreError::query("load a schema snapshot"))?;
        row.map(|(b, t)| Ok((b, parse_time(&t)?))).transpose()
    }

    /// Replaces the schema snapshot of a check.
    pub async fn put_snapshot(
        &self,
        check_id: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO snapshots (check_id, body, taken_at) VALUES ($1, $2, $3) \
             ON CONFLICT (check_id) DO UPDATE SET body = excluded.body, taken_at = excluded.taken_at",
        )
        .bind(check_id.to_string())
        .bind(body.to_string())
        .bind(format_time(now))
        .execute(p)
        .await
        .map(drop))
        .map_err(StoreError::query("save a schema snapshot"))
    }
}
