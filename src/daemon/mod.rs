//! `dqwatch daemon`: schedules checks by cron, records and reconciles their runs, escalates,
//! sends reminders and digests, delivers mail, and serves HTTP — all on one
//! `CancellationToken` and `TaskTracker`. Signals are handled here and nowhere else:
//! SIGTERM/SIGINT stop (a second one exits at once), SIGHUP reloads config and checks.

pub mod digest;
pub mod escalate;
pub mod health;
mod http;
mod page;
pub mod prom;
pub mod scheduler;
#[cfg(test)]
mod tests;
mod work;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Engine, LoadError};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long in-flight work may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// State shared by the daemon's tasks.
pub struct Shared {
    loaded: RwLock<Arc<Engine>>,
    /// The state store.
    pub store: Store,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// This replica's name in slot and digest claims.
    pub replica: String,
    /// False while the work loops cannot reach the state store (for the log).
    pub ready: AtomicBool,
    /// What the probes answer, refreshed in the background ([`health`]).
    pub health: RwLock<health::Health>,
    /// Schedule slots this replica claimed whose run is not recorded yet: the heartbeat
    /// keeps their leases alive.
    pub held: Mutex<HashSet<(String, DateTime<Utc>)>>,
    /// Wakes the mail deliverer.
    pub mail_due: Notify,
    /// Asks for a background health check now (incidents changed).
    pub health_due: Notify,
    /// Prometheus exposition.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Set by SIGHUP: the scheduler re-plans.
    pub replanned: Notify,
}

impl Shared {
    /// Shared state for a daemon (or a test) on `store`, reading time from `clock`.
    pub fn new(loaded: Engine, store: Store, clock: Arc<dyn Clock>, replica: String) -> Shared {
        // The recorder first: series registered before it exists would go nowhere.
        let metrics = prom::handle();
        prom::register_checks(loaded.checks.iter().map(|c| c.id.0.as_str()));
        Shared {
            loaded: RwLock::new(Arc::new(loaded)),
            store,
            clock,
            replica,
            ready: AtomicBool::new(true),
            health: RwLock::new(health::Health::default()),
            held: Mutex::new(HashSet::new()),
            mail_due: Notify::new(),
            health_due: Notify::new(),
            metrics,
            replanned: Notify::new(),
        }
    }

    /// The current config and checks.
    pub fn loaded(&self) -> Arc<Engine> {
        Arc::clone(
            &self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn replace(&self, new: Engine) {
        prom::register_checks(new.checks.iter().map(|c| c.id.0.as_str()));
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
        // notify_one keeps the notice until the scheduler next waits: a reload that comes
        // while it is busy is not lost.
        self.replanned.notify_one();
    }

    /// The slots this replica holds unrecorded.
    pub fn held(&self) -> std::sync::MutexGuard<'_, HashSet<(String, DateTime<Utc>)>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lease of a claimed slot (`[daemon] claim_lease`).
    pub fn lease(&self) -> Duration {
        self.loaded().config.daemon.claim_lease
    }

    /// Marks the store reachable or not, logging the change.
    pub fn set_ready(&self, ok: bool) {
        if self.ready.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!("State store reachable again.");
            } else {
                tracing::warn!("State store unreachable; retrying.");
            }
        }
    }
}

/// Runs the daemon until `shutdown` is cancelled: the tasks, on a listener bound by the
/// caller. Returns once every task finished (or the grace period ran out).
pub async fn run(
    loaded: Engine,
    config_path: PathBuf,
    listener: TcpListener,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
    reload: Arc<Notify>,
) -> Result<(), String> {
    // Until the state store answers, a stand-in server says "alive, not ready" on the same
    // port, so that an orchestrator sees a live process rather than a hung one.
    let std_listener = listener.into_std().map_err(|e| e.to_string())?;
    let early = TcpListener::from_std(std_listener.try_clone().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let listener = TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    let starting = shutdown.child_token();
    let early_server = tokio::spawn(http::serve_starting(early, starting.clone()));
    let store = open_store(&loaded.config, &shutdown).await;
    let Some(store) = store else {
        // Stopped while waiting for the store: nothing ran, nothing is lost.
        starting.cancel();
        let _ = early_server.await;
        return Ok(());
    };
    let replica = format!("{}-{}", hostname(), std::process::id());
    let shared = Arc::new(Shared::new(loaded, store, clock, replica));
    // The probes answer from the first check on; until then the stand-in says "starting".
    health::refresh(&shared).await;
    starting.cancel();
    let _ = early_server.await;
    let tracker = TaskTracker::new();
    let (tx, rx) = tokio::sync::mpsc::channel(100_000);
    tracker.spawn(work::schedule(
        Arc::clone(&shared),
        tx,
        shutdown.clone(),
        tracker.clone(),
    ));
    tracker.spawn(work::record(Arc::clone(&shared), rx, shutdown.clone()));
    tracker.spawn(work::heartbeat(Arc::clone(&shared), shutdown.clone()));
    tracker.spawn(work::deliver(Arc::clone(&shared), shutdown.clone()));
    tracker.spawn(health::run(Arc::clone(&shared), shutdown.clone()));
    tracker.spawn(escalate::run(Arc::clone(&shared), shutdown.clone()));
    tracker.spawn(digest::run(Arc::clone(&shared), shutdown.clone()));
    tracker.spawn(http::serve(listener, Arc::clone(&shared), shutdown.clone()));
    {
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = reload.notified() => {
                        // Off the async threads, and a panic in a parser is a refused reload,
                        // not the end of reloading.
                        let path = config_path.clone();
                        let loaded = tokio::task::spawn_blocking(move || {
                            Engine::load(&path, &|n| std::env::var(n).ok())
                        })
                        .await;
                        match loaded {
                            Ok(Ok(new)) => {
                                tracing::info!(checks = new.checks.len(), "Config reloaded.");
                                shared.replace(new);
                            }
                            Ok(Err(LoadError(diags))) => {
                                for d in &diags {
                                    tracing::error!(problem = %d, "Reload refused; the old config keeps running.");
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "Reload failed; the old config keeps running."),
                        }
                    }
                }
            }
        });
    }
    tracker.close();
    shutdown.cancelled().await;
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("Tasks still busy after the grace period; exiting anyway.");
    }
    shared.store.close().await;
    Ok(())
}

/// Opens the store, retrying with backoff until it answers; `None` when the daemon is stopped
/// first (also in the middle of a connection attempt).
async fn open_store(cfg: &Config, shutdown: &CancellationToken) -> Option<Store> {
    let mut delay = Duration::from_millis(500);
    loop {
        let attempt = tokio::select! {
            () = shutdown.cancelled() => return None,
            r = Store::open(&cfg.state) => r,
        };
        match attempt {
            Ok(s) => return Some(s),
            Err(e) => {
                tracing::warn!(error = %e.chain(), retry_in = ?delay, "State store unavailable.");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "dqwatch".into())
}

/// Handles SIGTERM/SIGINT (stop; a second one exits at once) and SIGHUP (reload).
pub fn signals(shutdown: CancellationToken, reload: Arc<Notify>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading config and checks.");
                    reload.notify_one();
                    continue;
                }
            }
            if shutdown.is_cancelled() {
                tracing::warn!("Second stop signal: exiting now.");
                std::process::exit(130);
            }
            tracing::info!("Stopping: finishing what is in flight.");
            shutdown.cancel();
        }
    });
    Ok(())
}
