//! The outbox: rendered mails written with the incident change that caused them, then
//! claimed (with a lease, so that one process sends each), sent, retried or dead-lettered.

use super::rows::{format_time, parse_time};
use super::{Store, StoreError, with_pool};
use crate::model::Mail;
use chrono::{DateTime, Utc};

/// Where an outbox mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting to be sent (or retried).
    Pending,
    /// Delivered.
    Sent,
    /// Refused permanently or out of attempts; `dqwatch outbox retry ID` revives it.
    Dead,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(OutboxState::Pending),
            "sent" => Ok(OutboxState::Sent),
            "dead" => Ok(OutboxState::Dead),
            other => Err(StoreError::Corrupt {
                what: "an outbox state",
                message: other.into(),
            }),
        }
    }
}

/// An outbox row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxMail {
    /// Outbox id (names the `.eml` file).
    pub id: i64,
    /// The incident it tells about.
    pub incident_id: Option<i64>,
    /// The rendered mail.
    pub mail: Mail,
    /// Delivery state.
    pub state: OutboxState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Earliest next attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, incident_id, recipients, subject, body_text, body_html, message_id, in_reply_to, state, attempts, next_attempt_at, last_error, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    incident_id: Option<i64>,
    recipients: String,
    subject: String,
    body_text: String,
    body_html: String,
    message_id: String,
    in_reply_to: Option<String>,
    state: String,
    attempts: i64,
    next_attempt_at: String,
    last_error: Option<String>,
    created_at: String,
}

impl Row {
    fn into_mail(self) -> Result<OutboxMail, StoreError> {
        Ok(OutboxMail {
            id: self.id,
            incident_id: self.incident_id,
            mail: Mail {
                to: self
                    .recipients
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                subject: self.subject,
                text: self.body_text,
                html: self.body_html,
                message_id: self.message_id,
                in_reply_to: self.in_reply_to,
            },
            state: OutboxState::parse(&self.state)?,
            attempts: self.attempts as u32,
            next_attempt_at: parse_time(&self.next_attempt_at)?,
            last_error: self.last_error,
            created_at: parse_time(&self.created_at)?,
        })
    }
}

/// Inserts a mail unless one with the same dedupe key exists (a replayed event). A macro,
/// not a generic function over `Executor`: generic executors defeat the `Send` inference of
/// the futures that call them.
macro_rules! insert_mail {
    ($exec:expr, $incident_id:expr, $event_id:expr, $dedupe_key:expr, $mail:expr, $now:expr) => {{
        let mail: &$crate::model::Mail = $mail;
        sqlx::query(
            "INSERT INTO outbox (incident_id, event_id, dedupe_key, recipients, subject, body_text, body_html, message_id, in_reply_to, \
             state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind($incident_id)
        .bind($event_id)
        .bind($dedupe_key.to_string())
        .bind(mail.to.join(","))
        .bind(mail.subject.clone())
        .bind(mail.text.clone())
        .bind(mail.html.clone())
        .bind(mail.message_id.clone())
        .bind(mail.in_reply_to.clone())
        .bind($crate::store::format_time($now))
        .execute($exec)
        .await
        .map(drop)
        .map_err($crate::store::StoreError::query("write the outbox"))
    }};
}
pub(crate) use insert_mail;

impl Store {
    /// Claims up to `limit` pending mails that are due (all pending ones with
    /// `ignore_backoff`) and not leased by another process, leasing them until `lease_until`.
    /// Only mails with an id above `after` are claimed (a pass walks the outbox once).
    pub async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        ignore_backoff: bool,
        after: i64,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let due = if ignore_backoff {
            ""
        } else {
            " AND next_attempt_at <= $2"
        };
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET lease_until = $1 WHERE id IN (SELECT id FROM outbox WHERE state = 'pending'{due} \
             AND id > $4 AND (lease_until IS NULL OR lease_until < $2) ORDER BY id LIMIT $3{lock}) RETURNING {COLUMNS}"
        );
        let mut rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(format_time(lease_until))
            .bind(format_time(now))
            .bind(limit)
            .bind(after)
            .fetch_all(p)
            .await)
        .map_err(StoreError::query("claim outbox mail"))?;
        rows.sort_by_key(|r| r.id);
        rows.into_iter().map(Row::into_mail).collect()
    }

    /// Gives up the lease on claimed mails that were not attempted.
    pub async fn release_outbox(&self, ids: &[i64]) -> Result<(), StoreError> {
        for id in ids {
            with_pool!(self, p => sqlx::query("UPDATE outbox SET lease_until = NULL WHERE id = $1 AND state = 'pending'")
                .bind(*id)
                .execute(p)
                .await
                .map(drop))
            .map_err(StoreError::query("release outbox mail"))?;
        }
        Ok(())
    }

    /// Marks a mail sent.
    pub async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE outbox SET state = 'sent', sent_at = $2, lease_until = NULL, attempts = attempts + 1, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(format_time(now))
            .execute(p)
            .await
            .map(drop))
        .map_err(StoreError::query("mark mail sent"))?;
        Ok(())
    }

    /// Records a failed attempt: retry at `next_attempt_at`, or dead-letter it.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<(), StoreError> {
        let state = if dead { "dead" } else { "pending" };
        with_pool!(self, p => sqlx::query("UPDATE outbox SET state = $2, attempts = attempts + 1, last_error = $3, next_attempt_at = $4, lease_until = NULL WHERE id = $1")
            .bind(id)
            .bind(state)
            .bind(error.to_string())
            .bind(format_time(next_attempt_at))
            .execute(p)
            .await
            .map(drop))
        .map_err(StoreError::query("record a failed delivery"))?;
        Ok(())
    }

    /// Outbox mails in `state` (all when `None`), newest first, at most `limit`.
    pub async fn outbox(
        &self,
        state: Option<OutboxState>,
        limit: i64,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let filter = state.map_or(String::new(), |s| {
            format!(" WHERE state = '{}'", s.as_str())
        });
        let sql = format!("SELECT {COLUMNS} FROM outbox{filter} ORDER BY id DESC LIMIT $1");
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(p).await)
            .map_err(StoreError::query("list the outbox"))?;
        rows.into_iter().map(Row::into_mail).collect()
    }

    /// Counts of pending and dead mails.
    pub async fn outbox_counts(&self) -> Result<(i64, i64), StoreError> {
        let (pending, dead): (i64, i64) = with_pool!(self, p => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) FROM outbox",
        )
        .fetch_one(p)
        .await)
        .map_err(StoreError::query("count the outbox"))?;
        Ok((pending, dead))
    }

    /// Puts a dead (or pending) mail back in line for delivery now. False if no such mail
    /// or it was already sent.
    pub async fn retry_outbox(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = with_pool!(self, p => sqlx::query("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2, lease_until = NULL WHERE id = $1 AND state <> 'sent'")
            .bind(id)
            .bind(format_time(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::query("retry outbox mail"))?;
        Ok(done == 1)
    }
}
