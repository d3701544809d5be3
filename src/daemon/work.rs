//! The daemon's three work loops: the scheduler (claims due slots and starts their runs), the
//! recorder (reconciles finished runs in batches, one transaction each) and the deliverer
//! (sends the outbox). Each loop selects on the shutdown token against its next tick.

use super::Shared;
use super::scheduler::{Plan, Slot};
use crate::runner::{self, CheckRun, RunReport};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Runs recorded in one transaction at most.
const RECORD_BATCH: usize = 2000;
/// The deliverer's idle tick.
const DELIVER_EVERY: Duration = Duration::from_secs(5);
/// The longest pause between delivery passes while the mail transport is down.
const TRANSPORT_PAUSE_MAX: Duration = Duration::from_secs(300);

/// Plans and starts scheduled runs until shutdown; re-plans on reload.
pub async fn schedule(
    shared: Arc<Shared>,
    tx: mpsc::Sender<CheckRun>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let loaded = shared.loaded();
        let last = loop {
            match shared.store.last_slots().await {
                Ok(l) => break l,
                Err(e) => {
                    shared.set_ready(false);
                    tracing::warn!(error = %e.chain(), "Cannot read schedule slots; retrying.");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        let tz = loaded.config.daemon.timezone;
        let (mut plan, missed) = Plan::new(
            &loaded.checks,
            tz,
            shared.clock.now(),
            &last,
            loaded.config.daemon.catch_up,
        );
        if !missed.is_empty() {
            tracing::info!(slots = missed.len(), "Catching up slots missed while down.");
        }
        launch(&shared, missed, &tx, &tracker, &running, &shutdown).await;
        loop {
            let due = plan.due(shared.clock.now());
            if !due.is_empty() {
                launch(&shared, due, &tx, &tracker, &running, &shutdown).await;
            }
            let now = shared.clock.now();
            let wait = plan
                .next_wake()
                .and_then(|t| (t - now).to_std().ok())
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(1));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = shared.replanned.notified() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Claims `slots` (one replica wins each) and starts a run for every claimed one whose check
/// is not still running: a check never overlaps itself.
async fn launch(
    shared: &Arc<Shared>,
    slots: Vec<Slot>,
    tx: &mpsc::Sender<CheckRun>,
    tracker: &TaskTracker,
    running: &Arc<Mutex<HashSet<String>>>,
    shutdown: &CancellationToken,
) {
    let now = shared.clock.now();
    let free: Vec<Slot> = {
        let busy = running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .into_iter()
            .filter(|(c, t)| {
                let skip = busy.contains(&c.id.0);
                if skip {
                    tracing::warn!(check = %c.id, slot = %t, "Slot skipped: the previous run is still going.");
                    metrics::counter!("dqwatch_slots_skipped_total").increment(1);
                }
                !skip
            })
            .collect()
    };
    let keys: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        free.iter().map(|(c, t)| (c.id.0.clone(), *t)).collect();
    let claimed = match shared.store.claim_slots(&keys, &shared.replica, now).await {
        Ok(c) => {
            shared.set_ready(true);
            c
        }
        Err(e) => {
            shared.set_ready(false);
            tracing::warn!(error = %e.chain(), slots = keys.len(), "Cannot claim slots; they are skipped.");
            return;
        }
    };
    let loaded = shared.loaded();
    let mut jobs = Vec::new();
    {
        let mut busy = running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (check, fire_at) in free {
            if claimed.contains(&(check.id.0.clone(), fire_at)) {
                busy.insert(check.id.0.clone());
                jobs.push((check, fire_at));
            }
        }
    }
    // One dispatcher starts the claimed checks as run slots free up: a few dozen tasks exist
    // at a time instead of one per slot (thousands of waiting tasks were most of the memory).
    let in_flight = (loaded.warehouses.total_concurrency() * 4).max(64);
    let (tx, running, shared, warehouses, shutdown, runs) = (
        tx.clone(),
        Arc::clone(running),
        Arc::clone(shared),
        loaded.warehouses.clone(),
        shutdown.clone(),
        tracker.clone(),
    );
    tracker.spawn(async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
        let mut jobs = jobs.into_iter();
        for (check, fire_at) in jobs.by_ref() {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => p,
                () = shutdown.cancelled() => break,
            };
            let Ok(permit) = permit else { break };
            // The lag to the moment the check is handed to its connection.
            let lag = (shared.clock.now() - fire_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("dqwatch_scheduler_lag_seconds").record(lag);
            let (tx, running, shared, warehouses, shutdown) =
                (tx.clone(), Arc::clone(&running), Arc::clone(&shared), warehouses.clone(), shutdown.clone());
            runs.spawn(async move {
                let _permit = permit;
                let id = check.id.0.clone();
                let run = tokio::select! {
                    report = runner::run(vec![check], &warehouses, Some(&shared.store), shared.clock.as_ref(), &|_| {}) => report.runs.into_iter().next(),
                    // Stopping: a check still running is dropped; its slot stays claimed.
                    () = async { shutdown.cancelled().await; tokio::time::sleep(super::SHUTDOWN_GRACE / 2).await } => None,
                };
                running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
                if let Some(run) = run {
                    let _ = tx.send(run).await;
                }
            });
        }
        // Stopped before starting these: they are not running.
        let mut busy = running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (check, _) in jobs {
            busy.remove(&check.id.0);
        }
    });
}

/// Records finished runs in batches until every sender is gone.
pub async fn record(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<CheckRun>,
    shutdown: CancellationToken,
) {
    while let Some(first) = rx.recv().await {
        let mut runs = vec![first];
        while runs.len() < RECORD_BATCH {
            match rx.try_recv() {
                Ok(r) => runs.push(r),
                Err(_) => break,
            }
        }
        for r in &runs {
            let outcome = match &r.outcome {
                crate::model::Outcome::Error { .. } => "error",
                o if o.worst().is_some() => "breach",
                _ => "pass",
            };
            metrics::counter!("dqwatch_runs_total", "check" => r.check.id.0.clone(), "outcome" => outcome).increment(1);
            metrics::histogram!("dqwatch_run_duration_seconds").record(r.duration.as_secs_f64());
        }
        let report = RunReport {
            started_at: shared.clock.now(),
            duration: Duration::ZERO,
            runs,
        };
        let mut delay = Duration::from_millis(500);
        for attempt in 1.. {
            let loaded = shared.loaded();
            match runner::record(
                &report,
                &shared.store,
                &loaded.composer,
                &loaded.config,
                shared.clock.now(),
            )
            .await
            {
                Ok(rec) => {
                    shared.set_ready(true);
                    if rec.mails > 0 {
                        shared.mail_due.notify_one();
                    }
                    break;
                }
                Err(e) => {
                    shared.set_ready(false);
                    tracing::error!(error = %e.chain(), runs = report.runs.len(), attempt, "Cannot record runs; retrying.");
                    if shutdown.is_cancelled() && attempt >= 3 {
                        tracing::error!(
                            runs = report.runs.len(),
                            "Stopping: unrecorded runs dropped; their checks run again at the next slot."
                        );
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Delivers the outbox when told to, and every few seconds for retries. While the transport
/// is down, passes back off (5 s doubling to 5 min) instead of knocking on a closed door.
pub async fn deliver(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut pause = DELIVER_EVERY;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = shared.mail_due.notified(), if pause == DELIVER_EVERY => {}
            () = tokio::time::sleep(pause) => {}
        }
        let loaded = shared.loaded();
        let Some(mailer) = &loaded.mailer else {
            continue;
        };
        match crate::engine::deliver::deliver(&shared.store, mailer, shared.clock.as_ref()).await {
            Ok(d) => {
                shared.set_ready(true);
                metrics::counter!("dqwatch_mail_sent_total").increment(d.sent as u64);
                pause = if d.transport_down {
                    (pause * 2).min(TRANSPORT_PAUSE_MAX)
                } else {
                    DELIVER_EVERY
                };
            }
            Err(e) => {
                shared.set_ready(false);
                tracing::warn!(error = %e.chain(), "Cannot deliver the outbox; retrying.");
            }
        }
    }
}
