//! Apply: the one path from an incident change to stored state and queued mail. Reconcile
//! (pure) gives the changes, compose (pure) renders each event's mail, and the store writes
//! runs, incidents, events and mails in one transaction. Every entry point — a run, the
//! daemon's recorder and escalator, a change by hand or over HTTP — comes through here; the
//! store never renders (a mail carries the incident and event ids the transaction assigns,
//! so it is rendered between the store's writes, inside the transaction).

use crate::checks::Check;
use crate::checks::maintenance::{self, Subject, Window};
use crate::compose::{CheckInfo, Composer, Sample, TemplateError};
use crate::config::Config;
use crate::config::Config as Cfg;
use crate::engine::run::CheckRun;
use crate::incidents::{
    Change, Controls, Event, EventKind, Hold, Incident, Policy, fingerprint, hold, inhibit, quiet,
    reconcile,
};
use crate::model::{Mail, Outcome, Status};
use crate::store::{Recorded, RunRow, SlotClaim, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// A change that could not be applied; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The change does not apply to the incident as it is (acknowledging a resolved one…).
    #[error("{message}")]
    Refused {
        /// Why.
        message: String,
    },
    /// A template failed while composing an event's mail.
    #[error("failed to compose the mail for incident {incident}")]
    Compose {
        /// The incident.
        incident: i64,
        /// The template error.
        #[source]
        source: TemplateError,
    },
}

impl ApplyError {
    /// The whole chain as one line: "failed to …: cause".
    pub fn chain(&self) -> String {
        crate::diag::error_chain(self)
    }
}

/// What a mail tells beyond the incident: the check's facts, the breaching rows, the last
/// passing run — by check id (facts, last pass) or fingerprint (rows).
#[derive(Debug, Default)]
pub struct Facts {
    /// Ticket facts per check id.
    pub infos: HashMap<String, CheckInfo>,
    /// Breaching rows per fingerprint.
    pub samples: HashMap<String, Sample>,
    /// The last passing run per check id.
    pub last_pass: HashMap<String, String>,
    /// Incidents whose notifications are held by a snooze or mute, by id.
    pub holds: HashMap<i64, Hold>,
    /// Checks in a maintenance window: the window's name, by check id.
    pub windows: HashMap<String, String>,
    /// Controls to write with a change made by hand (assign, snooze, mute), by incident id.
    pub controls: HashMap<i64, Controls>,
}

impl Facts {
    /// Facts about one check (changes by hand, escalation).
    pub fn of(info: Option<&CheckInfo>) -> Self {
        let mut facts = Facts::default();
        if let Some(i) = info {
            facts.infos.insert(i.id.clone(), i.clone());
        }
        facts
    }

    /// Why `inc`'s notifications are held, if they are.
    pub fn hold(&self, inc: &Incident) -> Option<Hold> {
        self.holds.get(&inc.id).cloned().or_else(|| {
            self.windows
                .get(&inc.check_id.0)
                .map(|w| Hold::Maintenance { window: w.clone() })
        })
    }

    /// The mail for an event, to the routes' recipients or to `to`; `None` when it tells
    /// nobody.
    pub fn compose(
        &self,
        composer: &Composer,
        inc: &Incident,
        event: &Event,
        to: Option<&[String]>,
    ) -> Result<Option<Mail>, ApplyError> {
        let check = &inc.check_id.0;
        let info = self.infos.get(check);
        let sample = self.samples.get(&inc.fingerprint);
        let last_pass = self.last_pass.get(check).map(String::as_str);
        match to {
            None => composer.compose(inc, event, info, sample, last_pass),
            Some(to) => composer.compose_to(inc, event, info, sample, last_pass, to.to_vec()),
        }
        .map_err(|source| ApplyError::Compose {
            incident: inc.id,
            source,
        })
    }
}

impl Facts {
    /// The channel messages (Slack, PagerDuty, Teams, webhooks) for an event.
    pub fn notices(
        &self,
        composer: &Composer,
        inc: &Incident,
        event: &Event,
    ) -> Result<Vec<crate::model::Notice>, ApplyError> {
        let check = &inc.check_id.0;
        composer
            .notices(
                inc,
                event,
                self.infos.get(check),
                self.samples.get(&inc.fingerprint),
                self.last_pass.get(check).map(String::as_str),
            )
            .map_err(|source| ApplyError::Compose {
                incident: inc.id,
                source,
            })
    }
}

