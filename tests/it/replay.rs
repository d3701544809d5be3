//! A month of hourly runs, replayed with an injected clock over real SQLite warehouses and
//! a real state store: healthy checks, flapping checks, a 10-hour incident, a recurrence, a
//! severity rise, a 6-hour outage of a connection under 10 checks with a real incident open
//! across it, a daily partition due at 03:00 that lands at 02:30, and a 30-key storm. It
//! counts what people were told and asserts the noise figures README's "Noise" section gives.
//! `cargo test --test it replay -- --nocapture` prints them.
// See: issues/10 (tests and figures)

use chrono::{DateTime, Duration, TimeZone, Utc};
use dqwatch::clock::{Clock, ManualClock};
use dqwatch::engine::{Engine, apply, run as runner};
use dqwatch::incidents::EventKind;
use dqwatch::store::Store;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

const CONFIG: &str = r#"
checks_dir = "checks"
state = "sqlite://state.db"
[connections.warehouse]
url = "sqlite://warehouse.db"
[connections.lake]
url = "sqlite://lake.db?mode=ro"
[mail]
from = "dq <dq@example.com>"
dir = "outbox"
[[routes]]
email = ["oncall@example.com"]
[incidents]
reopen_within = "24h"
"#;

/// The noise controls the replay runs with: hourly checks open after two breaching runs in a
/// row; `flap = "5 of 10"` and `group_keys = 10` are the defaults; the daily partition's
/// check says `due = "03:00"`.
const QUIET: &str = "open_after = 2\n";
/// Every control off: what the same month tells without them.
const LOUD: &str = "open_after = 1\nflap = \"off\"\ngroup_keys = 0\n";

/// One value per check per hour: the `metric` table the scenario checks read.
fn value(check: &str, at: DateTime<Utc>, start: DateTime<Utc>) -> f64 {
    let hour = (at - start).num_hours();
    let day = hour / 24;
    let h = hour % 24;
    let between = |d: i64, from: i64, to: i64| day == d && (from..to).contains(&h);
    match check {
        "flap_alternate" => (hour % 2) as f64,
        "flap_third" => f64::from(hour % 3 == 0),
        "incident_10h" => f64::from(between(4, 10, 20)),
        // Three hours, two hours of passes, three more hours: one thread, two episodes.
        "recurrence" => f64::from(between(9, 8, 11) || between(9, 13, 16)),
        // P2 for three hours, then P0 for three.
        "severity_rise" => {
            if between(12, 6, 9) {
                1.0
            } else if between(12, 9, 12) {
                5.0
            } else {
                0.0
            }
        }
        // On the lake, open from 00:00 to 20:00 on day 15, across the outage.
        "lake_real" => f64::from(between(14, 0, 20)),
        _ => 0.0,
    }
}

const SCENARIOS: [&str; 9] = [
    "healthy_a",
    "healthy_b",
    "healthy_c",
    "flap_alternate",
    "flap_third",
    "incident_10h",
    "recurrence",
    "severity_rise",
    "lake_real",
];

fn check(dir: &Path, name: &str, connection: &str) {
    let table = if connection == "lake" {
        "lake_metric"
    } else {
        "metric"
    };
    std::fs::write(
        dir.join(format!("checks/{name}.sql")),
        format!(
            "-- dqwatch\n-- connection = \"{connection}\"\n-- metric = \"v\"\n-- [thresholds]\n\
             -- P0 = \"> 4\"\n-- P2 = \"> 0\"\nSELECT v FROM {table} WHERE name = '{name}'\n"
        ),
    )
    .unwrap();
}

