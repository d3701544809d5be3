//! One pass over a set of checks: fetch each on its warehouse (all connections in
//! parallel, each within its `max_concurrency`), evaluate, and collect a [`RunReport`];
//! then reconcile it with the incident state and record it with its mails.
//! A check that cannot run is an `Outcome::Error` in the report, never an `Err`.

use crate::checks::Check;
use crate::clock::Clock;
use crate::compose::{CheckInfo, Composer, Sample};
use crate::config::Config;
use crate::evaluate::evaluate;
use crate::incidents::{Event, Incident, Policy, fingerprint, reconcile};
use crate::model::{ErrorKind, Outcome, Severity, Status};
use crate::store::{Recorded, RunRow, SlotClaim, Store, StoreError};
use crate::warehouse::Warehouses;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// One check's result in a pass.
#[derive(Debug, Clone)]
pub struct CheckRun {
    /// The check.
    pub check: Arc<Check>,
    /// What it found.
    pub outcome: Outcome,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long fetch and evaluation took.
    pub duration: Duration,
}

/// The result of one pass, checks in id order.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// When the pass started.
    pub started_at: DateTime<Utc>,
    /// Wall time of the whole pass.
    pub duration: Duration,
    /// One entry per check.
    pub runs: Vec<CheckRun>,
}

impl RunReport {
    /// Checks that could not run.
    pub fn errors(&self) -> usize {
        self.runs.iter().filter(|r| r.outcome.is_error()).count()
    }

    /// Breaching keys at `sev` or worse.
    pub fn breaches_at_least(&self, sev: Severity) -> usize {
        self.runs
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Evaluated { observations, .. } => Some(observations),
                Outcome::Error { .. } => None,
            })
            .flatten()
            .filter(|o| matches!(o.status, crate::model::Status::Breach { severity } if severity.at_least(sev)))
            .count()
    }
}

/// Runs `checks` once. `on_done` is told of each check as it finishes (progress display).
/// Rules judged against history read it from `store`; without one they are check errors.
pub async fn run(
    checks: Vec<Arc<Check>>,
    warehouses: &Warehouses,
    store: Option<&Store>,
    clock: &dyn Clock,
    on_done: &(dyn Fn(&CheckRun) + Sync),
) -> RunReport {
    let started_at = clock.now();
    let begin = Instant::now();
    let mut tasks = JoinSet::new();
    let mut runs: Vec<Option<CheckRun>> = vec![None; checks.len()];
    let collect = |joined: Result<(usize, CheckRun), tokio::task::JoinError>,
                   runs: &mut Vec<Option<CheckRun>>| match joined {
        Ok((i, run)) => {
            on_done(&run);
            runs[i] = Some(run);
        }
        Err(e) => tracing::error!(error = %e, "Check task failed."),
    };
    // Enough checks in flight to keep every connection busy, and no more: each waiting task
    // holds ~10 kB, which at thousands of checks is most of the memory.
    let in_flight = (warehouses.total_concurrency() * 4).max(64);
    for (i, check) in checks.iter().enumerate() {
        while tasks.len() >= in_flight {
            match tasks.join_next().await {
                Some(joined) => collect(joined, &mut runs),
                None => break,
            }
        }
        let check = Arc::clone(check);
        let warehouse = warehouses.get(&check.connection).cloned();
        let warehouses = warehouses.clone();
        let store = store.cloned();
        let now = clock.now();
        tasks.spawn(async move {
            let t = Instant::now();
            let outcome = match (&check.reconcile, warehouse) {
                (_, w) if check.history.is_some() => {
                    crate::engine::history::outcome(&check, w, store, now).await
                }
                (Some(spec), _) => reconcile_sides(&check, spec, &warehouses).await,
                (None, Some(w)) => match w.fetch(&check.sql).await {
                    Ok(rows) => evaluate(&check, &rows),
                    Err(err) => Outcome::Error {
                        kind: err.kind(),
                        message: err.to_string(),
                    },
                },
                (None, None) => Outcome::Error {
                    kind: ErrorKind::Connection,
                    message: format!("connection \"{}\" is not configured", check.connection),
                },
            };
            (
                i,
                CheckRun {
                    check,
                    outcome,
                    started_at: now,
                    duration: t.elapsed(),
                },
            )
        });
    }
    while let Some(joined) = tasks.join_next().await {
        collect(joined, &mut runs);
    }
    // A task that panicked still gets a row: it is an error, not a silent gap.
    let runs = runs
        .into_iter()
        .zip(checks)
        .map(|(r, check)| {
            r.unwrap_or_else(|| CheckRun {
                check,
                outcome: Outcome::Error {
                    kind: ErrorKind::Query,
                    message: "internal error while running the check".into(),
                },
                started_at,
                duration: Duration::ZERO,
            })
        })
        .collect();
    RunReport {
        started_at,
        duration: begin.elapsed(),
        runs,
    }
}

