//! The incident, its timeline events and the fingerprint that identifies it.

use crate::model::{
    Category, CheckId, IncidentState, Key, Metric, Severity, Unit, format_threshold,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use super::fields::{EventFields, ResolveReason, ResponseStatus};

/// The fingerprint of a check's subject: check id plus key values. The check-failure
/// incident of a check has its own (`id#check_failure`).
pub fn fingerprint(check: &CheckId, key: &Key) -> String {
    if key.is_empty() {
        check.0.clone()
    } else {
        format!("{check}|{key}")
    }
}

/// One escalation step, copied onto an incident when it opens so that a config change does
/// not rewrite a running escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Seconds after opening.
    pub after_secs: u64,
    /// Who is told.
    pub email: Vec<String>,
    /// True: the step applies until resolution; false: until acknowledgement.
    pub until_resolved: bool,
}

/// An incident as stored. `id` is 0 until the store assigns one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Store id (0 when new).
    pub id: i64,
    /// Check id + key values.
    pub fingerprint: String,
    /// The check.
    pub check_id: CheckId,
    /// The subject within the check.
    pub key: Key,
    /// Lifecycle state.
    pub state: IncidentState,
    /// What kind of problem.
    pub category: Category,
    /// The incident's severity: rises with the data, never falls by itself.
    pub severity: Severity,
    /// The severity of the latest breach.
    pub current_severity: Severity,
    /// The worst severity ever reached.
    pub peak_severity: Severity,
    /// `[P0] check — key`, fixed when first opened (the mail thread's subject).
    pub title: String,
    /// First breach of this incident.
    pub first_seen_at: DateTime<Utc>,
    /// When it opened (people were told).
    pub opened_at: Option<DateTime<Utc>>,
    /// When someone acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged.
    pub acknowledged_by: Option<String>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who or what resolved it (`dqwatch` when the check passed again).
    pub resolved_by: Option<String>,
    /// Latest breach.
    pub last_seen_at: DateTime<Utc>,
    /// Consecutive breaching runs.
    pub breach_streak: u32,
    /// Consecutive passing runs.
    pub pass_streak: u32,
    /// Times it reopened.
    pub repeat_count: u32,
    /// Latest metric value.
    pub metric: Option<f64>,
    /// The metric's unit (from the threshold as written), so it prints as the report did.
    pub unit: Unit,
    /// The threshold it breached, as written (`> 24h`).
    pub threshold: Option<String>,
    /// The level of that threshold.
    pub threshold_severity: Option<Severity>,
    /// The `severity_column` label of the latest breach, for severity-map checks.
    pub label: Option<String>,
    /// For check failures: the latest error message.
    pub detail: Option<String>,
    /// The escalation chain copied at opening.
    pub escalation: Vec<Step>,
    /// Steps of the chain already taken (sent or skipped).
    pub escalation_step: u32,
    /// When the next step is due.
    pub next_escalation_at: Option<DateTime<Utc>>,
    /// Reminder interval while unacknowledged, in seconds.
    pub renotify_secs: Option<u64>,
    /// When the next reminder is due.
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// The latest runs that judged it, newest in bit 0 (1 = breach), for `open_window` and
    /// flap detection.
    pub history: u64,
    /// Changing state too often: told once, then quiet until stable.
    pub flapping: bool,
    /// For a storm (one incident for many keys): the keys breaching in it, as printed.
    pub members: Vec<String>,
    /// The stored revision this value was read at (0 when new): every write bumps it, and a
    /// write computed from an older revision is refused, so concurrent changes are never
    /// lost (an acknowledgement while a run is being reconciled).
    #[serde(skip)]
    pub revision: i64,
}

impl Incident {
    /// The latest metric in its unit, as every output prints it (`1d 2h`).
    pub fn metric_text(&self) -> Option<String> {
        self.metric.map(|value| {
            Metric {
                value,
                unit: self.unit,
            }
            .to_string()
        })
    }

