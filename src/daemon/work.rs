//! The daemon's three work loops: the scheduler (claims due slots and starts their runs), the
//! recorder (reconciles finished runs in batches, one transaction each) and the deliverer
//! (sends the outbox). Each loop selects on the shutdown token against its next tick.

use super::Shared;
use super::scheduler::{Plan, Slot};
use crate::checks::Check;
use crate::engine::run::{self as runner, CheckRun};
use crate::store::SlotClaim;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
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
/// How often the scheduler looks for slots whose replica died.
const ORPHAN_SCAN: Duration = Duration::from_secs(1);

/// A finished scheduled run and the slot it ran for.
pub type SlotRun = (CheckRun, DateTime<Utc>);

/// Checks whose run is in flight on this replica.
type Running = Arc<Mutex<HashSet<String>>>;

/// Plans and starts scheduled runs until shutdown; re-plans on reload. Every second it also
/// takes over slots whose replica died ([`orphans`]).
pub async fn schedule(
    shared: Arc<Shared>,
    tx: mpsc::Sender<SlotRun>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let running: Running = Arc::default();
    let mut last_scan: Option<std::time::Instant> = None;
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
            if last_scan.is_none_or(|t| t.elapsed() >= ORPHAN_SCAN) {
                last_scan = Some(std::time::Instant::now());
                let adopted = orphans(&shared, &running).await;
                start(&shared, adopted, &tx, &tracker, &running, &shutdown);
            }
            let now = shared.clock.now();
            let wait = plan
                .next_wake()
                .and_then(|t| (t - now).to_std().ok())
                .unwrap_or(Duration::ZERO)
                .min(ORPHAN_SCAN);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = shared.replanned.notified() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Takes over the slots whose lease ran out before their run was recorded (the replica that
/// claimed them died or lost the store for longer than the lease), for checks this replica
/// knows and is not running now. Each goes to exactly one replica; returns the ones won here,
/// already marked running and held.
pub async fn orphans(shared: &Shared, running: &Running) -> Vec<Slot> {
    let now = shared.clock.now();
    let expired = match shared.store.expired_slots(now, 500).await {
        Ok(e) => e,
        Err(e) => {
            shared.set_ready(false);
            tracing::warn!(error = %e.chain(), "Cannot look for slots of dead replicas; retrying.");
            return Vec::new();
        }
    };
    if expired.is_empty() {
        return Vec::new();
    }
    let loaded = shared.loaded();
    let lease = loaded.config.daemon.claim_lease;
    let mut won = Vec::new();
    for slot in expired {
        let Some(check) = loaded
            .checks
            .iter()
            .find(|c| c.id.0 == slot.check_id && c.schedule.is_some())
        else {
            continue;
        };
        // A check never overlaps itself: the slot waits until the run here is done.
        if !lock(running).insert(slot.check_id.clone()) {
            continue;
        }
        match shared
            .store
            .take_over_slot(&slot.check_id, slot.fire_at, &shared.replica, now, lease)
            .await
        {
            Ok(true) => {
                tracing::warn!(
                    check = %slot.check_id,
                    slot = %slot.fire_at,
                    from = %slot.claimed_by,
                    lease_ran_out = %slot.lease_until,
                    "Took over a slot whose replica stopped renewing its lease; running it here."
                );
                metrics::counter!("dqwatch_slots_taken_over_total").increment(1);
                shared.held().insert((slot.check_id.clone(), slot.fire_at));
                won.push((Arc::clone(check), slot.fire_at));
            }
            Ok(false) => {
                lock(running).remove(&slot.check_id);
            }
            Err(e) => {
                lock(running).remove(&slot.check_id);
                tracing::warn!(error = %e.chain(), "Cannot take over a slot; retrying.");
                break;
            }
        }
    }
    won
}

fn lock(running: &Running) -> std::sync::MutexGuard<'_, HashSet<String>> {
    running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Claims `slots` (one replica wins each) and starts a run for every claimed one whose check
/// is not still running: a check never overlaps itself.
async fn launch(
    shared: &Arc<Shared>,
    slots: Vec<Slot>,
    tx: &mpsc::Sender<SlotRun>,
    tracker: &TaskTracker,
    running: &Running,
    shutdown: &CancellationToken,
) {
    let now = shared.clock.now();
    let free: Vec<Slot> = {
        let busy = lock(running);
        slots
            .into_iter()
            .filter(|(c, t)| {
                let skip = busy.contains(&c.id.0);
                if skip {
                    tracing::debug!(check = %c.id, slot = %t, "Slot skipped: the previous run is still going.");
                    metrics::counter!("dqwatch_slots_skipped_total").increment(1);
                }
                !skip
            })
            .collect()
    };
    let keys: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        free.iter().map(|(c, t)| (c.id.0.clone(), *t)).collect();
    let claimed = match shared
        .store
        .claim_slots(&keys, &shared.replica, now, shared.lease())
        .await
    {
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
    let mut jobs = Vec::new();
    {
        let mut busy = lock(running);
        let mut held = shared.held();
        for (check, fire_at) in free {
            if claimed.contains(&(check.id.0.clone(), fire_at)) && busy.insert(check.id.0.clone()) {
                held.insert((check.id.0.clone(), fire_at));
                jobs.push((check, fire_at));
            }
        }
    }
    start(shared, jobs, tx, tracker, running, shutdown);
}

/// Starts the runs of claimed slots (their checks already marked running, the slots held).
fn start(
    shared: &Arc<Shared>,
    jobs: Vec<Slot>,
    tx: &mpsc::Sender<SlotRun>,
    tracker: &TaskTracker,
    running: &Running,
    shutdown: &CancellationToken,
) {
    if jobs.is_empty() {
        return;
    }
    let loaded = shared.loaded();
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
        let mut units = units(jobs).into_iter();
        for (unit, fire_at) in units.by_ref() {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => p,
                () = shutdown.cancelled() => {
                    forget(&running, &shared, &unit, fire_at);
                    break;
                }
            };
            let Ok(permit) = permit else {
                forget(&running, &shared, &unit, fire_at);
                break;
            };
            // The lag to the moment the check is handed to its connection.
            let lag = (shared.clock.now() - fire_at).num_milliseconds().max(0) as f64 / 1000.0;
            for _ in &unit {
                metrics::histogram!("dqwatch_scheduler_lag_seconds").record(lag);
            }
            let (tx, running, shared, warehouses, shutdown) =
                (tx.clone(), Arc::clone(&running), Arc::clone(&shared), warehouses.clone(), shutdown.clone());
            runs.spawn(async move {
                let _permit = permit;
                let ids: Vec<String> = unit.iter().map(|c| c.id.0.clone()).collect();
                let done = tokio::select! {
                    done = runner::run_scan(unit, &warehouses, Some(&shared.store), shared.clock.now()) => done,
                    // Stopping: a check still running is dropped; its slot's lease runs out
                    // and another replica (or this one, restarted) runs it.
                    () = async { shutdown.cancelled().await; tokio::time::sleep(super::SHUTDOWN_GRACE / 2).await } => Vec::new(),
                };
                let mut sent = HashSet::new();
                for run in done {
                    let id = run.check.id.0.clone();
                    lock(&running).remove(&id);
                    if tx.send((run, fire_at)).await.is_ok() {
                        sent.insert(id);
                    }
                }
                for id in ids.into_iter().filter(|id| !sent.contains(id)) {
                    lock(&running).remove(&id);
                    shared.held().remove(&(id, fire_at));
                }
            });
        }
        // Stopped before starting these: they are not running.
        for (unit, fire_at) in units {
            forget(&running, &shared, &unit, fire_at);
        }
    });
}

