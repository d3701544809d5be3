//! Holding notifications: an incident's on-call controls (its commander, a snooze until a
//! time, a mute until unmuted) and what is told when a hold ends. Pure.
//!
//! While an incident is held (snoozed, muted, or its check is in a maintenance window) it
//! still reconciles — counters, severity, resolution, the timeline — but no mail is written
//! for its events; the store remembers since when (`held_since`). When the hold ends it is
//! told once: an open incident whose thread was started gets one `hold_ended` update; one that
//! opened during the hold gets its held opening mail (the thread's root); one that resolved
//! during the hold gets its held resolution mail. Nothing replies into a thread whose root
//! was never sent.

use super::reconcile::SYSTEM_ACTOR;
use super::types::{Event, EventFields, EventKind, Incident};
use crate::model::IncidentState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashSet;

/// An incident's on-call controls, kept beside it in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Controls {
    /// The incident commander (`incidents assign`).
    pub assignee: Option<String>,
    /// Notifications held until then (`incidents snooze --for`).
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Notifications held until `incidents unmute`.
    pub muted: bool,
    /// Why the snooze or mute was set.
    pub hold_reason: Option<String>,
    /// Who set it.
    pub hold_by: Option<String>,
    /// Since when notifications are held; `None` when nothing is held or the end was told.
    pub held_since: Option<DateTime<Utc>>,
}

/// Why an incident's notifications are held right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hold {
    /// Until `unmute`.
    Muted,
    /// Until then.
    Snoozed {
        /// The snooze's end.
        until: DateTime<Utc>,
    },
    /// Its check is in a maintenance window.
    Maintenance {
        /// The window's name.
        window: String,
    },
}

impl Hold {
    /// The state column's word: `muted`, `snoozed`, `maintenance`.
    pub fn label(&self) -> &'static str {
        match self {
            Hold::Muted => "muted",
            Hold::Snoozed { .. } => "snoozed",
            Hold::Maintenance { .. } => "maintenance",
        }
    }

    /// One phrase: `muted`, `snoozed until …`, `in maintenance window NAME`.
    pub fn describe(&self) -> String {
        match self {
            Hold::Muted => "muted".into(),
            Hold::Snoozed { until } => {
                format!("snoozed until {}", crate::model::format_time(*until))
            }
            Hold::Maintenance { window } => format!("in maintenance window {window}"),
        }
    }
}

impl Controls {
    /// The incident's own hold at `now` (a mute, or a snooze not yet over).
    pub fn hold(&self, now: DateTime<Utc>) -> Option<Hold> {
        if self.muted {
            Some(Hold::Muted)
        } else {
            self.snoozed_until
                .filter(|u| *u > now)
                .map(|until| Hold::Snoozed { until })
        }
    }

    /// True when nothing is set (no row worth showing).
    pub fn is_empty(&self) -> bool {
        *self == Controls::default()
    }
}

/// An incident as JSON with its on-call fields: `assignee`, and `hold` (null when not held;
/// `{kind: snoozed, until, reason, by}`, `{kind: muted, reason, by}` or `{kind: maintenance,
/// window}`). What `incidents list/show --format json` and the API print.
pub fn incident_json(inc: &Incident, c: &Controls, hold: Option<&Hold>) -> serde_json::Value {
    let hold = hold.map(|h| {
        let mut v = serde_json::to_value(h).unwrap_or_default();
        if let Some(o) = v.as_object_mut()
            && !matches!(h, Hold::Maintenance { .. })
        {
            o.insert("reason".into(), serde_json::json!(c.hold_reason));
            o.insert("by".into(), serde_json::json!(c.hold_by));
        }
        v
    });
    let mut v = serde_json::to_value(inc).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("assignee".into(), serde_json::json!(c.assignee));
        o.insert("hold".into(), serde_json::json!(hold));
    }
    v
}

/// What ending a hold writes: a timeline entry, whether it is mailed, and a held mail to
/// send now.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldEnd {
    /// The `hold_ended` entry.
    pub event: Event,
    /// Whether the entry itself is mailed: the incident is still open and its thread's root
    /// was sent.
    pub tell: bool,
    /// An event whose mail was held and goes out now: the opening (the thread's root) of an
    /// incident that opened during the hold, or the resolution of one that resolved.
    pub send: Option<i64>,
}

