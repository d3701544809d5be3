//! Channels other than mail: one [`Outlet`] per `[channels.NAME]`, sending the outbox's
//! composed messages over HTTP (reqwest, rustls) to Slack, PagerDuty, Teams or a signed
//! webhook. An outlet keeps its channel's transient state — rate-limited until (429
//! Retry-After), unreachable until (backing off) — so a channel that is down delays only
//! its own messages. Errors never carry a URL, token, routing key or signing secret.

use super::Failure;
use super::{pagerduty, slack, teams, webhook};
use crate::config::{self, ChannelKind};
use crate::model::ChatThread;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a channel that answered 429 without a Retry-After waits.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// A Retry-After above this is taken as this (a hostile or broken answer).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The most of an answer's body that is read.
const MAX_ANSWER: usize = 64 * 1024;
/// An unreachable channel is tried again after 5 s, doubling to at most 5 min.
const DOWN_FIRST: Duration = Duration::from_secs(5);
const DOWN_MAX: Duration = Duration::from_secs(300);

/// A failed send of a channel message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ChannelError {
    /// Whose problem it is: the channel's (`Transport`: nothing is counted against the
    /// message), or the message's for now or for good.
    pub failure: Failure,
    /// What went wrong, without secrets.
    pub message: String,
    /// A 429's Retry-After: the channel waits that long.
    pub retry_after: Option<Duration>,
}