/// What a check tells a ticket about itself.
pub fn check_info(check: &Check) -> CheckInfo {
    CheckInfo {
        id: check.id.0.clone(),
        path: check.path.display().to_string(),
        description: check.description.clone(),
        connection: check.connection.clone(),
        runbook: check.runbook.clone(),
        owners: check.owners.clone(),
        tags: check.tags.clone(),
        impact: check.impact.clone(),
    }
}

/// Records `runs` (each settling its schedule slot, when it has one) and `changes`, with
/// the mail of every event, in one transaction: all of it or none.
pub async fn record(
    store: &Store,
    composer: &Composer,
    runs: &[RunRow<'_>],
    changes: &[Change],
    facts: &Facts,
    now: DateTime<Utc>,
) -> Result<Recorded, ApplyError> {
    let mut tx = store.begin().await?;
    tx.finish_slots(runs, now).await?;
    tx.write_runs(runs).await?;
    let mut done = Recorded::default();
    for change in changes {
        let mut inc = change.incident.clone();
        let arming = change
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Opened | EventKind::Reopened));
        inc.id = tx.write_incident(&inc, arming).await?;
        let told = change.events.iter().any(|e| e.kind.template().is_some());
        if let Some(sample) = facts.samples.get(&inc.fingerprint).filter(|_| told) {
            tx.write_sample(inc.id, &sample.to_json()).await?;
        }
        for ev in &change.events {
            let event = Event {
                id: tx.write_event(inc.id, ev).await?,
                ..ev.clone()
            };
            done.count(&event);
            let held = facts.hold(&inc).is_some();
            if let Some(mail) = facts.compose(composer, &inc, &event, None)? {
                if held {
                    // Held: on the timeline, not mailed; the hold's end is told once.
                    tx.mark_held(inc.id, now).await?;
                    done.held += 1;
                } else {
                    tx.write_mail(inc.id, event.id, &mail, now).await?;
                    done.mails += 1;
                }
            }
            // Channels are held with the mail, and told the hold's end with it.
            if !held {
                for notice in facts.notices(composer, &inc, &event)? {
                    tx.write_notice(inc.id, event.id, &notice, now).await?;
                }
            }
        }
        if let Some(c) = facts.controls.get(&change.incident.id) {
            tx.write_controls(inc.id, c).await?;
        }
    }
    tx.commit().await?;
    Ok(done)
}

