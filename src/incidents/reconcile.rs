//! Outcome + known incidents + now → changes (incidents to write, events on their timelines).
//! Pure. The lifecycle: `pending` until `open_after` breaching runs, `open`, `acknowledged`,
//! `resolved` after `resolve_after` passing runs; a breach within `reopen_within` of
//! resolving reopens; `error_after` consecutive check errors open a `check_failure` incident.
//! An error is never a pass: it resolves nothing.

use super::noise;
use super::policy::Policy;
use super::types::{Event, EventKind, Incident, fingerprint};
use crate::model::{Category, CheckId, IncidentState, Key, Observation, Outcome, Severity, Status};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// Actor name for changes dqwatch makes itself.
pub const SYSTEM_ACTOR: &str = "dqwatch";
/// Fingerprint suffix of a check's check-failure incident.
pub const CHECK_FAILURE: &str = "#check_failure";
/// Fingerprint suffix of a check's storm incident: one ticket for many breaching keys.
pub const STORM: &str = "#storm";

/// An incident to write and what happened to it. `events` is empty when only counters moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The incident after the change.
    pub incident: Incident,
    /// New timeline entries, in order.
    pub events: Vec<Event>,
}

/// Reconciles one check's outcome with the latest incident of each of its fingerprints.
/// Returns the changes and the check's new consecutive-error count.
pub fn reconcile(
    check: &CheckId,
    policy: &Policy,
    outcome: &Outcome,
    known: &[Incident],
    error_streak: u32,
    now: DateTime<Utc>,
) -> (Vec<Change>, u32) {
    let latest: HashMap<&str, &Incident> =
        known.iter().map(|i| (i.fingerprint.as_str(), i)).collect();
    let mut changes = Vec::new();
    match outcome {
        Outcome::Evaluated {
            observations,
            capped,
            ..
        } => {
            let storm_fp = format!("{check}{STORM}");
            let storm = storm(
                check,
                policy,
                observations,
                &latest,
                &storm_fp,
                *capped,
                now,
            );
            let mut seen = HashSet::new();
            for obs in observations {
                let fp = fingerprint(check, &obs.key);
                seen.insert(fp.clone());
                if storm
                    .as_ref()
                    .is_some_and(|s| s.keys.contains(&obs.key.to_string()))
                {
                    continue;
                }
                let prev = latest.get(fp.as_str()).copied();
                match obs.status {
                    Status::Breach { severity } => {
                        changes.push(breach(check, policy, prev, fp, severity, obs, now));
                    }
                    Status::Pass | Status::NoData => {
                        if let Some(inc) = prev.filter(|i| i.state.is_active()) {
                            changes.push(pass(policy, inc, now));
                        }
                    }
                    // Not judged: neither a pass nor a breach; the incident stays as it is.
                    Status::Error { .. } => {}
                }
            }
            if let Some(s) = storm {
                seen.insert(storm_fp);
                changes.extend(s.change);
            }
            // A key that no longer appears counts as passing, and so does the check-failure
            // incident once the check runs again — unless the result was capped at
            // `max_rows`: a key past the cap was not read, so it is not known to pass.
            let failure = format!("{check}{CHECK_FAILURE}");
            let mut rest: Vec<&Incident> = known
                .iter()
                .filter(|i| i.state.is_active() && !seen.contains(&i.fingerprint))
                .filter(|i| !*capped || i.fingerprint == failure)
                .collect();
            rest.sort_by_key(|i| i.id);
            for inc in rest {
                changes.push(pass(policy, inc, now));
            }
            (changes, 0)
        }
        Outcome::Error { kind, message } => {
            let streak = error_streak.saturating_add(1);
            let fp = format!("{check}{CHECK_FAILURE}");
            let detail = format!("{}: {message}", kind.as_str());
            match latest.get(fp.as_str()).copied() {
                Some(inc) if inc.state.is_active() => {
                    let mut inc = inc.clone();
                    inc.last_seen_at = now;
                    inc.history = noise::push(inc.history, true);
                    inc.breach_streak += 1;
                    inc.pass_streak = 0;
                    inc.detail = Some(detail);
                    changes.push(Change {
                        incident: inc,
                        events: Vec::new(),
                    });
                }
                prev if streak >= policy.lifecycle.error_after => {
                    let obs = Observation {
                        key: Key::default(),
                        status: Status::Breach {
                            severity: policy.failure_severity,
                        },
                        metric: None,
                        value: None,
                        threshold: None,
                        label: None,
                        sample: Vec::new(),
                    };
                    // Errors already waited `error_after` runs: the failure opens at once.
                    let lifecycle = crate::config::Lifecycle {
                        open_after: 1,
                        ..policy.lifecycle
                    };
                    let failure = Policy {
                        category: Category::CheckFailure,
                        lifecycle,
                        ..policy.clone()
                    };
                    let mut change = breach(
                        check,
                        &failure,
                        prev,
                        fp,
                        policy.failure_severity,
                        &obs,
                        now,
                    );
                    change.incident.detail = Some(detail);
                    change.incident.title =
                        format!("[{}] {check} — check cannot run", change.incident.severity);
                    changes.push(change);
                }
                _ => {}
            }
            (changes, streak)
        }
    }
}

/// A check's storm this run: the keys it holds (the per-key pass skips them) and its change.
struct Storm {
    keys: HashSet<String>,
    change: Option<Change>,
}

/// Whether an incident of a key's own speaks for it: it is active, or it was told and would
/// reopen.
fn owns(policy: &Policy, prev: Option<&Incident>, now: DateTime<Utc>) -> bool {
    prev.is_some_and(|i| {
        i.state.is_active()
            || (i.opened_at.is_some()
                && i.resolved_at
                    .is_some_and(|r| now - r <= policy.reopen_within()))
    })
}

