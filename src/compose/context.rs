//! Template contexts: the JSON a template sees. Every field a default template names is
//! always present (null when unknown), so strict mode fails only on real typos.

use crate::config::SeverityPolicy;
use crate::incidents::{Event, EventKind, Incident};
use crate::model::format_time;
use crate::model::{
    Category, CheckId, IncidentState, Key, Severity, Unit, Value as Cell, format_duration,
};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

/// What a ticket says about the check behind an incident.
#[derive(Debug, Clone, Default)]
pub struct CheckInfo {
    /// Check id.
    pub id: String,
    /// The check file.
    pub path: String,
    /// What it guards.
    pub description: Option<String>,
    /// Its connection.
    pub connection: String,
    /// Runbook link.
    pub runbook: Option<String>,
    /// Owners (always told).
    pub owners: Vec<String>,
    /// Tags (for routes).
    pub tags: Vec<String>,
    /// Impact modifiers.
    pub impact: Vec<String>,
}

/// A sample of the breaching rows.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, as values.
    pub rows: Vec<Vec<Cell>>,
    /// When the result was cut at `max_rows`: the rows read. Keys past them were not judged.
    pub capped: Option<u64>,
}

impl Sample {
    /// The rows as a JSON document (`{"columns", "rows", "capped"}`, values as text), as the
    /// store keeps them for the incident's page.
    pub fn to_json(&self) -> String {
        json!({
            "columns": self.columns,
            "rows": self.rows.iter().map(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "capped": self.capped,
        })
        .to_string()
    }
}

fn time(t: Option<chrono::DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_time(t)))
}

pub(crate) fn incident(inc: &Incident) -> Value {
    let end = inc.resolved_at.unwrap_or(inc.last_seen_at);
    let start = inc.opened_at.unwrap_or(inc.first_seen_at);
    json!({
        "id": inc.id,
        "title": inc.title,
        "state": inc.state.as_str(),
        "severity": inc.severity.as_str(),
        "current_severity": inc.current_severity.as_str(),
        "peak_severity": inc.peak_severity.as_str(),
        "category": inc.category.as_str(),
        "check_id": inc.check_id.0,
        "fingerprint": inc.fingerprint,
        "key": if inc.key.is_empty() { Value::Null } else { Value::String(inc.key.to_string()) },
        "first_seen_at": format_time(inc.first_seen_at),
        "opened_at": time(inc.opened_at),
        "acknowledged_at": time(inc.acknowledged_at),
        "acknowledged_by": inc.acknowledged_by,
        "resolved_at": time(inc.resolved_at),
        "resolved_by": inc.resolved_by,
        "last_seen_at": format_time(inc.last_seen_at),
        "duration": format_duration((end - start).num_seconds() as f64),
        "repeat_count": inc.repeat_count,
        // The metric as the terminal prints it (`1d 2h`); the number is `metric_value`.
        "metric": inc.metric_text(),
        "metric_value": inc.metric,
        "unit": inc.unit.as_str(),
        "threshold": inc.threshold_text(),
        "label": inc.label,
        "detail": inc.detail,
        "flapping": inc.flapping,
        "members": inc.members,
    })
}

pub(crate) fn check(c: Option<&CheckInfo>, inc: &Incident) -> Value {
    let fallback = CheckInfo {
        id: inc.check_id.0.clone(),
        ..CheckInfo::default()
    };
    let c = c.unwrap_or(&fallback);
    json!({
        "id": c.id,
        "path": c.path,
        "description": c.description,
        "connection": c.connection,
        "runbook": c.runbook,
        "owners": c.owners,
        "tags": c.tags,
        "impact": c.impact,
    })
}

pub(crate) fn summary(event: &Event) -> String {
    match event.kind {
        EventKind::SeverityRaised => format!("severity raised to {}", event.severity),
        EventKind::Reopened => "breaching again: reopened".into(),
        EventKind::Acknowledged => format!("acknowledged by {}", event.actor),
        EventKind::Resolved => match event.fields.reason {
            Some(r) => format!("resolved by {} ({r})", event.actor),
            None => format!("resolved by {}", event.actor),
        },
        EventKind::Cleared => "cleared before anyone was told".into(),
        EventKind::Escalated => "escalated".into(),
        EventKind::Opened => "opened".into(),
        EventKind::Detected => "detected".into(),
        EventKind::Note => format!("note from {}", event.actor),
        EventKind::Reminder => "still open and not acknowledged".into(),
        EventKind::Flapping => "flapping: quiet until it is stable".into(),
        EventKind::Settled => "stable again, still breaching".into(),
        EventKind::KeysJoined => "more keys breaching".into(),
        EventKind::KeysLeft => "keys passing again".into(),
        EventKind::StatusUpdate => match event.fields.status {
            Some(s) => format!("status update: {s}"),
            None => "status update".into(),
        },
        EventKind::Assigned => match &event.fields.assignee {
            Some(a) => format!("incident commander: {a}"),
            None => "assigned".into(),
        },
        EventKind::Snoozed => match event.fields.until {
            Some(u) => format!("snoozed by {} until {}", event.actor, format_time(u)),
            None => format!("snoozed by {}", event.actor),
        },
        EventKind::Muted => format!("muted by {} until unmuted", event.actor),
        EventKind::HoldEnded => event
            .note
            .clone()
            .unwrap_or_else(|| "notifications resume".into()),
    }
}