/// Reconciles finished runs with the incident state and records them ([`record`]).
/// `slots[i]`, when given, is the schedule slot `runs[i]` ran for: if one of them is no
/// longer held by its replica (taken over after its lease ran out), nothing is recorded and
/// the error is [`StoreError::SlotsLost`].
pub async fn record_runs(
    runs: &[CheckRun],
    slots: &[Option<SlotClaim<'_>>],
    store: &Store,
    composer: &Composer,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Recorded, ApplyError> {
    // An incident changed by someone else meanwhile (an acknowledgement, another replica):
    // nothing was written; reconcile again from the new state.
    let mut attempt = 0;
    loop {
        match reconcile_and_record(runs, slots, store, composer, config, now).await {
            Err(ApplyError::Store(e)) if e.is_conflict() && attempt < MAX_RETRIES => attempt += 1,
            done => return done,
        }
    }
}

/// How often a change that lost a race with another writer is tried again.
const MAX_RETRIES: u32 = 5;

async fn reconcile_and_record(
    runs: &[CheckRun],
    slots: &[Option<SlotClaim<'_>>],
    store: &Store,
    composer: &Composer,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Recorded, ApplyError> {
    let window = runs
        .iter()
        .map(|r| r.check.lifecycle.reopen_within)
        .max()
        .unwrap_or_default();
    let since =
        now - chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(3650));
    // Only the state of what this pass ran: its checks and their connections' checks.
    let connections: Vec<crate::model::CheckId> = runs
        .iter()
        .map(|r| inhibit::connection_check(&r.check.connection))
        .collect();
    let mut ids: Vec<&str> = runs.iter().map(|r| r.check.id.0.as_str()).collect();
    ids.extend(connections.iter().map(|c| c.0.as_str()));
    ids.sort_unstable();
    ids.dedup();
    let known = store.known_incidents_of(since, &ids).await?;
    // Read after the incidents: a snooze set in between bumped the revision, so the write
    // below is refused and this pass reconciles again.
    let holds: HashMap<i64, Hold> = store
        .controls()
        .await?
        .into_iter()
        .filter_map(|(id, c)| c.hold(now).map(|h| (id, h)))
        .collect();
    let states = store.check_states_of(&ids).await?;
    let windows = maintenance::windows(config).unwrap_or_default();
    let tz = config.daemon.timezone;
    // Moved, not copied: a storm's members are thousands of small strings.
    let mut by_check: HashMap<String, Vec<Incident>> = HashMap::new();
    for inc in known {
        by_check
            .entry(inc.check_id.0.clone())
            .or_default()
            .push(inc);
    }

    let mut changes = Vec::new();
    let mut rows = Vec::with_capacity(runs.len());
    let mut facts = Facts {
        holds,
        ..Facts::default()
    };
    let empty = Vec::new();
    // A connection no check reached is one incident, and its checks' connection errors are
    // held: no check_failure incident per check, nothing resolved or re-told.
    let reach = inhibit::reachability(
        runs.iter()
            .map(|r| (r.check.connection.as_str(), &r.outcome)),
    );
    for (connection, unreachable) in &reach {
        let id = inhibit::connection_check(connection);
        let down = config
            .connections
            .get(*connection)
            .map(|c| c.down.clone())
            .unwrap_or_default();
        let policy = Policy::new(config.incidents, down.category, &config.severities);
        let known = by_check.get(id.0.as_str()).unwrap_or(&empty);
        let outcome = inhibit::connection_outcome(*unreachable, down.severity);
        let (mut c, _) = reconcile(&id, &policy, &outcome, known, 0, now);
        for change in &mut c {
            // The ticket says why, as a check failure's does.
            if let Some(error) = unreachable {
                change.incident.detail = Some(format!("connection: {error}"));
            }
        }
        // Routes match its tags as they match a check's.
        if !c.is_empty() {
            facts.infos.insert(
                id.0.clone(),
                CheckInfo {
                    id: id.0.clone(),
                    description: Some(format!(
                        "The connection \"{connection}\" cannot be reached by any check"
                    )),
                    connection: (*connection).to_string(),
                    tags: down.tags.clone(),
                    ..CheckInfo::default()
                },
            );
        }
        let subject = Subject {
            id: &id.0,
            connection,
            tags: &down.tags,
        };
        if let Some((w, _)) = maintenance::holding(&windows, tz, now, subject) {
            facts.windows.insert(id.0.clone(), w.name().to_string());
        }
        changes.append(&mut c);
    }
    // A check's known incidents are dropped after its last run here (a batch may hold two
    // runs of one check): a storm's copy is in its change by then.
    let last: HashMap<&str, usize> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.check.id.0.as_str(), i))
        .collect();
    for (i, run) in runs.iter().enumerate() {
        let check = &run.check;
        let policy = Policy {
            timezone: config.daemon.timezone,
            ..Policy::new(check.lifecycle, check.category, &config.severities)
        };
        let (streak, last_pass) = states.get(&check.id.0).cloned().unwrap_or_default();
        if let Some(p) = last_pass {
            facts.last_pass.insert(check.id.0.clone(), p);
        }
        let known = by_check.get(check.id.0.as_str()).unwrap_or(&empty);
        let (mut c, streak) =
            if inhibit::is_held(&run.outcome, reach.get(check.connection.as_str())) {
                (Vec::new(), streak)
            } else {
                reconcile(&check.id, &policy, &run.outcome, known, streak, now)
            };
        if last.get(check.id.0.as_str()) == Some(&i) {
            by_check.remove(check.id.0.as_str());
        }
        // What a mail or notice tells: only an event is told.
        if c.iter().any(|ch| !ch.events.is_empty()) {
            facts.infos.insert(check.id.0.clone(), check_info(check));
        }
        let subject = Subject {
            id: &check.id.0,
            connection: &check.connection,
            tags: &check.tags,
        };
        if let Some((w, _)) = maintenance::holding(&windows, tz, now, subject) {
            facts
                .windows
                .insert(check.id.0.clone(), w.name().to_string());
        }
        changes.append(&mut c);
        rows.push(RunRow {
            check_id: &check.id,
            started_at: run.started_at,
            duration_ms: run.duration.as_millis() as i64,
            outcome: &run.outcome,
            error_streak: streak,
            slot: slots.get(i).copied().flatten(),
        });
    }
    // Breaching rows only for the incidents this pass changes with an event (a key storm's
    // thousands of keys are one incident): they are written and mailed with an event, never
    // otherwise — a storm that only carries on tells nothing.
    let changed: HashSet<&str> = changes
        .iter()
        .filter(|ch| !ch.events.is_empty())
        .map(|ch| ch.incident.fingerprint.as_str())
        .collect();
    facts.samples = samples(runs, &changed);
    // In a maintenance window an incident that would open stays pending: the first run
    // after the window that still breaches opens it.
    quiet::hold_openings(&mut changes, |inc| {
        facts.windows.get(&inc.check_id.0).cloned()
    });
    record(store, composer, &rows, &changes, &facts, now).await
}

/// The breaching rows of `runs` by fingerprint, for the fingerprints in `changed`: a key's
/// own rows, and a storm's the first row of each of its keys (20 at most).
fn samples(runs: &[CheckRun], changed: &HashSet<&str>) -> HashMap<String, Sample> {
    let mut samples = HashMap::new();
    for run in runs {
        let Outcome::Evaluated {
            columns,
            observations,
            rows: read,
            capped,
        } = &run.outcome
        else {
            continue;
        };
        let check = &run.check.id;
        let storm = format!("{check}{}", crate::incidents::reconcile::STORM);
        let storm_changed = changed.contains(storm.as_str());
        for o in observations
            .iter()
            .filter(|o| matches!(o.status, Status::Breach { .. }))
        {
            if storm_changed {
                let all = samples.entry(storm.clone()).or_insert_with(|| Sample {
                    columns: columns.clone(),
                    rows: Vec::new(),
                    capped: capped.then_some(*read),
                });
                if all.rows.len() < 20 {
                    all.rows.extend(o.sample.first().cloned());
                }
            }
            let fp = fingerprint(check, &o.key);
            if changed.contains(fp.as_str()) {
                samples.insert(
                    fp,
                    Sample {
                        columns: columns.clone(),
                        rows: o.sample.clone(),
                        capped: capped.then_some(*read),
                    },
                );
            }
        }
    }
    samples
}

/// Applies a change made by hand (acknowledge, resolve, note …) to incident `id`: reads it,
/// lets `decide` make the change, and records it with its mail. When another writer changed
/// the incident in between, reads it again and decides again. `None`: no such incident.
pub async fn change_incident(
    store: &Store,
    composer: &Composer,
    infos: &HashMap<String, CheckInfo>,
    id: i64,
    now: DateTime<Utc>,
    decide: impl Fn(&Incident) -> Result<Change, String>,
) -> Result<Option<(Change, Recorded)>, ApplyError> {
    change_incident_with(store, composer, infos, id, now, |inc, _| {
        decide(inc).map(|c| (c, None))
    })
    .await
}

/// [`change_incident`] for a change that also sets the incident's controls (assign,
/// snooze, mute): `decide` sees them as read and returns the new ones, written in the same
/// transaction.
pub async fn change_incident_with(
    store: &Store,
    composer: &Composer,
    infos: &HashMap<String, CheckInfo>,
    id: i64,
    now: DateTime<Utc>,
    decide: impl Fn(&Incident, &Controls) -> Result<(Change, Option<Controls>), String>,
) -> Result<Option<(Change, Recorded)>, ApplyError> {
    let mut attempt = 0;
    loop {
        let Some((inc, _)) = store.incident(id).await? else {
            return Ok(None);
        };
        // Read after the incident: a change in between bumped its revision, so the write
        // is refused and this decides again.
        let controls = store.controls_of(id).await?;
        let (change, set) =
            decide(&inc, &controls).map_err(|message| ApplyError::Refused { message })?;
        let mut facts = Facts::of(infos.get(&inc.check_id.0));
        if let Some(c) = set {
            facts.controls.insert(inc.id, c);
        }
        match record(
            store,
            composer,
            &[],
            std::slice::from_ref(&change),
            &facts,
            now,
        )
        .await
        {
            Ok(rec) => return Ok(Some((change, rec))),
            Err(ApplyError::Store(e)) if e.is_conflict() && attempt < MAX_RETRIES => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Each incident's controls and current hold (its snooze or mute, or a maintenance window
/// over its check; none once resolved), by id: what lists and pages show.
pub async fn holds(
    store: &Store,
    config: &Cfg,
    infos: &HashMap<String, CheckInfo>,
    list: &[Incident],
    now: DateTime<Utc>,
) -> Result<HashMap<i64, (Controls, Option<Hold>)>, StoreError> {
    let mut controls = store.controls().await?;
    let windows = maintenance::windows(config).unwrap_or_default();
    Ok(list
        .iter()
        .map(|i| {
            let c = controls.remove(&i.id).unwrap_or_default();
            let h = i
                .state
                .is_active()
                .then(|| hold_of(i, &c, &windows, config, infos, now))
                .flatten();
            (i.id, (c, h))
        })
        .collect())
}

/// What ending a hold did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    /// Holds ended here.
    pub ended: usize,
    /// Mails written.
    pub mails: usize,
}

/// Why `inc`'s notifications are held at `now`: its snooze or mute, or a maintenance
/// window over its check (or its connection, for a connection incident).
pub fn hold_of(
    inc: &Incident,
    controls: &Controls,
    windows: &[Window],
    config: &Cfg,
    infos: &HashMap<String, CheckInfo>,
    now: DateTime<Utc>,
) -> Option<Hold> {
    controls.hold(now).or_else(|| {
        window_of(inc, windows, config, infos, now).map(|window| Hold::Maintenance { window })
    })
}

fn window_of(
    inc: &Incident,
    windows: &[Window],
    config: &Cfg,
    infos: &HashMap<String, CheckInfo>,
    now: DateTime<Utc>,
) -> Option<String> {
    let id = inc.check_id.0.as_str();
    let info = infos.get(id);
    let connection = info.map_or_else(
        || id.strip_prefix("connection/").unwrap_or_default(),
        |i| i.connection.as_str(),
    );
    let subject = Subject {
        id,
        connection,
        tags: info.map_or(&[], |i| &i.tags),
    };
    maintenance::holding(windows, config.daemon.timezone, now, subject)
        .map(|(w, _)| w.name().to_string())
}

/// Tells the end of every hold that is over at `now` — a snooze that ran out, a
/// maintenance window that closed — once across replicas ([`hold::end`]). The daemon calls
/// it every tick and `dqwatch run` after recording.
pub async fn end_holds(
    store: &Store,
    composer: &Composer,
    config: &Cfg,
    infos: &HashMap<String, CheckInfo>,
    now: DateTime<Utc>,
) -> Result<Ended, ApplyError> {
    let windows = maintenance::windows(config).unwrap_or_default();
    // Over: nothing holds it now — or it is muted and resolved (a mute has no end of its own,
    // and a thread must get its resolution).
    let over = |inc: &Incident, c: &Controls| match hold_of(inc, c, &windows, config, infos, now) {
        None => true,
        Some(Hold::Muted) => !inc.state.is_active(),
        Some(_) => false,
    };
    let mut done = Ended::default();
    for (inc, controls) in store.held_incidents().await? {
        if !over(&inc, &controls) {
            continue;
        }
        let why = if controls.muted {
            if inc.state.is_active() {
                "mute ended"
            } else {
                "resolved while muted"
            }
        } else if controls.snoozed_until.is_some() {
            "snooze ended"
        } else {
            "maintenance window ended"
        };
        let cleared = Controls {
            snoozed_until: None,
            muted: false,
            hold_reason: None,
            hold_by: None,
            held_since: None,
            ..controls
        };
        if let Some(mails) =
            end_hold(store, composer, infos, inc.id, &cleared, why, "", now, over).await?
        {
            done.ended += 1;
            done.mails += mails;
        }
    }
    Ok(done)
}

/// Ends incident `id`'s hold by hand (`unsnooze`, `unmute`): clears it and tells what
/// [`hold::end`] says, at once. `None`: no such incident. Refused when it is not held.
pub async fn unhold(
    store: &Store,
    composer: &Composer,
    infos: &HashMap<String, CheckInfo>,
    id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<usize>, ApplyError> {
    let mut attempt = 0;
    loop {
        let Some((inc, _)) = store.incident(id).await? else {
            return Ok(None);
        };
        let controls = store.controls_of(id).await?;
        let cleared = crate::incidents::respond::unhold(&inc, &controls, now)
            .map_err(|message| ApplyError::Refused { message })?;
        let cleared = Controls {
            held_since: None,
            ..cleared
        };
        let why = if controls.muted {
            format!("unmuted by {by}")
        } else {
            format!("unsnoozed by {by}")
        };
        match end_hold(
            store,
            composer,
            infos,
            id,
            &cleared,
            &why,
            by,
            now,
            |_, c| c.hold(now).is_some(),
        )
        .await?
        {
            Some(mails) => return Ok(Some(mails)),
            None if attempt < MAX_RETRIES => attempt += 1,
            None => {
                return Err(ApplyError::Store(StoreError::Conflict { incident: id }));
            }
        }
    }
}

/// Ends one hold in one transaction: re-reads the incident, checks `still` on it and its
/// fresh controls, writes `cleared` by a conditional update on the revision, the `hold_ended`
/// entry, and the mails [`hold::end`] asks for. `Some(mails)` when this writer ended it,
/// `None` when another writer changed the incident first (or `still` says no).
#[allow(clippy::too_many_arguments)]
async fn end_hold(
    store: &Store,
    composer: &Composer,
    infos: &HashMap<String, CheckInfo>,
    id: i64,
    cleared: &Controls,
    why: &str,
    actor: &str,
    now: DateTime<Utc>,
    still: impl Fn(&Incident, &Controls) -> bool,
) -> Result<Option<usize>, ApplyError> {
    let Some((inc, events)) = store.incident(id).await? else {
        return Ok(None);
    };
    // The controls after the incident: a change in between moved the revision on, and the
    // conditional update below refuses.
    let fresh = store.controls_of(id).await?;
    // Nothing held any more (another writer told the end), or still held.
    if fresh.held_since.is_none() || !still(&inc, &fresh) {
        return Ok(None);
    }
    let cleared = Controls {
        assignee: fresh.assignee.clone(),
        ..cleared.clone()
    };
    let mailed = store.mailed_events(id).await?;
    let end = hold::end(&inc, &events, &mailed, why, actor, now);
    let facts = Facts::of(infos.get(&inc.check_id.0));
    // A reminder that fell due during the hold is the end's one mail: the next one counts
    // from now.
    let next_reminder = match (inc.next_reminder_at, inc.renotify_secs) {
        (Some(at), Some(every)) if at <= now => Some(now + crate::incidents::policy::secs(every)),
        (at, _) => at,
    };
    let mut tx = store.begin().await?;
    if !tx.end_hold(&inc, &cleared, next_reminder).await? {
        return Ok(None);
    }
    let event = Event {
        id: tx.write_event(id, &end.event).await?,
        ..end.event.clone()
    };
    let mut mails = 0;
    if end.tell {
        if let Some(mail) = facts.compose(composer, &inc, &event, None)? {
            tx.write_mail(id, event.id, &mail, now).await?;
            mails += 1;
        }
        for notice in facts.notices(composer, &inc, &event)? {
            tx.write_notice(id, event.id, &notice, now).await?;
        }
    }
    if let Some(held) = end.send.and_then(|e| events.iter().find(|ev| ev.id == e)) {
        if let Some(mail) = facts.compose(composer, &inc, held, None)? {
            tx.write_mail(id, held.id, &mail, now).await?;
            mails += 1;
        }
        for notice in facts.notices(composer, &inc, held)? {
            tx.write_notice(id, held.id, &notice, now).await?;
        }
    }
    tx.commit().await?;
    Ok(Some(mails))
}

/// Takes an escalation step (`step_to`) or a reminder (`reminder_next`) once across
/// replicas — a conditional update decides — and records its event with its mail (to `to`,
/// or to the routes) in the same transaction. False when another replica was first. When
/// `facts` says the incident is held, the step is taken and on the timeline, not mailed.
#[allow(clippy::too_many_arguments)]
pub async fn take_step(
    store: &Store,
    composer: &Composer,
    inc: &Incident,
    step_to: Option<(u32, Option<DateTime<Utc>>)>,
    reminder_next: Option<DateTime<Utc>>,
    event: Option<&Event>,
    to: Option<&[String]>,
    facts: &Facts,
    now: DateTime<Utc>,
) -> Result<bool, ApplyError> {
    let mut tx = store.begin().await?;
    if !tx.take_step(inc, step_to, reminder_next).await? {
        return Ok(false);
    }
    if let Some(ev) = event {
        let held = facts.hold(inc);
        let mut ev = ev.clone();
        if let Some(h) = &held {
            // Taken, on the timeline, not mailed: the hold's end is told once.
            let held_note = format!("held: {}", h.describe());
            ev.note = Some(match ev.note.take() {
                Some(n) => format!("{n} ({held_note})"),
                None => held_note,
            });
        }
        let event = Event {
            id: tx.write_event(inc.id, &ev).await?,
            ..ev
        };
        if let Some(mail) = facts.compose(composer, inc, &event, to)? {
            if held.is_some() {
                tx.mark_held(inc.id, now).await?;
            } else {
                tx.write_mail(inc.id, event.id, &mail, now).await?;
            }
        }
        if held.is_none() {
            for notice in facts.notices(composer, inc, &event)? {
                tx.write_notice(inc.id, event.id, &notice, now).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}
