//! The daemon's timed work against a real SQLite store, driven by a manual clock: escalation
//! steps, reminders and digests each go out once, at the right time, and stop when they should.

use super::{Shared, digest, escalate, load};
use crate::clock::{Clock, ManualClock};
use crate::incidents::reconcile;
use crate::runner;
use crate::store::{OutboxState, Store};
use chrono::{Duration, TimeZone, Utc};
use sqlx::{ConnectOptions, Connection};
use std::sync::Arc;

const CONFIG: &str = r#"
state = "sqlite://state.db"
[connections.warehouse]
url = "sqlite://warehouse.db"
[mail]
from = "dq <dq@example.com>"
dir = "outbox"
[[routes]]
severity = ["P0"]
email = ["oncall@example.com"]
[[routes]]
email = ["team@example.com"]
digest = "daily"
[daemon]
digest_at = "09:00"
[severity.P0]
renotify_every = "1h"
escalation = [
  { after = "15m", email = ["backup@example.com"] },
  { after = "30m", email = ["manager@example.com"] },
  { after = "2h", email = ["vp@example.com"], until = "resolved" },
]
"#;

async fn setup() -> (tempfile::TempDir, Arc<Shared>, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dqwatch.toml"), CONFIG).unwrap();
    std::fs::create_dir_all(dir.path().join("checks")).unwrap();
    std::fs::write(
        dir.path().join("checks/late.sql"),
        "-- dqwatch\n-- severity = \"P0\"\nSELECT 1 AS late\n",
    )
    .unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("warehouse.db"))
        .create_if_missing(true);
    opts.connect().await.unwrap().close().await.unwrap();
    let loaded = load(&dir.path().join("dqwatch.toml"), &|_| None).unwrap();
    let store = Store::open(&loaded.config.state).await.unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
    ));
    let shared = Arc::new(Shared::new(loaded, store, clock.clone(), "test".into()));
    (dir, shared, clock)
}

/// Runs every check once, as the scheduler would, and records it.
async fn run_checks(shared: &Shared) {
    let loaded = shared.loaded();
    let report = runner::run(
        loaded.checks.clone(),
        &loaded.warehouses,
        Some(&shared.store),
        shared.clock.as_ref(),
        &|_| {},
    )
    .await;
    runner::record(
        &report,
        &shared.store,
        &loaded.composer,
        &loaded.config,
        shared.clock.now(),
    )
    .await
    .unwrap();
}

async fn outbox_to(shared: &Shared) -> Vec<String> {
    let mut mails = shared.store.outbox(None, 100).await.unwrap();
    mails.sort_by_key(|m| m.id);
    assert!(mails.iter().all(|m| m.state == OutboxState::Pending));
    mails.iter().map(|m| m.mail.to.join(",")).collect()
}

#[tokio::test]
async fn escalation_steps_and_reminders_go_out_once() {
    let (_dir, shared, clock) = setup().await;
    run_checks(&shared).await;
    assert_eq!(outbox_to(&shared).await, vec!["oncall@example.com"]);

    clock.advance(Duration::minutes(14));
    assert_eq!(escalate::tick(&shared).await.unwrap(), 0);
    clock.advance(Duration::minutes(1));
    assert_eq!(escalate::tick(&shared).await.unwrap(), 1);
    assert_eq!(
        escalate::tick(&shared).await.unwrap(),
        0,
        "a step fires once"
    );
    assert_eq!(
        outbox_to(&shared).await.last().unwrap(),
        "backup@example.com"
    );

    // Down from 10:15 to 11:05: the 30m step and the 1h reminder go out on the first tick.
    clock.advance(Duration::minutes(50));
    assert_eq!(escalate::tick(&shared).await.unwrap(), 2);
    let to = outbox_to(&shared).await;
    assert_eq!(&to[2..], ["manager@example.com", "oncall@example.com"]);

    // Acknowledged: reminders and until-acknowledged steps stop; the until-resolved step stays.
    let (inc, _) = shared.store.incident(1).await.unwrap().unwrap();
    let ack = reconcile::acknowledge(&inc, "alice", None, clock.now()).unwrap();
    let loaded = shared.loaded();
    shared
        .store
        .record(&[], &[ack], clock.now(), &|i, e| {
            loaded.composer.compose(i, e, None, None, None)
        })
        .await
        .unwrap();
    let before = outbox_to(&shared).await.len();
    clock.advance(Duration::minutes(30));
    assert_eq!(
        escalate::tick(&shared).await.unwrap(),
        0,
        "no reminder once acknowledged"
    );
    clock.advance(Duration::minutes(30));
    assert_eq!(
        escalate::tick(&shared).await.unwrap(),
        1,
        "the until = resolved step"
    );
    let to = outbox_to(&shared).await;
    assert_eq!(to.len(), before + 1);
    assert_eq!(to.last().unwrap(), "vp@example.com");
    clock.advance(Duration::hours(5));
    assert_eq!(
        escalate::tick(&shared).await.unwrap(),
        0,
        "the chain is done"
    );
    let (_, timeline) = shared.store.incident(1).await.unwrap().unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "opened",
            "escalated",
            "escalated",
            "reminder",
            "acknowledged",
            "escalated"
        ]
    );
}

#[tokio::test]
async fn a_config_change_does_not_rewrite_a_running_escalation() {
    let (dir, shared, clock) = setup().await;
    run_checks(&shared).await;
    // The chain was copied at opening: a reload that drops it changes nothing for this one.
    let new = CONFIG.replace("{ after = \"15m\", email = [\"backup@example.com\"] },", "");
    std::fs::write(dir.path().join("dqwatch.toml"), new).unwrap();
    shared.replace(load(&dir.path().join("dqwatch.toml"), &|_| None).unwrap());
    clock.advance(Duration::minutes(15));
    assert_eq!(escalate::tick(&shared).await.unwrap(), 1);
    assert_eq!(
        outbox_to(&shared).await.last().unwrap(),
        "backup@example.com"
    );
}

#[tokio::test]
async fn digests_once_per_period_and_only_with_news() {
    let (_dir, shared, clock) = setup().await;
    // 10:00 on the 23rd: the period that began at 09:00 is due, and it has nothing to tell.
    assert_eq!(digest::tick(&shared).await.unwrap(), 0);
    run_checks(&shared).await;
    assert_eq!(
        digest::tick(&shared).await.unwrap(),
        0,
        "the period is claimed already"
    );
    clock.set(Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap());
    assert_eq!(digest::tick(&shared).await.unwrap(), 1);
    assert_eq!(digest::tick(&shared).await.unwrap(), 0);
    let mails = shared.store.outbox(None, 100).await.unwrap();
    let digest = mails
        .iter()
        .find(|m| m.mail.to == ["team@example.com"])
        .unwrap();
    assert!(
        digest
            .mail
            .subject
            .contains("daily digest 2026-11-24: 1 incident"),
        "{}",
        digest.mail.subject
    );
    assert!(digest.mail.text.contains("[P0] late"));
}