fn commands(inc: &Incident) -> Value {
    json!({
        "ack": format!("dqwatch incidents ack {} --by NAME", inc.id),
        "resolve": format!("dqwatch incidents resolve {} --by NAME --note TEXT", inc.id),
        "postmortem": format!("dqwatch incidents postmortem {}", inc.id),
        "update": format!("dqwatch incidents update {} --status STATUS --by NAME", inc.id),
    })
}

/// The context of a mail template.
pub(crate) fn mail(
    inc: &Incident,
    event: &Event,
    c: Option<&CheckInfo>,
    sample: Option<&Sample>,
    last_pass_at: Option<&str>,
    to: &[String],
    policy: Option<&SeverityPolicy>,
) -> Value {
    let sample = sample.map_or(json!({ "columns": [], "rows": [], "capped": null }), |s| {
        json!({
            "capped": s.capped,
            "columns": s.columns,
            "rows": s.rows.iter().map(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>()).collect::<Vec<_>>(),
        })
    });
    json!({
        "incident": incident(inc),
        "event": {
            "kind": event.kind.as_str(),
            "at": format_time(event.at),
            "actor": event.actor,
            "note": event.note,
            "summary": summary(event),
            "status": event.fields.status.map(|s| s.as_str()),
            "impact": event.fields.impact,
            "next": event.fields.next,
            "eta": event.fields.eta,
            "workaround": event.fields.workaround,
            "reason": event.fields.reason.map(|r| r.as_str()),
            "assignee": event.fields.assignee,
            "until": time(event.fields.until),
        },
        "check": check(c, inc),
        "severity": {
            "name": inc.severity.as_str(),
            "description": policy.map(|p| p.description.clone()),
            "respond_within": policy.and_then(|p| p.respond_within).map(|d| format_duration(d.as_secs_f64())),
        },
        "sample": sample,
        "last_pass_at": last_pass_at,
        "recipients": to,
        "commands": commands(inc),
    })
}

/// The context of the subject: only fields fixed when the incident opened, so that every
/// mail of the thread carries the same subject.
pub(crate) fn subject(inc: &Incident) -> Value {
    json!({
        "incident": {
            "id": inc.id,
            "title": inc.title,
            "category": inc.category.as_str(),
            "check_id": inc.check_id.0,
            "key": if inc.key.is_empty() { Value::Null } else { Value::String(inc.key.to_string()) },
        }
    })
}

/// The context of a digest.
pub(crate) fn digest(kind: &str, period: &str, list: &[&Incident]) -> Value {
    let active = list.iter().filter(|i| i.state.is_active()).count();
    json!({
        "kind": kind,
        "period": period,
        "counts": { "total": list.len(), "active": active, "resolved": list.len() - active },
        "incidents": list.iter().map(|i| incident(i)).collect::<Vec<_>>(),
    })
}

