//! Escalation and reminders: which steps of an incident's copied chain are due at `now`,
//! and whether a reminder is. Pure; the daemon takes a step with a conditional update so that
//! one replica sends it.

use super::policy::secs;
use super::types::Incident;
use crate::model::IncidentState;
use chrono::{DateTime, Utc};

/// Escalation steps due together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// Indexes of the steps that go out now (a step skipped by acknowledgement is not here).
    pub steps: Vec<usize>,
    /// Their recipients, sorted, without duplicates.
    pub email: Vec<String>,
    /// The chain position after this escalation.
    pub next_step: u32,
    /// When the step after that is due.
    pub next_at: Option<DateTime<Utc>>,
}

/// The steps due at `now`, measured from when the incident opened. Steps that fell due while
/// no daemon ran come out together. A step `until = "acknowledged"` (the default) is skipped
/// once someone acknowledged; every step stops at resolution.
pub fn due(inc: &Incident, now: DateTime<Utc>) -> Option<Escalation> {
    let opened = inc.opened_at?;
    if inc.state == IncidentState::Resolved || inc.state == IncidentState::Pending {
        return None;
    }
    let mut i = inc.escalation_step as usize;
    let mut steps = Vec::new();
    let mut email = Vec::new();
    while let Some(step) = inc.escalation.get(i) {
        if opened + secs(step.after_secs) > now {
            break;
        }
        if inc.state == IncidentState::Open || step.until_resolved {
            steps.push(i);
            email.extend(step.email.iter().cloned());
        }
        i += 1;
    }
    if i == inc.escalation_step as usize {
        return None;
    }
    email.sort();
    email.dedup();
    let next_at = inc.escalation.get(i).map(|s| opened + secs(s.after_secs));
    Some(Escalation {
        steps,
        email,
        next_step: i as u32,
        next_at,
    })
}

/// When a reminder is due at `now`: the time of the one after it. Only open, unacknowledged
/// incidents are reminded.
pub fn reminder(inc: &Incident, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let every = inc.renotify_secs?;
    let at = inc.next_reminder_at?;
    (inc.state == IncidentState::Open && at <= now).then(|| now + secs(every))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::example_incident;
    use crate::incidents::Step;
    use chrono::Duration;

    fn incident() -> Incident {
        let mut inc = example_incident();
        inc.state = IncidentState::Open;
        inc.acknowledged_at = None;
        inc.resolved_at = None;
        inc.escalation = vec![
            Step {
                after_secs: 900,
                email: vec!["backup@x.com".into()],
                until_resolved: false,
            },
            Step {
                after_secs: 1800,
                email: vec!["manager@x.com".into()],
                until_resolved: false,
            },
            Step {
                after_secs: 3600,
                email: vec!["vp@x.com".into()],
                until_resolved: true,
            },
        ];
        inc.escalation_step = 0;
        inc
    }

    fn at(inc: &Incident, minutes: i64) -> DateTime<Utc> {
        inc.opened_at.unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn steps_fire_once_in_order() {
        let mut inc = incident();
        assert_eq!(due(&inc, at(&inc, 14)), None);
        let e = due(&inc, at(&inc, 15)).unwrap();
        assert_eq!(
            (e.steps.clone(), e.email.clone(), e.next_step),
            (vec![0], vec!["backup@x.com".to_string()], 1)
        );
        assert_eq!(e.next_at, Some(at(&inc, 30)));
        inc.escalation_step = e.next_step;
        assert_eq!(due(&inc, at(&inc, 16)), None, "a step fires once");
        let e = due(&inc, at(&inc, 61)).unwrap();
        assert_eq!(
            e.steps,
            vec![1, 2],
            "steps missed while down go out together"
        );
        assert_eq!(
            e.email,
            vec!["manager@x.com".to_string(), "vp@x.com".to_string()]
        );
        assert_eq!(e.next_at, None);
        inc.escalation_step = e.next_step;
        assert_eq!(due(&inc, at(&inc, 600)), None);
    }

    #[test]
    fn acknowledgement_stops_until_acknowledged_steps() {
        let mut inc = incident();
        inc.state = IncidentState::Acknowledged;
        let e = due(&inc, at(&inc, 70)).unwrap();
        assert_eq!(e.steps, vec![2], "only the until = resolved step");
        assert_eq!(e.next_step, 3);
        inc.state = IncidentState::Resolved;
        assert_eq!(due(&inc, at(&inc, 70)), None);
    }

    #[test]
    fn reminders_only_while_unacknowledged() {
        let mut inc = incident();
        inc.renotify_secs = Some(3600);
        inc.next_reminder_at = Some(at(&inc, 60));
        assert_eq!(reminder(&inc, at(&inc, 59)), None);
        assert_eq!(reminder(&inc, at(&inc, 61)), Some(at(&inc, 121)));
        inc.state = IncidentState::Acknowledged;
        assert_eq!(reminder(&inc, at(&inc, 61)), None);
    }
}
