//! Outbox delivery: claim pending mails (leased, so one process sends each), send them, and
//! record success, a retry with exponential backoff and jitter, or a dead letter.

use crate::clock::Clock;
use crate::mail::Mailer;
use crate::store::{Store, StoreError};
use chrono::Duration;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Attempts before a mail is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 10;
/// How long a claim protects a mail from other processes.
const LEASE: Duration = Duration::minutes(5);
/// Mails claimed at once.
const BATCH: i64 = 50;

/// What one delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Mails delivered.
    pub sent: usize,
    /// Mails that failed and will be retried.
    pub retrying: usize,
    /// Mails moved to the dead-letter state.
    pub dead: usize,
    /// The last failure, if any.
    pub last_error: Option<String>,
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

/// Sends what is due (everything pending with `ignore_backoff`, as `dqwatch run` does).
/// Stops at the first transient failure: the relay is down, and the rest would only wait
/// for the same timeout.
pub async fn deliver(
    store: &Store,
    mailer: &Mailer,
    clock: &dyn Clock,
    ignore_backoff: bool,
) -> Result<Delivery, StoreError> {
    let mut done = Delivery::default();
    let mut after = 0;
    loop {
        let now = clock.now();
        let batch = store
            .claim_outbox(now, now + LEASE, BATCH, ignore_backoff, after)
            .await?;
        if batch.is_empty() {
            return Ok(done);
        }
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        for (n, item) in batch.into_iter().enumerate() {
            after = after.max(item.id);
            match mailer.send(item.id, item.incident_id, &item.mail).await {
                Ok(()) => {
                    store.mark_sent(item.id, clock.now()).await?;
                    done.sent += 1;
                }
                Err(e) => {
                    let attempts = item.attempts + 1;
                    let dead = e.permanent || attempts >= MAX_ATTEMPTS;
                    let next = clock.now() + backoff(item.id, item.attempts);
                    tracing::warn!(outbox = item.id, attempts, dead, error = %e, "Mail delivery failed.");
                    store.mark_failed(item.id, &e.message, next, dead).await?;
                    if dead {
                        done.dead += 1
                    } else {
                        done.retrying += 1
                    }
                    done.last_error = Some(e.message);
                    if !e.permanent {
                        // Hand back the rest of the batch at once rather than at lease expiry.
                        store.release_outbox(&ids[n + 1..]).await?;
                        return Ok(done);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
