//! The arithmetic of noise control, pure: an incident's run history (one bit per run that
//! judged it, newest in bit 0), `N of M` windows over it, flap detection, and when a
//! partition's data is due.

use crate::config::Window;
use crate::model::Key;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use std::time::Duration;

/// The history after one more run (`breach` or not).
pub fn push(history: u64, breach: bool) -> u64 {
    (history << 1) | u64::from(breach)
}

fn mask(m: u32) -> u64 {
    if m >= 64 { u64::MAX } else { (1 << m) - 1 }
}

/// Breaching runs among the last `m`.
pub fn breaches(history: u64, m: u32) -> u32 {
    (history & mask(m)).count_ones()
}

/// True when `n` of the last `m` runs breached.
pub fn reached(history: u64, window: Window) -> bool {
    breaches(history, window.m) >= window.n
}

/// State changes between consecutive runs among the last `m` runs (a run before the first
/// recorded one counts as passing).
pub fn changes(history: u64, m: u32) -> u32 {
    let m = m.min(63);
    let span = history & mask(m + 1);
    ((span ^ (span >> 1)) & mask(m)).count_ones()
}

/// True when the runs in `window` changed state at least `n` times.
pub fn flapping(history: u64, window: Window) -> bool {
    changes(history, window.m) >= window.n
}

/// How many runs in a row must agree before a flapping incident counts as stable again:
/// half its window, at least 2.
pub fn stable_runs(window: Window) -> u32 {
    (window.m / 2).max(2)
}

/// True when the last [`stable_runs`] runs all breached (`breach`) or all passed.
pub fn stable(history: u64, window: Window, breach: bool) -> bool {
    let m = stable_runs(window);
    let last = history & mask(m);
    if breach { last == mask(m) } else { last == 0 }
}

/// When a key's data is due: `after` past the end of its partition's day — the first key
/// value that starts with a date (`2026-11-30`), or today when none does — in `tz`.
pub fn due_at<Tz: TimeZone>(
    key: &Key,
    after: Duration,
    tz: &Tz,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let day = key
        .0
        .iter()
        .find_map(|(_, v)| NaiveDate::parse_from_str(v.get(..10)?, "%Y-%m-%d").ok())
        .and_then(|d| d.succ_opt())
        .unwrap_or_else(|| now.with_timezone(tz).date_naive());
    let start = day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map_or(now, |t| t.with_timezone(&Utc));
    start + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(pattern: &str) -> u64 {
        pattern.chars().fold(0, |h, c| push(h, c == 'B'))
    }

    #[test]
    fn windows_count_the_last_runs_only() {
        let h = runs("BBBBPPBPBP");
        assert_eq!(breaches(h, 6), 2);
        assert!(reached(h, Window { n: 2, m: 6 }));
        assert!(!reached(h, Window { n: 3, m: 6 }));
        assert_eq!(breaches(u64::MAX, 64), 64);
    }

    #[test]
    fn changes_count_state_flips_including_into_the_first_breach() {
        assert_eq!(changes(runs("B"), 10), 1);
        assert_eq!(changes(runs("BPBP"), 10), 4);
        assert_eq!(changes(runs("BBBB"), 10), 1);
        assert_eq!(changes(runs("BPPBPPBPP"), 10), 6);
        // Only the last m runs: the flips long ago are forgotten.
        assert_eq!(changes(runs("BPBPBPPPPPPPPPPP"), 10), 0);
        assert_eq!(changes(u64::MAX, 64), 0);
    }

    #[test]
    fn stable_needs_half_the_window_in_agreement() {
        let w = Window { n: 4, m: 10 };
        assert!(stable(runs("BPBPPPPP"), w, false));
        assert!(!stable(runs("BPBPPPP"), w, false));
        assert!(stable(runs("PBBBBB"), w, true));
        assert!(!stable(runs("PBBBBB"), w, false));
    }

    #[test]
    fn a_date_key_is_due_after_its_day_ends() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap();
        let key = Key(vec![("day".into(), "2026-11-29".into())]);
        let due = due_at(&key, Duration::from_secs(3 * 3600), &Utc, now);
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap());
        // A timestamp-looking key counts by its date; a key without a date: today.
        let ts = Key(vec![("day".into(), "2026-11-29 00:00:00".into())]);
        assert_eq!(due_at(&ts, Duration::from_secs(3 * 3600), &Utc, now), due);
        let none = Key(vec![("table".into(), "orders".into())]);
        assert_eq!(
            due_at(&none, Duration::from_secs(3 * 3600), &Utc, now),
            Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap()
        );
        // In the config's zone: 03:00 in Berlin is 02:00 UTC in winter.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            due_at(&key, Duration::from_secs(3 * 3600), &berlin, now),
            Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap()
        );
    }
}