impl ChannelError {
    pub(super) fn new(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// One HTTP answer.
pub(super) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl Answer {
    /// A 429 as the channel's state: it waits for Retry-After, no message's attempt used.
    pub fn rate_limited(&self, what: &str) -> ChannelError {
        let wait = self.retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
        ChannelError {
            failure: Failure::Transport,
            message: format!("{what} rate-limited us (429); waiting {}s", wait.as_secs()),
            retry_after: Some(wait),
        }
    }

    /// The body, cut to a few hundred characters for an error message.
    pub fn excerpt(&self) -> String {
        crate::model::truncate_chars(self.body.trim(), 300)
    }
}

/// A channel's transient state.
#[derive(Default)]
struct Gate {
    /// No message goes out before this (429 Retry-After, or backing off while down).
    blocked_until: Option<DateTime<Utc>>,
    /// Why.
    blocked_because: String,
    /// Consecutive passes the channel was unreachable.
    down_streak: u32,
    /// When the last message went out (for the per-channel rate limit).
    last_post: Option<Instant>,
}

/// A configured channel.
pub struct Outlet {
    /// Its config.
    pub config: config::Channel,
    client: reqwest::Client,
    gate: Mutex<Gate>,
}

impl Outlet {
    /// Builds the HTTP client of a channel.
    pub fn new(config: &config::Channel) -> Result<Outlet, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            // A signed body or a token never follows a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dqwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                format!(
                    "[channels.{}]: cannot build an HTTP client: {e}",
                    config.name
                )
            })?;
        Ok(Outlet {
            config: config.clone(),
            client,
            gate: Mutex::new(Gate::default()),
        })
    }

    /// The longest one message may take: two requests (Slack edits the root, then replies)
    /// and the rate limit's wait.
    pub fn send_limit(&self) -> Duration {
        self.config.timeout * 2 + self.config.rate_limit
    }

    /// Why the channel takes no message now (rate-limited or backing off), if so.
    pub fn blocked(&self, now: DateTime<Utc>) -> Option<String> {
        let gate = self
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gate.blocked_until.filter(|u| *u > now).map(|u| {
            format!(
                "{} (until {})",
                gate.blocked_because,
                crate::model::format_time(u)
            )
        })
    }

    /// Notes the outcome of a send for the channel's state.
    pub fn settle(&self, result: Result<(), &ChannelError>, now: DateTime<Utc>) {
        let mut gate = self
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Err(e) if e.failure == Failure::Transport => {
                let wait = match e.retry_after {
                    Some(w) => w.min(MAX_RETRY_AFTER),
                    None => {
                        let w = DOWN_FIRST
                            .saturating_mul(1 << gate.down_streak.min(10))
                            .min(DOWN_MAX);
                        gate.down_streak += 1;
                        w
                    }
                };
                gate.blocked_until =
                    Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX));
                gate.blocked_because = e.message.clone();
            }
            _ => {
                gate.down_streak = 0;
                gate.blocked_until = None;
            }
        }
    }

    /// Waits until the channel's rate limit lets one more message out.
    pub(super) async fn pace(&self) {
        let rate = self.config.rate_limit;
        if rate.is_zero() {
            return;
        }
        let wait = {
            let mut gate = self
                .gate
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let at = gate.last_post.map_or(now, |l| (l + rate).max(now));
            gate.last_post = Some(at);
            at - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The secrets of this channel, masked out of every message.
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.config.kind {
            ChannelKind::Slack { token, .. } => out.push(token.expose().to_string()),
            ChannelKind::SlackWebhook { url } | ChannelKind::Teams { url } => {
                out.push(url.expose().to_string());
            }
            ChannelKind::PagerDuty { routing_key, .. } => {
                out.push(routing_key.expose().to_string());
            }
            ChannelKind::Webhook { url, secret } => {
                out.push(url.expose().to_string());
                out.push(secret.expose().to_string());
                if let Some(b) = secret.expose().strip_prefix("whsec_") {
                    out.push(b.to_string());
                }
            }
        }
        out.retain(|s| s.len() >= 4);
        out
    }

    /// POSTs a JSON body; a failure to get any answer is the channel's.
    pub(super) async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> Result<Answer, ChannelError> {
        let mut req = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.map_err(|e| {
            ChannelError::new(
                Failure::Transport,
                self.scrub(&describe(&e, self.config.timeout)),
            )
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // An answer is read up to 64 KiB: a broken or hostile receiver cannot fill memory.
        let mut resp = resp;
        let mut bytes = Vec::new();
        while bytes.len() < MAX_ANSWER {
            match resp.chunk().await {
                Ok(Some(c)) => bytes.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => {
                    return Err(ChannelError::new(
                        Failure::Transport,
                        self.scrub(&describe(&e, self.config.timeout)),
                    ));
                }
            }
        }
        bytes.truncate(MAX_ANSWER);
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Answer {
            status,
            retry_after,
            body: self.scrub(&body),
        })
    }

    /// `message` with every secret of the channel masked.
    pub(super) fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for s in self.secrets() {
            out = out.replace(&s, "****");
        }
        out
    }

    /// Sends one outbox message: `payload` as composed, `message_id` its stable id, `id`
    /// the outbox row; `thread` the incident's Slack root when known. Gives the Slack root
    /// it posted, when it posted one.
    pub async fn send(
        &self,
        message_id: &str,
        incident_id: Option<i64>,
        payload: &serde_json::Value,
        thread: Option<&ChatThread>,
        now: DateTime<Utc>,
    ) -> Result<Option<ChatThread>, ChannelError> {
        let result = match &self.config.kind {
            ChannelKind::Slack {
                token, api_base, ..
            } => {
                slack::send(
                    self,
                    token,
                    api_base,
                    payload,
                    thread,
                    incident_id.is_some(),
                )
                .await
            }
            ChannelKind::SlackWebhook { url } => {
                slack::send_webhook(self, url, payload).await.map(|()| None)
            }
            ChannelKind::PagerDuty {
                routing_key,
                api_base,
            } => pagerduty::send(self, routing_key, api_base, payload)
                .await
                .map(|()| None),
            ChannelKind::Teams { url } => teams::send(self, url, payload).await.map(|()| None),
            ChannelKind::Webhook { url, secret } => {
                webhook::send(self, url, secret, message_id, payload, now)
                    .await
                    .map(|()| None)
            }
        };
        result.map_err(|e| ChannelError {
            message: self.scrub(&e.message),
            ..e
        })
    }
}

/// A reqwest failure in words, without its URL.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", timeout.as_secs());
    }
    let mut out = if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(l) = last {
        out.push_str(": ");
        out.push_str(&l);
    }
    out
}

/// Every configured channel, by outbox key (`slack:NAME` …).
#[derive(Default)]
pub struct Channels {
    by_key: BTreeMap<String, Outlet>,
}

impl Channels {
    /// The outlets of `[channels.*]`.
    pub fn new(config: &config::Config) -> Result<Channels, String> {
        let mut by_key = BTreeMap::new();
        for (key, c) in &config.channels {
            by_key.insert(key.clone(), Outlet::new(c)?);
        }
        Ok(Channels { by_key })
    }

    /// The outlet of an outbox channel.
    pub fn get(&self, key: &str) -> Option<&Outlet> {
        self.by_key.get(key)
    }

    /// True when no channel is configured.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The longest any channel's send may take.
    pub fn send_limit(&self) -> Duration {
        self.by_key
            .values()
            .map(Outlet::send_limit)
            .max()
            .unwrap_or_default()
    }
}