/// Claimed slots as units of work: checks due at the same moment that share a scan of one
/// table run as one query (see [`crate::checks::fuse`]), every other check alone.
fn units(jobs: Vec<Slot>) -> Vec<(Vec<Arc<Check>>, DateTime<Utc>)> {
    let mut by_time: BTreeMap<DateTime<Utc>, Vec<Arc<Check>>> = BTreeMap::new();
    for (check, fire_at) in jobs {
        by_time.entry(fire_at).or_default().push(check);
    }
    let mut out = Vec::new();
    for (fire_at, checks) in by_time {
        for scan in crate::checks::fuse::scans(&checks) {
            out.push((
                scan.iter().map(|&i| Arc::clone(&checks[i])).collect(),
                fire_at,
            ));
        }
    }
    out
}

/// Checks of a unit that will not run here: no longer running, their slots no longer held.
fn forget(running: &Running, shared: &Shared, unit: &[Arc<Check>], fire_at: DateTime<Utc>) {
    let mut busy = lock(running);
    let mut held = shared.held();
    for check in unit {
        busy.remove(&check.id.0);
        held.remove(&(check.id.0.clone(), fire_at));
    }
}

/// The heartbeat: every third of the lease, renews the leases of the slots this replica
/// holds (running or waiting to be recorded), so that no other replica takes them over. After
/// a stop signal it goes on while runs in flight still hold slots (they may finish and be
/// recorded during the grace period), and returns once none does.
pub async fn heartbeat(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut last = std::time::Instant::now();
    loop {
        let stopping = shutdown.is_cancelled();
        if stopping && shared.held().is_empty() {
            return;
        }
        let every = shared.lease() / 3;
        let wait = if stopping {
            // Notice soon that the last held slot was recorded.
            every.min(Duration::from_millis(100))
        } else {
            every.saturating_sub(last.elapsed())
        };
        tokio::select! {
            () = shutdown.cancelled(), if !stopping => continue,
            () = tokio::time::sleep(wait) => {}
        }
        if last.elapsed() < every {
            continue;
        }
        last = std::time::Instant::now();
        if let Err(e) = renew(&shared).await {
            shared.set_ready(false);
            tracing::warn!(error = %e.chain(), "Cannot renew slot leases; retrying.");
        }
    }
}

