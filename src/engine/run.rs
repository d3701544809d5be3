//! One pass over a set of checks: fetch each on its warehouse (all connections in
//! parallel, each within its `max_concurrency`), evaluate, and collect a [`RunReport`].
//! A check that cannot run is an `Outcome::Error` in the report, never an `Err`.

use crate::checks::Check;
use crate::clock::Clock;
use crate::evaluate::evaluate;
use crate::model::{ErrorKind, Outcome, QueryStats, Severity};
use crate::store::Store;
use crate::warehouse::{Job, Warehouses};
use chrono::{DateTime, Utc};
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
    /// How long the check itself took: its queries and their judging, without the wait for
    /// a free connection slot.
    pub duration: Duration,
    /// How long it waited for a free connection slot (`max_concurrency`) first.
    pub queued: Duration,
    /// What the warehouse told about the check's queries (query ids, bytes processed).
    pub stats: QueryStats,
}

/// A selected check that was not run, and why (a history rule under `--no-incidents`).
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The check.
    pub check: Arc<Check>,
    /// Why it did not run, for the report.
    pub reason: String,
}

/// Why a history rule does not run under `--no-incidents`.
pub const SKIPPED_NO_INCIDENTS: &str =
    "skipped: this rule compares with dqwatch's stored history, which --no-incidents leaves out";

/// Splits `checks` into those a pass without the state store runs and the history rules it
/// skips (`run --no-incidents`).
pub fn without_history(checks: Vec<Arc<Check>>) -> (Vec<Arc<Check>>, Vec<Skipped>) {
    let (history, run): (Vec<_>, Vec<_>) = checks.into_iter().partition(|c| c.history.is_some());
    let skipped = history
        .into_iter()
        .map(|check| Skipped {
            check,
            reason: SKIPPED_NO_INCIDENTS.to_string(),
        })
        .collect();
    (run, skipped)
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
    /// Selected checks that were not run.
    pub skipped: Vec<Skipped>,
}

impl RunReport {
    /// Checks that could not run, or left a key unjudged.
    pub fn errors(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.outcome.is_error() || r.outcome.unjudged() > 0)
            .count()
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
    run_watched(checks, warehouses, store, clock, &|_| {}, on_done).await
}

/// [`run`], also telling `on_start` of each check as it is sent off (the progress bar names
/// the checks in flight).
pub async fn run_watched(
    checks: Vec<Arc<Check>>,
    warehouses: &Warehouses,
    store: Option<&Store>,
    clock: &dyn Clock,
    on_start: &(dyn Fn(&Check) + Sync),
    on_done: &(dyn Fn(&CheckRun) + Sync),
) -> RunReport {
    let started_at = clock.now();
    let begin = Instant::now();
    let mut tasks = JoinSet::new();
    let mut runs: Vec<Option<CheckRun>> = vec![None; checks.len()];
    let collect = |joined: Result<Vec<(usize, CheckRun)>, tokio::task::JoinError>,
                   runs: &mut Vec<Option<CheckRun>>| match joined {
        Ok(done) => {
            for (i, run) in done {
                on_done(&run);
                runs[i] = Some(run);
            }
        }
        Err(e) => tracing::error!(error = %e, "Check task failed."),
    };
    // Enough checks in flight to keep every connection busy, and no more: each waiting task
    // holds ~10 kB, which at thousands of checks is most of the memory. Rule checks on one
    // table share a scan: one task runs them all.
    let in_flight = (warehouses.total_concurrency() * 4).max(64);
    for unit in crate::checks::fuse::scans(&checks) {
        while tasks.len() >= in_flight {
            match tasks.join_next().await {
                Some(joined) => collect(joined, &mut runs),
                None => break,
            }
        }
        let members: Vec<Arc<Check>> = unit.iter().map(|&i| Arc::clone(&checks[i])).collect();
        for check in &members {
            on_start(check);
        }
        let (warehouses, store) = (warehouses.clone(), store.cloned());
        let now = clock.now();
        tasks.spawn(async move {
            let done = run_scan(members, &warehouses, store.as_ref(), now).await;
            unit.into_iter().zip(done).collect::<Vec<_>>()
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
                queued: Duration::ZERO,
                stats: QueryStats::default(),
            })
        })
        .collect();
    RunReport {
        started_at,
        duration: begin.elapsed(),
        runs,
        skipped: Vec::new(),
    }
}

/// Runs one check (fetch, then judge) started at `now`, timing it. The daemon calls this
/// once per claimed slot; [`run`] once per check of a pass.
pub async fn run_one(
    check: Arc<Check>,
    warehouses: &Warehouses,
    store: Option<&Store>,
    now: DateTime<Utc>,
) -> CheckRun {
    let t = Instant::now();
    let mut stats = QueryStats::default();
    let (outcome, queued) = match (&check.reconcile, warehouses.get(&check.connection)) {
        (_, w) if check.history.is_some() => {
            let (outcome, s) =
                crate::engine::history::outcome(&check, w.cloned(), store.cloned(), now).await;
            stats = s;
            (outcome, Duration::ZERO)
        }
        (Some(spec), _) => reconcile_sides(&check, spec, warehouses, &mut stats).await,
        (None, Some(w)) => {
            let fetched = w.fetch_timed(&check.sql, job(&check)).await;
            stats = fetched.stats;
            match fetched.rows {
                Ok(rows) => (evaluate(&check, &rows), fetched.queued),
                Err(err) => (
                    Outcome::Error {
                        kind: err.kind(),
                        message: err.to_string(),
                    },
                    fetched.queued,
                ),
            }
        }
        (None, None) => (
            Outcome::Error {
                kind: ErrorKind::Connection,
                message: format!("connection \"{}\" is not configured", check.connection),
            },
            Duration::ZERO,
        ),
    };
    CheckRun {
        outcome: crate::evaluate::drop_unread_samples(
            &check,
            crate::evaluate::apply_policy(&check, outcome),
        ),
        check,
        started_at: now,
        duration: t.elapsed().saturating_sub(queued),
        queued,
        stats,
    }
}