/// Runs both sides of a reconciliation (at once, possibly on two warehouses) and judges the
/// joined rows.
async fn reconcile_sides(
    check: &Check,
    spec: &crate::checks::Reconcile,
    warehouses: &Warehouses,
) -> Outcome {
    let fetch = |side: &crate::checks::Side| {
        let name = side
            .connection
            .clone()
            .unwrap_or_else(|| check.connection.clone());
        let w = warehouses.get(&name).cloned();
        let sql = side.sql.clone();
        async move {
            match w {
                Some(w) => w
                    .fetch(&sql)
                    .await
                    .map_err(|e| (e.kind(), format!("{name}: {e}"))),
                None => Err((
                    ErrorKind::Connection,
                    format!("connection \"{name}\" is not configured"),
                )),
            }
        }
    };
    let (source, target) = tokio::join!(fetch(&spec.source), fetch(&spec.target));
    let joined = source.and_then(|s| target.map(|t| crate::evaluate::join_sides(&s, &t, spec)));
    match joined {
        Ok(Ok(rows)) => evaluate(check, &rows),
        Ok(Err(e)) => e.into(),
        Err((kind, message)) => Outcome::Error { kind, message },
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

/// Reconciles a pass with the incident state and records it, mails included, in one
/// transaction.
pub async fn record(
    report: &RunReport,
    store: &Store,
    composer: &Composer,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    record_slots(report, &[], store, composer, config, now).await
}

/// [`record`] for scheduled runs: `slots[i]` is the schedule slot `report.runs[i]` ran for.
/// The slots are settled in the same transaction; if one of them is no longer held by its
/// replica (taken over after its lease ran out), nothing is recorded and the error is
/// [`StoreError::SlotsLost`].
pub async fn record_slots(
    report: &RunReport,
    slots: &[Option<SlotClaim<'_>>],
    store: &Store,
    composer: &Composer,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let window = report
        .runs
        .iter()
        .map(|r| r.check.lifecycle.reopen_within)
        .max()
        .unwrap_or_default();
    let since =
        now - chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(3650));
    let known = store.known_incidents(since).await?;
    let states = store.check_states().await?;
    let mut by_check: HashMap<&str, Vec<Incident>> = HashMap::new();
    for inc in &known {
        by_check
            .entry(inc.check_id.0.as_str())
            .or_default()
            .push(inc.clone());
    }

    let mut changes = Vec::new();
    let mut rows = Vec::with_capacity(report.runs.len());
    let mut infos: HashMap<String, CheckInfo> = HashMap::new();
    let mut samples: HashMap<String, Sample> = HashMap::new();
    for (i, run) in report.runs.iter().enumerate() {
        let check = &run.check;
        let policy = Policy::new(
            check.lifecycle,
            check.category,
            &check.impact,
            &config.impacts,
            &config.severities,
        );
        let (streak, _) = states.get(&check.id.0).cloned().unwrap_or_default();
        let empty = Vec::new();
        let known = by_check.get(check.id.0.as_str()).unwrap_or(&empty);
        let (mut c, streak) = reconcile(&check.id, &policy, &run.outcome, known, streak, now);
        if let Outcome::Evaluated {
            columns,
            observations,
            ..
        } = &run.outcome
        {
            for o in observations
                .iter()
                .filter(|o| matches!(o.status, Status::Breach { .. }))
            {
                samples.insert(
                    fingerprint(&check.id, &o.key),
                    Sample {
                        columns: columns.clone(),
                        rows: o.sample.clone(),
                    },
                );
            }
        }
        if !c.is_empty() {
            infos.insert(check.id.0.clone(), check_info(check));
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
    let compose = |inc: &Incident, ev: &Event| {
        let last_pass = states.get(&inc.check_id.0).and_then(|(_, p)| p.as_deref());
        let mail = composer.compose(
            inc,
            ev,
            infos.get(&inc.check_id.0),
            samples.get(&inc.fingerprint),
            last_pass,
        );
        mail.map_err(|e| e.to_string())
    };
    store.record(&rows, &changes, now, &compose).await
}
