//! What `/readyz` and `/metrics` answer, checked in the background: the state store (a ping),
//! every warehouse connection (its driver's ping: prepare `SELECT 1`, a Snowflake session
//! heartbeat, a BigQuery dataset read), the open incidents and the outbox counts,
//! each with a short timeout, every [`EVERY`]. The probes read the last result and never wait
//! for a server, so they answer at once while the state store or a warehouse is down.

use super::Shared;
use crate::model::{Category, Severity};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the background check runs.
pub const EVERY: Duration = Duration::from_secs(2);
/// How long one part of the check may take before it counts as down.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The last background check.
#[derive(Debug, Clone)]
pub struct Health {
    /// `"ok"`, or why the state store does not answer.
    pub state_store: String,
    /// Per connection: `"ok"`, or why it does not answer.
    pub connections: BTreeMap<String, String>,
    /// Open and acknowledged incidents per (severity, category), when the store answered.
    pub open_incidents: Option<BTreeMap<(String, String), u64>>,
    /// Pending and dead outbox rows, when the store answered.
    pub outbox: Option<(i64, i64)>,
    /// When the check finished (`None`: not checked yet).
    pub checked_at: Option<DateTime<Utc>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state_store: "not checked yet".into(),
            connections: BTreeMap::new(),
            open_incidents: None,
            outbox: None,
            checked_at: None,
        }
    }
}

impl Health {
    /// Ready: the state store and every connection answered the last check.
    pub fn ready(&self) -> bool {
        self.checked_at.is_some()
            && self.state_store == "ok"
            && self.connections.values().all(|v| v == "ok")
    }
}

/// Checks again every [`EVERY`] (and when incidents changed) until shutdown.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
            () = shared.health_due.notified() => {}
        }
        refresh(&shared).await;
    }
}

/// `f` within [`TIMEOUT`], its error (or the timeout) as text.
async fn bounded<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("timed out after {}s", TIMEOUT.as_secs())),
    }
}

/// Checks everything once (all parts at once, each within [`TIMEOUT`]) and stores the result,
/// the metric gauges included.
pub async fn refresh(shared: &Shared) {
    let loaded = shared.loaded();
    let store = &shared.store;
    let ping = async {
        match tokio::time::timeout(TIMEOUT, store.ping()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => e.chain(),
            Err(_) => format!(
                "the state store did not answer within {}s",
                TIMEOUT.as_secs()
            ),
        }
    };
    let connections =
        futures_util::future::join_all(loaded.config.connections.keys().map(|name| {
            let w = loaded.warehouses.get(name).cloned();
            let name = name.clone();
            async move {
                let status = match w {
                    Some(w) => match bounded(w.ping()).await {
                        Ok(_) => "ok".to_string(),
                        Err(e) => e,
                    },
                    None => "not configured".to_string(),
                };
                (name, status)
            }
        }));
    let open = bounded(store.incidents(&["open", "acknowledged"]));
    let outbox = bounded(store.outbox_counts());
    let (state_store, connections, open, outbox) = tokio::join!(ping, connections, open, outbox);
    let open_incidents = open.ok().map(|list| {
        let mut counts = BTreeMap::new();
        for sev in Severity::ALL {
            for cat in Category::ALL {
                counts.insert((sev.to_string(), cat.to_string()), 0);
            }
        }
        for i in &list {
            *counts
                .entry((i.severity.to_string(), i.category.to_string()))
                .or_default() += 1;
        }
        counts
    });
    let health = Health {
        state_store,
        connections: connections.into_iter().collect(),
        open_incidents,
        outbox: outbox.ok(),
        checked_at: Some(shared.clock.now()),
    };
    set_gauges(&health);
    *shared
        .health
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = health;
}

/// The gauges of a check; the last known values stay while the store does not answer.
pub fn set_gauges(health: &Health) {
    if let Some(counts) = &health.open_incidents {
        for ((sev, cat), n) in counts {
            metrics::gauge!("dqwatch_open_incidents", "severity" => sev.clone(), "category" => cat.clone())
                .set(*n as f64);
        }
    }
    if let Some((pending, dead)) = health.outbox {
        metrics::gauge!("dqwatch_outbox_pending").set(pending as f64);
        metrics::gauge!("dqwatch_outbox_failed").set(dead as f64);
    }
    metrics::gauge!("dqwatch_ready").set(if health.ready() { 1.0 } else { 0.0 });
}
