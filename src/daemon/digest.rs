//! Digests: routes with `digest = "daily"` or `"weekly"` get one mail per period (at
//! `[daemon] digest_at`, weekly on Mondays) listing their incidents; nothing to tell, no
//! mail. A period is claimed once across replicas.

use super::Shared;
use crate::config::Digest;
use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How often digests are looked at.
const TICK: std::time::Duration = std::time::Duration::from_secs(30);

/// The current period of a digest at `now`: its key and the start of what it covers. The
/// period begins at the latest `at` (on a Monday for weekly) not after `now`.
pub fn period(
    kind: Digest,
    at: NaiveTime,
    tz: Tz,
    now: DateTime<Utc>,
) -> Option<(String, DateTime<Utc>)> {
    let local = now.with_timezone(&tz);
    let mut day = local.date_naive();
    for _ in 0..8 {
        let fits = match kind {
            Digest::Weekly => day.weekday() == Weekday::Mon,
            _ => true,
        };
        if fits
            && let Some(start) = tz
                .from_local_datetime(&day.and_time(at))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
            && start <= now
        {
            let (key, span) = match kind {
                Digest::Weekly => (
                    format!("{}-W{:02}", day.iso_week().year(), day.iso_week().week()),
                    Duration::days(7),
                ),
                _ => (day.to_string(), Duration::days(1)),
            };
            return Some((key, start - span));
        }
        day = day.pred_opt()?;
    }
    None
}

/// Runs the digest loop until shutdown.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = tick(&shared).await {
            tracing::warn!(error = %e, "Digest pass failed; retrying.");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// One pass: each digest route whose period is not yet claimed is claimed and mailed.
pub async fn tick(shared: &Shared) -> Result<usize, String> {
    let loaded = shared.loaded();
    let now = shared.clock.now();
    let mut queued = 0;
    for (id, route) in loaded.composer.digest_routes() {
        let Some((key, since)) = period(
            route.digest,
            loaded.config.daemon.digest_at,
            loaded.config.daemon.timezone,
            now,
        ) else {
            continue;
        };
        if shared
            .store
            .digest_claimed(&id, &key)
            .await
            .map_err(|e| e.chain())?
        {
            continue;
        }
        if !shared
            .store
            .claim_digest(&id, &key, &shared.replica, now)
            .await
            .map_err(|e| e.chain())?
        {
            continue;
        }
        let incidents = shared
            .store
            .incidents_since(since)
            .await
            .map_err(|e| e.chain())?;
        let tags = |check: &str| {
            loaded
                .infos
                .get(check)
                .map(|i| i.tags.clone())
                .unwrap_or_default()
        };
        let digest = loaded.composer.digest(route, &key, &incidents, &tags);
        if let Some(mail) = digest.map_err(|e| e.to_string())? {
            shared
                .store
                .queue_digest(&id, &key, &mail, now)
                .await
                .map_err(|e| e.chain())?;
            queued += 1;
        }
        for notice in loaded
            .composer
            .digest_notices(route, &key, &incidents, &tags)
        {
            shared
                .store
                .queue_digest_notice(&id, &key, &notice, now)
                .await
                .map_err(|e| e.chain())?;
            queued += 1;
        }
    }
    if queued > 0 {
        shared.mail_due.notify_one();
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap() // 2026-11-23 is a Monday
    }

    #[test]
    fn daily_period_starts_at_digest_time() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        assert_eq!(
            period(Digest::Daily, nine, chrono_tz::UTC, t(24, 8, 59)),
            Some(("2026-11-23".into(), t(22, 9, 0)))
        );
        assert_eq!(
            period(Digest::Daily, nine, chrono_tz::UTC, t(24, 9, 0)),
            Some(("2026-11-24".into(), t(23, 9, 0)))
        );
    }

    #[test]
    fn weekly_period_starts_on_monday() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        assert_eq!(
            period(Digest::Weekly, nine, chrono_tz::UTC, t(23, 8, 0))
                .unwrap()
                .0,
            "2026-W47"
        );
        assert_eq!(
            period(Digest::Weekly, nine, chrono_tz::UTC, t(23, 9, 30)),
            Some(("2026-W48".into(), t(16, 9, 0)))
        );
        assert_eq!(
            period(Digest::Weekly, nine, chrono_tz::UTC, t(28, 12, 0))
                .unwrap()
                .0,
            "2026-W48"
        );
    }

    #[test]
    fn digest_time_is_local() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let tz: Tz = "America/New_York".parse().unwrap();
        // 09:00 in New York is 14:00 UTC in November.
        assert_eq!(
            period(Digest::Daily, nine, tz, t(24, 13, 59)).unwrap().0,
            "2026-11-23"
        );
        assert_eq!(
            period(Digest::Daily, nine, tz, t(24, 14, 0)).unwrap().0,
            "2026-11-24"
        );
    }
}