/// Renews the leases of every held slot once; how many were renewed.
pub async fn renew(shared: &Shared) -> Result<u64, crate::store::StoreError> {
    let held: Vec<(String, DateTime<Utc>)> = shared.held().iter().cloned().collect();
    if held.is_empty() {
        return Ok(0);
    }
    let renewed = shared
        .store
        .renew_slots(&held, &shared.replica, shared.clock.now(), shared.lease())
        .await?;
    if renewed < held.len() as u64 {
        // Taken over while this replica could not renew them (or already recorded): their
        // runs here are refused when recorded.
        tracing::warn!(
            held = held.len(),
            renewed,
            "Some slot leases were not renewed: another replica may have taken them over."
        );
    }
    Ok(renewed)
}

/// Records finished runs in batches until every sender is gone. A run whose slot was taken
/// over by another replica meanwhile is dropped: that replica runs and records the slot.
pub async fn record(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<SlotRun>,
    shutdown: CancellationToken,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        for (r, _) in &batch {
            let outcome = r.outcome.verdict();
            metrics::counter!("dqwatch_runs_total", "check" => r.check.id.0.clone(), "outcome" => outcome).increment(1);
            metrics::histogram!("dqwatch_run_duration_seconds").record(r.duration.as_secs_f64());
        }
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        while !batch.is_empty() {
            attempt += 1;
            match record_batch(&shared, &batch).await {
                Ok(rec) => {
                    shared.set_ready(true);
                    if rec.mails > 0 {
                        shared.mail_due.notify_one();
                    }
                    if rec.opened + rec.reopened + rec.raised + rec.resolved > 0 {
                        shared.health_due.notify_one();
                    }
                    break;
                }
                Err(crate::engine::apply::ApplyError::Store(
                    crate::store::StoreError::SlotsLost(lost),
                )) => {
                    for (check, fire_at) in &lost {
                        tracing::warn!(
                            check = %check,
                            slot = %fire_at,
                            "Run not recorded: its slot was taken over by another replica, which runs it."
                        );
                    }
                    let lost: HashSet<(String, DateTime<Utc>)> = lost.into_iter().collect();
                    batch.retain(|(r, t)| !lost.contains(&(r.check.id.0.clone(), *t)));
                    let mut held = shared.held();
                    for key in &lost {
                        held.remove(key);
                    }
                }
                Err(e) => {
                    shared.set_ready(false);
                    tracing::error!(error = %e.chain(), runs = batch.len(), attempt, "Cannot record runs; retrying.");
                    if shutdown.is_cancelled() && attempt >= 3 {
                        tracing::error!(
                            runs = batch.len(),
                            "Stopping: unrecorded runs dropped; their slots run again on another replica or at the next start."
                        );
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        let mut held = shared.held();
        for (r, t) in &batch {
            held.remove(&(r.check.id.0.clone(), *t));
        }
    }
}

/// Records one batch of scheduled runs against their slots, in one transaction.
pub async fn record_batch(
    shared: &Shared,
    batch: &[SlotRun],
) -> Result<crate::store::Recorded, crate::engine::apply::ApplyError> {
    let runs: Vec<CheckRun> = batch.iter().map(|(r, _)| r.clone()).collect();
    let slots: Vec<Option<SlotClaim<'_>>> = batch
        .iter()
        .map(|(_, fire_at)| {
            Some(SlotClaim {
                fire_at: *fire_at,
                replica: &shared.replica,
            })
        })
        .collect();
    let loaded = shared.loaded();
    crate::engine::apply::record_runs(
        &runs,
        &slots,
        &shared.store,
        &loaded.composer,
        &loaded.config,
        shared.clock.now(),
    )
    .await
}

/// Delivers the outbox when told to, and every few seconds for retries. While the transport
/// is down, passes back off (5 s doubling to 5 min) instead of knocking on a closed door.
pub async fn deliver(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut pause = DELIVER_EVERY;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            // Always heard: a new message may be for a channel that works while another
            // is down (each channel backs off on its own).
            () = shared.mail_due.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
        let loaded = shared.loaded();
        if loaded.mailer.is_none() && loaded.channels.is_empty() {
            continue;
        }
        match crate::engine::deliver::deliver(
            &shared.store,
            loaded.mailer.as_ref(),
            &loaded.channels,
            shared.clock.as_ref(),
        )
        .await
        {
            Ok(d) => {
                shared.set_ready(true);
                let mails = d.sent_by_channel.get("mail").copied().unwrap_or_default();
                metrics::counter!("dqwatch_mail_sent_total").increment(mails as u64);
                pause = if d.transport_down && d.sent == 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fuse::Fusable;
    use crate::checks::tests_support::check;
    use chrono::TimeZone;

    /// Checks due at the same moment on one table share a scan; a check due at another moment,
    /// or one that cannot be fused, runs alone.
    #[test]
    fn checks_due_together_on_one_table_share_a_scan() {
        let fused = |id: &str| {
            let mut c = check(id);
            c.fuse = Some(Fusable {
                table: "\"orders\"".into(),
                group: None,
                rows: None,
                columns: vec![("n".into(), "COUNT(*)".into())],
            });
            Arc::new(c)
        };
        let (t1, t2) = (
            Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 30, 4, 0, 0).unwrap(),
        );
        let jobs = vec![
            (fused("a"), t1),
            (Arc::new(check("plain")), t1),
            (fused("b"), t2),
            (fused("c"), t1),
        ];
        let got: Vec<(Vec<String>, DateTime<Utc>)> = units(jobs)
            .into_iter()
            .map(|(u, at)| (u.iter().map(|c| c.id.0.clone()).collect(), at))
            .collect();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (ids(&["a", "c"]), t1),
                (ids(&["plain"]), t1),
                (ids(&["b"]), t2)
            ]
        );
    }
}
