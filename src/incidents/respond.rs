//! What responders do by hand beyond acknowledging: status updates, assigning a commander,
//! resolving with a reason, snoozing and muting. Pure: each takes the incident (and its
//! controls) as read and returns the change to record, or why it does not apply.

use super::hold::Controls;
use super::reconcile::{self, Change};
use super::types::{Event, EventFields, EventKind, Incident, ResolveReason};
use chrono::{DateTime, Utc};

fn entry(
    inc: &Incident,
    kind: EventKind,
    by: &str,
    note: Option<String>,
    fields: EventFields,
    now: DateTime<Utc>,
) -> Change {
    Change {
        incident: inc.clone(),
        events: vec![Event {
            id: 0,
            kind,
            at: now,
            actor: by.into(),
            severity: inc.severity,
            note,
            fields,
        }],
    }
}

fn active(inc: &Incident, what: &str) -> Result<(), String> {
    if inc.state.is_active() {
        Ok(())
    } else {
        Err(format!(
            "incident {} is resolved: there is nothing to {what}",
            inc.id
        ))
    }
}

fn blank(s: Option<&String>) -> bool {
    s.is_some_and(|v| v.trim().is_empty())
}

/// A status update as responders write it: at least a status; impact, next steps, ETA and
/// workaround as given. Empty texts are refused (a field given says something).
pub fn status_update(
    inc: &Incident,
    by: &str,
    fields: EventFields,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Change, String> {
    active(inc, "update")?;
    if fields.status.is_none() {
        return Err(
            "a status update needs a status: investigating, identified, mitigating or monitoring"
                .into(),
        );
    }
    for (name, v) in [
        ("impact", fields.impact.as_ref()),
        ("next", fields.next.as_ref()),
        ("eta", fields.eta.as_ref()),
        ("workaround", fields.workaround.as_ref()),
        ("note", note.as_ref()),
    ] {
        if blank(v) {
            return Err(format!("--{name} is empty: leave it out or say something"));
        }
    }
    let fields = EventFields {
        reason: None,
        assignee: None,
        until: None,
        ..fields
    };
    Ok(entry(inc, EventKind::StatusUpdate, by, note, fields, now))
}

/// Sets the incident commander.
pub fn assign(
    inc: &Incident,
    controls: &Controls,
    by: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Result<(Change, Controls), String> {
    active(inc, "assign")?;
    let to = to.trim();
    if to.is_empty() {
        return Err("--to is empty: name the incident commander".into());
    }
    if controls.assignee.as_deref() == Some(to) {
        return Err(format!("incident {} is already assigned to {to}", inc.id));
    }
    let fields = EventFields {
        assignee: Some(to.to_string()),
        ..EventFields::default()
    };
    let note = Some(format!("incident commander: {to}"));
    Ok((
        entry(inc, EventKind::Assigned, by, note, fields, now),
        Controls {
            assignee: Some(to.to_string()),
            ..controls.clone()
        },
    ))
}

/// Resolves by hand with a reason (the resolution's entry carries it; stats count it).
pub fn resolve(
    inc: &Incident,
    by: &str,
    reason: ResolveReason,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Change, String> {
    if reason == ResolveReason::Passed {
        return Err("\"passed\" is dqwatch's own reason: give fixed, false_positive, expected, duplicate, upstream or other".into());
    }
    let mut change = reconcile::resolve(inc, by, note, now)?;
    for e in &mut change.events {
        e.fields.reason = Some(reason);
    }
    Ok(change)
}

/// Holds notifications until `until` (checks keep running, history is kept).
pub fn snooze(
    inc: &Incident,
    controls: &Controls,
    by: &str,
    until: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(Change, Controls), String> {
    active(inc, "snooze")?;
    if until <= now {
        return Err("a snooze must end in the future".into());
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("--reason is empty: say why notifications are held".into());
    }
    let fields = EventFields {
        until: Some(until),
        ..EventFields::default()
    };
    let note = Some(format!(
        "snoozed until {}: {reason}",
        crate::model::format_time(until)
    ));
    Ok((
        entry(inc, EventKind::Snoozed, by, note, fields, now),
        Controls {
            snoozed_until: Some(until),
            muted: false,
            hold_reason: Some(reason.to_string()),
            hold_by: Some(by.to_string()),
            held_since: controls.held_since.or(Some(now)),
            ..controls.clone()
        },
    ))
}

/// Holds notifications until [`unhold`].
pub fn mute(
    inc: &Incident,
    controls: &Controls,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(Change, Controls), String> {
    active(inc, "mute")?;
    if controls.muted {
        return Err(format!("incident {} is already muted", inc.id));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("--reason is empty: say why notifications are held".into());
    }
    Ok((
        entry(
            inc,
            EventKind::Muted,
            by,
            Some(format!("muted: {reason}")),
            EventFields::default(),
            now,
        ),
        Controls {
            snoozed_until: None,
            muted: true,
            hold_reason: Some(reason.to_string()),
            hold_by: Some(by.to_string()),
            held_since: controls.held_since.or(Some(now)),
            ..controls.clone()
        },
    ))
}

/// Ends a snooze or mute by hand: the controls without it. What is told is
/// [`super::hold::end`]'s, as for a snooze that runs out.
pub fn unhold(inc: &Incident, controls: &Controls, now: DateTime<Utc>) -> Result<Controls, String> {
    if controls.hold(now).is_none() {
        return Err(format!("incident {} is neither snoozed nor muted", inc.id));
    }
    Ok(Controls {
        snoozed_until: None,
        muted: false,
        hold_reason: None,
        hold_by: None,
        ..controls.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::example_incident;
    use crate::incidents::ResponseStatus;
    use crate::model::IncidentState;

    fn open() -> Incident {
        let mut inc = example_incident();
        inc.state = IncidentState::Open;
        inc.resolved_at = None;
        inc
    }

    #[test]
    fn a_status_update_needs_a_status_and_no_empty_field() {
        let inc = open();
        let now = inc.last_seen_at;
        assert!(status_update(&inc, "ann", EventFields::default(), None, now).is_err());
        let f = EventFields {
            status: Some(ResponseStatus::Mitigating),
            eta: Some("  ".into()),
            ..EventFields::default()
        };
        assert!(
            status_update(&inc, "ann", f.clone(), None, now)
                .unwrap_err()
                .contains("--eta")
        );
        let f = EventFields {
            eta: Some("14:00 UTC".into()),
            reason: Some(ResolveReason::Fixed),
            ..f
        };
        let c = status_update(&inc, "ann", f, None, now).unwrap();
        assert_eq!(c.events[0].kind, EventKind::StatusUpdate);
        assert_eq!(c.events[0].fields.eta.as_deref(), Some("14:00 UTC"));
        assert_eq!(
            c.events[0].fields.reason, None,
            "only a status update's fields"
        );
        let mut done = inc;
        done.state = IncidentState::Resolved;
        assert!(status_update(&done, "ann", c.events[0].fields.clone(), None, now).is_err());
    }

    #[test]
    fn resolve_carries_its_reason_and_passed_is_refused() {
        let inc = open();
        let now = inc.last_seen_at;
        let c = resolve(
            &inc,
            "ann",
            ResolveReason::FalsePositive,
            Some("bad threshold".into()),
            now,
        )
        .unwrap();
        assert_eq!(c.incident.state, IncidentState::Resolved);
        assert_eq!(
            c.events[0].fields.reason,
            Some(ResolveReason::FalsePositive)
        );
        assert!(resolve(&inc, "ann", ResolveReason::Passed, None, now).is_err());
    }

    #[test]
    fn snooze_mute_and_unhold() {
        let inc = open();
        let now = inc.last_seen_at;
        let c = Controls::default();
        assert!(
            snooze(&inc, &c, "ann", now, "deploy", now).is_err(),
            "in the past"
        );
        assert!(snooze(&inc, &c, "ann", now + chrono::Duration::hours(2), " ", now).is_err());
        let (ch, c) = snooze(
            &inc,
            &c,
            "ann",
            now + chrono::Duration::hours(2),
            "deploy",
            now,
        )
        .unwrap();
        assert_eq!(ch.events[0].kind, EventKind::Snoozed);
        assert_eq!(c.held_since, Some(now));
        assert!(c.hold(now).is_some());
        let (_, muted) = mute(&inc, &c, "bob", "known", now + chrono::Duration::hours(1)).unwrap();
        assert!(muted.muted && muted.snoozed_until.is_none());
        assert_eq!(
            muted.held_since,
            Some(now),
            "the hold started with the snooze"
        );
        assert!(mute(&inc, &muted, "bob", "again", now).is_err());
        let freed = unhold(&inc, &muted, now).unwrap();
        assert!(freed.hold(now).is_none());
        assert_eq!(freed.held_since, Some(now), "the end is told by hold::end");
        assert!(unhold(&inc, &freed, now).is_err());
        let (_, a) = assign(&inc, &freed, "ann", "bob", now).unwrap();
        assert_eq!(a.assignee.as_deref(), Some("bob"));
        assert!(assign(&inc, &a, "ann", "bob", now).is_err());
    }
}
