//! The schedule plan: every scheduled check's next fire time, what is due at `now`, and the
//! slots missed while no daemon ran (`catch_up`). Pure: time comes in as an argument, so
//! tests drive it with a manual clock.

use crate::checks::Check;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many fire times are walked to find the latest missed slot.
const MAX_WALK: usize = 100_000;

/// Next fire time of every scheduled check.
pub struct Plan {
    tz: Tz,
    entries: Vec<(Arc<Check>, DateTime<Utc>)>,
}

/// A slot to run: the check and its fire time.
pub type Slot = (Arc<Check>, DateTime<Utc>);

impl Plan {
    /// Plans `checks` from `now`. With `catch_up`, a check whose last claimed slot (from
    /// `last`) is followed by a slot that passed while down runs once now, for the latest
    /// missed slot only.
    pub fn new(
        checks: &[Arc<Check>],
        tz: Tz,
        now: DateTime<Utc>,
        last: &HashMap<String, DateTime<Utc>>,
        catch_up: bool,
    ) -> (Plan, Vec<Slot>) {
        let mut entries = Vec::new();
        let mut missed = Vec::new();
        for check in checks {
            let Some(schedule) = &check.schedule else {
                continue;
            };
            if catch_up
                && let Some(&prev) = last.get(&check.id.0)
                && let Some(slot) = latest_before(schedule, tz, prev, now)
            {
                missed.push((Arc::clone(check), slot));
            }
            if let Some(next) = schedule.next_after(tz, now) {
                entries.push((Arc::clone(check), next));
            }
        }
        (Plan { tz, entries }, missed)
    }

    /// The slots due at `now`; each due check moves to its next fire time. When several
    /// slots of one check passed (a stalled process), only the latest runs.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Slot> {
        let mut out = Vec::new();
        for (check, next) in &mut self.entries {
            if *next > now {
                continue;
            }
            let Some(schedule) = &check.schedule else {
                continue;
            };
            let slot = latest_before(
                schedule,
                self.tz,
                *next - chrono::Duration::milliseconds(1),
                now,
            )
            .unwrap_or(*next);
            out.push((Arc::clone(check), slot));
            match schedule.next_after(self.tz, slot) {
                Some(n) => *next = n,
                None => *next = DateTime::<Utc>::MAX_UTC,
            }
        }
        out
    }

    /// When the next slot is due.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.entries.iter().map(|(_, t)| *t).min()
    }

    /// The next fire time of a check, if scheduled.
    pub fn next_of(&self, id: &str) -> Option<DateTime<Utc>> {
        self.entries
            .iter()
            .find(|(c, _)| c.id.0 == id)
            .map(|(_, t)| *t)
    }
}

/// The latest fire time in (`after`, `now`], if any.
fn latest_before(
    schedule: &crate::checks::Schedule,
    tz: Tz,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut t = after;
    let mut found = None;
    for _ in 0..MAX_WALK {
        match schedule.next_after(tz, t) {
            Some(n) if n <= now => {
                found = Some(n);
                t = n;
            }
            _ => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Schedule;
    use chrono::TimeZone;

    fn check(id: &str, cron: &str) -> Arc<Check> {
        let mut c = crate::checks::tests_support::check(id);
        c.schedule = Some(Schedule::parse(cron).unwrap());
        Arc::new(c)
    }

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
    }

    fn ids(slots: &[Slot]) -> Vec<(String, DateTime<Utc>)> {
        slots.iter().map(|(c, t)| (c.id.0.clone(), *t)).collect()
    }

    #[test]
    fn fires_each_slot_once() {
        let checks = vec![check("a", "*/15 * * * *"), check("b", "0 * * * *")];
        let (mut plan, missed) =
            Plan::new(&checks, chrono_tz::UTC, t(10, 7, 0), &HashMap::new(), true);
        assert!(missed.is_empty());
        assert_eq!(plan.next_wake(), Some(t(10, 15, 0)));
        assert!(plan.due(t(10, 14, 59)).is_empty());
        assert_eq!(
            ids(&plan.due(t(10, 15, 0))),
            vec![("a".into(), t(10, 15, 0))]
        );
        assert!(plan.due(t(10, 15, 0)).is_empty(), "a slot fires once");
        assert_eq!(plan.next_of("a"), Some(t(10, 30, 0)));
        assert_eq!(
            ids(&plan.due(t(11, 0, 0))),
            vec![("a".into(), t(11, 0, 0)), ("b".into(), t(11, 0, 0))]
        );
    }

    #[test]
    fn a_stall_runs_the_latest_slot_once() {
        let checks = vec![check("a", "* * * * *")];
        let (mut plan, _) = Plan::new(&checks, chrono_tz::UTC, t(10, 0, 30), &HashMap::new(), true);
        assert_eq!(
            ids(&plan.due(t(10, 5, 10))),
            vec![("a".into(), t(10, 5, 0))]
        );
        assert_eq!(plan.next_wake(), Some(t(10, 6, 0)));
    }

    #[test]
    fn catch_up_runs_a_missed_slot_once_at_start() {
        let checks = vec![
            check("a", "*/10 * * * *"),
            check("b", "*/10 * * * *"),
            check("c", "0 0 * * *"),
        ];
        let mut last = HashMap::new();
        last.insert("a".to_string(), t(9, 0, 0)); // missed 9:10 … 10:00
        last.insert("b".to_string(), t(10, 0, 0)); // nothing missed
        let (_, missed) = Plan::new(&checks, chrono_tz::UTC, t(10, 5, 0), &last, true);
        assert_eq!(ids(&missed), vec![("a".into(), t(10, 0, 0))]);
        let (_, none) = Plan::new(&checks, chrono_tz::UTC, t(10, 5, 0), &last, false);
        assert!(none.is_empty());
    }

    #[test]
    fn reads_cron_in_the_zone() {
        let checks = vec![check("a", "0 9 * * *")];
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let (plan, _) = Plan::new(&checks, tz, t(0, 0, 0), &HashMap::new(), true);
        assert_eq!(
            plan.next_wake(),
            Some(t(8, 0, 0)),
            "09:00 in Berlin is 08:00 UTC in November"
        );
    }
}