    /// The breached threshold with its level, as every output prints it (`P2 > 24h`).
    pub fn threshold_text(&self) -> Option<String> {
        let text = self.threshold.as_deref()?;
        Some(match self.threshold_severity {
            Some(severity) => format_threshold(severity, text),
            None => text.to_string(),
        })
    }
}

/// What happened to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// First breach; waiting for `open_after` runs.
    Detected,
    /// Opened: people are told.
    Opened,
    /// Severity rose while open.
    SeverityRaised,
    /// Breached again soon after resolving.
    Reopened,
    /// Someone acknowledged.
    Acknowledged,
    /// Resolved by passing runs or by hand.
    Resolved,
    /// A pending incident nobody was told about stopped breaching (or was closed by hand):
    /// over, without a mail.
    Cleared,
    /// A note on the timeline.
    Note,
    /// An escalation step went out.
    Escalated,
    /// A reminder while unacknowledged.
    Reminder,
    /// It kept changing state: told once, then quiet until stable.
    Flapping,
    /// Stable again after flapping, still breaching: told once.
    Settled,
    /// Keys joined a storm incident (told).
    KeysJoined,
    /// Keys left a storm incident (on the timeline; told with the next mail).
    KeysLeft,
    /// A responder's status update (status, impact, next steps, ETA, workaround).
    StatusUpdate,
    /// An incident commander was assigned.
    Assigned,
    /// Notifications held until a time.
    Snoozed,
    /// Notifications held until unmuted.
    Muted,
    /// A snooze, mute or maintenance hold ended (told once).
    HoldEnded,
}

impl EventKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Detected => "detected",
            EventKind::Opened => "opened",
            EventKind::SeverityRaised => "severity_raised",
            EventKind::Reopened => "reopened",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Resolved => "resolved",
            EventKind::Cleared => "cleared",
            EventKind::Note => "note",
            EventKind::Escalated => "escalated",
            EventKind::Reminder => "reminder",
            EventKind::Flapping => "flapping",
            EventKind::Settled => "settled",
            EventKind::KeysJoined => "keys_joined",
            EventKind::KeysLeft => "keys_left",
            EventKind::StatusUpdate => "status_update",
            EventKind::Assigned => "assigned",
            EventKind::Snoozed => "snoozed",
            EventKind::Muted => "muted",
            EventKind::HoldEnded => "hold_ended",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::Detected,
            EventKind::Opened,
            EventKind::SeverityRaised,
            EventKind::Reopened,
            EventKind::Acknowledged,
            EventKind::Resolved,
            EventKind::Cleared,
            EventKind::Note,
            EventKind::Escalated,
            EventKind::Reminder,
            EventKind::Flapping,
            EventKind::Settled,
            EventKind::KeysJoined,
            EventKind::KeysLeft,
            EventKind::StatusUpdate,
            EventKind::Assigned,
            EventKind::Snoozed,
            EventKind::Muted,
            EventKind::HoldEnded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The mail template this event is told with, if any.
    pub fn template(self) -> Option<&'static str> {
        match self {
            EventKind::Opened => Some("opened"),
            EventKind::SeverityRaised
            | EventKind::Reopened
            | EventKind::Acknowledged
            | EventKind::Reminder
            | EventKind::Flapping
            | EventKind::Settled
            | EventKind::KeysJoined
            | EventKind::Assigned
            | EventKind::Snoozed
            | EventKind::Muted
            | EventKind::HoldEnded => Some("updated"),
            EventKind::StatusUpdate => Some("status"),
            EventKind::Resolved => Some("resolved"),
            EventKind::Escalated => Some("escalated"),
            EventKind::Detected | EventKind::Cleared | EventKind::Note | EventKind::KeysLeft => {
                None
            }
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry on an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Store id (0 when new).
    pub id: i64,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: `dqwatch` or a person's name.
    pub actor: String,
    /// The incident's severity after the event.
    pub severity: Severity,
    /// Free text (a note, a reason).
    pub note: Option<String>,
    /// Structured fields (a status update's, a resolution's reason, an assignee, a snooze's
    /// end); empty for most events.
    pub fields: EventFields,
}
