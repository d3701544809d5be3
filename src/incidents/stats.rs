//! Incident metrics over a window: counts, time to acknowledge and to resolve, escalation
//! and repeat rates, overall and by severity and category. Pure. An incident that reopened
//! has several episodes (each opening to its resolution), read from its timeline: times to
//! acknowledge and resolve and the escalation rate are per episode.

use super::types::{Event, EventKind, Incident};
use crate::model::IncidentState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One episode of an incident: from an opening (or reopening) to its resolution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Episode {
    /// 1 for the first opening, 2 for the first reopening, …
    pub n: u32,
    /// When people were told.
    pub opened_at: DateTime<Utc>,
    /// The first acknowledgement in this episode.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged.
    pub acknowledged_by: Option<String>,
    /// When this episode ended.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who or what ended it.
    pub resolved_by: Option<String>,
    /// An escalation step went out in this episode.
    pub escalated: bool,
    /// The severity it opened (or reopened) at.
    pub severity: crate::model::Severity,
    /// Why it ended: the reason given by hand, `passed` when dqwatch resolved it.
    pub reason: Option<super::types::ResolveReason>,
}

/// The episodes of an incident, from its timeline; an incident without opening events on
/// its timeline (none loaded) is one episode from its own fields, if it opened.
pub fn episodes(inc: &Incident, events: &[Event]) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    for e in events {
        match e.kind {
            EventKind::Opened | EventKind::Reopened => out.push(Episode {
                n: out.len() as u32 + 1,
                opened_at: e.at,
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
                resolved_by: None,
                escalated: false,
                severity: e.severity,
                reason: None,
            }),
            _ => {
                let Some(ep) = out.last_mut().filter(|ep| ep.resolved_at.is_none()) else {
                    continue;
                };
                match e.kind {
                    EventKind::Acknowledged if ep.acknowledged_at.is_none() => {
                        ep.acknowledged_at = Some(e.at);
                        ep.acknowledged_by = Some(e.actor.clone());
                    }
                    EventKind::Resolved => {
                        ep.resolved_at = Some(e.at);
                        ep.resolved_by = Some(e.actor.clone());
                        ep.reason = Some(reason_of(e));
                    }
                    EventKind::Escalated => ep.escalated = true,
                    _ => {}
                }
            }
        }
    }
    if out.is_empty()
        && let Some(opened_at) = inc.opened_at
    {
        out.push(Episode {
            n: 1,
            opened_at,
            acknowledged_at: inc.acknowledged_at,
            acknowledged_by: inc.acknowledged_by.clone(),
            resolved_at: inc.resolved_at,
            resolved_by: inc.resolved_by.clone(),
            escalated: false,
            severity: inc.severity,
            reason: inc.resolved_at.map(|_| {
                if inc.resolved_by.as_deref() == Some(super::reconcile::SYSTEM_ACTOR) {
                    super::types::ResolveReason::Passed
                } else {
                    super::types::ResolveReason::Other
                }
            }),
        });
    }
    out
}

/// Why a resolution happened: its reason as given; `passed` when dqwatch resolved it (the
/// check passed again); `other` for a resolution by hand from before reasons were kept.
pub fn reason_of(e: &Event) -> super::types::ResolveReason {
    use super::types::ResolveReason;
    e.fields
        .reason
        .unwrap_or(if e.actor == super::reconcile::SYSTEM_ACTOR {
            ResolveReason::Passed
        } else {
            ResolveReason::Other
        })
}

/// Metrics over a group of incidents. Times are in seconds.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Incidents in the group.
    pub incidents: usize,
    /// Still unresolved.
    pub active: usize,
    /// Resolved.
    pub resolved: usize,
    /// Episodes (openings and reopenings) of those incidents.
    pub episodes: usize,
    /// Mean time from first breach to opening (time to detect).
    pub mean_time_to_detect: Option<f64>,
    /// Mean time from an episode's opening to its first acknowledgement.
    pub mean_time_to_acknowledge: Option<f64>,
    /// Mean time from an episode's opening to its resolution.
    pub mean_time_to_resolve: Option<f64>,
    /// Share of episodes that escalated at least once.
    pub escalation_rate: Option<f64>,
    /// Share of incidents that reopened at least once.
    pub repeat_rate: Option<f64>,
}

/// Metrics overall, by severity and by category.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// All incidents in the window.
    pub overall: Group,
    /// By severity.
    pub by_severity: BTreeMap<String, Group>,
    /// By category.
    pub by_category: BTreeMap<String, Group>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn group(list: &[&Incident], events: &HashMap<i64, Vec<Event>>, escalated: &[i64]) -> Group {
    let secs = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds() as f64 / 1000.0;
    let eps: Vec<Episode> = list
        .iter()
        .flat_map(|i| {
            let mut e = episodes(i, events.get(&i.id).map_or(&[][..], Vec::as_slice));
            // Without a loaded timeline, the escalation list says whether it escalated.
            if !events.contains_key(&i.id) && escalated.contains(&i.id) {
                e.iter_mut().for_each(|ep| ep.escalated = true);
            }
            e
        })
        .collect();
    Group {
        incidents: list.len(),
        active: list
            .iter()
            .filter(|i| i.state != IncidentState::Resolved)
            .count(),
        resolved: list
            .iter()
            .filter(|i| i.state == IncidentState::Resolved)
            .count(),
        episodes: eps.len(),
        // Detection is the incident's: first breach to first opening.
        mean_time_to_detect: mean(list.iter().filter_map(|i| {
            let first = episodes(i, events.get(&i.id).map_or(&[][..], Vec::as_slice))
                .first()
                .map(|e| e.opened_at)?;
            Some(secs(i.first_seen_at, first))
        })),
        mean_time_to_acknowledge: mean(
            eps.iter()
                .filter_map(|e| Some(secs(e.opened_at, e.acknowledged_at?))),
        ),
        mean_time_to_resolve: mean(
            eps.iter()
                .filter_map(|e| Some(secs(e.opened_at, e.resolved_at?))),
        ),
        escalation_rate: (!eps.is_empty())
            .then(|| eps.iter().filter(|e| e.escalated).count() as f64 / eps.len() as f64),
        repeat_rate: (!list.is_empty())
            .then(|| list.iter().filter(|i| i.repeat_count > 0).count() as f64 / list.len() as f64),
    }
}

