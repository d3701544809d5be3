//! Incident metrics over a window: counts, time to acknowledge and to resolve, escalation
//! and repeat rates, overall and by severity and category. Pure.

use super::types::Incident;
use crate::model::IncidentState;
use serde::Serialize;
use std::collections::BTreeMap;

/// Metrics over a group of incidents. Times are in seconds.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Incidents in the group.
    pub incidents: usize,
    /// Still unresolved.
    pub active: usize,
    /// Resolved.
    pub resolved: usize,
    /// Mean time from first breach to opening (time to detect).
    pub mean_time_to_detect: Option<f64>,
    /// Mean time from opening to acknowledgement.
    pub mean_time_to_acknowledge: Option<f64>,
    /// Mean time from opening to resolution.
    pub mean_time_to_resolve: Option<f64>,
    /// Share of opened incidents that escalated at least once.
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

fn group(list: &[&Incident], escalated: &[i64]) -> Group {
    let opened: Vec<&&Incident> = list.iter().filter(|i| i.opened_at.is_some()).collect();
    let secs = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
        (b - a).num_milliseconds() as f64 / 1000.0
    };
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
        mean_time_to_detect: mean(
            opened
                .iter()
                .filter_map(|i| Some(secs(i.first_seen_at, i.opened_at?))),
        ),
        mean_time_to_acknowledge: mean(
            opened
                .iter()
                .filter_map(|i| Some(secs(i.opened_at?, i.acknowledged_at?))),
        ),
        mean_time_to_resolve: mean(
            opened
                .iter()
                .filter_map(|i| Some(secs(i.opened_at?, i.resolved_at?))),
        ),
        escalation_rate: (!opened.is_empty()).then(|| {
            opened.iter().filter(|i| escalated.contains(&i.id)).count() as f64 / opened.len() as f64
        }),
        repeat_rate: (!list.is_empty())
            .then(|| list.iter().filter(|i| i.repeat_count > 0).count() as f64 / list.len() as f64),
    }
}

/// Computes the metrics of `incidents`; `escalated` lists the ids that escalated.
pub fn compute(incidents: &[Incident], escalated: &[i64]) -> Stats {
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
        overall: group(&all, escalated),
        by_severity: by_severity
            .into_iter()
            .map(|(k, v)| (k, group(&v, escalated)))
            .collect(),
        by_category: by_category
            .into_iter()
            .map(|(k, v)| (k, group(&v, escalated)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::example_incident;
    use chrono::Duration;

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
        let s = compute(&[a, b], &[2]);
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
        assert_eq!(compute(&[], &[]).overall.escalation_rate, None);
    }
}