/// Many keys breaching at once (`group_keys` or more with no incident of their own) are one
/// incident listing them; while it is active, every such key joins it, and it resolves when
/// none of its keys breaches. `None` when the check has no storm this run.
fn storm(
    check: &CheckId,
    policy: &Policy,
    observations: &[Observation],
    latest: &HashMap<&str, &Incident>,
    fp: &str,
    capped: bool,
    now: DateTime<Utc>,
) -> Option<Storm> {
    let limit = policy.lifecycle.group_keys;
    if limit == 0 {
        return None;
    }
    let prev = latest.get(fp).copied();
    let active = prev.filter(|i| i.state.is_active());
    let members: HashSet<&str> = active
        .map(|i| i.members.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut breaching: Vec<&Observation> = Vec::new();
    let mut fresh = 0;
    let mut read = HashSet::new();
    for o in observations {
        let name = o.key.to_string();
        read.insert(name.clone());
        if !matches!(o.status, Status::Breach { .. }) {
            continue;
        }
        if members.contains(name.as_str()) {
            breaching.push(o);
            continue;
        }
        let own = latest.get(fingerprint(check, &o.key).as_str()).copied();
        let due = policy
            .lifecycle
            .due
            .is_none_or(|after| now >= noise::due_at(&o.key, after, &policy.timezone, now));
        if !owns(policy, own, now) && due {
            breaching.push(o);
            fresh += 1;
        }
    }
    if active.is_none() && fresh < limit as usize {
        return None;
    }
    // Keys it held that this run did not read (past the cap) stay; they are not known to pass.
    let kept: Vec<String> = members
        .iter()
        .filter(|m| capped && !read.contains(**m))
        .map(|m| (*m).to_string())
        .collect();
    let mut keys: Vec<String> = breaching.iter().map(|o| o.key.to_string()).collect();
    keys.extend(kept);
    keys.sort();
    keys.dedup();
    let joined: Vec<&String> = keys
        .iter()
        .filter(|k| !members.contains(k.as_str()))
        .collect();
    let left: Vec<&str> = members
        .iter()
        .copied()
        .filter(|m| !keys.iter().any(|k| k == m))
        .collect();
    let worst = breaching.iter().copied().min_by_key(|o| match o.status {
        Status::Breach { severity } => severity,
        _ => Severity::P3,
    });
    let mut change = match (worst, active) {
        (Some(o), _) => {
            let Status::Breach { severity } = o.status else {
                return None;
            };
            let stand_in = Observation {
                key: Key::default(),
                ..o.clone()
            };
            breach(
                check,
                policy,
                prev,
                fp.to_string(),
                severity,
                &stand_in,
                now,
            )
        }
        (None, Some(inc)) if keys.is_empty() => pass(policy, inc, now),
        (None, Some(inc)) => Change {
            incident: inc.clone(),
            events: Vec::new(),
        },
        (None, None) => return None,
    };
    let told = change.events.iter().any(|e| e.kind.template().is_some());
    let inc = &mut change.incident;
    if change
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Opened | EventKind::Detected))
        || inc.id == 0
    {
        inc.title = format!("[{}] {check} — {} keys breaching", inc.severity, keys.len());
    }
    let list = |ks: &[&str]| {
        let text = ks.iter().take(10).copied().collect::<Vec<_>>().join(", ");
        match ks.len() {
            0..=10 => text,
            n => format!("{text} and {} more", n - 10),
        }
    };
    if active.is_some() && !joined.is_empty() {
        let names: Vec<&str> = joined.iter().map(|k| k.as_str()).collect();
        let note = format!(
            "+{} key(s): {} ({} breaching)",
            names.len(),
            list(&names),
            keys.len()
        );
        // When another event of this run already mails the thread, this one only notes it.
        let kind = if told {
            EventKind::Note
        } else {
            EventKind::KeysJoined
        };
        change
            .events
            .push(event(kind, inc.severity, now, Some(note)));
    }
    if !left.is_empty() && !keys.is_empty() {
        let note = format!(
            "−{} key(s) passing again: {} ({} breaching)",
            left.len(),
            list(&left),
            keys.len()
        );
        change.events.push(event(
            EventKind::KeysLeft,
            change.incident.severity,
            now,
            Some(note),
        ));
    }
    change.incident.members = keys.clone();
    Some(Storm {
        keys: keys
            .into_iter()
            .chain(left.iter().map(|s| s.to_string()))
            .collect(),
        change: Some(change),
    })
}

fn event(kind: EventKind, severity: Severity, now: DateTime<Utc>, note: Option<String>) -> Event {
    Event {
        id: 0,
        kind,
        at: now,
        actor: SYSTEM_ACTOR.into(),
        severity,
        note,
        fields: Default::default(),
    }
}

fn title(check: &CheckId, key: &Key, severity: Severity) -> String {
    if key.is_empty() {
        format!("[{severity}] {check}")
    } else {
        format!("[{severity}] {check} — {key}")
    }
}

fn open(policy: &Policy, change: &mut Change, now: DateTime<Utc>) {
    let inc = &mut change.incident;
    inc.state = IncidentState::Open;
    inc.opened_at = Some(now);
    policy.arm(inc, now);
    change
        .events
        .push(event(EventKind::Opened, inc.severity, now, None));
}

