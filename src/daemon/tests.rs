//! The daemon's timed work against a real SQLite store, driven by a manual clock: escalation
//! steps, reminders and digests each go out once, at the right time, and stop when they should.

use super::{Shared, digest, escalate};
use crate::clock::{Clock, ManualClock};
use crate::engine::Engine;
use crate::engine::run as runner;
use crate::incidents::reconcile;
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
    let loaded = Engine::load(&dir.path().join("dqwatch.toml"), &|_| None).unwrap();
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
    crate::engine::apply::record_runs(
        &report.runs,
        &[],
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
    crate::engine::apply::record(
        &shared.store,
        &loaded.composer,
        &[],
        &[ack],
        &crate::engine::apply::Facts::default(),
        clock.now(),
    )
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
    shared.replace(Engine::load(&dir.path().join("dqwatch.toml"), &|_| None).unwrap());
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

/// Another replica on the same store and clock, loading the same config.
fn replica(dir: &tempfile::TempDir, shared: &Shared, name: &str) -> Arc<Shared> {
    let loaded = Engine::load(&dir.path().join("dqwatch.toml"), &|_| None).unwrap();
    Arc::new(Shared::new(
        loaded,
        shared.store.clone(),
        Arc::clone(&shared.clock),
        name.into(),
    ))
}

/// The slots of check `late`: (fire time, claimed by, finished, takeovers).
async fn slots(shared: &Shared) -> Vec<(String, String, bool, i64)> {
    let Store::Sqlite(pool) = &shared.store else {
        unreachable!("the test store is SQLite")
    };
    let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT fire_at, claimed_by, finished_at, takeovers FROM slots WHERE check_id = 'late' ORDER BY fire_at",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(f, c, done, n)| (f, c, done.is_some(), n))
        .collect()
}

/// One run of check `late`, as a replica's scheduler would have it for slot `fire_at`.
async fn late_run(shared: &Shared, fire_at: chrono::DateTime<Utc>) -> super::work::SlotRun {
    let loaded = shared.loaded();
    let report = runner::run(
        loaded.checks.clone(),
        &loaded.warehouses,
        Some(&shared.store),
        shared.clock.as_ref(),
        &|_| {},
    )
    .await;
    (report.runs.into_iter().next().unwrap(), fire_at)
}

async fn runs_of_late(shared: &Shared) -> i64 {
    let Store::Sqlite(pool) = &shared.store else {
        unreachable!("the test store is SQLite")
    };
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs WHERE check_id = 'late'")
        .fetch_one(pool)
        .await
        .unwrap();
    n
}

// See: issues/8 item 8
/// A slot claimed by a replica that dies mid-run is taken over by exactly one other replica
/// once the lease runs out (and not while the claimer's heartbeat renews it); the dead
/// claimer's late result is refused; a recorded slot is never taken over.
#[tokio::test]
async fn a_slot_whose_replica_died_is_run_once_by_another() {
    let (dir, a, clock) = setup().await;
    std::fs::write(
        dir.path().join("checks/late.sql"),
        "-- dqwatch\n-- severity = \"P0\"\n-- schedule = \"* * * * *\"\nSELECT 1 AS late\n",
    )
    .unwrap();
    let a = replica(&dir, &a, "a");
    let b = replica(&dir, &a, "b");
    let c = replica(&dir, &a, "c");
    let lease = a.lease();
    assert_eq!(
        lease,
        std::time::Duration::from_secs(30),
        "the default lease"
    );
    let fire = clock.now();
    let won = a
        .store
        .claim_slots(&[("late".into(), fire)], "a", clock.now(), lease)
        .await
        .unwrap();
    assert_eq!(won.len(), 1);
    a.held().insert(("late".into(), fire));
    let (b_running, c_running) = (Arc::default(), Arc::default());

    // A's heartbeat renews the lease every third of it: nobody takes the slot over.
    for _ in 0..6 {
        clock.advance(Duration::seconds(10));
        assert_eq!(super::work::renew(&a).await.unwrap(), 1);
        assert!(super::work::orphans(&b, &b_running).await.is_empty());
    }

    // A dies (no more heartbeats). Just before the lease runs out the slot is still A's.
    clock.advance(Duration::seconds(29));
    assert!(super::work::orphans(&b, &b_running).await.is_empty());
    clock.advance(Duration::seconds(2));
    let taken = super::work::orphans(&b, &b_running).await;
    assert_eq!(
        taken
            .iter()
            .map(|(ch, t)| (ch.id.0.clone(), *t))
            .collect::<Vec<_>>(),
        vec![("late".to_string(), fire)]
    );
    assert!(
        super::work::orphans(&c, &c_running).await.is_empty(),
        "a slot is taken over once"
    );
    assert_eq!(
        slots(&b).await,
        vec![(crate::store::format_time(fire), "b".into(), false, 1)]
    );

    // A was only stalled, not dead: its late result is refused, B's is recorded.
    let late = late_run(&a, fire).await;
    match super::work::record_batch(&a, std::slice::from_ref(&late)).await {
        Err(crate::engine::apply::ApplyError::Store(crate::store::StoreError::SlotsLost(lost))) => {
            assert_eq!(lost, vec![("late".to_string(), fire)]);
        }
        other => panic!("the stale claimer recorded: {other:?}"),
    }
    assert_eq!(
        super::work::renew(&a).await.unwrap(),
        0,
        "A no longer renews it"
    );
    let run = late_run(&b, fire).await;
    super::work::record_batch(&b, std::slice::from_ref(&run))
        .await
        .unwrap();
    assert_eq!(runs_of_late(&b).await, 1, "the slot ran once");
    assert_eq!(
        slots(&b).await,
        vec![(crate::store::format_time(fire), "b".into(), true, 1)]
    );

    // Recorded: never taken over again, however long B stays silent.
    clock.advance(Duration::hours(2));
    assert!(super::work::orphans(&c, &c_running).await.is_empty());
    assert!(
        super::work::record_batch(&b, std::slice::from_ref(&run))
            .await
            .is_err(),
        "a slot is settled once"
    );
    assert_eq!(runs_of_late(&b).await, 1);
}

// See: issues/10 — an acknowledgement made while a run is being reconciled (or an escalation
// tick is deciding) is never overwritten: a write computed from an older revision is refused
// and recomputed from the new state. Found by CI under load: the recorder wrote back an
// incident it had read before the ack, and reminders went on after it.
#[tokio::test]
async fn an_acknowledgement_is_never_lost_to_a_concurrent_writer() {
    let (_dir, shared, clock) = setup().await;
    run_checks(&shared).await;
    let loaded = shared.loaded();
    let (stale, _) = shared.store.incident(1).await.unwrap().unwrap();
    // Someone acknowledges…
    let acked = crate::engine::apply::change_incident(
        &shared.store,
        &loaded.composer,
        &loaded.infos,
        1,
        clock.now(),
        |inc| reconcile::acknowledge(inc, "alice", None, clock.now()),
    )
    .await
    .unwrap();
    assert!(acked.is_some());
    // …while a writer still holds the copy it read before: its write is refused.
    let mut late = stale.clone();
    late.breach_streak += 1;
    let refused = crate::engine::apply::record(
        &shared.store,
        &loaded.composer,
        &[],
        &[crate::incidents::Change {
            incident: late,
            events: vec![],
        }],
        &crate::engine::apply::Facts::default(),
        clock.now(),
    )
    .await;
    assert!(
        matches!(&refused, Err(crate::engine::apply::ApplyError::Store(e)) if e.is_conflict()),
        "{refused:?}"
    );
    // An escalation tick that read the incident before the ack takes no step.
    clock.advance(Duration::hours(3));
    let step = crate::engine::apply::take_step(
        &shared.store,
        &loaded.composer,
        &stale,
        None,
        Some(clock.now() + Duration::hours(1)),
        None,
        None,
        &crate::engine::apply::Facts::default(),
        clock.now(),
    )
    .await
    .unwrap();
    assert!(!step, "a reminder decided on the unacknowledged copy");
    // A run reconciles from the new state: the acknowledgement stays.
    run_checks(&shared).await;
    let (now, _) = shared.store.incident(1).await.unwrap().unwrap();
    assert_eq!(now.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(now.state, crate::model::IncidentState::Acknowledged);
}

// See: issues/10 (snooze). While snoozed, due escalation steps and reminders are taken — on
// the timeline, in order — without a mail; when the snooze runs out the daemon tells it once
// (the end also stands for a reminder that fell due), and a second replica's tick, or the
// next, tells nothing more.
#[tokio::test]
async fn a_snooze_holds_escalation_and_its_end_is_told_once_across_replicas() {
    let (dir, shared, clock) = setup().await;
    run_checks(&shared).await;
    assert_eq!(outbox_to(&shared).await, vec!["oncall@example.com"]);
    let loaded = shared.loaded();
    let until = clock.now() + Duration::minutes(70);
    crate::engine::apply::change_incident_with(
        &shared.store,
        &loaded.composer,
        &loaded.infos,
        1,
        clock.now(),
        |inc, c| {
            crate::incidents::respond::snooze(inc, c, "ann", until, "deploy", clock.now())
                .map(|(ch, c)| (ch, Some(c)))
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(outbox_to(&shared).await.len(), 2, "the snooze is told");

    // 10:15, 10:30 and the 11:00 reminder fall due while snoozed: taken, not mailed.
    for minutes in [15, 15, 30] {
        clock.advance(Duration::minutes(minutes));
        assert_eq!(escalate::tick(&shared).await.unwrap(), 0);
    }
    assert_eq!(
        outbox_to(&shared).await.len(),
        2,
        "nothing mailed while snoozed"
    );
    let (_, timeline) = shared.store.incident(1).await.unwrap().unwrap();
    let held: Vec<&str> = timeline
        .iter()
        .filter(|e| {
            e.note
                .as_deref()
                .is_some_and(|n| n.contains("held: snoozed"))
        })
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(held, ["escalated", "escalated", "reminder"]);

    // 11:15: the snooze ended at 11:10. Two replicas tick: one mail, in the thread.
    clock.advance(Duration::minutes(15));
    let other = replica(&dir, &shared, "other");
    let (a, b) = tokio::join!(escalate::tick(&shared), escalate::tick(&other));
    assert_eq!(a.unwrap() + b.unwrap(), 1, "told once across replicas");
    let mails = shared.store.outbox(None, 100).await.unwrap();
    let last = mails.iter().max_by_key(|m| m.id).unwrap();
    assert!(
        last.mail.text.contains("snooze ended, still breaching"),
        "{}",
        last.mail.text
    );
    assert!(last.mail.in_reply_to.is_some());
    assert_eq!(escalate::tick(&shared).await.unwrap(), 0, "and only once");
    // After the snooze the chain and the reminders go on: at 12:00 the 2h step and the
    // reminder (taken quietly at 11:00, the next one due at 12:00).
    clock.advance(Duration::minutes(44));
    assert_eq!(escalate::tick(&shared).await.unwrap(), 0);
    clock.advance(Duration::minutes(2));
    assert_eq!(escalate::tick(&shared).await.unwrap(), 2);
    let to = outbox_to(&shared).await;
    assert!(to.contains(&"vp@example.com".to_string()), "{to:?}");
}

// See: issues/10 (snooze). A snooze decided on a copy read before an acknowledgement is
// refused (it would write the incident back as open), and decided again from the new state:
// both the acknowledgement and the snooze stay. Likewise the end of a hold decided before a
// run's write.
#[tokio::test]
async fn a_snooze_and_an_acknowledgement_never_lose_each_other() {
    use crate::engine::apply::{ApplyError, Facts, change_incident, change_incident_with, record};
    let (_dir, shared, clock) = setup().await;
    run_checks(&shared).await;
    let loaded = shared.loaded();
    let now = clock.now();
    let (stale, _) = shared.store.incident(1).await.unwrap().unwrap();
    change_incident(
        &shared.store,
        &loaded.composer,
        &loaded.infos,
        1,
        now,
        |inc| reconcile::acknowledge(inc, "alice", None, now),
    )
    .await
    .unwrap()
    .unwrap();
    // The snooze computed from the copy before the ack: refused, nothing of it written.
    let (late, controls) = crate::incidents::respond::snooze(
        &stale,
        &crate::incidents::Controls::default(),
        "bob",
        now + Duration::hours(1),
        "deploy",
        now,
    )
    .unwrap();
    let mut facts = Facts::default();
    facts.controls.insert(1, controls);
    let refused = record(&shared.store, &loaded.composer, &[], &[late], &facts, now).await;
    assert!(
        matches!(&refused, Err(ApplyError::Store(e)) if e.is_conflict()),
        "{refused:?}"
    );
    assert!(
        shared
            .store
            .controls_of(1)
            .await
            .unwrap()
            .hold(now)
            .is_none()
    );
    // Through the retrying path it is decided again from the acknowledged incident.
    change_incident_with(
        &shared.store,
        &loaded.composer,
        &loaded.infos,
        1,
        now,
        |inc, c| {
            crate::incidents::respond::snooze(
                inc,
                c,
                "bob",
                now + Duration::hours(1),
                "deploy",
                now,
            )
            .map(|(ch, c)| (ch, Some(c)))
        },
    )
    .await
    .unwrap()
    .unwrap();
    let (inc, timeline) = shared.store.incident(1).await.unwrap().unwrap();
    assert_eq!(inc.state, crate::model::IncidentState::Acknowledged);
    assert_eq!(inc.acknowledged_by.as_deref(), Some("alice"));
    let c = shared.store.controls_of(1).await.unwrap();
    assert_eq!(c.hold_by.as_deref(), Some("bob"));
    assert!(c.hold(now).is_some());
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "snoozed"]);

    // A run while snoozed: reconciled, its events not mailed, the hold remembered.
    let before = outbox_to(&shared).await.len();
    clock.advance(Duration::minutes(30));
    run_checks(&shared).await;
    assert_eq!(outbox_to(&shared).await.len(), before);
    assert!(
        shared
            .store
            .controls_of(1)
            .await
            .unwrap()
            .held_since
            .is_some()
    );
}