/// Computes the metrics of `incidents` from their timelines (`events`, by incident id);
/// `escalated` lists the ids that escalated, for incidents whose timeline is not loaded.
pub fn compute(
    incidents: &[Incident],
    events: &HashMap<i64, Vec<Event>>,
    escalated: &[i64],
) -> Stats {
    let all: Vec<&Incident> = incidents.iter().collect();
    let mut by_severity: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    let mut by_category: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    for i in incidents {
        by_severity
            .entry(i.severity.to_string())
            .or_default()
            .push(i);
        by_category
            .entry(i.category.to_string())
            .or_default()
            .push(i);
    }
    Stats {
        overall: group(&all, events, escalated),
        by_severity: by_severity
            .into_iter()
            .map(|(k, v)| (k, group(&v, events, escalated)))
            .collect(),
        by_category: by_category
            .into_iter()
            .map(|(k, v)| (k, group(&v, events, escalated)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::example_incident;
    use chrono::Duration;

    #[test]
    fn each_episode_keeps_its_own_times() {
        // See: issues/10 item 6
        let mut inc = example_incident();
        let t0 = inc.first_seen_at;
        let m = |n: i64| t0 + Duration::minutes(n);
        let ev = |kind, n, actor: &str| Event {
            id: 0,
            kind,
            at: m(n),
            actor: actor.into(),
            severity: inc.severity,
            note: None,
            fields: Default::default(),
        };
        let events = vec![
            ev(EventKind::Opened, 0, "dqwatch"),
            ev(EventKind::Acknowledged, 10, "alice"),
            ev(EventKind::Resolved, 60, "dqwatch"),
            ev(EventKind::Reopened, 90, "dqwatch"),
            ev(EventKind::Escalated, 95, "dqwatch"),
            ev(EventKind::Acknowledged, 100, "bob"),
            ev(EventKind::Resolved, 120, "bob"),
        ];
        // The row holds the latest episode only.
        inc.id = 1;
        inc.opened_at = Some(m(90));
        inc.acknowledged_at = Some(m(100));
        inc.resolved_at = Some(m(120));
        let eps = episodes(&inc, &events);
        assert_eq!(eps.len(), 2);
        assert_eq!(
            (eps[0].acknowledged_by.as_deref(), eps[0].resolved_at),
            (Some("alice"), Some(m(60)))
        );
        assert_eq!((eps[1].opened_at, eps[1].escalated), (m(90), true));
        let s = compute(&[inc.clone()], &HashMap::from([(1, events)]), &[]);
        assert_eq!(s.overall.episodes, 2);
        assert_eq!(s.overall.mean_time_to_acknowledge, Some(600.0)); // (10m + 10m) / 2
        assert_eq!(s.overall.mean_time_to_resolve, Some(2700.0)); // (60m + 30m) / 2
        assert_eq!(s.overall.escalation_rate, Some(0.5));
    }

    #[test]
    fn times_and_rates() {
        let mut a = example_incident();
        a.id = 1;
        a.repeat_count = 0;
        a.first_seen_at -= Duration::minutes(5);
        a.opened_at = Some(a.first_seen_at + Duration::minutes(5));
        a.acknowledged_at = a.opened_at.map(|t| t + Duration::minutes(10));
        a.resolved_at = a.opened_at.map(|t| t + Duration::hours(1));
        let mut b = a.clone();
        b.id = 2;
        b.repeat_count = 2;
        b.acknowledged_at = None;
        b.resolved_at = None;
        b.state = IncidentState::Open;
        let s = compute(&[a, b], &HashMap::new(), &[2]);
        assert_eq!(
            (s.overall.incidents, s.overall.active, s.overall.resolved),
            (2, 1, 1)
        );
        assert_eq!(s.overall.mean_time_to_detect, Some(300.0));
        assert_eq!(s.overall.mean_time_to_acknowledge, Some(600.0));
        assert_eq!(s.overall.mean_time_to_resolve, Some(3600.0));
        assert_eq!(s.overall.escalation_rate, Some(0.5));
        assert_eq!(s.overall.repeat_rate, Some(0.5));
        assert_eq!(s.by_severity["P0"].incidents, 2);
        assert_eq!(
            compute(&[], &HashMap::new(), &[]).overall.escalation_rate,
            None
        );
    }
}