async fn sqlite(path: &Path, sql: &str) {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[derive(Default, Debug)]
struct Told {
    tickets: usize,
    mails: usize,
    episodes: usize,
}

/// What a month told: per check, all mails, threads left without a resolution mail, and
/// replies whose thread root was never written.
struct Month {
    told: BTreeMap<String, Told>,
    mails: usize,
    unresolved_threads: Vec<String>,
    orphans: usize,
}

impl Month {
    fn get(&self, id: &str) -> (usize, usize, usize) {
        self.told
            .get(id)
            .map_or((0, 0, 0), |t| (t.tickets, t.mails, t.episodes))
    }

    fn print(&self, title: &str) {
        println!("month replay ({title}): 720 hourly runs");
        println!(
            "{:<28} {:>7} {:>9} {:>6}",
            "check", "tickets", "episodes", "mails"
        );
        for (id, t) in &self.told {
            println!("{id:<28} {:>7} {:>9} {:>6}", t.tickets, t.episodes, t.mails);
        }
        println!(
            "mails in all: {}; threads without a resolution mail: {}; replies to unsent mails: {}",
            self.mails,
            self.unresolved_threads.len(),
            self.orphans
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_replayed_tells_each_real_problem_once() {
    let m = month(QUIET, true).await;
    m.print("noise controls on");
    // Real incidents: one ticket each, at most three mails per episode.
    for id in [
        "incident_10h",
        "recurrence",
        "severity_rise",
        "lake_real",
        "storm",
        "connection/lake",
    ] {
        let (tickets, mails, episodes) = m.get(id);
        assert_eq!(tickets, 1, "{id}: {:?}", m.told);
        assert!(
            episodes >= 1 && mails <= 3 * episodes,
            "{id}: {mails} mails over {episodes} episodes"
        );
    }
    assert_eq!(m.get("incident_10h"), (1, 2, 1), "opened, resolved");
    assert_eq!(
        m.get("severity_rise"),
        (1, 3, 1),
        "opened, severity raised, resolved"
    );
    assert_eq!(m.get("recurrence"), (1, 4, 2), "one thread, two episodes");
    assert_eq!(
        m.get("storm"),
        (1, 2, 1),
        "thirty keys, one ticket: opened, resolved"
    );
    // The outage: one ticket for the connection; the incident open across it is neither
    // resolved nor re-told by it (opened, resolved at 20:00: two mails).
    assert_eq!(m.get("connection/lake"), (1, 2, 1));
    assert_eq!(m.get("lake_real"), (1, 2, 1));
    // Noise: nothing from flapping, healthy checks, the other lake checks or the late
    // partition.
    for (id, t) in &m.told {
        if id.starts_with("flap_") || id.contains("healthy") || id == "daily_partition" {
            assert_eq!((t.tickets, t.mails), (0, 0), "{id}: {:?}", m.told);
        }
    }
    assert_eq!(m.mails, 15);
    assert!(
        m.unresolved_threads.is_empty(),
        "{:?}",
        m.unresolved_threads
    );
    assert_eq!(m.orphans, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_month_without_noise_control_is_mostly_noise() {
    let m = month(LOUD, false).await;
    m.print("noise controls off");
    // Flapping checks open and resolve all month, the late partition is a ticket every
    // night, the storm is thirty tickets.
    assert!(m.get("flap_alternate").1 > 300, "{:?}", m.told);
    assert!(m.get("flap_third").1 > 200, "{:?}", m.told);
    assert_eq!(
        m.get("daily_partition").0,
        29,
        "one every night: {:?}",
        m.told
    );
    assert_eq!(m.get("storm").0, 30, "one ticket per key");
    assert!(m.mails > 700, "{}", m.mails);
    assert_eq!(m.orphans, 0);
}

async fn month(noise: &str, due: bool) -> Month {
    // /dev/shm when there is one: a month of commits without waiting on the disk.
    let tmp = match tempfile::tempdir_in("/dev/shm") {
        Ok(t) => t,
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).unwrap();
    std::fs::write(dir.join("dqwatch.toml"), format!("{CONFIG}{noise}")).unwrap();
    for name in SCENARIOS {
        check(
            dir,
            name,
            if name == "lake_real" {
                "lake"
            } else {
                "warehouse"
            },
        );
    }
    // Nine healthy checks share the lake with lake_real: ten checks under the outage.
    for n in 0..9 {
        check(dir, &format!("lake_healthy_{n}"), "lake");
    }
    // The daily partition, due at 03:00, lands at 02:30: never a ticket.
    std::fs::write(
        dir.join("checks/daily_partition.sql"),
        format!(
            "-- dqwatch\n-- connection = \"warehouse\"\n-- keys = [\"day\"]\n{}\
         SELECT date(today, '-1 day') AS day FROM clock\n\
         WHERE date(today, '-1 day') NOT IN (SELECT day FROM partitions)\n",
            if due { "-- due = \"03:00\"\n" } else { "" }
        ),
    )
    .unwrap();
    // The storm: thirty daily partitions of a table vanish at once, and come back in three
    // backfills.
    std::fs::write(
        dir.join("checks/storm.sql"),
        "-- dqwatch\n-- connection = \"warehouse\"\n-- keys = [\"day\"]\nSELECT day FROM backfill WHERE loaded = 0\n",
    )
    .unwrap();
    let warehouse = dir.join("warehouse.db");
    sqlite(
        &warehouse,
        "CREATE TABLE metric (name TEXT, v REAL); CREATE TABLE clock (today TEXT);\
         CREATE TABLE partitions (day TEXT); CREATE TABLE backfill (day TEXT, loaded INT);\
         INSERT INTO clock VALUES ('2026-10-01');\
         WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 30)\
         INSERT INTO backfill SELECT date('2026-09-01', '+' || n || ' day'), 1 FROM d;\
         INSERT INTO partitions VALUES ('2026-09-30');",
    )
    .await;
    let lake = dir.join("lake.db");
    sqlite(&lake, "CREATE TABLE lake_metric (name TEXT, v REAL);").await;

    let start = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let clock = ManualClock::new(start);
    let config = dir.join("dqwatch.toml");
    let mut engine = Engine::load(&config, &|_| None).unwrap();
    let store = Store::open(&engine.config.state).await.unwrap();
    let outage = (start + Duration::days(14) + Duration::hours(6))
        ..(start + Duration::days(14) + Duration::hours(12));
    let mut lake_down = false;

    for hour in 0..(30 * 24) {
        let now = start + Duration::hours(hour);
        clock.set(now);
        let mut sql = String::from("DELETE FROM metric;");
        for name in SCENARIOS.iter().filter(|n| **n != "lake_real") {
            write!(
                sql,
                "INSERT INTO metric VALUES ('{name}', {});",
                value(name, now, start)
            )
            .unwrap();
        }
        let today = now.date_naive();
        write!(sql, "UPDATE clock SET today = '{today}';").unwrap();
        // Yesterday's partition lands at 02:30: the 03:00 run is the first to see it.
        if now.format("%H").to_string() == "03" {
            write!(
                sql,
                "INSERT INTO partitions VALUES ('{}');",
                today.pred_opt().unwrap()
            )
            .unwrap();
        }
        // Day 20, 06:00: thirty partitions vanish; backfilled 10 at a time from 10:00.
        let storm_day = start + Duration::days(19);
        if now == storm_day + Duration::hours(6) {
            sql.push_str("UPDATE backfill SET loaded = 0;");
        }
        for (n, h) in [10, 11, 12].into_iter().enumerate() {
            if now == storm_day + Duration::hours(h) {
                let (from, to) = (n * 10 + 1, n * 10 + 10);
                write!(sql,
                    "UPDATE backfill SET loaded = 1 WHERE day BETWEEN date('2026-09-01', '+{from} day') AND date('2026-09-01', '+{to} day');"
                ).unwrap();
            }
        }
        sqlite(&warehouse, &sql).await;

        // The lake: down for six hours (its file gone, so no check can open it).
        let down = outage.contains(&now);
        if down != lake_down {
            if down {
                std::fs::rename(&lake, dir.join("lake.db.away")).unwrap();
            } else {
                std::fs::rename(dir.join("lake.db.away"), &lake).unwrap();
            }
            // New pools: nothing cached from before.
            engine = Engine::load(&config, &|_| None).unwrap();
            lake_down = down;
        }
        if !down {
            let mut sql = String::from("DELETE FROM lake_metric;");
            write!(
                sql,
                "INSERT INTO lake_metric VALUES ('lake_real', {});",
                value("lake_real", now, start)
            )
            .unwrap();
            for n in 0..9 {
                write!(
                    sql,
                    "INSERT INTO lake_metric VALUES ('lake_healthy_{n}', 0);"
                )
                .unwrap();
            }
            sqlite(&lake, &sql).await;
        }

        let report = runner::run(
            engine.checks.clone(),
            &engine.warehouses,
            Some(&store),
            &clock,
            &|_| {},
        )
        .await;
        apply::record_runs(
            &report.runs,
            &[],
            &store,
            &engine.composer,
            &engine.config,
            clock.now(),
        )
        .await
        .unwrap();
    }

    // What people were told, per check.
    let incidents = store.incidents(&[]).await.unwrap();
    let mails = store.outbox(None, 100_000).await.unwrap();
    let mut by_incident: HashMap<i64, Vec<_>> = HashMap::new();
    for m in &mails {
        by_incident
            .entry(m.incident_id.unwrap_or(0))
            .or_default()
            .push(m);
    }
    let mut told: BTreeMap<String, Told> = BTreeMap::new();
    let mut unresolved_threads = Vec::new();
    for inc in &incidents {
        let entry = told.entry(inc.check_id.0.clone()).or_default();
        let sent = by_incident.get(&inc.id).map_or(0, Vec::len);
        entry.mails += sent;
        if inc.opened_at.is_some() {
            entry.tickets += 1;
            let (_, events) = store.incident(inc.id).await.unwrap().unwrap();
            entry.episodes += events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Opened | EventKind::Reopened))
                .count();
            let last = events.iter().rev().find(|e| e.kind.template().is_some());
            if last.map(|e| e.kind) != Some(EventKind::Resolved) {
                unresolved_threads.push(inc.check_id.0.clone());
            }
        }
    }
    // Every reply's thread root was written before it (no reply into an unsent thread).
    let roots: HashSet<&str> = mails
        .iter()
        .filter(|m| m.mail.in_reply_to.is_none())
        .map(|m| m.mail.message_id.as_str())
        .collect();
    let orphans = mails
        .iter()
        .filter(|m| {
            m.mail
                .in_reply_to
                .as_deref()
                .is_some_and(|r| !roots.contains(r))
        })
        .count();

    Month {
        told,
        mails: mails.len(),
        unresolved_threads,
        orphans,
    }
}