fn breach(
    check: &CheckId,
    policy: &Policy,
    prev: Option<&Incident>,
    fp: String,
    severity: Severity,
    obs: &Observation,
    now: DateTime<Utc>,
) -> Change {
    let threshold = obs.threshold.as_ref().map(|t| t.text.to_string());
    let threshold_severity = obs.threshold.as_ref().map(|t| t.severity);
    match prev {
        Some(inc) if inc.state.is_active() => {
            let mut c = Change {
                incident: inc.clone(),
                events: Vec::new(),
            };
            let i = &mut c.incident;
            i.breach_streak += 1;
            i.pass_streak = 0;
            i.history = noise::push(i.history, true);
            i.last_seen_at = now;
            i.metric = obs.metric;
            i.unit = obs.unit();
            i.threshold = threshold;
            i.threshold_severity = threshold_severity;
            i.label.clone_from(&obs.label);
            i.current_severity = severity;
            i.peak_severity = i.peak_severity.min(severity);
            if i.state == IncidentState::Pending {
                i.severity = i.severity.min(severity);
                if ready(policy, i, now) {
                    i.title = title(check, &i.key, i.severity);
                    open(policy, &mut c, now);
                }
                return c;
            }
            let raised = (severity < i.severity).then(|| {
                let from = i.severity;
                i.severity = severity;
                format!("{from} → {severity}")
            });
            let settled = policy
                .lifecycle
                .flap
                .filter(|w| i.flapping && noise::stable(i.history, *w, true));
            if let Some(w) = settled {
                // One mail says both: stable again, and at what severity.
                i.flapping = false;
                let note = format!(
                    "stable again: breached the last {} runs{}",
                    noise::stable_runs(w),
                    raised.map_or(String::new(), |r| format!("; severity {r}"))
                );
                let now_severity = i.severity;
                c.events
                    .push(event(EventKind::Settled, now_severity, now, Some(note)));
            } else if let Some(r) = raised {
                c.events
                    .push(event(EventKind::SeverityRaised, severity, now, Some(r)));
            }
            c
        }
        // Only an incident people were told about reopens: one that never opened starts
        // over in `pending` (a new incident), so no mail replies into an unsent thread.
        Some(inc)
            if inc.opened_at.is_some()
                && inc
                    .resolved_at
                    .is_some_and(|r| now - r <= policy.reopen_within()) =>
        {
            let mut c = Change {
                incident: inc.clone(),
                events: Vec::new(),
            };
            let i = &mut c.incident;
            // Resolved by hand while the check still saw it breaching: not a recurrence but
            // the same problem, so the escalation chain is not run again from its start.
            let resumed = i.breach_streak > 0 && i.resolved_by.as_deref() != Some(SYSTEM_ACTOR);
            i.state = IncidentState::Open;
            i.repeat_count += 1;
            i.resolved_at = None;
            i.resolved_by = None;
            i.acknowledged_at = None;
            i.acknowledged_by = None;
            i.breach_streak = 1;
            i.pass_streak = 0;
            i.history = noise::push(i.history, true);
            i.flapping = policy
                .lifecycle
                .flap
                .is_some_and(|w| noise::flapping(i.history, w));
            i.last_seen_at = now;
            i.metric = obs.metric;
            i.unit = obs.unit();
            i.threshold = threshold;
            i.threshold_severity = threshold_severity;
            i.label.clone_from(&obs.label);
            i.severity = severity;
            i.current_severity = severity;
            i.peak_severity = i.peak_severity.min(severity);
            i.opened_at = Some(now);
            if resumed {
                policy.resume(i, now);
            } else {
                policy.arm(i, now);
            }
            let note = if i.flapping {
                format!(
                    "breached again within the reopen window (repeat {}); flapping — {} state changes in the last {} runs: quiet until it is stable",
                    i.repeat_count,
                    policy
                        .lifecycle
                        .flap
                        .map_or(0, |w| noise::changes(i.history, w.m)),
                    policy.lifecycle.flap.map_or(0, |w| w.m)
                )
            } else {
                format!(
                    "breached again within the reopen window (repeat {})",
                    i.repeat_count
                )
            };
            c.events
                .push(event(EventKind::Reopened, severity, now, Some(note)));
            c
        }
        _ => {
            let incident = Incident {
                id: 0,
                fingerprint: fp,
                check_id: check.clone(),
                key: obs.key.clone(),
                state: IncidentState::Pending,
                category: policy.category,
                severity,
                current_severity: severity,
                peak_severity: severity,
                title: title(check, &obs.key, severity),
                first_seen_at: now,
                opened_at: None,
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
                resolved_by: None,
                last_seen_at: now,
                breach_streak: 1,
                pass_streak: 0,
                repeat_count: 0,
                metric: obs.metric,
                unit: obs.unit(),
                threshold,
                threshold_severity,
                label: obs.label.clone(),
                detail: None,
                escalation: Vec::new(),
                escalation_step: 0,
                next_escalation_at: None,
                renotify_secs: None,
                next_reminder_at: None,
                history: 1,
                flapping: false,
                members: Vec::new(),
                revision: 0,
            };
            let mut c = Change {
                incident,
                events: Vec::new(),
            };
            if ready(policy, &c.incident, now) {
                open(policy, &mut c, now);
            } else {
                c.events
                    .push(event(EventKind::Detected, severity, now, None));
            }
            c
        }
    }
}

fn pass(policy: &Policy, inc: &Incident, now: DateTime<Utc>) -> Change {
    let mut c = Change {
        incident: inc.clone(),
        events: Vec::new(),
    };
    let i = &mut c.incident;
    i.pass_streak += 1;
    i.breach_streak = 0;
    i.history = noise::push(i.history, false);
    if i.state == IncidentState::Pending
        && let Some(w) = policy.lifecycle.open_window
        && noise::breaches(i.history, w.m) > 0
    {
        // Still within reach of `N of M`: it stays pending (nobody is told either way).
        return c;
    }
    if i.state != IncidentState::Pending
        && let Some(w) = policy.lifecycle.flap
    {
        if i.flapping {
            if !noise::stable(i.history, w, false) {
                return c;
            }
        } else if i.pass_streak >= policy.lifecycle.resolve_after && noise::flapping(i.history, w) {
            // It would resolve, but it keeps changing state: say so once and go quiet.
            i.flapping = true;
            let note = format!(
                "flapping: {} state changes in the last {} runs; quiet until it is stable for {} runs, then resolved or told once",
                noise::changes(i.history, w.m),
                w.m,
                noise::stable_runs(w)
            );
            c.events
                .push(event(EventKind::Flapping, i.severity, now, Some(note)));
            return c;
        }
    }
    if i.pass_streak >= policy.lifecycle.resolve_after {
        i.flapping = false;
        i.state = IncidentState::Resolved;
        i.resolved_at = Some(now);
        i.resolved_by = Some(SYSTEM_ACTOR.into());
        let note = format!(
            "check passed {} consecutive run{}",
            i.pass_streak,
            if i.pass_streak == 1 { "" } else { "s" }
        );
        c.events.push(event(ending(i), i.severity, now, Some(note)));
    }
    c
}