/// The context of the postmortem template at `now`: the incident, its timeline and its
/// episodes (each opening to its resolution, with its own acknowledgement); `duration` is
/// the time it was open over all episodes, and says `ongoing` while it is not resolved.
pub(crate) fn postmortem(
    inc: &Incident,
    events: &[Event],
    c: Option<&CheckInfo>,
    now: chrono::DateTime<Utc>,
) -> Value {
    let eps = crate::incidents::stats::episodes(inc, events);
    let length = |e: &crate::incidents::stats::Episode| {
        (e.resolved_at.unwrap_or(now) - e.opened_at)
            .num_seconds()
            .max(0) as f64
    };
    let ongoing = inc.state.is_active() && inc.opened_at.is_some();
    let total = format_duration(eps.iter().map(length).sum());
    let duration = if ongoing {
        format!("{total} so far, ongoing")
    } else if eps.is_empty() {
        "never opened".to_string()
    } else {
        total
    };
    json!({
        "incident": incident(inc),
        "check": check(c, inc),
        "opened_at": time(eps.first().map(|e| e.opened_at)),
        "duration": duration,
        "episodes": eps.iter().map(|e| json!({
            "n": e.n,
            "opened_at": format_time(e.opened_at),
            "acknowledged_at": time(e.acknowledged_at),
            "acknowledged_by": e.acknowledged_by,
            "resolved_at": time(e.resolved_at),
            "resolved_by": e.resolved_by,
            "duration": if e.resolved_at.is_some() {
                format_duration(length(e))
            } else {
                format!("{} so far, ongoing", format_duration(length(e)))
            },
        })).collect::<Vec<_>>(),
        "timeline": events.iter().map(|e| json!({
            "at": format_time(e.at),
            "kind": e.kind.as_str(),
            "actor": e.actor,
            "severity": e.severity.as_str(),
            "note": e.note.clone().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "commands": commands(inc),
    })
}

/// A complete example incident, for template self-tests.
pub(crate) fn example() -> (Incident, Vec<Event>, CheckInfo, Sample) {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    let inc = Incident {
        id: 1,
        fingerprint: "finance/recon|day=2026-01-01".into(),
        check_id: CheckId("finance/recon".into()),
        key: Key(vec![("day".into(), "2026-01-01".into())]),
        state: IncidentState::Resolved,
        category: Category::Reconciliation,
        severity: Severity::P0,
        current_severity: Severity::P1,
        peak_severity: Severity::P0,
        title: "[P0] finance/recon — day=2026-01-01".into(),
        first_seen_at: at,
        opened_at: Some(at),
        acknowledged_at: Some(at),
        acknowledged_by: Some("alice".into()),
        resolved_at: Some(at),
        resolved_by: Some("dqwatch".into()),
        last_seen_at: at,
        breach_streak: 0,
        pass_streak: 1,
        repeat_count: 1,
        metric: Some(12500.0),
        unit: Unit::Number,
        threshold: Some("> 10000".into()),
        threshold_severity: Some(Severity::P1),
        label: None,
        detail: Some("query: example".into()),
        escalation: Vec::new(),
        escalation_step: 0,
        next_escalation_at: None,
        renotify_secs: None,
        next_reminder_at: None,
        history: 0b1011,
        flapping: false,
        members: Vec::new(),
        revision: 0,
    };
    let events = [
        EventKind::Opened,
        EventKind::SeverityRaised,
        EventKind::Acknowledged,
        EventKind::Escalated,
        EventKind::Resolved,
        EventKind::Note,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, kind)| Event {
        id: i as i64 + 1,
        kind,
        at,
        actor: "dqwatch".into(),
        severity: Severity::P0,
        note: Some("example".into()),
        fields: Default::default(),
    })
    .collect();
    let check = CheckInfo {
        id: "finance/recon".into(),
        path: "checks/finance/recon.sql".into(),
        description: Some("example".into()),
        connection: "warehouse".into(),
        runbook: Some("https://example.com".into()),
        owners: vec!["a@example.com".into()],
        tags: vec!["finance".into()],
        impact: vec!["revenue".into()],
    };
    let sample = Sample {
        columns: vec!["day".into(), "gap".into()],
        rows: vec![vec![Cell::Text("2026-01-01".into()), Cell::Int(12500)]],
        capped: None,
    };
    (inc, events, check, sample)
}

/// Example events of responders' own (a status update with every field, an assignment, a
/// snooze, a mute, a hold's end, a resolution with its reason), for template self-tests.
pub(crate) fn example_responses() -> Vec<Event> {
    use crate::incidents::{EventFields, ResolveReason, ResponseStatus};
    let at = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    let ev = |id: i64, kind: EventKind, note: &str, fields: EventFields| Event {
        id,
        kind,
        at,
        actor: "alice".into(),
        severity: Severity::P0,
        note: Some(note.into()),
        fields,
    };
    vec![
        ev(
            11,
            EventKind::StatusUpdate,
            "example",
            EventFields {
                status: Some(ResponseStatus::Mitigating),
                impact: Some("finance dashboards show yesterday's revenue".into()),
                next: Some("re-run the ledger load".into()),
                eta: Some("14:00 UTC".into()),
                workaround: Some("use the ledger export".into()),
                ..EventFields::default()
            },
        ),
        ev(
            12,
            EventKind::Assigned,
            "incident commander: bob",
            EventFields {
                assignee: Some("bob".into()),
                ..EventFields::default()
            },
        ),
        ev(
            13,
            EventKind::Snoozed,
            "snoozed until 2026-01-02T05:04:05.000Z: deploy",
            EventFields {
                until: Some(at + chrono::Duration::hours(2)),
                ..EventFields::default()
            },
        ),
        ev(
            14,
            EventKind::Muted,
            "muted: known upstream",
            EventFields::default(),
        ),
        ev(
            15,
            EventKind::HoldEnded,
            "snooze ended, still breaching",
            EventFields::default(),
        ),
        ev(
            16,
            EventKind::Resolved,
            "the threshold was wrong",
            EventFields {
                reason: Some(ResolveReason::FalsePositive),
                ..EventFields::default()
            },
        ),
    ]
}
