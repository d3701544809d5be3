//! Apply: the one path from an incident change to stored state and queued mail. Reconcile
//! (pure) gives the changes, compose (pure) renders each event's mail, and the store writes
//! runs, incidents, events and mails in one transaction. Every entry point — a run, the
//! daemon's recorder and escalator, a change by hand or over HTTP — comes through here; the
//! store never renders (a mail carries the incident and event ids the transaction assigns,
//! so it is rendered between the store's writes, inside the transaction).

use crate::checks::Check;
use crate::compose::{CheckInfo, Composer, Sample, TemplateError};
use crate::config::Config;
use crate::engine::run::CheckRun;
use crate::incidents::{
    Change, Event, EventKind, Incident, Policy, fingerprint, inhibit, reconcile,
};
use crate::model::{Category, Mail, Outcome, Status};
use crate::store::{Recorded, RunRow, SlotClaim, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

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
        for ev in &change.events {
            let event = Event {
                id: tx.write_event(inc.id, ev).await?,
                ..ev.clone()
            };
            done.count(&event);
            if let Some(mail) = facts.compose(composer, &inc, &event, None)? {
                tx.write_mail(inc.id, event.id, &mail, now).await?;
                done.mails += 1;
            }
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
    let states = store.check_states_of(&ids).await?;
    let mut by_check: HashMap<&str, Vec<Incident>> = HashMap::new();
    for inc in &known {
        by_check
            .entry(inc.check_id.0.as_str())
            .or_default()
            .push(inc.clone());
    }

    let mut changes = Vec::new();
    let mut rows = Vec::with_capacity(runs.len());
    let mut facts = Facts::default();
    let empty = Vec::new();
    // A connection no check reached is one incident, and its checks' connection errors are
    // held: no check_failure incident per check, nothing resolved or re-told.
    let reach = inhibit::reachability(
        runs.iter()
            .map(|r| (r.check.connection.as_str(), &r.outcome)),
    );
    for (connection, unreachable) in &reach {
        let id = inhibit::connection_check(connection);
        let policy = Policy::new(config.incidents, Category::CheckFailure, &config.severities);
        let known = by_check.get(id.0.as_str()).unwrap_or(&empty);
        let outcome = inhibit::connection_outcome(*unreachable);
        let (mut c, _) = reconcile(&id, &policy, &outcome, known, 0, now);
        for change in &mut c {
            // The ticket says why, as a check failure's does.
            if let Some(error) = unreachable {
                change.incident.detail = Some(format!("connection: {error}"));
            }
        }
        changes.append(&mut c);
    }
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
        if let Outcome::Evaluated {
            columns,
            observations,
            rows: read,
            capped,
        } = &run.outcome
        {
            for o in observations
                .iter()
                .filter(|o| matches!(o.status, Status::Breach { .. }))
            {
                facts.samples.insert(
                    fingerprint(&check.id, &o.key),
                    Sample {
                        columns: columns.clone(),
                        rows: o.sample.clone(),
                        capped: capped.then_some(*read),
                    },
                );
            }
        }
        if !c.is_empty() {
            facts.infos.insert(check.id.0.clone(), check_info(check));
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
    record(store, composer, &rows, &changes, &facts, now).await
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
    let mut attempt = 0;
    loop {
        let Some((inc, _)) = store.incident(id).await? else {
            return Ok(None);
        };
        let change = decide(&inc).map_err(|message| ApplyError::Refused { message })?;
        let facts = Facts::of(infos.get(&inc.check_id.0));
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

/// Takes an escalation step (`step_to`) or a reminder (`reminder_next`) once across
/// replicas — a conditional update decides — and records its event with its mail (to `to`,
/// or to the routes) in the same transaction. False when another replica was first.
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
        let event = Event {
            id: tx.write_event(inc.id, ev).await?,
            ..ev.clone()
        };
        if let Some(mail) = facts.compose(composer, inc, &event, to)? {
            tx.write_mail(inc.id, event.id, &mail, now).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}