/// True when a pending (or new) incident has breached long enough to open — `open_after`
/// runs in a row, or `N of M` — and its data is due.
fn ready(policy: &Policy, inc: &Incident, now: DateTime<Utc>) -> bool {
    let l = &policy.lifecycle;
    let long_enough = inc.breach_streak >= l.open_after
        || l.open_window
            .is_some_and(|w| noise::reached(inc.history, w));
    let due = l
        .due
        .is_none_or(|after| now >= noise::due_at(&inc.key, after, &policy.timezone, now));
    long_enough && due
}

/// How an incident's end is told: `resolved` when people were told it opened, `cleared`
/// (no mail) for a pending one nobody was told about.
fn ending(inc: &Incident) -> EventKind {
    if inc.opened_at.is_some() {
        EventKind::Resolved
    } else {
        EventKind::Cleared
    }
}

/// Acknowledges an active, unacknowledged incident by hand.
pub fn acknowledge(
    inc: &Incident,
    by: &str,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Change, String> {
    match inc.state {
        IncidentState::Open => {
            let mut c = Change {
                incident: inc.clone(),
                events: Vec::new(),
            };
            c.incident.state = IncidentState::Acknowledged;
            c.incident.acknowledged_at = Some(now);
            c.incident.acknowledged_by = Some(by.to_string());
            c.events.push(Event {
                id: 0,
                kind: EventKind::Acknowledged,
                at: now,
                actor: by.into(),
                severity: inc.severity,
                note,
                fields: Default::default(),
            });
            Ok(c)
        }
        IncidentState::Pending => Err(format!(
            "incident {} is pending: nobody has been told yet, so there is nothing to acknowledge",
            inc.id
        )),
        IncidentState::Acknowledged => Err(format!(
            "incident {} is already acknowledged by {}",
            inc.id,
            inc.acknowledged_by.as_deref().unwrap_or("someone")
        )),
        IncidentState::Resolved => Err(format!("incident {} is resolved", inc.id)),
    }
}

/// Resolves an active incident by hand.
pub fn resolve(
    inc: &Incident,
    by: &str,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Change, String> {
    if !inc.state.is_active() {
        return Err(format!("incident {} is already resolved", inc.id));
    }
    let mut c = Change {
        incident: inc.clone(),
        events: Vec::new(),
    };
    c.incident.state = IncidentState::Resolved;
    c.incident.resolved_at = Some(now);
    c.incident.resolved_by = Some(by.to_string());
    c.incident.pass_streak = 0;
    c.incident.flapping = false;
    c.events.push(Event {
        id: 0,
        kind: ending(inc),
        at: now,
        actor: by.into(),
        severity: inc.severity,
        note,
        fields: Default::default(),
    });
    Ok(c)
}

/// Adds a note to an incident's timeline.
pub fn note(inc: &Incident, by: &str, text: String, now: DateTime<Utc>) -> Change {
    Change {
        incident: inc.clone(),
        events: vec![Event {
            id: 0,
            kind: EventKind::Note,
            at: now,
            actor: by.into(),
            severity: inc.severity,
            note: Some(text),
            fields: Default::default(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Lifecycle;
    use crate::model::{ErrorKind, Threshold};
    use Severity::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn id() -> CheckId {
        CheckId("finance/recon".into())
    }

    fn key(v: &str) -> Key {
        Key(vec![("day".into(), v.into())])
    }

    fn obs(k: &str, status: Status) -> Observation {
        Observation {
            key: key(k),
            status,
            metric: Some(1.0),
            value: Some(1.0),
            threshold: Some(Threshold {
                severity: P2,
                op: crate::model::Op::Gt,
                limit: 0.0,
                unit: crate::model::Unit::Number,
                text: "> 0".into(),
            }),
            label: None,
            sample: vec![],
        }
    }

    fn evaluated(list: Vec<Observation>) -> Outcome {
        Outcome::Evaluated {
            columns: vec![],
            observations: list,
            rows: 0,
            capped: false,
        }
    }

    fn breach_of(k: &str, s: Severity) -> Outcome {
        evaluated(vec![obs(k, Status::Breach { severity: s })])
    }

    fn policy(open_after: u32, resolve_after: u32) -> Policy {
        Policy {
            lifecycle: Lifecycle {
                open_after,
                resolve_after,
                ..Lifecycle::default()
            },
            ..Policy::default()
        }
    }

    /// Applies changes to a store of latest incidents, assigning ids like the store does.
    fn apply(store: &mut Vec<Incident>, changes: &[Change]) {
        for c in changes {
            let mut inc = c.incident.clone();
            if inc.id == 0 {
                inc.id = store.len() as i64 + 1;
                store.push(inc);
            } else {
                let i = store.iter().position(|s| s.id == inc.id).unwrap();
                store[i] = inc;
            }
        }
    }

    fn latest(store: &[Incident]) -> Vec<Incident> {
        let mut by_fp: HashMap<String, Incident> = HashMap::new();
        for i in store {
            if by_fp.get(&i.fingerprint).is_none_or(|p| p.id < i.id) {
                by_fp.insert(i.fingerprint.clone(), i.clone());
            }
        }
        by_fp.into_values().collect()
    }

    fn kinds(changes: &[Change]) -> Vec<EventKind> {
        changes
            .iter()
            .flat_map(|c| c.events.iter().map(|e| e.kind))
            .collect()
    }

    #[test]
    fn opens_dedups_raises_and_resolves() {
        let p = policy(1, 1);
        let mut store = Vec::new();
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P2), &[], 0, t(0));
        assert_eq!(kinds(&c), vec![EventKind::Opened]);
        assert_eq!(c[0].incident.title, "[P2] finance/recon — day=d1");
        apply(&mut store, &c);
        // Same breach again: no new incident, no event.
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P2), &latest(&store), 0, t(1));
        assert_eq!(kinds(&c), vec![]);
        apply(&mut store, &c);
        // Worse: raised, title unchanged.
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P0), &latest(&store), 0, t(2));
        assert_eq!(kinds(&c), vec![EventKind::SeverityRaised]);
        assert_eq!(c[0].incident.severity, P0);
        assert_eq!(c[0].incident.title, "[P2] finance/recon — day=d1");
        apply(&mut store, &c);
        // Milder: never falls by itself.
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P3), &latest(&store), 0, t(3));
        assert_eq!(
            (
                kinds(&c),
                c[0].incident.severity,
                c[0].incident.current_severity
            ),
            (vec![], P0, P3)
        );
        apply(&mut store, &c);
        // Key disappears: counts as passing, resolves.
        let (c, _) = reconcile(&id(), &p, &evaluated(vec![]), &latest(&store), 0, t(4));
        assert_eq!(kinds(&c), vec![EventKind::Resolved]);
        assert_eq!(c[0].incident.resolved_by.as_deref(), Some(SYSTEM_ACTOR));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn pending_until_open_after() {
        let p = policy(3, 1);
        let mut store = Vec::new();
        let mut all = Vec::new();
        for m in 0..3 {
            let (c, _) = reconcile(&id(), &p, &breach_of("d1", P1), &latest(&store), 0, t(m));
            all.extend(kinds(&c));
            apply(&mut store, &c);
        }
        assert_eq!(all, vec![EventKind::Detected, EventKind::Opened]);
        assert_eq!(store[0].state, IncidentState::Open);
        assert_eq!(store[0].opened_at, Some(t(2)));
    }

    #[test]
    fn resolve_needs_consecutive_passes() {
        let p = policy(1, 2);
        let mut store = Vec::new();
        let pass = evaluated(vec![obs("d1", Status::Pass)]);
        for (m, outcome, want) in [
            (0, breach_of("d1", P1), vec![EventKind::Opened]),
            (1, pass.clone(), vec![]),
            (2, breach_of("d1", P1), vec![]),
            (3, pass.clone(), vec![]),
            (4, pass, vec![EventKind::Resolved]),
        ] {
            let (c, _) = reconcile(&id(), &p, &outcome, &latest(&store), 0, t(m));
            assert_eq!(kinds(&c), want, "minute {m}");
            apply(&mut store, &c);
        }
    }

    #[test]
    fn errors_never_resolve_and_open_check_failure() {
        let p = policy(1, 1);
        let mut store = Vec::new();
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P1), &[], 0, t(0));
        apply(&mut store, &c);
        let err = Outcome::Error {
            kind: ErrorKind::Query,
            message: "no such table".into(),
        };
        let (c, streak) = reconcile(&id(), &p, &err, &latest(&store), 0, t(1));
        assert_eq!((kinds(&c), streak), (vec![], 1));
        let (c, streak) = reconcile(&id(), &p, &err, &latest(&store), streak, t(2));
        assert_eq!((kinds(&c), streak), (vec![EventKind::Opened], 2));
        assert_eq!(c[0].incident.category, Category::CheckFailure);
        assert_eq!(c[0].incident.title, "[P2] finance/recon — check cannot run");
        assert_eq!(
            c[0].incident.detail.as_deref(),
            Some("query: no such table")
        );
        apply(&mut store, &c);
        assert_eq!(store[0].state, IncidentState::Open);
        // Running again (key gone) resolves both the key's and the failure incident.
        let (c, streak) = reconcile(&id(), &p, &evaluated(vec![]), &latest(&store), 2, t(3));
        assert_eq!(
            (kinds(&c), streak),
            (vec![EventKind::Resolved, EventKind::Resolved], 0)
        );
    }

    #[test]
    fn reopens_within_window_as_repeat() {
        let p = Policy {
            lifecycle: Lifecycle {
                reopen_within: std::time::Duration::from_secs(3600),
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        let mut store = Vec::new();
        for (m, outcome) in [(0, breach_of("d1", P1)), (1, evaluated(vec![]))] {
            let (c, _) = reconcile(&id(), &p, &outcome, &latest(&store), 0, t(m));
            apply(&mut store, &c);
        }
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P2), &latest(&store), 0, t(30));
        assert_eq!(kinds(&c), vec![EventKind::Reopened]);
        assert_eq!((c[0].incident.id, c[0].incident.repeat_count), (1, 1));
        apply(&mut store, &c);
        let (c, _) = reconcile(&id(), &p, &evaluated(vec![]), &latest(&store), 0, t(31));
        apply(&mut store, &c);
        // Outside the window: a new incident.
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P2), &latest(&store), 0, t(200));
        assert_eq!((kinds(&c), c[0].incident.id), (vec![EventKind::Opened], 0));
    }

    #[test]
    fn capped_result_resolves_no_key_it_did_not_read() {
        // See: issues/10 item 2
        let p = policy(1, 1);
        let mut store = Vec::new();
        let (c, _) = reconcile(&id(), &p, &breach_of("d9", P2), &[], 0, t(0));
        apply(&mut store, &c);
        let capped = Outcome::Evaluated {
            columns: vec![],
            observations: vec![obs("d1", Status::Pass)],
            rows: 5,
            capped: true,
        };
        let (c, _) = reconcile(&id(), &p, &capped, &latest(&store), 0, t(1));
        assert_eq!(kinds(&c), vec![], "d9 was past the cap: not known to pass");
        // What it did read still counts.
        let capped = Outcome::Evaluated {
            columns: vec![],
            observations: vec![obs("d9", Status::Pass)],
            rows: 5,
            capped: true,
        };
        let (c, _) = reconcile(&id(), &p, &capped, &latest(&store), 0, t(2));
        assert_eq!(kinds(&c), vec![EventKind::Resolved]);
    }

    /// Runs `pattern` (B = breach of d1 at P2, P = pass) an hour apart from `start` hours;
    /// returns every event kind told, in order.
    fn replay(p: &Policy, store: &mut Vec<Incident>, start: i64, pattern: &str) -> Vec<EventKind> {
        let mut told = Vec::new();
        for (n, c) in pattern.chars().enumerate() {
            let outcome = if c == 'B' {
                breach_of("d1", P2)
            } else {
                evaluated(vec![obs("d1", Status::Pass)])
            };
            let at = t((start + n as i64) * 60);
            let (c, _) = reconcile(&id(), p, &outcome, &latest(store), 0, at);
            told.extend(kinds(&c).into_iter().filter(|k| k.template().is_some()));
            apply(store, &c);
        }
        told
    }

    #[test]
    fn n_of_m_opens_a_problem_that_comes_and_goes() {
        let p = Policy {
            lifecycle: Lifecycle {
                open_after: 3,
                open_window: Some(crate::config::Window { n: 3, m: 5 }),
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        let mut store = Vec::new();
        // Never three in a row, but three of five: it opens on the third breach.
        assert_eq!(replay(&p, &mut store, 0, "BPBP"), vec![]);
        assert_eq!(
            store.len(),
            1,
            "one pending incident, kept through the passes"
        );
        assert_eq!(replay(&p, &mut store, 4, "B"), vec![EventKind::Opened]);
        // Without the window the same runs never open.
        let mut store = Vec::new();
        assert_eq!(replay(&policy(3, 1), &mut store, 0, "BPBPBPBP"), vec![]);
    }

    #[test]
    fn a_pending_incident_clears_once_the_window_holds_no_breach() {
        let p = Policy {
            lifecycle: Lifecycle {
                open_after: 4,
                open_window: Some(crate::config::Window { n: 3, m: 4 }),
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        let mut store = Vec::new();
        replay(&p, &mut store, 0, "BPPP");
        assert_eq!(store[0].state, IncidentState::Pending);
        replay(&p, &mut store, 4, "P");
        assert_eq!(store[0].state, IncidentState::Resolved);
        assert!(store[0].opened_at.is_none(), "cleared, nobody told");
    }

    #[test]
    fn a_flapping_incident_is_told_once_then_resolves_once_when_stable() {
        let p = policy(1, 1);
        let mut store = Vec::new();
        let told = replay(&p, &mut store, 0, "BPBPBPBPBPBPBPPPPPP");
        // Two episodes are two episodes; the third change into breaching is flapping: its
        // reopening says so, and then nothing until five passes in a row resolve it.
        assert_eq!(
            told,
            vec![
                EventKind::Opened,
                EventKind::Resolved,
                EventKind::Reopened,
                EventKind::Resolved,
                EventKind::Reopened,
                EventKind::Resolved,
            ]
        );
        assert_eq!(store.len(), 1);
        assert!(!store[0].flapping);
        assert_eq!(store[0].state, IncidentState::Resolved);
    }

    #[test]
    fn an_open_incident_that_would_resolve_while_flapping_says_so_once() {
        // resolve_after = 2: it never resolved, but its state kept changing.
        let p = policy(1, 2);
        let mut store = Vec::new();
        let told = replay(&p, &mut store, 0, "BPBPBPPBPBPPPPPP");
        assert_eq!(
            told,
            vec![EventKind::Opened, EventKind::Flapping, EventKind::Resolved]
        );
        assert_eq!(store.len(), 1);
        assert_eq!(store[0].state, IncidentState::Resolved);
    }

    #[test]
    fn a_flapping_incident_that_settles_breaching_is_told_once() {
        let p = policy(1, 1);
        let mut store = Vec::new();
        let told = replay(&p, &mut store, 0, "BPBPBPBBBBBBBB");
        assert_eq!(
            told,
            vec![
                EventKind::Opened,
                EventKind::Resolved,
                EventKind::Reopened,
                EventKind::Resolved,
                EventKind::Reopened,
                EventKind::Settled,
            ]
        );
        assert_eq!(store[0].state, IncidentState::Open);
        assert!(!store[0].flapping);
    }

    #[test]
    fn flap_off_tells_every_change() {
        let p = Policy {
            lifecycle: Lifecycle {
                flap: None,
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        let mut store = Vec::new();
        let told = replay(&p, &mut store, 0, "BPBPBP");
        assert_eq!(told.len(), 6);
    }

    #[test]
    fn data_not_yet_due_is_pending_not_a_ticket() {
        let p = Policy {
            lifecycle: Lifecycle {
                due: Some(std::time::Duration::from_secs(3 * 3600)),
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        // t(0) is 2026-11-23 12:00; yesterday's partition is due today at 03:00, today's
        // tomorrow at 03:00.
        let today = evaluated(vec![obs("2026-11-23", Status::Breach { severity: P2 })]);
        let (c, _) = reconcile(&id(), &p, &today, &[], 0, t(0));
        assert_eq!(kinds(&c), vec![EventKind::Detected]);
        let mut store = Vec::new();
        apply(&mut store, &c);
        // It lands before it is due: cleared, nobody told.
        let landed = evaluated(vec![obs("2026-11-23", Status::Pass)]);
        let (c, _) = reconcile(&id(), &p, &landed, &latest(&store), 0, t(600));
        assert_eq!(kinds(&c), vec![EventKind::Cleared]);
        // Still missing after it is due (tomorrow 03:00 = t(15 h)): a ticket.
        let (c, _) = reconcile(&id(), &p, &today, &[], 0, t(15 * 60));
        assert_eq!(kinds(&c), vec![EventKind::Opened]);
        let yesterday = evaluated(vec![obs("2026-11-22", Status::Breach { severity: P2 })]);
        let (c, _) = reconcile(&id(), &p, &yesterday, &[], 0, t(0));
        assert_eq!(kinds(&c), vec![EventKind::Opened]);
    }

    fn keys_breaching(range: std::ops::Range<u32>, passing: std::ops::Range<u32>) -> Outcome {
        let mut list: Vec<Observation> = range
            .map(|d| obs(&format!("2026-10-{d:02}"), Status::Breach { severity: P2 }))
            .collect();
        list.extend(passing.map(|d| obs(&format!("2026-10-{d:02}"), Status::Pass)));
        evaluated(list)
    }

    #[test]
    fn a_storm_of_keys_is_one_incident_that_follows_its_keys() {
        let p = policy(1, 1);
        let mut store = Vec::new();
        let run = |outcome: Outcome, m: i64, store: &mut Vec<Incident>| {
            let (c, _) = reconcile(&id(), &p, &outcome, &latest(store), 0, t(m));
            apply(store, &c);
            kinds(&c)
        };
        // 30 partitions missing at once: one ticket listing them.
        assert_eq!(
            run(keys_breaching(1..31, 0..0), 0, &mut store),
            vec![EventKind::Opened]
        );
        assert_eq!(store.len(), 1);
        assert_eq!(store[0].fingerprint, "finance/recon#storm");
        assert_eq!(store[0].members.len(), 30);
        assert_eq!(store[0].title, "[P2] finance/recon — 30 keys breaching");
        // Backfilled one by one: on the timeline, nobody mailed.
        assert_eq!(
            run(keys_breaching(2..31, 1..2), 1, &mut store),
            vec![EventKind::KeysLeft]
        );
        assert_eq!(store[0].members.len(), 29);
        // A key joins: told.
        let mut more = keys_breaching(2..32, 1..2);
        if let Outcome::Evaluated { observations, .. } = &mut more {
            assert_eq!(observations.len(), 31);
        }
        assert_eq!(run(more, 2, &mut store), vec![EventKind::KeysJoined]);
        assert_eq!(store[0].members.len(), 30);
        // All back: one resolution, no per-key incident ever.
        assert_eq!(
            run(keys_breaching(0..0, 1..32), 3, &mut store),
            vec![EventKind::Resolved]
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_few_keys_are_their_own_incidents_and_keep_them_in_a_storm() {
        let p = policy(1, 1);
        let mut store = Vec::new();
        let (c, _) = reconcile(&id(), &p, &keys_breaching(1..3, 0..0), &[], 0, t(0));
        assert_eq!(kinds(&c), vec![EventKind::Opened, EventKind::Opened]);
        apply(&mut store, &c);
        // Twelve more join: the two keep their tickets, the twelve new ones are one storm.
        let (c, _) = reconcile(
            &id(),
            &p,
            &keys_breaching(1..15, 0..0),
            &latest(&store),
            0,
            t(1),
        );
        assert_eq!(kinds(&c), vec![EventKind::Opened]);
        apply(&mut store, &c);
        let storm = store
            .iter()
            .find(|i| i.fingerprint.ends_with(STORM))
            .unwrap();
        assert_eq!(storm.members.len(), 12);
        // Below the limit with no storm open: per key.
        let p = Policy {
            lifecycle: Lifecycle {
                group_keys: 0,
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        let (c, _) = reconcile(&id(), &p, &keys_breaching(1..31, 0..0), &[], 0, t(0));
        assert_eq!(c.len(), 30, "group_keys = 0 never groups");
    }

    #[test]
    fn pending_that_never_opened_clears_and_starts_over() {
        // See: issues/10 item 5
        let p = Policy {
            lifecycle: Lifecycle {
                open_after: 2,
                reopen_within: std::time::Duration::from_secs(3600),
                ..Lifecycle::default()
            },
            ..Policy::default()
        };
        let mut store = Vec::new();
        let mut all = Vec::new();
        for (m, outcome) in [
            (0, breach_of("d1", P1)),
            (1, evaluated(vec![])),
            (2, breach_of("d1", P1)),
        ] {
            let (c, _) = reconcile(&id(), &p, &outcome, &latest(&store), 0, t(m));
            all.extend(kinds(&c));
            apply(&mut store, &c);
        }
        // Nobody was told: cleared (no mail), and the next breach is a new pending incident.
        assert_eq!(
            all,
            vec![EventKind::Detected, EventKind::Cleared, EventKind::Detected]
        );
        assert_eq!(store.len(), 2);
        assert_eq!(
            (store[1].state, store[1].repeat_count),
            (IncidentState::Pending, 0)
        );
        // By hand, a pending incident is cleared too, not "resolved" to nobody.
        let by_hand = resolve(&store[1], "alice", None, t(3)).unwrap();
        assert_eq!(kinds(&[by_hand]), vec![EventKind::Cleared]);
    }

    #[test]
    fn a_manual_resolve_while_breaching_does_not_rerun_the_chain() {
        // See: issues/10 item 7
        let step = |after_secs| crate::incidents::Step {
            after_secs,
            email: vec!["boss@example.com".into()],
            until_resolved: false,
        };
        let mut p = policy(1, 1);
        p.lifecycle.reopen_within = std::time::Duration::from_secs(3600);
        p.escalations.insert(P1, (vec![step(60), step(600)], None));
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P1), &[], 0, t(0));
        let mut inc = c[0].incident.clone();
        inc.id = 1;
        inc.escalation_step = 1; // the first step went out
        let done = resolve(&inc, "alice", None, t(2)).unwrap().incident;
        // Still breaching on the next run: reopened, the chain resumes at step 2.
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P1), &[done], 0, t(3));
        assert_eq!(kinds(&c), vec![EventKind::Reopened]);
        let i = &c[0].incident;
        assert_eq!(i.escalation_step, 1, "step 1 is not sent again");
        assert_eq!(
            i.next_escalation_at,
            Some(t(3) + chrono::Duration::seconds(600))
        );
        // A real recurrence (resolved because it passed) starts the chain over.
        let (c, _) = reconcile(&id(), &p, &evaluated(vec![]), &[inc], 0, t(2));
        let passed = c[0].incident.clone();
        let (c, _) = reconcile(&id(), &p, &breach_of("d1", P1), &[passed], 0, t(3));
        assert_eq!(c[0].incident.escalation_step, 0);
    }

    #[test]
    fn manual_ack_and_resolve() {
        let (c, _) = reconcile(&id(), &policy(1, 1), &breach_of("d1", P1), &[], 0, t(0));
        let mut inc = c[0].incident.clone();
        inc.id = 7;
        let acked = acknowledge(&inc, "alice", Some("on it".into()), t(1)).unwrap();
        assert_eq!(acked.incident.state, IncidentState::Acknowledged);
        assert!(
            acknowledge(&acked.incident, "bob", None, t(2))
                .unwrap_err()
                .contains("already acknowledged by alice")
        );
        let done = resolve(&acked.incident, "alice", Some("backfilled".into()), t(3)).unwrap();
        assert_eq!(done.incident.resolved_by.as_deref(), Some("alice"));
        assert!(resolve(&done.incident, "bob", None, t(4)).is_err());
        assert!(acknowledge(&done.incident, "bob", None, t(4)).is_err());
    }

    /// Model-based: random outcome sequences against the lifecycle's invariants.
    #[test]
    fn random_sequences_keep_the_invariants() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..300 {
            let p = policy(1 + next(3) as u32, 1 + next(3) as u32);
            let mut store: Vec<Incident> = Vec::new();
            let mut streak = 0;
            for m in 0..40 {
                let outcome = match next(5) {
                    0 => Outcome::Error {
                        kind: ErrorKind::Timeout,
                        message: "t".into(),
                    },
                    n => Outcome::Evaluated {
                        columns: vec![],
                        rows: 0,
                        capped: n == 1,
                        observations: ["a", "b"]
                            .iter()
                            .filter_map(|k| match next(4) {
                                0 => None,
                                1 => Some(obs(k, Status::Pass)),
                                s => Some(obs(
                                    k,
                                    Status::Breach {
                                        severity: Severity::ALL[(s as usize + m) % 4],
                                    },
                                )),
                            })
                            .collect(),
                    },
                };
                let capped = matches!(outcome, Outcome::Evaluated { capped: true, .. });
                let before = latest(&store);
                let (changes, s) = reconcile(&id(), &p, &outcome, &before, streak, t(m as i64));
                streak = s;
                for c in &changes {
                    let old = before
                        .iter()
                        .find(|b| b.id == c.incident.id && c.incident.id != 0);
                    // Every state change emits exactly one event (new incidents: one).
                    let state_changed = old.is_none_or(|o| {
                        o.state != c.incident.state
                            || o.flapping != c.incident.flapping
                            || (o.severity != c.incident.severity
                                && o.state != IncidentState::Pending)
                    });
                    assert_eq!(
                        c.events.len(),
                        usize::from(state_changed),
                        "{c:?} from {old:?}"
                    );
                    if let Some(o) = old {
                        // Severity never falls while open.
                        if o.state.is_active()
                            && c.incident.state.is_active()
                            && o.state != IncidentState::Pending
                        {
                            assert!(c.incident.severity <= o.severity);
                        }
                        // An error never resolves.
                        if outcome.is_error() {
                            assert!(c.incident.state.is_active());
                        }
                        // A resolve needs resolve_after passing runs.
                        if o.state.is_active() && c.incident.state == IncidentState::Resolved {
                            assert!(c.incident.pass_streak >= p.lifecycle.resolve_after);
                        }
                        // A capped result resolves nothing it did not read.
                        if capped && c.incident.state == IncidentState::Resolved {
                            let Outcome::Evaluated { observations, .. } = &outcome else {
                                unreachable!()
                            };
                            assert!(
                                c.incident.fingerprint.ends_with(CHECK_FAILURE)
                                    || observations
                                        .iter()
                                        .any(|ob| fingerprint(&id(), &ob.key)
                                            == c.incident.fingerprint),
                                "{c:?}"
                            );
                        }
                    }
                    // Nobody told, nobody told again: an incident that never opened neither
                    // reopens nor resolves with a mail; one that opened never clears silently.
                    for e in &c.events {
                        let told = old.is_some_and(|o| o.opened_at.is_some());
                        match e.kind {
                            EventKind::Reopened => assert!(told, "{c:?}"),
                            EventKind::Resolved => assert!(told, "{c:?}"),
                            EventKind::Cleared => assert!(!told, "{c:?}"),
                            _ => {}
                        }
                    }
                }
                apply(&mut store, &changes);
                // At most one active incident per fingerprint.
                let mut active = HashSet::new();
                for i in store.iter().filter(|i| i.state.is_active()) {
                    assert!(
                        active.insert(i.fingerprint.clone()),
                        "two active incidents for {}",
                        i.fingerprint
                    );
                }
            }
        }
    }
}
