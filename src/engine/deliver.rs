//! Outbox delivery: claim one due message at a time (leased to this process for as long as
//! one send may take), send it through its channel — mail, Slack, PagerDuty, Teams, a
//! webhook — and settle it — sent, retried with backoff and jitter, or dead — only while
//! still holding its lease. A channel that is down is nobody's attempt, and delays only
//! its own messages: the pass goes on with the other channels.

use crate::clock::Clock;
use crate::notify::{Channels, Failure, Mailer};
use crate::store::{Store, StoreError};
use chrono::Duration;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};
use std::sync::OnceLock;

/// Attempts before a message is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 10;
/// The least a lease outlasts one send: room for the store writes around it and for clock
/// skew between replicas (a lease is 1.5 × the send limit, at least this much more).
const LEASE_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// The outbox channel key of mail.
pub const MAIL: &str = "mail";

/// What one delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Messages delivered.
    pub sent: usize,
    /// Messages that failed and will be retried.
    pub retrying: usize,
    /// Messages moved to the dead-letter state.
    pub dead: usize,
    /// Messages sent after another process had taken over their lease (possibly sent twice;
    /// receivers deduplicate by Message-ID, webhook-id or dedup key).
    pub lease_lost: usize,
    /// True when a channel's transport failed (the relay is down, Slack rate-limits us…):
    /// no message's attempts were used, that channel's messages wait.
    pub transport_down: bool,
    /// The channels that were down, with why.
    pub down: BTreeMap<String, String>,
    /// Messages delivered per channel.
    pub sent_by_channel: BTreeMap<String, usize>,
    /// The last failure, if any (a channel's is prefixed with the channel).
    pub last_error: Option<String>,
    /// The channel of the last failure.
    pub last_channel: Option<String>,
}

/// The delay before attempt `attempts + 1`: 30 s doubling to at most 1 h, plus up to 20 %
/// jitter (derived from the mail id, so that a burst of failures spreads out).
pub fn backoff(id: i64, attempts: u32) -> Duration {
    let base = 30_i64.saturating_mul(1 << attempts.min(7)).min(3600);
    let mut h = DefaultHasher::new();
    (id, attempts).hash(&mut h);
    let jitter = (h.finish() % 1000) as i64 * base / 5000;
    Duration::seconds(base + jitter)
}

/// How long a claimed message is this process's: one send at most (the slowest channel's),
/// plus slack (90 s with the default SMTP timeout of 30 s).
pub fn lease_for(mailer: Option<&Mailer>, channels: &Channels) -> Duration {
    let limit = mailer
        .map(Mailer::send_limit)
        .unwrap_or_default()
        .max(channels.send_limit());
    let lease = (limit + limit / 2).max(limit + LEASE_SLACK);
    Duration::from_std(lease).unwrap_or(Duration::hours(1))
}

/// This process's name on the leases it takes: a random part (pids repeat across hosts and
/// restarts), then its pid, as in `3f9c…-4242`.
pub fn lease_owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let random = RandomState::new().hash_one(std::process::id());
        format!("{random:016x}-{}", std::process::id())
    })
}

/// A send's failure, whatever the channel.
struct Failed {
    failure: Failure,
    message: String,
}

