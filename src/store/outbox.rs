//! The outbox: rendered mails and channel messages (Slack, PagerDuty, Teams, webhooks)
//! written with the incident change that caused them, then claimed (with a lease, so that
//! one process sends each), sent, retried or dead-lettered. Each row names its channel;
//! thread order holds per incident and channel.

use super::rows::{format_time, parse_time};
use super::{Store, StoreError, with_pool};
use crate::model::{Mail, Notice};
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
    /// Where it goes: `mail`, `slack:NAME`, `pagerduty:NAME` …
    pub channel: String,
    /// The rendered mail; for another channel, its target (`to`), one-line summary
    /// (`subject`) and stable message id.
    pub mail: Mail,
    /// A channel message's body (none for mail).
    pub payload: Option<serde_json::Value>,
    /// Delivery state.
    pub state: OutboxState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Earliest next attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// While a process is sending it: until when no other process may take it.
    pub leased_until: Option<DateTime<Utc>>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Pending mails that are not due now, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Waiting {
    /// Mails leased by a process (sending them, or dead while sending them).
    pub leased: i64,
    /// The latest of those leases' ends.
    pub leased_until: Option<DateTime<Utc>>,
    /// Mails waiting for their retry time after a failed attempt.
    pub backing_off: i64,
    /// The earliest of those retry times.
    pub next_attempt: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, incident_id, channel, payload, recipients, subject, body_text, body_html, message_id, in_reply_to, state, attempts, next_attempt_at, last_error, lease_until, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    incident_id: Option<i64>,
    channel: String,
    payload: Option<String>,
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
    lease_until: Option<String>,
    created_at: String,
}