/// How the end of a hold is told. `events` is the incident's timeline, `mailed` the ids of
/// its events that have a mail, `why` the end's cause (`snooze ended`), `actor` who ended it.
pub fn end(
    inc: &Incident,
    events: &[Event],
    mailed: &HashSet<i64>,
    why: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> HoldEnd {
    let root_sent = events
        .iter()
        .any(|e| e.kind == EventKind::Opened && mailed.contains(&e.id));
    let latest = |kind: EventKind| events.iter().rev().find(|e| e.kind == kind).map(|e| e.id);
    let (note, tell, send) = match inc.state {
        IncidentState::Pending => (format!("{why}; not opened"), false, None),
        IncidentState::Open | IncidentState::Acknowledged if root_sent => {
            let what = if inc.breach_streak > 0 {
                "still breaching"
            } else {
                "still open"
            };
            (format!("{why}, {what}"), true, None)
        }
        IncidentState::Open | IncidentState::Acknowledged => (
            format!("{why}; it opened while held and is told now"),
            false,
            latest(EventKind::Opened),
        ),
        IncidentState::Resolved => {
            let resolution = latest(EventKind::Resolved).filter(|id| !mailed.contains(id));
            match resolution {
                Some(id) if root_sent => (
                    format!("{why}; it resolved while held and is told now"),
                    false,
                    Some(id),
                ),
                _ => (format!("{why}; resolved"), false, None),
            }
        }
    };
    HoldEnd {
        event: Event {
            id: 0,
            kind: EventKind::HoldEnded,
            at: now,
            actor: if actor.is_empty() {
                SYSTEM_ACTOR.into()
            } else {
                actor.into()
            },
            severity: inc.severity,
            note: Some(note),
            fields: EventFields::default(),
        },
        tell,
        send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::example_incident;
    use chrono::TimeZone;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap() + chrono::Duration::hours(h)
    }

    fn ev(id: i64, kind: EventKind) -> Event {
        Event {
            id,
            kind,
            at: t(0),
            actor: SYSTEM_ACTOR.into(),
            severity: crate::model::Severity::P2,
            note: None,
            fields: EventFields::default(),
        }
    }

    #[test]
    fn a_snooze_holds_until_its_end_and_a_mute_until_unmuted() {
        let mut c = Controls {
            snoozed_until: Some(t(2)),
            ..Controls::default()
        };
        assert_eq!(c.hold(t(1)), Some(Hold::Snoozed { until: t(2) }));
        assert_eq!(c.hold(t(2)), None, "the end is exclusive");
        c.muted = true;
        assert_eq!(c.hold(t(9)), Some(Hold::Muted));
        assert!(Controls::default().is_empty());
    }

    #[test]
    fn the_end_tells_once_and_never_into_an_unsent_thread() {
        let mut inc = example_incident();
        inc.state = IncidentState::Open;
        inc.breach_streak = 3;
        let timeline = [ev(1, EventKind::Opened), ev(2, EventKind::SeverityRaised)];
        // Root sent: one update in the thread.
        let e = end(
            &inc,
            &timeline,
            &HashSet::from([1]),
            "snooze ended",
            "",
            t(3),
        );
        assert!(e.tell && e.send.is_none());
        assert_eq!(
            e.event.note.as_deref(),
            Some("snooze ended, still breaching")
        );
        assert_eq!(e.event.actor, SYSTEM_ACTOR);
        // Opened while held: the held opening goes out (the root), no update.
        let e = end(&inc, &timeline, &HashSet::new(), "snooze ended", "", t(3));
        assert_eq!((e.tell, e.send), (false, Some(1)));
        // Resolved while held after the root was sent: the resolution, nothing else.
        inc.state = IncidentState::Resolved;
        let timeline = [ev(1, EventKind::Opened), ev(5, EventKind::Resolved)];
        let e = end(
            &inc,
            &timeline,
            &HashSet::from([1]),
            "snooze ended",
            "",
            t(3),
        );
        assert_eq!((e.tell, e.send), (false, Some(5)));
        // Its resolution already told (resolved by hand): nothing.
        let e = end(
            &inc,
            &timeline,
            &HashSet::from([1, 5]),
            "snooze ended",
            "",
            t(3),
        );
        assert_eq!((e.tell, e.send), (false, None));
        // Never told at all: nothing, not even the resolution.
        let e = end(&inc, &timeline, &HashSet::new(), "snooze ended", "", t(3));
        assert_eq!((e.tell, e.send), (false, None));
        // Pending: nothing.
        inc.state = IncidentState::Pending;
        let e = end(&inc, &[], &HashSet::new(), "unmuted by ann", "ann", t(3));
        assert_eq!((e.tell, e.send), (false, None));
        assert_eq!(e.event.actor, "ann");
    }
}