/// Sends every message that is due, oldest first, each incident's messages in order per
/// channel. A message waiting for its retry time stays waiting (`dqwatch outbox retry ID`
/// makes it due now). A channel whose transport fails is skipped for the rest of the pass
/// (its messages would only meet the same failure); the others go on.
pub async fn deliver(
    store: &Store,
    mailer: Option<&Mailer>,
    channels: &Channels,
    clock: &dyn Clock,
) -> Result<Delivery, StoreError> {
    let owner = lease_owner();
    let mut done = Delivery::default();
    let mut after = 0;
    let lease = lease_for(mailer, channels);
    loop {
        let now = clock.now();
        let skip: Vec<String> = done.down.keys().cloned().collect();
        let Some(item) = store
            .claim_mail(now, now + lease, owner, after, &skip)
            .await?
        else {
            return Ok(done);
        };
        after = item.id;
        let channel = item.channel.clone();
        let outcome: Result<(), Failed> = if channel == MAIL {
            match mailer {
                None => Err(Failed {
                    failure: Failure::Transport,
                    message: "no [mail] in the config".into(),
                }),
                Some(m) => m
                    .send(item.id, item.incident_id, &item.mail)
                    .await
                    .map_err(|e| Failed {
                        failure: e.failure,
                        message: e.message,
                    }),
            }
        } else {
            match channels.get(&channel) {
                None => Err(Failed {
                    failure: Failure::Transport,
                    message: format!("channel {channel} is not in the config"),
                }),
                Some(outlet) => match outlet.blocked(now) {
                    Some(why) => Err(Failed {
                        failure: Failure::Transport,
                        message: why,
                    }),
                    None => {
                        let thread = match item.incident_id {
                            Some(i) if channel.starts_with("slack:") => {
                                store.chat_thread(i, &channel).await?
                            }
                            _ => None,
                        };
                        let payload = item.payload.clone().unwrap_or_default();
                        let sent = outlet
                            .send(
                                &item.mail.message_id,
                                item.incident_id,
                                &payload,
                                thread.as_ref(),
                                clock.now(),
                            )
                            .await;
                        outlet.settle(sent.as_ref().map(drop), clock.now());
                        match sent {
                            Ok(root) => {
                                if let (Some(root), Some(i)) = (root, item.incident_id) {
                                    store
                                        .save_chat_thread(i, &channel, &root, clock.now())
                                        .await?;
                                }
                                Ok(())
                            }
                            Err(e) => Err(Failed {
                                failure: e.failure,
                                message: e.message,
                            }),
                        }
                    }
                },
            }
        };
        let failure = match outcome {
            Ok(()) => {
                if store.mark_sent(item.id, owner, clock.now()).await? {
                    done.sent += 1;
                    *done.sent_by_channel.entry(channel).or_default() += 1;
                } else {
                    tracing::warn!(
                        outbox = item.id,
                        channel = %channel,
                        "Message sent after its lease passed to another process; it may arrive twice (same id)."
                    );
                    done.lease_lost += 1;
                }
                continue;
            }
            Err(e) => e,
        };
        done.last_error = Some(if channel == MAIL {
            failure.message.clone()
        } else {
            format!("{channel}: {}", failure.message)
        });
        done.last_channel = Some(channel.clone());
        if failure.failure == Failure::Transport {
            tracing::warn!(outbox = item.id, channel = %channel, error = %failure.message, "Channel transport failed; its messages wait for it.");
            store.release_mail(item.id, owner, &failure.message).await?;
            done.transport_down = true;
            done.down.insert(channel, failure.message);
            continue;
        }
        let attempts = item.attempts + 1;
        let dead = failure.failure == Failure::Permanent || attempts >= MAX_ATTEMPTS;
        let next = clock.now() + backoff(item.id, item.attempts);
        tracing::warn!(outbox = item.id, channel = %channel, attempts, dead, error = %failure.message, "Delivery failed.");
        if !store
            .mark_failed(item.id, owner, &failure.message, next, dead)
            .await?
        {
            done.lease_lost += 1;
        } else if dead {
            done.dead += 1;
        } else {
            done.retrying += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::model::Mail;
    use crate::model::Secret;
    use crate::store::OutboxState;
    use chrono::{DateTime, TimeZone, Utc};

    #[test]
    fn backoff_grows_and_caps() {
        let d: Vec<i64> = (0..10).map(|a| backoff(7, a).num_seconds()).collect();
        assert!(d[0] >= 30 && d[0] <= 36, "{d:?}");
        assert!(d[1] >= 60 && d[1] <= 72);
        assert!(d.windows(2).all(|w| w[1] >= w[0] || w[0] >= 3600));
        assert!(d[9] >= 3600 && d[9] <= 4320);
        // Different mails do not retry in lockstep.
        assert!(
            (0..20)
                .map(|id| backoff(id, 3).num_seconds())
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 5
        );
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap()
    }

    /// A SQLite store holding mails for `incidents` (one mail each, in that order).
    async fn store_with(incidents: &[i64]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let store = Store::open(&Secret::new(url)).await.unwrap();
        for (n, incident) in incidents.iter().enumerate() {
            let mail = Mail {
                to: vec!["oncall@example.com".into()],
                subject: format!("mail {n}"),
                text: "text".into(),
                html: "<p>html</p>".into(),
                message_id: format!("<m{n}@dqwatch.test>"),
                in_reply_to: None,
            };
            store
                .test_insert_mail(*incident, &mail, t0())
                .await
                .unwrap();
        }
        (dir, store)
    }

    async fn state_of(store: &Store, id: i64) -> (OutboxState, u32) {
        let all = store.outbox(None, 100).await.unwrap();
        let m = all.iter().find(|m| m.id == id).unwrap();
        (m.state, m.attempts)
    }

    // See: issues/8 item 7
    #[tokio::test]
    async fn only_the_lease_holder_settles_a_mail() {
        let (_dir, store) = store_with(&[1]).await;
        let lease = Duration::seconds(90);
        let a = store
            .claim_mail(t0(), t0() + lease, "a", 0, &[])
            .await
            .unwrap()
            .unwrap();
        // While A holds it, nobody else can take it.
        assert!(
            store
                .claim_mail(t0() + Duration::seconds(89), t0() + lease * 2, "b", 0, &[])
                .await
                .unwrap()
                .is_none()
        );
        // A's lease runs out; B takes the mail over and sends it.
        let later = t0() + Duration::seconds(91);
        let b = store
            .claim_mail(later, later + lease, "b", 0, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.id, b.id);
        assert!(store.mark_sent(b.id, "b", later).await.unwrap());
        // A finishing late settles nothing: not sent again, not failed, not dead.
        assert!(!store.mark_sent(a.id, "a", later).await.unwrap());
        assert!(
            !store
                .mark_failed(a.id, "a", "late", later, true)
                .await
                .unwrap()
        );
        assert!(!store.release_mail(a.id, "a", "late").await.unwrap());
        assert_eq!(state_of(&store, a.id).await, (OutboxState::Sent, 1));
    }

    // See: issues/8 item 6
    #[tokio::test]
    async fn a_claim_leases_one_mail_not_a_batch() {
        let (_dir, store) = store_with(&[1, 2, 3]).await;
        let lease = t0() + Duration::seconds(90);
        let first = store
            .claim_mail(t0(), lease, "dead-process", 0, &[])
            .await
            .unwrap()
            .unwrap();
        // The process holding the first mail dies; every other mail is free at once.
        let mut others = Vec::new();
        while let Some(m) = store.claim_mail(t0(), lease, "next", 0, &[]).await.unwrap() {
            assert!(store.mark_sent(m.id, "next", t0()).await.unwrap());
            others.push(m.id);
        }
        assert_eq!(others.len(), 2);
        assert!(!others.contains(&first.id));
        let w = store.outbox_waiting(t0()).await.unwrap();
        assert_eq!((w.leased, w.leased_until), (1, Some(lease)));
    }

    // See: issues/8 item 9
    #[tokio::test]
    async fn an_incident_s_mails_go_out_in_event_order() {
        // Mails 1 and 2 tell incident 7 (opened, then resolved); mail 3 tells incident 8.
        let (_dir, store) = store_with(&[7, 7, 8]).await;
        let lease = t0() + Duration::seconds(90);
        let opened = store
            .claim_mail(t0(), lease, "p", 0, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(opened.mail.subject, "mail 0");
        // The opening mail fails for now and backs off: its resolution must wait for it,
        // the other incident's mail need not.
        let retry_at = t0() + Duration::minutes(10);
        assert!(
            store
                .mark_failed(opened.id, "p", "451 try later", retry_at, false)
                .await
                .unwrap()
        );
        let next = store
            .claim_mail(t0(), lease, "p", 0, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.mail.subject, "mail 2");
        assert!(store.mark_sent(next.id, "p", t0()).await.unwrap());
        assert!(
            store
                .claim_mail(t0(), lease, "p", 0, &[])
                .await
                .unwrap()
                .is_none()
        );
        // At the retry time the thread goes out in order: opened, then resolved.
        let order: Vec<String> = {
            let mut v = Vec::new();
            let at = retry_at + Duration::seconds(1);
            while let Some(m) = store
                .claim_mail(at, at + Duration::seconds(90), "p", 0, &[])
                .await
                .unwrap()
            {
                assert!(store.mark_sent(m.id, "p", at).await.unwrap());
                v.push(m.mail.subject);
            }
            v
        };
        assert_eq!(order, ["mail 0", "mail 1"]);
    }

    // See: issues/8 item 5
    #[tokio::test]
    async fn a_transport_that_is_down_uses_up_no_mail_s_attempts() {
        let (dir, store) = store_with(&[1, 2]).await;
        // A folder that cannot be created: the file transport fails, whatever the mail.
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let mailer = Mailer::File {
            dir: blocker.join("outbox"),
            from: "dq <dq@example.com>".into(),
        };
        let clock = ManualClock::new(t0());
        for _ in 0..(MAX_ATTEMPTS + 5) {
            let d = deliver(&store, Some(&mailer), &Channels::default(), &clock)
                .await
                .unwrap();
            assert!(d.transport_down);
            assert_eq!((d.sent, d.retrying, d.dead), (0, 0, 0));
            clock.advance(Duration::minutes(1));
        }
        for id in [1, 2] {
            assert_eq!(state_of(&store, id).await, (OutboxState::Pending, 0));
        }
        // The transport comes back: both go out, oldest first, once.
        let mailer = Mailer::File {
            dir: dir.path().join("outbox"),
            from: "dq <dq@example.com>".into(),
        };
        let d = deliver(&store, Some(&mailer), &Channels::default(), &clock)
            .await
            .unwrap();
        assert_eq!((d.sent, d.transport_down), (2, false));
        assert_eq!(
            deliver(&store, Some(&mailer), &Channels::default(), &clock)
                .await
                .unwrap()
                .sent,
            0
        );
    }

    fn notice(channel: &str, n: usize) -> crate::model::Notice {
        crate::model::Notice {
            channel: channel.into(),
            target: "t".into(),
            summary: format!("{channel} {n}"),
            message_id: format!("m{n}"),
            payload: serde_json::json!({}),
        }
    }

    // See: issue 11 — thread order is per incident AND channel; a channel that is down
    // (skipped for the pass) holds back nothing of the others.
    #[tokio::test]
    async fn order_is_per_incident_and_channel_and_a_down_channel_holds_only_itself() {
        let (_dir, store) = store_with(&[7]).await;
        store
            .test_insert_notice(Some(7), &notice("slack:a", 1), t0())
            .await
            .unwrap();
        store
            .test_insert_notice(Some(7), &notice("slack:a", 2), t0())
            .await
            .unwrap();
        store
            .test_insert_notice(Some(7), &notice("webhook:b", 3), t0())
            .await
            .unwrap();
        let lease = t0() + Duration::seconds(90);
        // The mail (row 1) is pending: Slack's first message goes out all the same.
        let skip = vec![MAIL.to_string()];
        let first = store
            .claim_mail(t0(), lease, "p", 0, &skip)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.channel, "slack:a");
        assert_eq!(first.mail.subject, "slack:a 1");
        // Slack's second waits for its first; the webhook does not.
        let next = store
            .claim_mail(t0(), lease, "p", first.id, &skip)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.channel, "webhook:b");
        // Slack down too: nothing else is due.
        let skip = vec![MAIL.to_string(), "slack:a".to_string()];
        assert!(
            store
                .claim_mail(t0(), lease, "p", 0, &skip)
                .await
                .unwrap()
                .is_none()
        );
    }

    // A channel message for a channel the config no longer has waits (nobody's attempt);
    // mail goes out.
    #[tokio::test]
    async fn an_unconfigured_channel_waits_and_mail_goes_out() {
        let (dir, store) = store_with(&[1]).await;
        store
            .test_insert_notice(Some(2), &notice("slack:gone", 1), t0())
            .await
            .unwrap();
        let mailer = Mailer::File {
            dir: dir.path().join("outbox"),
            from: "dq <dq@example.com>".into(),
        };
        let clock = ManualClock::new(t0());
        let d = deliver(&store, Some(&mailer), &Channels::default(), &clock)
            .await
            .unwrap();
        assert_eq!(d.sent, 1);
        assert!(d.down.contains_key("slack:gone"), "{d:?}");
        let all = store.outbox(None, 10).await.unwrap();
        let slack = all.iter().find(|m| m.channel == "slack:gone").unwrap();
        assert_eq!((slack.state, slack.attempts), (OutboxState::Pending, 0));
    }
}