impl Row {
    fn into_mail(self) -> Result<OutboxMail, StoreError> {
        let payload = self
            .payload
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                what: "an outbox payload",
                message: e.to_string(),
            })?;
        Ok(OutboxMail {
            id: self.id,
            incident_id: self.incident_id,
            channel: self.channel,
            payload,
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
            leased_until: self.lease_until.as_deref().map(parse_time).transpose()?,
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

/// Inserts a channel message unless one with the same dedupe key exists (a replayed event).
macro_rules! insert_notice {
    ($exec:expr, $incident_id:expr, $event_id:expr, $dedupe_key:expr, $notice:expr, $now:expr) => {{
        let n: &$crate::model::Notice = $notice;
        sqlx::query(
            "INSERT INTO outbox (incident_id, event_id, dedupe_key, channel, payload, recipients, subject, body_text, body_html, message_id, \
             state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, '', '', $8, 'pending', 0, $9, $9) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind($incident_id)
        .bind($event_id)
        .bind($dedupe_key.to_string())
        .bind(n.channel.clone())
        .bind(n.payload.to_string())
        .bind(n.target.clone())
        .bind(n.summary.clone())
        .bind(n.message_id.clone())
        .bind($crate::store::format_time($now))
        .execute($exec)
        .await
        .map(drop)
        .map_err($crate::store::StoreError::query("write the outbox"))
    }};
}
pub(crate) use insert_notice;

/// Where an incident was told, per channel: for the page and `incidents show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Told {
    /// The outbox channel (`mail`, `slack:NAME` …).
    pub channel: String,
    /// Where in it: recipients, a Slack channel, a service name.
    pub target: String,
    /// Messages delivered.
    pub sent: i64,
    /// Messages still pending.
    pub pending: i64,
    /// Messages dead-lettered.
    pub dead: i64,
    /// The thread: a mail thread's root Message-ID, the Slack root (`CHANNEL/TS`), the
    /// latest PagerDuty dedup key.
    pub thread: Option<String>,
}

pub use crate::model::ChatThread;

/// Runs one update that settles a leased mail (`$1` = id, `$2` = lease owner, then the
/// rest); true when it changed the row, i.e. the owner still held the lease.
macro_rules! settle {
    ($store:expr, $what:literal, $sql:literal, $($bind:expr),+) => {
        with_pool!($store, p => sqlx::query($sql)$(.bind($bind))+.execute(p).await.map(|r| r.rows_affected() == 1))
            .map_err(StoreError::query($what))
    };
}

impl Store {
    /// Claims the oldest pending mail that is due, not leased by another process, not held
    /// back by an earlier pending mail of its incident (a thread goes out in event order),
    /// and has an id above `after` (a pass walks the outbox once). The lease, until
    /// `lease_until` and in `owner`'s name, is what lets only this process settle the mail.
    /// Rows of the channels in `skip` (down for this pass) are left alone.
    pub async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        owner: &str,
        after: i64,
        skip: &[String],
    ) -> Result<Option<OutboxMail>, StoreError> {
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let skipped = if skip.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = (0..skip.len()).map(|i| format!("${}", i + 5)).collect();
            format!(" AND o.channel NOT IN ({})", marks.join(", "))
        };
        let sql = format!(
            "UPDATE outbox SET lease_until = $1, lease_owner = $3 WHERE id = (\
             SELECT o.id FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= $2 AND o.id > $4{skipped} \
             AND (o.lease_until IS NULL OR o.lease_until < $2) \
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.incident_id = o.incident_id AND e.channel = o.channel \
             AND e.id < o.id AND e.state = 'pending') \
             ORDER BY o.id LIMIT 1{lock}) \
             AND state = 'pending' AND (lease_until IS NULL OR lease_until < $2) RETURNING {COLUMNS}"
        );
        let row: Option<Row> = with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(format_time(lease_until))
                .bind(format_time(now))
                .bind(owner.to_string())
                .bind(after);
            for ch in skip {
                q = q.bind(ch.clone());
            }
            q.fetch_optional(p).await
        })
        .map_err(StoreError::query("claim outbox mail"))?;
        row.map(Row::into_mail).transpose()
    }

    /// Gives a claimed mail back without counting an attempt (its transport failed, not
    /// the mail), noting why. False if `owner` no longer holds its lease.
    pub async fn release_mail(
        &self,
        id: i64,
        owner: &str,
        error: &str,
    ) -> Result<bool, StoreError> {
        settle!(
            self,
            "release outbox mail",
            "UPDATE outbox SET lease_until = NULL, lease_owner = NULL, last_error = $3 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
            id,
            owner.to_string(),
            error.to_string()
        )
    }

    /// Marks a mail sent. False if `owner` no longer holds its lease (another process may
    /// have sent it too: delivery is at least once, with a stable Message-ID).
    pub async fn mark_sent(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        settle!(
            self,
            "mark mail sent",
            "UPDATE outbox SET state = 'sent', sent_at = $3, lease_until = NULL, lease_owner = NULL, \
             attempts = attempts + 1, last_error = NULL WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
            id,
            owner.to_string(),
            format_time(now)
        )
    }

    /// Records a failed attempt: retry at `next_attempt_at`, or dead-letter it. False if
    /// `owner` no longer holds the mail's lease.
    pub async fn mark_failed(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<bool, StoreError> {
        let state = if dead { "dead" } else { "pending" };
        settle!(
            self,
            "record a failed delivery",
            "UPDATE outbox SET state = $3, attempts = attempts + 1, last_error = $4, next_attempt_at = $5, \
             lease_until = NULL, lease_owner = NULL WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
            id,
            owner.to_string(),
            state,
            error.to_string(),
            format_time(next_attempt_at)
        )
    }

    /// Writes one pending mail for `incident_id` (unit tests of delivery).
    #[cfg(test)]
    pub(crate) async fn test_insert_mail(
        &self,
        incident_id: i64,
        mail: &Mail,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = format_time(now);
        with_pool!(self, p => sqlx::query(
            "INSERT INTO incidents (id, fingerprint, check_id, key_json, state, category, severity, \
             current_severity, peak_severity, title, first_seen_at, last_seen_at, breach_streak, \
             pass_streak, repeat_count) VALUES ($1, $2, 'c', '{}', 'resolved', 'missing_data', 'P1', \
             'P1', 'P1', 't', $3, $3, 0, 0, 0) ON CONFLICT DO NOTHING")
            .bind(incident_id)
            .bind(format!("c#{incident_id}"))
            .bind(t)
            .execute(p)
            .await
            .map(drop))
        .map_err(StoreError::query("insert a test incident"))?;
        let key = mail.message_id.clone();
        with_pool!(self, p => insert_mail!(p, Some(incident_id), None::<i64>, key, mail, now))
    }

    /// Writes one pending channel message (tests and benches of delivery).
    #[doc(hidden)]
    pub async fn test_insert_notice(
        &self,
        incident_id: Option<i64>,
        notice: &Notice,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(id) = incident_id {
            let t = format_time(now);
            with_pool!(self, p => sqlx::query(
                "INSERT INTO incidents (id, fingerprint, check_id, key_json, state, category, severity, \
                 current_severity, peak_severity, title, first_seen_at, last_seen_at, breach_streak, \
                 pass_streak, repeat_count) VALUES ($1, $2, 'c', '{}', 'resolved', 'missing_data', 'P1', \
                 'P1', 'P1', 't', $3, $3, 0, 0, 0) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(format!("c#{id}"))
                .bind(t)
                .execute(p)
                .await
                .map(drop))
            .map_err(StoreError::query("insert a test incident"))?;
        }
        let key = format!("{}-{}", notice.channel, notice.message_id);
        with_pool!(self, p => insert_notice!(p, incident_id, None::<i64>, key, notice, now))
    }

    /// The Slack thread root of an incident in a channel, once its root post succeeded.
    pub async fn chat_thread(
        &self,
        incident_id: i64,
        channel: &str,
    ) -> Result<Option<ChatThread>, StoreError> {
        let row: Option<(String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT chat, ts FROM chat_threads WHERE incident_id = $1 AND channel = $2",
        )
        .bind(incident_id)
        .bind(channel.to_string())
        .fetch_optional(p)
        .await)
        .map_err(StoreError::query("read a chat thread"))?;
        Ok(row.map(|(chat, ts)| ChatThread { chat, ts }))
    }

    /// Remembers the Slack root of an incident's thread in a channel (the first one wins).
    pub async fn save_chat_thread(
        &self,
        incident_id: i64,
        channel: &str,
        thread: &ChatThread,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO chat_threads (incident_id, channel, chat, ts, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (incident_id, channel) DO NOTHING",
        )
        .bind(incident_id)
        .bind(channel.to_string())
        .bind(thread.chat.clone())
        .bind(thread.ts.clone())
        .bind(format_time(now))
        .execute(p)
        .await
        .map(drop))
        .map_err(StoreError::query("save a chat thread"))
    }

    /// Where incident `id` was told, per channel, in the order first told.
    pub async fn told(&self, id: i64) -> Result<Vec<Told>, StoreError> {
        let rows: Vec<(String, String, String, Option<String>, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT channel, recipients, message_id, in_reply_to, state FROM outbox WHERE incident_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("read where an incident was told"))?;
        let threads: Vec<(String, String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT channel, chat, ts FROM chat_threads WHERE incident_id = $1",
        )
        .bind(id)
        .fetch_all(p)
        .await)
        .map_err(StoreError::query("read where an incident was told"))?;
        let mut out: Vec<Told> = Vec::new();
        for (channel, target, message_id, in_reply_to, state) in rows {
            let i = match out.iter().position(|t| t.channel == channel) {
                Some(i) => i,
                None => {
                    out.push(Told {
                        channel: channel.clone(),
                        target: target.clone(),
                        sent: 0,
                        pending: 0,
                        dead: 0,
                        thread: None,
                    });
                    out.len() - 1
                }
            };
            let t = &mut out[i];
            match state.as_str() {
                "sent" => t.sent += 1,
                "dead" => t.dead += 1,
                _ => t.pending += 1,
            }
            match crate::model::channel_kind(&channel) {
                "mail" if t.thread.is_none() => {
                    t.thread = Some(in_reply_to.unwrap_or(message_id));
                }
                "pagerduty" => t.thread = Some(message_id),
                _ => {}
            }
        }
        for (channel, chat, ts) in threads {
            if let Some(t) = out.iter_mut().find(|t| t.channel == channel) {
                t.thread = Some(format!("{chat}/{ts}"));
            }
        }
        Ok(out)
    }

    /// Puts every dead message of `channel` back in line for delivery now; how many.
    pub async fn retry_channel(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2, lease_until = NULL, lease_owner = NULL WHERE channel = $1 AND state = 'dead'")
            .bind(channel.to_string())
            .bind(format_time(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::query("retry a channel's dead messages"))
    }

    /// Why pending mails are not going out right now: leased to a process that is sending
    /// them (or died doing so), or waiting for their retry time.
    pub async fn outbox_waiting(&self, now: DateTime<Utc>) -> Result<Waiting, StoreError> {
        let (leased, leased_until, backing_off, next_attempt): (
            i64,
            Option<String>,
            i64,
            Option<String>,
        ) = with_pool!(self, p => sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN lease_until >= $1 THEN 1 ELSE 0 END), 0), \
                 MAX(CASE WHEN lease_until >= $1 THEN lease_until END), \
                 COALESCE(SUM(CASE WHEN next_attempt_at > $1 THEN 1 ELSE 0 END), 0), \
                 MIN(CASE WHEN next_attempt_at > $1 THEN next_attempt_at END) \
                 FROM outbox WHERE state = 'pending'",
            )
            .bind(format_time(now))
            .fetch_one(p)
            .await)
        .map_err(StoreError::query("count waiting mail"))?;
        Ok(Waiting {
            leased,
            leased_until: leased_until.as_deref().map(parse_time).transpose()?,
            backing_off,
            next_attempt: next_attempt.as_deref().map(parse_time).transpose()?,
        })
    }

    /// Outbox rows in `state` (all when `None`), newest first, at most `limit`.
    pub async fn outbox(
        &self,
        state: Option<OutboxState>,
        limit: i64,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        self.outbox_of(state, None, limit).await
    }

    /// Outbox rows in `state` (all when `None`) of `channel` (every channel when `None`;
    /// `slack` matches every `slack:NAME`), newest first, at most `limit`.
    pub async fn outbox_of(
        &self,
        state: Option<OutboxState>,
        channel: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let mut filter = state.map_or(String::new(), |s| {
            format!(" WHERE state = '{}'", s.as_str())
        });
        if channel.is_some() {
            filter.push_str(if filter.is_empty() { " WHERE" } else { " AND" });
            filter.push_str(" (channel = $2 OR channel LIKE $3)");
        }
        let sql = format!("SELECT {COLUMNS} FROM outbox{filter} ORDER BY id DESC LIMIT $1");
        let rows: Vec<Row> = with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit);
            if let Some(c) = channel {
                q = q.bind(c.to_string()).bind(format!("{}:%", c.replace(['%', '_'], "")));
            }
            q.fetch_all(p).await
        })
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
        let done = with_pool!(self, p => sqlx::query("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2, lease_until = NULL, lease_owner = NULL WHERE id = $1 AND state <> 'sent'")
            .bind(id)
            .bind(format_time(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::query("retry outbox mail"))?;
        Ok(done == 1)
    }
}
