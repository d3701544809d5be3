//! How the response went, from the timelines (episodes, [`super::stats::episodes`]): the
//! resolution reasons of each check with its false-positive rate, and SLA compliance — the
//! share of episodes acknowledged within their severity's `respond_within`. Pure.

use super::stats::episodes;
use super::types::{Event, Incident, ResolveReason};
use crate::model::Severity;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One check's resolved episodes by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resolutions {
    /// The check.
    pub check: String,
    /// Episodes resolved.
    pub resolved: usize,
    /// Of those, by reason (`passed`, `fixed`, `false_positive`, …).
    pub by_reason: BTreeMap<String, usize>,
    /// `false_positive` resolutions / episodes resolved.
    pub false_positive_rate: Option<f64>,
}

/// SLA compliance of one severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Compliance {
    /// The severity.
    pub severity: String,
    /// Its `respond_within`, in seconds (`None`: no target, nothing counted).
    pub respond_within: Option<f64>,
    /// Episodes whose response is due: acknowledged, or still unacknowledged when their
    /// `respond_within` ran out. An episode that ended unacknowledged before its deadline
    /// needed no response and is not counted; one still inside it is not yet.
    pub due: usize,
    /// Of those, acknowledged within `respond_within`.
    pub in_time: usize,
    /// `in_time / due`.
    pub compliance: Option<f64>,
}

/// The resolution reasons per check (sorted by check id), over every episode of `incidents`.
pub fn resolutions(incidents: &[Incident], events: &HashMap<i64, Vec<Event>>) -> Vec<Resolutions> {
    let mut by_check: BTreeMap<&str, Resolutions> = BTreeMap::new();
    for inc in incidents {
        let eps = episodes(inc, events.get(&inc.id).map_or(&[][..], Vec::as_slice));
        for ep in eps.iter().filter(|e| e.resolved_at.is_some()) {
            let r = by_check
                .entry(&inc.check_id.0)
                .or_insert_with(|| Resolutions {
                    check: inc.check_id.0.clone(),
                    ..Resolutions::default()
                });
            r.resolved += 1;
            let reason = ep.reason.unwrap_or(ResolveReason::Other);
            *r.by_reason.entry(reason.as_str().to_string()).or_default() += 1;
        }
    }
    by_check
        .into_values()
        .map(|mut r| {
            let fp = r
                .by_reason
                .get(ResolveReason::FalsePositive.as_str())
                .copied()
                .unwrap_or(0);
            r.false_positive_rate = (r.resolved > 0).then(|| fp as f64 / r.resolved as f64);
            r
        })
        .collect()
}