/// Runs checks that share a scan of one table (see [`crate::checks::fuse`]): one query, its
/// rows cut into each check's own, each judged as if it had run alone. One check, or checks
/// whose connection is not configured, run alone. If the shared query fails other than by
/// timing out, each check runs alone, so that every error is its own check's; a timeout is
/// every member's error. Results in the order of `checks`.
pub async fn run_scan(
    checks: Vec<Arc<Check>>,
    warehouses: &Warehouses,
    store: Option<&Store>,
    now: DateTime<Utc>,
) -> Vec<CheckRun> {
    let (Some(parts), Some(w)) = (
        crate::checks::fuse::shared(&checks),
        checks.first().and_then(|c| warehouses.get(&c.connection)),
    ) else {
        return alone(checks, warehouses, store, now).await;
    };
    let t = Instant::now();
    let sql = crate::checks::fuse::sql(&parts);
    let fetched = w.fetch_timed(&sql, job(&checks[0])).await;
    let split = match &fetched.rows {
        Ok(rs) => crate::checks::fuse::split(rs, &parts).ok_or_else(|| {
            "the result does not have the shape the shared query asked for".to_string()
        }),
        Err(e) if e.kind() == ErrorKind::Timeout => {
            let message = format!(
                "{e} (in one scan of {} shared by {} checks; `fuse = false` runs a check alone)",
                parts[0].table,
                checks.len()
            );
            return checks
                .into_iter()
                .map(|check| CheckRun {
                    outcome: Outcome::Error {
                        kind: ErrorKind::Timeout,
                        message: message.clone(),
                    },
                    check,
                    started_at: now,
                    duration: t.elapsed().saturating_sub(fetched.queued),
                    queued: fetched.queued,
                    stats: QueryStats::default(),
                })
                .collect();
        }
        Err(e) => Err(e.to_string()),
    };
    let split = match split {
        Ok(split) => split,
        Err(error) => {
            tracing::warn!(table = %parts[0].table, %error, "A shared scan failed; its checks run alone.");
            return alone(checks, warehouses, store, now).await;
        }
    };
    let n = checks.len();
    let mut out = Vec::with_capacity(n);
    for (i, (check, rows)) in checks.into_iter().zip(split).enumerate() {
        let outcome = if check.history.is_some() {
            crate::engine::history::outcome_of(&check, rows, store.cloned(), now).await
        } else {
            evaluate(&check, &rows)
        };
        let stats = QueryStats {
            query_ids: fetched.stats.query_ids.clone(),
            bytes_processed: fetched.stats.bytes_processed.filter(|_| i == 0),
            fused: Some(n),
        };
        out.push(CheckRun {
            outcome: crate::evaluate::drop_unread_samples(
                &check,
                crate::evaluate::apply_policy(&check, outcome),
            ),
            check,
            started_at: now,
            duration: t.elapsed().saturating_sub(fetched.queued),
            queued: fetched.queued,
            stats,
        });
    }
    out
}

/// Runs each of `checks` on its own, all at once (each connection still runs at most its
/// `max_concurrency`); results in the order of `checks`.
async fn alone(
    checks: Vec<Arc<Check>>,
    warehouses: &Warehouses,
    store: Option<&Store>,
    now: DateTime<Utc>,
) -> Vec<CheckRun> {
    futures_util::future::join_all(
        checks
            .into_iter()
            .map(|check| run_one(check, warehouses, store, now)),
    )
    .await
}

/// What the warehouse is told about the check a query runs for.
pub fn job(check: &Check) -> Job<'_> {
    Job {
        check: &check.id.0,
        max_bytes_billed: check.max_bytes_billed,
    }
}

/// Runs both sides of a reconciliation (at once, possibly on two warehouses) and judges the
/// joined rows; also how long the later side waited for a connection slot.
async fn reconcile_sides(
    check: &Check,
    spec: &crate::checks::Reconcile,
    warehouses: &Warehouses,
    stats: &mut QueryStats,
) -> (Outcome, Duration) {
    let fetch = |side: &crate::checks::Side| {
        let name = side
            .connection
            .clone()
            .unwrap_or_else(|| check.connection.clone());
        let w = warehouses.get(&name).cloned();
        let sql = side.sql.clone();
        async move {
            match w {
                Some(w) => {
                    let f = w.fetch_timed(&sql, job(check)).await;
                    (
                        f.rows.map_err(|e| (e.kind(), format!("{name}: {e}"))),
                        f.queued,
                        f.stats,
                    )
                }
                None => (
                    Err((
                        ErrorKind::Connection,
                        format!("connection \"{name}\" is not configured"),
                    )),
                    Duration::ZERO,
                    QueryStats::default(),
                ),
            }
        }
    };
    let ((source, q1, s1), (target, q2, s2)) =
        tokio::join!(fetch(&spec.source), fetch(&spec.target));
    stats.merge(s1);
    stats.merge(s2);
    let joined = source.and_then(|s| target.map(|t| crate::evaluate::join_sides(&s, &t, spec)));
    let outcome = match joined {
        Ok(Ok(rows)) => evaluate(check, &rows),
        Ok(Err(e)) => e.into(),
        Err((kind, message)) => Outcome::Error { kind, message },
    };
    (outcome, q1.max(q2))
}
