//! Quiet by design: reconcile's changes post-processed for maintenance windows. Pure.
//!
//! During a window a check keeps running and its incidents keep their history, but an
//! incident that would open stays `pending` (nobody is told): its `Opened` entry is taken
//! back. Reconcile opens a pending incident whose `breach_streak` reached `open_after` on
//! its next breach, so the first run after the window that still breaches opens it and tells
//! it once; a breach that ends inside the window clears without a mail. Other events of
//! incidents in a window (a severity raise, a reopening) keep their timeline entries; their
//! mails are held by the writer and the end of the hold is told once ([`super::hold`]).

use super::reconcile::Change;
use super::types::{EventKind, Incident};
use crate::model::IncidentState;

/// Takes back the openings of incidents `held` names (the window's name): each stays
/// `pending` with its escalation unarmed. A new incident keeps one `detected` entry saying
/// why; a pending one that would have opened gets no entry (it would get one every run).
pub fn hold_openings(changes: &mut [Change], held: impl Fn(&Incident) -> Option<String>) {
    for change in changes.iter_mut() {
        let Some(at) = change
            .events
            .iter()
            .position(|e| e.kind == EventKind::Opened)
        else {
            continue;
        };
        let Some(window) = held(&change.incident) else {
            continue;
        };
        let inc = &mut change.incident;
        inc.state = IncidentState::Pending;
        inc.opened_at = None;
        inc.escalation = Vec::new();
        inc.escalation_step = 0;
        inc.next_escalation_at = None;
        inc.renotify_secs = None;
        inc.next_reminder_at = None;
        if inc.id == 0 && !change.events.iter().any(|e| e.kind == EventKind::Detected) {
            let e = &mut change.events[at];
            e.kind = EventKind::Detected;
            e.note = Some(format!("opening held by maintenance window {window}"));
        } else {
            change.events.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Lifecycle;
    use crate::incidents::{Policy, reconcile};
    use crate::model::{CheckId, Key, Observation, Outcome, Severity, Status};
    use chrono::{DateTime, TimeZone, Utc};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + chrono::Duration::hours(h)
    }

    fn outcome(breach: bool) -> Outcome {
        Outcome::Evaluated {
            columns: vec![],
            observations: vec![Observation {
                key: Key::default(),
                status: if breach {
                    Status::Breach {
                        severity: Severity::P2,
                    }
                } else {
                    Status::Pass
                },
                metric: Some(1.0),
                value: Some(1.0),
                threshold: None,
                label: None,
                sample: vec![],
            }],
            rows: 1,
            capped: false,
        }
    }

    /// Runs reconcile + hold over `runs` (breach?, in window?), as apply does.
    fn replay(open_after: u32, runs: &[(bool, bool)]) -> (Vec<EventKind>, Vec<Incident>) {
        let check = CheckId("orders/late".into());
        let policy = Policy {
            lifecycle: Lifecycle {
                open_after,
                resolve_after: 1,
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        let mut store: Vec<Incident> = Vec::new();
        let mut kinds = Vec::new();
        for (i, (breach, window)) in runs.iter().enumerate() {
            let latest: Vec<Incident> = store.last().cloned().into_iter().collect();
            let (mut changes, _) =
                reconcile(&check, &policy, &outcome(*breach), &latest, 0, t(i as i64));
            hold_openings(&mut changes, |_| window.then(|| "deploy".to_string()));
            for c in changes {
                kinds.extend(c.events.iter().map(|e| e.kind));
                let mut inc = c.incident;
                if inc.id == 0 {
                    inc.id = store.len() as i64 + 1;
                    store.push(inc);
                } else if let Some(s) = store.iter_mut().find(|s| s.id == inc.id) {
                    *s = inc;
                }
            }
        }
        (kinds, store)
    }

    #[test]
    fn a_breach_inside_a_window_never_opens() {
        let (kinds, store) = replay(1, &[(true, true), (true, true), (false, true)]);
        assert_eq!(kinds, vec![EventKind::Detected, EventKind::Cleared]);
        assert_eq!(store[0].opened_at, None);
        assert!(store[0].escalation.is_empty());
    }

    #[test]
    fn a_breach_that_outlasts_the_window_opens_once_after_it() {
        let (kinds, store) = replay(
            2,
            &[
                (true, true),
                (true, true),
                (true, true),
                (true, false),
                (true, false),
            ],
        );
        assert_eq!(kinds, vec![EventKind::Detected, EventKind::Opened]);
        assert_eq!(store.len(), 1);
        assert_eq!(store[0].state, IncidentState::Open);
        assert_eq!(store[0].opened_at, Some(t(3)));
    }

    #[test]
    fn outside_a_window_nothing_changes() {
        let (kinds, _) = replay(1, &[(true, false), (false, false)]);
        assert_eq!(kinds, vec![EventKind::Opened, EventKind::Resolved]);
    }
}