/// SLA compliance per severity (worst first; every severity, with its target) at `now`.
pub fn compliance(
    incidents: &[Incident],
    events: &HashMap<i64, Vec<Event>>,
    targets: &BTreeMap<Severity, Option<Duration>>,
    now: DateTime<Utc>,
) -> Vec<Compliance> {
    let mut out: BTreeMap<Severity, Compliance> = targets
        .iter()
        .map(|(s, t)| {
            (
                *s,
                Compliance {
                    severity: s.to_string(),
                    respond_within: t.map(|d| d.as_secs_f64()),
                    ..Compliance::default()
                },
            )
        })
        .collect();
    for inc in incidents {
        for ep in episodes(inc, events.get(&inc.id).map_or(&[][..], Vec::as_slice)) {
            let Some(Some(target)) = targets.get(&ep.severity) else {
                continue;
            };
            let Ok(target) = chrono::Duration::from_std(*target) else {
                continue;
            };
            let deadline = ep.opened_at + target;
            let c = out.entry(ep.severity).or_default();
            match ep.acknowledged_at {
                Some(ack) => {
                    c.due += 1;
                    c.in_time += usize::from(ack <= deadline);
                }
                // Unacknowledged: late once the deadline passed while it was open.
                None if ep.resolved_at.unwrap_or(now) > deadline => c.due += 1,
                None => {}
            }
        }
    }
    out.into_values()
        .map(|mut c| {
            c.compliance = (c.due > 0).then(|| c.in_time as f64 / c.due as f64);
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::example_incident;
    use crate::incidents::reconcile::SYSTEM_ACTOR;
    use crate::incidents::{EventFields, EventKind};
    use crate::model::{CheckId, IncidentState};
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn ev(kind: EventKind, at: i64, actor: &str, reason: Option<ResolveReason>) -> Event {
        Event {
            id: 0,
            kind,
            at: t(at),
            actor: actor.into(),
            severity: Severity::P1,
            note: None,
            fields: EventFields {
                reason,
                ..EventFields::default()
            },
        }
    }

    fn inc(id: i64, check: &str) -> Incident {
        Incident {
            id,
            check_id: CheckId(check.into()),
            state: IncidentState::Resolved,
            severity: Severity::P1,
            ..example_incident()
        }
    }

    #[test]
    fn false_positive_rate_per_check_counts_episodes() {
        use EventKind::*;
        let incidents = vec![inc(1, "a"), inc(2, "a"), inc(3, "b")];
        let events = HashMap::from([
            // Two episodes: passed, then false positive.
            (
                1,
                vec![
                    ev(Opened, 0, SYSTEM_ACTOR, None),
                    ev(Resolved, 10, SYSTEM_ACTOR, None),
                    ev(Reopened, 20, SYSTEM_ACTOR, None),
                    ev(Resolved, 30, "ann", Some(ResolveReason::FalsePositive)),
                ],
            ),
            (
                2,
                vec![
                    ev(Opened, 0, SYSTEM_ACTOR, None),
                    ev(Resolved, 5, "bob", Some(ResolveReason::FalsePositive)),
                ],
            ),
            (
                3,
                vec![
                    ev(Opened, 0, SYSTEM_ACTOR, None),
                    ev(Resolved, 5, "bob", Some(ResolveReason::Fixed)),
                ],
            ),
        ]);
        let r = resolutions(&incidents, &events);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].check.as_str(), r[0].resolved), ("a", 3));
        assert_eq!(r[0].by_reason.get("false_positive"), Some(&2));
        assert_eq!(r[0].by_reason.get("passed"), Some(&1));
        assert!((r[0].false_positive_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r[1].false_positive_rate, Some(0.0));
    }

    #[test]
    fn compliance_counts_due_episodes_only() {
        use EventKind::*;
        let incidents = vec![inc(1, "a"), inc(2, "a"), inc(3, "a"), inc(4, "a")];
        let events = HashMap::from([
            // Acknowledged after 10 min (in time), then a reopening acknowledged after 40.
            (
                1,
                vec![
                    ev(Opened, 0, SYSTEM_ACTOR, None),
                    ev(Acknowledged, 10, "ann", None),
                    ev(Resolved, 20, SYSTEM_ACTOR, None),
                    ev(Reopened, 100, SYSTEM_ACTOR, None),
                    ev(Acknowledged, 140, "ann", None),
                ],
            ),
            // Never acknowledged, resolved after 60 min: late.
            (
                2,
                vec![
                    ev(Opened, 0, SYSTEM_ACTOR, None),
                    ev(Resolved, 60, SYSTEM_ACTOR, None),
                ],
            ),
            // Resolved unacknowledged inside its 30 min: needed no response.
            (
                3,
                vec![
                    ev(Opened, 0, SYSTEM_ACTOR, None),
                    ev(Resolved, 20, SYSTEM_ACTOR, None),
                ],
            ),
            // Still open, unacknowledged, 25 min in at `now`: not due yet.
            (4, vec![ev(Opened, 1000, SYSTEM_ACTOR, None)]),
        ]);
        let targets = BTreeMap::from([
            (Severity::P0, Some(Duration::from_secs(300))),
            (Severity::P1, Some(Duration::from_secs(1800))),
            (Severity::P2, None),
        ]);
        let c = compliance(&incidents, &events, &targets, t(1025));
        let p1 = c.iter().find(|c| c.severity == "P1").unwrap();
        assert_eq!((p1.due, p1.in_time), (3, 1));
        assert!((p1.compliance.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        let p0 = c.iter().find(|c| c.severity == "P0").unwrap();
        assert_eq!((p0.due, p0.compliance), (0, None));
        // At a later `now` the open one is late too.
        let c = compliance(&incidents, &events, &targets, t(1031));
        assert_eq!(c.iter().find(|c| c.severity == "P1").unwrap().due, 4);
    }
}
