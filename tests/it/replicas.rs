//! Two `dqwatch daemon` processes on one PostgreSQL state store, one killed mid-run: the
//! slot it held is run by the other, once. The check blocks on a table the test locks, so
//! the first replica is surely mid-run when it dies, and the second one's run of the slot
//! finishes only when the test lets it.

use crate::daemon::{Daemon, SOON, pg_rows};
use crate::require_env;
use crate::util::{PgSchema, TestEnv};
use std::time::{Duration, Instant};

/// The config: state store `state`, warehouse `warehouse` (PostgreSQL), a 3 s slot lease.
fn config(state: &str, warehouse: &str) -> String {
    format!(
        "state = \"{state}\"\n\
         [daemon]\ntimezone = \"UTC\"\nclaim_lease = \"3s\"\n\
         [connections.warehouse]\nurl = \"{warehouse}\"\nstatement_timeout = \"5m\"\n\
         [mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"file\"\ndir = \"outbox\"\n\
         [[routes]]\nseverity = [\"P0\", \"P1\", \"P2\", \"P3\"]\nemail = [\"oncall@example.com\"]\n"
    )
}

/// Backends waiting for a lock on a query of table `gate`.
fn waiting_on_gate(url: &str) -> usize {
    pg_rows(
        url,
        "SELECT CAST(pid AS TEXT) FROM pg_stat_activity \
         WHERE query LIKE '%FROM gate%' AND wait_event_type = 'Lock'",
    )
    .len()
}

// See: issues/8 item 8
/// Replica A claims a slot and is killed (SIGKILL) while the check runs; replica B takes the
/// slot over once A's lease ran out and runs it: one run for the slot, never none, never two.
#[test]
fn a_slot_claimed_by_a_killed_replica_is_run_once_by_the_other() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let state = PgSchema::new(&admin, "replicas_state");
    let warehouse = PgSchema::new(&admin, "replicas_gate");
    warehouse.exec("CREATE TABLE gate (n INT); INSERT INTO gate VALUES (1)");
    let env = TestEnv::new();
    env.config(&config(&state.url, &warehouse.url));
    std::fs::create_dir_all(env.path().join("checks")).unwrap();

    // The gate: an open transaction holding an exclusive lock on the table the check reads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut gate = rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&warehouse.url).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
            .execute(&mut c)
            .await
            .unwrap();
        c
    });

    let a = Daemon::start(&env, &[]);
    // One slot, a few seconds from now (the database's clock), once a day; A picks it up on
    // SIGHUP. B starts after A claimed it, so only A can have claimed it.
    let at = pg_rows(
        &state.url,
        "SELECT to_char(now() AT TIME ZONE 'UTC' + interval '3 seconds', 'SS MI HH24')",
    )[0][0]
        .clone();
    env.check_with(
        "held",
        &[
            &format!("schedule = \"{at} * * *\""),
            "metric = \"n\"",
            "[thresholds]",
            "P2 = \"> 100\"",
        ],
        "SELECT COUNT(*) AS n FROM gate",
    );
    a.signal("HUP");
    let slots = || {
        pg_rows(
            &state.url,
            "SELECT fire_at, claimed_by, COALESCE(finished_at, ''), CAST(takeovers AS TEXT) \
             FROM slots WHERE check_id = 'held' ORDER BY fire_at",
        )
    };
    a.wait_for(
        "A claiming the slot and its run waiting on the gate",
        SOON,
        || {
            let s = slots();
            (s.len() == 1 && a.is(&s[0][1]) && waiting_on_gate(&warehouse.url) == 1).then_some(())
        },
    );
    let b = Daemon::start(&env, &[]);

    a.kill_hard();
    let died = Instant::now();
    b.wait_for("B taking the slot over", Duration::from_secs(30), || {
        let s = slots();
        (s.len() == 1 && b.is(&s[0][1])).then_some(())
    });
    let taken_over = died.elapsed();
    // B's run of the slot is in flight (A's server backend still waits on the gate too).
    b.wait_for("B's run waiting on the gate", SOON, || {
        (waiting_on_gate(&warehouse.url) == 2).then_some(())
    });
    let b_running = died.elapsed();
    rt.block_on(async {
        sqlx::raw_sql("COMMIT").execute(&mut gate).await.unwrap();
    });
    b.wait_for("B recording the slot's run", SOON, || {
        let s = slots();
        (s.len() == 1 && !s[0][2].is_empty()).then_some(())
    });
    let recorded = died.elapsed();
    let (code, _) = b.stop();
    assert_eq!(code, 0, "{}", b.log_text());
    eprintln!(
        "replica death to takeover {taken_over:?}, to the run in flight {b_running:?}, to the run recorded {recorded:?} (lease 3s, heartbeat every 1s; the gate opened after the takeover)"
    );

    let s = slots();
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(b.is(&s[0][1]), "{s:?}");
    assert_eq!(s[0][3], "1", "taken over once: {s:?}");
    let runs = pg_rows(
        &state.url,
        "SELECT started_at, outcome FROM runs WHERE check_id = 'held'",
    );
    assert_eq!(runs.len(), 1, "the slot ran exactly once: {runs:?}");
    assert_eq!(runs[0][1], "pass", "{runs:?}");
    assert!(
        b.log_text().contains("Took over a slot"),
        "{}",
        b.log_text()
    );
}

// See: issues/8 item 8
/// Eight replicas race to take over one expired slot on PostgreSQL at the same instant:
/// exactly one wins; none can while the lease lasts or once the slot is settled.
#[test]
fn one_replica_wins_a_takeover_race_on_postgres() {
    use chrono::TimeZone;
    use dqwatch::store::Store;
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "replicas_race");
    let lease = Duration::from_secs(30);
    let t0 = chrono::Utc
        .with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
        .unwrap();
    let won = crate::util::block_on(async {
        let store = Store::open(&dqwatch::config::Secret::new(schema.url.clone()))
            .await
            .unwrap();
        let claimed = store
            .claim_slots(&[("race".into(), t0)], "a", t0, lease)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let race = |at: chrono::DateTime<chrono::Utc>| {
            let store = store.clone();
            async move {
                let tries = (0..8).map(|i| {
                    let store = store.clone();
                    async move {
                        store
                            .take_over_slot("race", t0, &format!("r{i}"), at, lease)
                            .await
                            .unwrap()
                    }
                });
                futures_util::future::join_all(tries)
                    .await
                    .into_iter()
                    .filter(|w| *w)
                    .count()
            }
        };
        let early = race(t0 + chrono::Duration::seconds(29)).await;
        let late = race(t0 + chrono::Duration::seconds(31)).await;
        let again = race(t0 + chrono::Duration::seconds(32)).await;
        store.close().await;
        (early, late, again)
    });
    assert_eq!(won, (0, 1, 0), "(while leased, expired, just taken over)");
    assert_eq!(
        schema.scalar("SELECT takeovers FROM slots WHERE check_id = 'race'"),
        1
    );
}
