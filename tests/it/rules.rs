//! The built-in rules (`sql/rules/`) on every database: each rule's template runs on
//! PostgreSQL, MariaDB and SQLite against data planted relative to the database's own clock,
//! and finds exactly the planted breaches. Also: a reconciliation across two databases,
//! `render`, `validate --connect`, and bad or hostile parameters.
//!
//! Each rule scenario is one function taking a [`Db`] (`db.rs`); `on_every_database!` turns
//! it into `rules::<scenario>::{postgres, mariadb, sqlite}`. PostgreSQL and MariaDB tests
//! print a `SKIP` line without `DQWATCH_TEST_POSTGRES_URL` / `DQWATCH_TEST_MARIADB_URL`.

use crate::db::{Db, Kind, on_every_database};
use crate::require_env;
use crate::util::{Output, TestEnv, check_doc};
use chrono::{Days, NaiveDateTime, TimeDelta, Timelike};
use serde_json::Value;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

on_every_database!(
    "r_",
    missing_partition,
    freshness_lag,
    failure_rate_spike,
    trend_risk,
    duplicate_rows,
    reconciliation_gap,
    validate_connect_reports_a_missing_table,
    bad_and_hostile_parameters_are_refused,
);

// ---------------------------------------------------------------------------------------
// What the rule scenarios need of a warehouse beyond the shared facade: its clock, time
// expressions and column types, and rule checks.

impl Db {
    /// The database's clock (its session time zone), to the second.
    fn now(&self) -> NaiveDateTime {
        let s = self.text(self.pick(
            "SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS')",
            "SELECT CAST(DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s') AS CHAR)",
            "SELECT datetime('now')",
        ));
        NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// Runs `scenario` (plant, then run dqwatch) until the database clock stays within one
    /// `bucket` (a chrono format: "%Y-%m-%d" for a day) from before planting to after the run,
    /// so that a test crossing midnight or the hour does not fail spuriously.
    fn steady<T>(&self, bucket: &str, mut scenario: impl FnMut() -> T) -> (NaiveDateTime, T) {
        for _ in 0..3 {
            let before = self.now();
            let out = scenario();
            let after = self.now();
            if before.format(bucket).to_string() == after.format(bucket).to_string() {
                return (before, out);
            }
        }
        panic!("the database clock crossed a {bucket} boundary three times in a row");
    }

    /// Column types.
    fn timestamp(&self) -> &'static str {
        self.pick("timestamp", "DATETIME", "TEXT")
    }

    fn date(&self) -> &'static str {
        self.pick("date", "DATE", "TEXT")
    }

    /// An expression: the timestamp `secs` seconds ago.
    fn secs_ago(&self, secs: i64) -> String {
        match self.kind {
            Kind::Postgres => format!("now() - interval '{secs} seconds'"),
            Kind::Mariadb => format!("NOW() - INTERVAL {secs} SECOND"),
            Kind::Sqlite => format!("datetime('now', '-{secs} seconds')"),
        }
    }

    /// An expression: the date `days` days ago (0: today).
    fn days_ago(&self, days: u64) -> String {
        match self.kind {
            Kind::Postgres => format!("CURRENT_DATE - {days}"),
            Kind::Mariadb => format!("CURRENT_DATE - INTERVAL {days} DAY"),
            Kind::Sqlite => format!("date('now', '-{days} days')"),
        }
    }

    /// An expression: `minute` minutes into the hour that began `hours` hours before the
    /// current one.
    fn in_hour_ago(&self, hours: i64, minute: i64) -> String {
        match self.kind {
            Kind::Postgres => format!(
                "date_trunc('hour', now()) - interval '{hours} hours' + interval '{minute} minutes'"
            ),
            Kind::Mariadb => format!(
                "CAST(DATE_FORMAT(NOW(), '%Y-%m-%d %H:00:00') AS DATETIME) - INTERVAL {hours} HOUR + INTERVAL {minute} MINUTE"
            ),
            Kind::Sqlite => format!(
                "datetime(strftime('%Y-%m-%d %H:00:00', 'now'), '-{hours} hours', '+{minute} minutes')"
            ),
        }
    }

    /// Writes `checks/ID.toml`.
    fn rule_check(&self, id: &str, text: &str) {
        self.env.write(&format!("checks/{id}.toml"), text);
    }

    /// `run --no-incidents --format json --fail-on P3`.
    fn run(&self) -> Output {
        self.env.run([
            "run",
            "--no-incidents",
            "--format",
            "json",
            "--fail-on",
            "P3",
        ])
    }

    /// `validate --connect` must prepare every rule check's SQL.
    #[track_caller]
    fn validate_connect_ok(&self) {
        self.env
            .run(["validate", "--connect"])
            .code(0)
            .stdout_has("✓ warehouse");
    }
}

// ---------------------------------------------------------------------------------------
// Reading the JSON report.

/// One run's JSON report, judged check by check. Mismatches are collected, so that a failing
/// test names every wrong check at once; `finish` fails the test if there is any.
struct Verdicts {
    kind: Kind,
    report: Value,
    failures: Vec<String>,
}

impl Verdicts {
    /// The report of a `run --format json` (exit 0 or 1; 3 when a check errs, which the
    /// check's verdict then shows with its message).
    #[track_caller]
    fn new(out: &Output, kind: Kind) -> Self {
        assert!(
            [0, 1, 3].contains(&out.code),
            "{kind:?}: exit {}\n--- stdout\n{}\n--- stderr\n{}",
            out.code,
            out.stdout,
            out.stderr
        );
        Self {
            kind,
            report: out.json(),
            failures: Vec::new(),
        }
    }

    fn doc(&self, id: &str) -> &Value {
        check_doc(&self.report, id)
    }

    fn fail(&mut self, id: &str, what: &str) {
        let doc = format!("{:#}", self.doc(id));
        self.failures
            .push(format!("{:?} {id}: {what}\n{doc}", self.kind));
    }

    /// Check `id` ran, and its observations are exactly `want` (key text → `P0`…`P3`,
    /// `pass` or `no_data`); its status and severity follow.
    fn expect(&mut self, id: &str, want: &[(String, &str)]) {
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, s)| (k.clone(), (*s).to_string()))
            .collect();
        if !self.ran(id) {
            return;
        }
        let got = statuses(self.doc(id));
        if got != want {
            self.fail(
                id,
                &format!("observations\n  got:    {got:?}\n  wanted: {want:?}"),
            );
            return;
        }
        let worst = want.values().filter(|s| s.starts_with('P')).min().cloned();
        let doc = self.doc(id);
        let (severity, status) = (doc["severity"].clone(), doc["status"].clone());
        if severity.as_str() != worst.as_deref()
            || status != if worst.is_some() { "breach" } else { "pass" }
        {
            self.fail(id, &format!("status {status}, severity {severity}"));
        }
    }

    /// Check `id` ran and found nothing wrong: it passes, and no key breaches.
    fn clean(&mut self, id: &str) {
        if !self.ran(id) {
            return;
        }
        let got = statuses(self.doc(id));
        if self.doc(id)["status"] != "pass" || got.values().any(|s| s.starts_with('P')) {
            self.fail(id, &format!("wanted a pass, got {got:?}"));
        }
    }

    fn ran(&mut self, id: &str) -> bool {
        let error = self.doc(id)["error"].clone();
        if error.is_null() {
            true
        } else {
            self.fail(
                id,
                &format!("the check could not run: {}", error["message"]),
            );
            false
        }
    }

    /// The metric of check `id`'s observation `key` is `want`, give or take `within`.
    fn metric(&mut self, id: &str, key: &str, want: f64, within: f64) {
        let got = observation(self.doc(id), key).and_then(|o| o["metric"].as_f64());
        match got {
            Some(m) if (m - want).abs() <= within => {}
            _ => self.fail(id, &format!("metric of [{key}] is {got:?}, wanted {want}")),
        }
    }

    /// Field `field` of check `id`'s observation `key` is `want`.
    fn observed(&mut self, id: &str, key: &str, field: &str, want: &Value) {
        let got = observation(self.doc(id), key).map(|o| o[field].clone());
        if got.as_ref() != Some(want) {
            self.fail(id, &format!("{field} of [{key}] is {got:?}, wanted {want}"));
        }
    }

    /// Field `field` of check `id`'s report entry is `want`.
    fn field(&mut self, id: &str, field: &str, want: &Value) {
        let got = self.doc(id)[field].clone();
        if got != *want {
            self.fail(id, &format!("{field} is {got}, wanted {want}"));
        }
    }

    #[track_caller]
    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} wrong verdict(s):\n\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

/// `col=value`: a key as [`statuses`] writes it (several joined by ", " in column order).
fn key(col: &str, value: impl std::fmt::Display) -> String {
    format!("{col}={value}")
}

fn key_text(o: &Value) -> String {
    o["key"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn observation<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    doc["observations"]
        .as_array()?
        .iter()
        .find(|o| key_text(o) == key)
}

/// Each observation of a check: key text → `P0`…`P3`, `pass` or `no_data`.
fn statuses(doc: &Value) -> BTreeMap<String, String> {
    doc["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let status = match o["status"].as_str().unwrap() {
                "breach" => o["severity"].as_str().unwrap().to_string(),
                other => other.to_string(),
            };
            (key_text(o), status)
        })
        .collect()
}

/// A `.toml` rule check: `rule`, `connection`, `extra` header lines, then `[params]` with
/// `params` (TOML values), one per line from line `4 + extra.len()`, then `tail` (e.g. a
/// `[thresholds]` table).
fn rule_toml(
    rule: &str,
    connection: &str,
    extra: &[&str],
    params: &[(&str, String)],
    tail: &str,
) -> String {
    let mut t = format!("rule = \"{rule}\"\nconnection = \"{connection}\"\n");
    for line in extra {
        t.push_str(line);
        t.push('\n');
    }
    t.push_str("[params]\n");
    for (name, value) in params {
        let _ = writeln!(t, "{name} = {value}");
    }
    t.push_str(tail);
    t
}

/// A TOML basic string.
fn s(v: &str) -> String {
    format!("{v:?}")
}

// ---------------------------------------------------------------------------------------
// One scenario per rule.

/// Day partitions: of the 7 days before today one is missing and one underfilled
/// (`min_rows = 2`); today and the day before the window are not checked. Hour partitions:
/// two of the 6 hours before the current one are missing. Then windows without a gap.
fn missing_partition(db: &Db) {
    let check = |id: &str, params: &[(&str, &str)]| {
        let params: Vec<(&str, String)> = params.iter().map(|(n, v)| (*n, s(v))).collect();
        db.rule_check(
            id,
            &rule_toml("missing_partition", "warehouse", &[], &params, ""),
        );
    };
    let events = [("table", "events"), ("partition_column", "event_date")];
    check("partitions_default", &events);
    db.rule_check(
        "partitions_min2",
        &rule_toml(
            "missing_partition",
            "warehouse",
            &[],
            &[
                ("table", s("events")),
                ("partition_column", s("event_date")),
                ("lookback", s("7d")),
                ("min_rows", "2".into()),
            ],
            "",
        ),
    );
    check(
        "partitions_hourly",
        &[
            ("table", "events_hourly"),
            ("partition_column", "event_at"),
            ("granularity", "hour"),
            ("lookback", "6h"),
        ],
    );
    // Windows where every partition has rows: the last 2 days, the last 36 hours (half of
    // the day before yesterday, and yesterday), and the last 2 hours.
    let mut p = events.to_vec();
    p.push(("lookback", "2d"));
    check("partitions_complete", &p);
    p = events.to_vec();
    p.push(("lookback", "36h"));
    check("partitions_complete_36h", &p);
    check(
        "partitions_hourly_complete",
        &[
            ("table", "events_hourly"),
            ("partition_column", "event_at"),
            ("granularity", "hour"),
            ("lookback", "1h"),
        ],
    );
    // rows per day, days ago: the 3rd is missing, the 5th underfilled; 0 (today) and 8
    // (outside the window) have none and are not checked.
    let days: [(u64, usize); 6] = [(7, 2), (6, 3), (5, 1), (4, 2), (2, 2), (1, 5)];
    // rows per hour, hours before the current one: 4 and 2 are missing; 0 is the current one.
    let hours: [(i64, usize); 5] = [(6, 1), (5, 2), (3, 1), (1, 1), (0, 1)];
    let (now, out) = db.steady("%Y-%m-%d %H", || {
        let mut sql = format!(
            "DROP TABLE IF EXISTS events;
             CREATE TABLE events (id INT, event_date {});
             DROP TABLE IF EXISTS events_hourly;
             CREATE TABLE events_hourly (id INT, event_at {});
             INSERT INTO events VALUES ",
            db.date(),
            db.timestamp()
        );
        let mut rows = Vec::new();
        for (ago, n) in days {
            for i in 0..n {
                rows.push(format!("({i}, {})", db.days_ago(ago)));
            }
        }
        sql.push_str(&rows.join(", "));
        sql.push_str(";\nINSERT INTO events_hourly VALUES ");
        let mut rows = Vec::new();
        for (ago, n) in hours {
            for i in 0..n {
                let minute = 10 + 7 * i as i64;
                rows.push(format!("({i}, {})", db.in_hour_ago(ago, minute)));
            }
        }
        sql.push_str(&rows.join(", "));
        db.exec(&sql);
        db.run()
    });
    let day = |ago: u64| {
        key(
            "partition",
            (now.date() - Days::new(ago)).format("%Y-%m-%d"),
        )
    };
    let hour_start = now.date().and_hms_opt(now.hour(), 0, 0).unwrap();
    let hour = |ago: i64| {
        key(
            "partition",
            (hour_start - TimeDelta::hours(ago)).format("%Y-%m-%d %H:00"),
        )
    };
    let mut v = Verdicts::new(&out, db.kind);
    v.expect("partitions_min2", &[(day(5), "P1"), (day(3), "P1")]);
    v.metric("partitions_min2", &day(5), 1.0, 0.0);
    v.metric("partitions_min2", &day(3), 0.0, 0.0);
    v.expect("partitions_default", &[(day(3), "P1")]);
    v.expect("partitions_hourly", &[(hour(4), "P1"), (hour(2), "P1")]);
    v.clean("partitions_complete");
    v.clean("partitions_complete_36h");
    v.clean("partitions_hourly_complete");
    v.finish();
    db.validate_connect_ok();
}

/// Datasets loaded 10 minutes, 1 hour, 5 hours and 30 hours ago, plus a backfill row that
/// makes `warm` look fresh unless `where` leaves it out.
fn freshness_lag(db: &Db) {
    db.exec(&format!(
        "CREATE TABLE loads (dataset VARCHAR(40), loaded_at {ts}, source VARCHAR(10));
         INSERT INTO loads VALUES
            ('fresh', {m10}, 'api'), ('fresh', {h5}, 'api'),
            ('warm', {h1}, 'api'), ('warm', {h3}, 'api'), ('warm', {m1}, 'backfill'),
            ('stale', {h5}, 'api'),
            ('gone', {h30}, 'api');",
        ts = db.timestamp(),
        m1 = db.secs_ago(60),
        m10 = db.secs_ago(600),
        h1 = db.secs_ago(3600),
        h3 = db.secs_ago(3 * 3600),
        h5 = db.secs_ago(5 * 3600),
        h30 = db.secs_ago(30 * 3600),
    ));
    let w = "warehouse";
    let keyed = |where_: Option<&str>| {
        let mut p = vec![
            ("table", s("loads")),
            ("timestamp_column", s("loaded_at")),
            ("key_column", s("dataset")),
        ];
        if let Some(c) = where_ {
            p.push(("where", s(c)));
        }
        p
    };
    db.rule_check(
        "fresh_keyed_where",
        &rule_toml(
            "freshness_lag",
            w,
            &[],
            &keyed(Some("source = 'api'")),
            "[thresholds]\nP1 = \"> 2h\"\nP3 = \"> 30m\"\n",
        ),
    );
    db.rule_check(
        "fresh_keyed_default",
        &rule_toml("freshness_lag", w, &[], &keyed(None), ""),
    );
    db.rule_check(
        "fresh_table",
        &rule_toml(
            "freshness_lag",
            w,
            &[],
            &[("table", s("loads")), ("timestamp_column", s("loaded_at"))],
            "",
        ),
    );
    db.rule_check(
        "fresh_table_where",
        &rule_toml(
            "freshness_lag",
            w,
            &[
                "description = \"The gone dataset's API loads\"",
                "tags = [\"freshness\", \"api\"]",
            ],
            &[
                ("table", s("loads")),
                ("timestamp_column", s("loaded_at")),
                ("where", s("dataset = 'gone' AND source = 'api'")),
            ],
            "",
        ),
    );
    let mut v = Verdicts::new(&db.run(), db.kind);
    let ds = |d: &str| key("dataset", d);
    v.expect(
        "fresh_keyed_where",
        &[
            (ds("fresh"), "pass"),
            (ds("warm"), "P3"),
            (ds("stale"), "P1"),
            (ds("gone"), "P1"),
        ],
    );
    v.expect(
        "fresh_keyed_default",
        &[
            (ds("fresh"), "pass"),
            (ds("warm"), "pass"),
            (ds("stale"), "pass"),
            (ds("gone"), "P2"),
        ],
    );
    v.expect("fresh_table", &[(ds("all"), "pass")]);
    v.expect("fresh_table_where", &[(ds("all"), "P2")]);
    v.field("fresh_table_where", "tags", &json!(["freshness", "api"]));
    v.field("fresh_table_where", "category", &json!("stale_data"));
    // Lags in seconds, give or take two minutes of test run.
    v.metric("fresh_keyed_where", &ds("warm"), 3600.0, 120.0);
    v.metric("fresh_keyed_default", &ds("warm"), 60.0, 120.0);
    v.metric("fresh_keyed_where", &ds("gone"), 108_000.0, 120.0);
    v.metric("fresh_table", &ds("all"), 60.0, 120.0);
    v.finish();
    db.validate_connect_ok();
}

/// Pipelines in the last hour: `spiky` 40 % failed (P1), `flaky` 15 % (P2), `tiny` all
/// failed but only 5 runs (no data), `healthy` 1 of 21 with old failures outside the window.
fn failure_rate_spike(db: &Db) {
    let mut rows = Vec::new();
    let mut add = |pipeline: &str, runs: usize, failed: &[&str], ago: i64| {
        for i in 0..runs {
            let status = failed.get(i).copied().unwrap_or("success");
            // One run a minute, the newest `ago` seconds ago.
            let at = db.secs_ago(ago + 60 * i as i64);
            rows.push(format!("('{pipeline}', '{status}', {at})"));
        }
    };
    let spiky = [
        "failed", "failed", "failed", "failed", "failed", "error", "error", "error",
    ];
    add("spiky", 20, &spiky, 30);
    add("flaky", 20, &["failed", "error", "failed"], 30);
    add("tiny", 5, &["failed"; 5], 30);
    add("healthy", 20, &["failed"], 30);
    add("healthy", 20, &["failed"; 20], 2 * 3600);
    add("healthy", 1, &["cancelled"], 30);
    db.exec(&format!(
        "CREATE TABLE runs (pipeline VARCHAR(40), status VARCHAR(60), started_at {});
         INSERT INTO runs VALUES {};",
        db.timestamp(),
        rows.join(", ")
    ));
    let params = |key_column: bool, min_volume: i64| {
        let mut p = vec![
            ("table", s("runs")),
            ("status_column", s("status")),
            // A quote in a value is escaped, not an injection.
            (
                "failure_values",
                r#"["failed", "error", "x'); DROP TABLE runs; --"]"#.to_string(),
            ),
            ("timestamp_column", s("started_at")),
            ("window", s("1h")),
            ("min_volume", min_volume.to_string()),
        ];
        if key_column {
            p.push(("key_column", s("pipeline")));
        }
        p
    };
    let check = |id: &str, key_column: bool, min_volume: i64| {
        let p = params(key_column, min_volume);
        db.rule_check(
            id,
            &rule_toml("failure_rate_spike", "warehouse", &[], &p, ""),
        );
    };
    check("spikes", true, 20);
    check("spikes_all", false, 20);
    check("spikes_quiet", false, 1000);
    let mut v = Verdicts::new(&db.run(), db.kind);
    let p = |v: &str| key("subject", v);
    v.expect(
        "spikes",
        &[
            (p("spiky"), "P1"),
            (p("flaky"), "P2"),
            (p("tiny"), "no_data"),
            (p("healthy"), "pass"),
        ],
    );
    v.metric("spikes", &p("spiky"), 40.0, 1e-6);
    v.metric("spikes", &p("flaky"), 15.0, 1e-6);
    // MariaDB divides DECIMALs to 4 places (div_precision_increment).
    v.metric("spikes", &p("healthy"), 100.0 / 21.0, 1e-4);
    // 66 runs in the window, 17 failed: 25.8 %.
    v.expect("spikes_all", &[(p("all"), "P1")]);
    v.metric("spikes_all", &p("all"), 1700.0 / 66.0, 1e-4);
    v.expect("spikes_quiet", &[(p("all"), "no_data")]);
    v.finish();
    assert_eq!(db.count("runs"), 86);
    db.validate_connect_ok();
}

/// A score history: `high` drops 20 % against the day and the week before, `medium` 3.1 %
/// against the day and 7 % against the week, `low` 1 %, `mixed` 20 % against the day but
/// rose against the week.
fn trend_risk(db: &Db) {
    let mut rows = Vec::new();
    for (dataset, week, day, latest) in [
        ("high", 100, 100, 80),
        ("medium", 100, 96, 93),
        ("low", 100, 100, 99),
        ("mixed", 70, 100, 80),
    ] {
        for (ago, v) in [(7, week), (3, 1), (2, 1000), (1, day), (0, latest)] {
            rows.push(format!("('{dataset}', {}, {v})", db.days_ago(ago)));
        }
    }
    db.exec(&format!(
        "CREATE TABLE scores (dataset VARCHAR(40), score_date {}, score NUMERIC(10, 2));
         INSERT INTO scores VALUES {};",
        db.date(),
        rows.join(", ")
    ));
    let check = |id: &str, extra: &[(&'static str, &str)]| {
        let mut p = vec![
            ("table", s("scores")),
            ("key_column", s("dataset")),
            ("date_column", s("score_date")),
            ("value_column", s("score")),
        ];
        p.extend(extra.iter().map(|(n, v)| (*n, (*v).to_string())));
        db.rule_check(id, &rule_toml("trend_risk", "warehouse", &[], &p, ""));
    };
    check("trend", &[]);
    check(
        "trend_override",
        &[("high_severity", "\"P0\""), ("medium_severity", "\"P3\"")],
    );
    check(
        "trend_strict",
        &[
            ("drop_medium_pct_day", "0.5"),
            ("drop_medium_pct_week", "0.5"),
        ],
    );
    let mut v = Verdicts::new(&db.run(), db.kind);
    let d = |v: &str| key("subject", v);
    v.expect(
        "trend",
        &[
            (d("high"), "P1"),
            (d("medium"), "P2"),
            (d("low"), "pass"),
            (d("mixed"), "pass"),
        ],
    );
    v.expect(
        "trend_override",
        &[
            (d("high"), "P0"),
            (d("medium"), "P3"),
            (d("low"), "pass"),
            (d("mixed"), "pass"),
        ],
    );
    v.expect(
        "trend_strict",
        &[
            (d("high"), "P1"),
            (d("medium"), "P2"),
            (d("low"), "P2"),
            (d("mixed"), "pass"),
        ],
    );
    // The metric is the drop against the day before; the label is the risk column.
    v.metric("trend", &d("high"), 20.0, 1e-6);
    v.metric("trend", &d("medium"), 300.0 / 96.0, 1e-4);
    v.metric("trend", &d("low"), 1.0, 1e-6);
    v.observed("trend", &d("high"), "label", &json!("P1"));
    v.observed("trend", &d("low"), "label", &json!("pass"));
    v.finish();
    db.validate_connect_ok();
}

/// Order lines: (2, 1) is loaded twice today and (3, 1) twice yesterday; order 1 has two
/// distinct lines (a duplicate of `order_id` alone, not of the composite key).
fn duplicate_rows(db: &Db) {
    let today = db.days_ago(0);
    let composite = r#"["order_id", "line_no"]"#;
    let check = |id: &str, extra: &[&str], table: &str, key_columns: &str, where_: &str| {
        let mut p = vec![
            ("table", s(table)),
            ("key_columns", key_columns.to_string()),
        ];
        if !where_.is_empty() {
            p.push(("where", s(where_)));
        }
        db.rule_check(id, &rule_toml("duplicate_rows", "warehouse", extra, &p, ""));
    };
    let keys = r#"keys = ["order_id", "line_no"]"#;
    let today_only = format!("load_date = {today}");
    let qualified = format!("{}.orders", db.schema());
    check("dups", &[], "orders", composite, "");
    check("dups_keyed", &[keys], "orders", composite, "");
    check("dups_qualified", &[keys], &qualified, composite, "");
    check("dups_today", &[keys], "orders", composite, &today_only);
    check(
        "dups_order_only",
        &[r#"keys = ["order_id"]"#, r#"severity = "P1""#],
        "orders",
        r#"["order_id"]"#,
        &today_only,
    );
    let clean = format!("region = 'us' AND {today_only}");
    check("dups_clean", &[], "orders", composite, &clean);
    let (_, out) = db.steady("%Y-%m-%d", || {
        db.exec(&format!(
            "DROP TABLE IF EXISTS orders;
             CREATE TABLE orders (order_id INT, line_no INT, region VARCHAR(10), load_date {date});
             INSERT INTO orders VALUES
                (1, 1, 'eu', {t}), (1, 2, 'eu', {t}), (2, 1, 'eu', {t}), (2, 1, 'eu', {t}),
                (3, 1, 'us', {y}), (3, 1, 'us', {y}), (4, 1, 'us', {y}), (5, 1, 'us', {t}),
                (6, 1, 'us', {t}), (6, 2, 'us', {t});",
            date = db.date(),
            t = today,
            y = db.days_ago(1),
        ));
        db.run()
    });
    let mut v = Verdicts::new(&out, db.kind);
    let k = |order: i64| format!("line_no=1, order_id={order}");
    // Without `keys`, one subject for the table; its metric counts the duplicated keys.
    v.expect("dups", &[(String::new(), "P2")]);
    v.metric("dups", "", 2.0, 0.0);
    v.field("dups", "rows", &json!(2));
    v.field("dups", "category", &json!("duplicate_load"));
    v.expect("dups_keyed", &[(k(2), "P2"), (k(3), "P2")]);
    v.expect("dups_qualified", &[(k(2), "P2"), (k(3), "P2")]);
    v.expect("dups_today", &[(k(2), "P2")]);
    v.expect(
        "dups_order_only",
        &[
            (key("order_id", 1), "P1"),
            (key("order_id", 2), "P1"),
            (key("order_id", 6), "P1"),
        ],
    );
    v.clean("dups_clean");
    v.finish();
    db.validate_connect_ok();
}

/// Two systems' totals per key on one connection: equal, within 0.5, 3 apart, 50 apart,
/// and one key on each side only.
fn reconciliation_gap(db: &Db) {
    db.exec(
        "CREATE TABLE sys_a (k VARCHAR(10), amount NUMERIC(12, 2));
         CREATE TABLE sys_b (k VARCHAR(10), amount NUMERIC(12, 2));
         INSERT INTO sys_a VALUES ('d1', 60), ('d1', 40), ('d2', 100), ('d3', 100), ('d4', 100),
             ('d5', 100);
         INSERT INTO sys_b VALUES ('d1', 100), ('d2', 100.5), ('d3', 103), ('d4', 150),
             ('d6', 20);",
    );
    let side = |table: &str| {
        format!(r#"{{ table = "{table}", key_column = "k", value_expression = "SUM(amount)" }}"#)
    };
    // Columns named otherwise: the first two columns are key and value.
    let query = |table: &str, only: &str| {
        format!(
            r#"{{ query = "SELECT k AS the_key, SUM(amount) AS total FROM {table} {only} GROUP BY k" }}"#
        )
    };
    let check = |id: &str, source: String, target: String, params: &[(&str, &str)], tail: &str| {
        let mut p = vec![("source", source), ("target", target)];
        p.extend(params.iter().map(|(n, v)| (*n, (*v).to_string())));
        db.rule_check(
            id,
            &rule_toml("reconciliation_gap", "warehouse", &[], &p, tail),
        );
    };
    let (a, b) = (query("sys_a", ""), query("sys_b", ""));
    check(
        "recon_abs",
        a.clone(),
        b.clone(),
        &[("tolerance_abs", "1")],
        "",
    );
    check(
        "recon_pct",
        a.clone(),
        b.clone(),
        &[("tolerance_pct", "5")],
        "",
    );
    check(
        "recon_levels",
        a,
        b,
        &[("tolerance_abs", "1")],
        "[thresholds]\nP0 = \"> 40\"\nP2 = \">= 0\"\n",
    );
    let agreeing = "WHERE k IN ('d1', 'd2')";
    check(
        "recon_clean",
        query("sys_a", agreeing),
        query("sys_b", agreeing),
        &[("tolerance_abs", "1")],
        "",
    );
    check(
        "recon_tables",
        side("sys_a"),
        side("sys_b"),
        &[("tolerance_abs", "1")],
        "",
    );
    let mut v = Verdicts::new(&db.run(), db.kind);
    let k = |v: &str| key("key", v);
    let outside = [
        (k("d3"), "P2"),
        (k("d4"), "P2"),
        (k("d5"), "P2"),
        (k("d6"), "P2"),
    ];
    v.expect("recon_abs", &outside);
    v.metric("recon_abs", &k("d3"), 3.0, 1e-9);
    v.metric("recon_abs", &k("d5"), 100.0, 1e-9);
    v.metric("recon_abs", &k("d6"), 20.0, 1e-9);
    v.expect(
        "recon_pct",
        &[(k("d4"), "P2"), (k("d5"), "P2"), (k("d6"), "P2")],
    );
    v.expect(
        "recon_levels",
        &[
            (k("d3"), "P2"),
            (k("d4"), "P0"),
            (k("d5"), "P0"),
            (k("d6"), "P2"),
        ],
    );
    v.clean("recon_clean");
    v.expect("recon_tables", &outside);
    v.finish();
    db.validate_connect_ok();
}

// ---------------------------------------------------------------------------------------
// Every rule with valid parameters, on a table `orders`.

const ORDERS: &str =
    "CREATE TABLE orders (id INT, status VARCHAR(20), created_at {ts}, amount NUMERIC(12, 2));
     INSERT INTO orders VALUES (1, 'ok', {now}, 10), (2, 'failed', {now}, 20);";

fn create_orders(db: &Db) {
    db.exec(
        &ORDERS
            .replace("{ts}", db.timestamp())
            .replace("{now}", &db.secs_ago(0)),
    );
}

/// (rule, every parameter it declares with a valid TOML value) — the six rules tested here.
fn bases() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        (
            "missing_partition",
            vec![
                ("table", s("orders")),
                ("partition_column", s("created_at")),
                ("lookback", s("7d")),
                ("granularity", s("day")),
                ("min_rows", "1".into()),
            ],
        ),
        (
            "reconciliation_gap",
            vec![
                (
                    "source",
                    r#"{ table = "orders", key_column = "status", value_expression = "SUM(amount)" }"#.into(),
                ),
                (
                    "target",
                    r#"{ query = "SELECT status, SUM(amount) FROM orders GROUP BY status" }"#.into(),
                ),
                ("tolerance_abs", "0".into()),
                ("tolerance_pct", "0".into()),
            ],
        ),
        (
            "freshness_lag",
            vec![
                ("table", s("orders")),
                ("timestamp_column", s("created_at")),
                ("key_column", s("status")),
                ("where", s("id > 0")),
            ],
        ),
        (
            "failure_rate_spike",
            vec![
                ("table", s("orders")),
                ("status_column", s("status")),
                ("failure_values", r#"["failed", "error"]"#.into()),
                ("timestamp_column", s("created_at")),
                ("window", s("1h")),
                ("min_volume", "20".into()),
                ("key_column", s("status")),
            ],
        ),
        (
            "trend_risk",
            vec![
                ("table", s("orders")),
                ("key_column", s("status")),
                ("date_column", s("created_at")),
                ("value_column", s("amount")),
                ("drop_high_pct_day", "5".into()),
                ("drop_high_pct_week", "10".into()),
                ("drop_medium_pct_day", "2".into()),
                ("drop_medium_pct_week", "5".into()),
                ("high_severity", s("P1")),
                ("medium_severity", s("P2")),
            ],
        ),
        (
            "duplicate_rows",
            vec![
                ("table", s("orders")),
                ("key_columns", r#"["id", "status"]"#.into()),
                ("where", s("id > 0")),
            ],
        ),
    ]
}

/// `params.NAME.type` of every parameter a built-in rule declares.
fn declared(rule: &str) -> BTreeMap<String, String> {
    let path = format!("{}/sql/rules/{rule}/rule.toml", env!("CARGO_MANIFEST_DIR"));
    let def: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    def["params"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(name, p)| (name.clone(), p["type"].as_str().unwrap().to_string()))
        .collect()
}

/// Hostile values for a parameter of type `kind` (TOML values).
fn payloads(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "identifier" => &[
            r#""orders; DROP TABLE orders""#,
            r#"'status" --'"#,
            r#""status` --""#,
            r#""orders) OR (1=1""#,
            r#""orders WHERE 1=1""#,
            r#""orders /* x */""#,
        ],
        "identifiers" => &[
            r#"["id) OR (1=1"]"#,
            r#"["id", "x; DROP TABLE orders"]"#,
            r#"['id" --']"#,
            r#"["id` --"]"#,
        ],
        "side" => &[
            r#"{ table = "orders; DROP TABLE orders", key_column = "status", value_expression = "SUM(amount)" }"#,
            r#"{ table = "orders", key_column = "status) OR (1=1", value_expression = "SUM(amount)" }"#,
            r#"{ table = "orders", key_column = 'status" --', value_expression = "SUM(amount)" }"#,
            r#"{ table = "orders", key_column = "status", value_expression = "SUM(amount)); DROP TABLE orders; --" }"#,
            r#"{ table = "orders", key_column = "status", value_expression = "SUM(amount) /* x */" }"#,
        ],
        "condition" => &[
            r#""1=1; DROP TABLE orders""#,
            r#""1=1 -- x""#,
            r#""1=1 /* x */""#,
        ],
        "duration" => &[r#""1h; DROP TABLE orders""#],
        "choice" => &[r#""day'; DROP TABLE orders; --""#],
        "integer" => &[r#""1; DROP TABLE orders""#],
        "number" => &[r#""5; DROP TABLE orders""#],
        // A backslash escapes differently in MySQL: refused.
        "strings" => &[r#"["failed\\'; DROP TABLE orders; --"]"#],
        _ => return None,
    })
}

/// Every rule's queries on a table that does not exist: `validate --connect` exits 2 and
/// names the `.toml` file, line 1, and the table.
fn validate_connect_reports_a_missing_table(db: &Db) {
    create_orders(db);
    for (rule, params) in bases() {
        let params: Vec<(&str, String)> = params
            .into_iter()
            .map(|(n, v)| (n, v.replace("orders", "no_such_table")))
            .collect();
        db.rule_check(rule, &rule_toml(rule, "warehouse", &[], &params, ""));
    }
    let out = db.env.run(["validate", "--connect"]);
    out.code(2).stdout_has("✗ warehouse");
    // What each database says of a table that does not exist.
    let missing = db.pick(
        "relation \"no_such_table\" does not exist",
        "no_such_table' doesn't exist",
        "no such table: no_such_table",
    );
    for (rule, _) in bases() {
        let prefix =
            format!("checks/{rule}.toml:1:1: error: query does not prepare on \"warehouse\"");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| l.contains(missing)),
            "{:?} {rule}: wanted {prefix:?} saying {missing:?}, got\n{}",
            db.kind,
            out.stderr
        );
    }
    assert_eq!(db.count("orders"), 2);
}

/// Unknown, missing, mistyped and invalid parameters, and injection attempts through every
/// parameter of every rule: `validate` (with and without `--connect`) and `run` exit 2 with
/// the file, the line and the parameter, and the warehouse table is untouched.
fn bad_and_hostile_parameters_are_refused(db: &Db) {
    create_orders(db);
    let w = "warehouse";
    // (file under checks/, its text, a diagnostic it must produce)
    let mut cases: Vec<(String, String, String)> = Vec::new();
    for (rule, params) in bases() {
        let types = declared(rule);
        // Every parameter the rule declares with a type we have payloads for (trend_risk's
        // `of`, a check id, is not tested here).
        let given: BTreeSet<&str> = params.iter().map(|(n, _)| *n).collect();
        let want: BTreeSet<&str> = types
            .iter()
            .filter(|(_, t)| payloads(t).is_some())
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            given, want,
            "the base of {rule} must give every parameter its rule.toml declares"
        );
        db.rule_check(&format!("ok/{rule}"), &rule_toml(rule, w, &[], &params, ""));
        for (i, (name, _)) in params.iter().enumerate() {
            for (n, bad) in payloads(&types[*name]).unwrap().iter().enumerate() {
                let mut p = params.clone();
                p[i].1 = (*bad).to_string();
                let file = format!("inj/{rule}-{name}-{n}.toml");
                let want = format!("checks/{file}:{}:1: error: parameter \"{name}\"", 4 + i);
                cases.push((file, rule_toml(rule, w, &[], &p, ""), want));
            }
        }
    }
    let dup = |params: &[(&str, String)]| rule_toml("duplicate_rows", w, &[], params, "");
    let good = || {
        vec![
            ("table", s("orders")),
            ("key_columns", r#"["id"]"#.to_string()),
        ]
    };
    let mut p = good();
    p.push(("colour", s("red")));
    cases.push((
        "bad/unknown.toml".into(),
        dup(&p),
        "checks/bad/unknown.toml:6:1: error: unknown parameter \"colour\" for rule duplicate_rows"
            .into(),
    ));
    cases.push((
        "bad/missing.toml".into(),
        dup(&good()[..1]),
        "checks/bad/missing.toml:3:1: error: rule duplicate_rows needs parameter \"key_columns\""
            .into(),
    ));
    let mut p = good();
    p[1].1 = "5".into();
    cases.push((
        "bad/number_for_list.toml".into(),
        dup(&p),
        "checks/bad/number_for_list.toml:5:1: error: parameter \"key_columns\": expected a list"
            .into(),
    ));
    let mut p = good();
    p[1].1 = s("id");
    cases.push((
        "bad/text_for_list.toml".into(),
        dup(&p),
        "checks/bad/text_for_list.toml:5:1: error: parameter \"key_columns\": expected a list"
            .into(),
    ));
    let mut p = good();
    p[0].1 = s("my-orders");
    cases.push((
        "bad/identifier.toml".into(),
        dup(&p),
        "checks/bad/identifier.toml:4:1: error: parameter \"table\": \"my-orders\" is not a valid identifier".into(),
    ));
    let mut p = good();
    p[0].1 = s("a.b.c");
    cases.push((
        "bad/three_parts.toml".into(),
        dup(&p),
        "checks/bad/three_parts.toml:4:1: error: parameter \"table\": \"a.b.c\" is not a valid identifier".into(),
    ));
    let spike = bases().remove(3);
    assert_eq!(spike.0, "failure_rate_spike");
    let mut p = spike.1.clone();
    p[5].1 = s("many");
    cases.push((
        "bad/text_for_integer.toml".into(),
        rule_toml("failure_rate_spike", w, &[], &p, ""),
        "checks/bad/text_for_integer.toml:9:1: error: parameter \"min_volume\": expected a whole number".into(),
    ));
    let mut p = spike.1;
    p[4].1 = s("a while");
    cases.push((
        "bad/duration.toml".into(),
        rule_toml("failure_rate_spike", w, &[], &p, ""),
        "checks/bad/duration.toml:8:1: error: parameter \"window\"".into(),
    ));
    let mut p = bases().remove(0).1;
    p[3].1 = s("week");
    cases.push((
        "bad/choice.toml".into(),
        rule_toml("missing_partition", w, &[], &p, ""),
        "checks/bad/choice.toml:7:1: error: parameter \"granularity\": \"week\" is not one of day, hour".into(),
    ));

    // The valid bases alone pass (so that each case below fails for its own reason).
    db.env.run(["validate"]).code(0).stdout_has("6 checks");
    for (file, text, _) in &cases {
        db.env.write(&format!("checks/{file}"), text);
    }
    let out = db.env.run(["validate"]);
    out.code(2);
    let mut missing = Vec::new();
    for (file, text, want) in &cases {
        if !out.stderr.lines().any(|l| l.starts_with(want.as_str())) {
            missing.push(format!("{want}\n  for checks/{file}:\n{text}"));
        }
    }
    assert!(
        missing.is_empty(),
        "{:?}: {} of {} bad check files lack their diagnostic:\n{}\n--- stderr\n{}",
        db.kind,
        missing.len(),
        cases.len(),
        missing.join("\n"),
        out.stderr
    );
    assert!(
        !out.stderr.contains("checks/ok/"),
        "a valid base was refused:\n{}",
        out.stderr
    );
    db.env.run(["validate", "--connect"]).code(2);
    db.env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(2);
    assert_eq!(db.count("orders"), 2, "{:?}: orders was changed", db.kind);

    // Without them, the bases prepare on the warehouse.
    std::fs::remove_dir_all(db.env.path().join("checks/inj")).unwrap();
    std::fs::remove_dir_all(db.env.path().join("checks/bad")).unwrap();
    db.validate_connect_ok();
    assert_eq!(db.count("orders"), 2);
}

// ---------------------------------------------------------------------------------------
// Across databases, and without any.

/// Source totals on PostgreSQL (NUMERIC), target totals on MariaDB (DECIMAL), keyed by date:
/// exactly the planted mismatched dates breach.
#[test]
fn reconciliation_across_postgres_and_mariadb() {
    let pg_admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let my_admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let pg = Db::postgres(&pg_admin, "r_recon_cross");
    let my = Db::mariadb(&my_admin, "r_recon_cross");
    let today = pg.now().date();
    let day = |ago: u64| (today - Days::new(ago)).format("%Y-%m-%d").to_string();
    // (days ago, PostgreSQL rows, MariaDB rows)
    let plan: [(u64, &[&str], &[&str]); 6] = [
        (1, &["1000.00", "234.56"], &["1234.56"]),
        (2, &["100.00"], &["90.00"]),
        (3, &["500.00"], &["500.03"]),
        (4, &[], &["75.00"]),
        (5, &["42.00"], &[]),
        (6, &["0.10"], &["0.10"]),
    ];
    let rows = |side: usize| {
        plan.iter()
            .flat_map(|(ago, a, b)| {
                let values = if side == 0 { *a } else { *b };
                values
                    .iter()
                    .map(move |v| format!("('{}', {v})", day(*ago)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    pg.exec(&format!(
        "CREATE TABLE rev_a (day date, total NUMERIC(14, 2));
         INSERT INTO rev_a VALUES {};",
        rows(0)
    ));
    my.exec(&format!(
        "CREATE TABLE rev_b (day DATE, total DECIMAL(14, 2));
         INSERT INTO rev_b VALUES {};",
        rows(1)
    ));
    let env = TestEnv::new();
    env.config(&format!(
        "[connections.pg]\nurl = \"{}\"\n\n[connections.my]\nurl = \"{}\"\n",
        pg.url, my.url
    ));
    let check = |id: &str, connection: &str, source: &str, target: &str| {
        env.write(
            &format!("checks/{id}.toml"),
            rule_toml(
                "reconciliation_gap",
                connection,
                &[],
                &[
                    ("source", source.to_string()),
                    ("target", target.to_string()),
                    ("tolerance_abs", "0.05".into()),
                ],
                "",
            ),
        );
    };
    let a_table = r#"{ table = "rev_a", key_column = "day", value_expression = "SUM(total)" }"#;
    let a_query =
        r#"{ connection = "pg", query = "SELECT day, SUM(total) FROM rev_a GROUP BY day" }"#;
    let b_query =
        r#"{ connection = "my", query = "SELECT day, SUM(total) FROM rev_b GROUP BY day" }"#;
    let b_table = r#"{ connection = "my", table = "rev_b", key_column = "day", value_expression = "SUM(total)" }"#;
    check("pg_to_my", "pg", a_table, b_query);
    check("my_to_pg", "my", b_query, a_query);
    check("pg_to_my_tables", "pg", a_table, b_table);
    // The table-form MariaDB side last: its SQL must be in the MariaDB dialect although the
    // check's own connection is PostgreSQL.
    let out = env.run([
        "run",
        "--no-incidents",
        "--format",
        "json",
        "--fail-on",
        "P3",
    ]);
    let mut v = Verdicts::new(&out, Kind::Postgres);
    let want = [
        (key("key", day(2)), "P2"),
        (key("key", day(4)), "P2"),
        (key("key", day(5)), "P2"),
    ];
    v.expect("pg_to_my", &want);
    v.metric("pg_to_my", &key("key", day(2)), 10.0, 1e-9);
    v.metric("pg_to_my", &key("key", day(5)), 42.0, 1e-9);
    v.expect("my_to_pg", &want);
    v.expect("pg_to_my_tables", &want);
    v.finish();
    env.run(["validate", "--connect"])
        .code(0)
        .stdout_has("✓ warehouse");
}

/// `render ID` prints each rule's SQL in the dialect of the check's connection (no server
/// needed: render does not connect).
#[test]
fn render_prints_the_dialect_sql_of_every_rule() {
    let env = TestEnv::new();
    env.config(
        "[connections.pg]\nurl = \"postgres://u@127.0.0.1:1/x\"\n\n\
         [connections.my]\nurl = \"mysql://u@127.0.0.1:1/x\"\n\n\
         [connections.lite]\nurl = \"sqlite://w.db\"\n",
    );
    for (rule, params) in bases() {
        for conn in ["pg", "my", "lite"] {
            env.write(
                &format!("checks/{conn}/{rule}.toml"),
                rule_toml(rule, conn, &[], &params, ""),
            );
        }
    }
    env.write(
        "checks/cross.toml",
        rule_toml(
            "reconciliation_gap",
            "pg",
            &[],
            &[
                (
                    "source",
                    r#"{ table = "rev_a", key_column = "day", value_expression = "SUM(total)" }"#
                        .into(),
                ),
                (
                    "target",
                    r#"{ connection = "my", table = "rev_b", key_column = "day", value_expression = "SUM(total)" }"#.into(),
                ),
            ],
            "",
        ),
    );
    let mut failures = Vec::new();
    for (rule, _) in bases() {
        for (conn, quoted, other) in [
            ("pg", "\"orders\"", "`"),
            ("my", "`orders`", "\"orders\""),
            ("lite", "\"orders\"", "`"),
        ] {
            let out = env.run(["render", &format!("{conn}/{rule}")]);
            out.code(0);
            if !out.stdout.contains(quoted) || out.stdout.contains(other) {
                failures.push(format!(
                    "{conn}/{rule}: wanted {quoted}, not {other}:\n{}",
                    out.stdout
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let out = env.run(["render", "pg/duplicate_rows"]);
    out.code(0)
        .stdout_has("SELECT \"id\", \"status\", COUNT(*) AS copies")
        .stdout_has("FROM \"orders\"")
        .stdout_has("WHERE (id > 0)")
        .stdout_has("GROUP BY \"id\", \"status\"");
    env.run(["render", "my/freshness_lag"])
        .code(0)
        .stdout_has("FROM `orders`")
        .stdout_has("GROUP BY `status`");
    // A reconciliation shows both sides, each on its own connection and in its dialect.
    let out = env.run(["render", "cross"]);
    out.code(0)
        .stdout_has("-- source (connection pg)")
        .stdout_has("FROM \"rev_a\"")
        .stdout_has("-- target (connection my)")
        .stdout_has("FROM `rev_b`");
}

/// SQLite has no timestamp type: applications often store ISO 8601 text with a `T`
/// (`2026-11-23T10:00:00`). The rules must read it like `2026-11-23 10:00:00`, and not
/// compare it as text with `datetime('now', …)` (`'T'` sorts after `' '`, so every row of
/// today would fall inside any window).
#[test]
fn sqlite_rules_read_iso_8601_timestamps() {
    let db = Db::sqlite();
    let iso = |secs: i64| format!("strftime('%Y-%m-%dT%H:%M:%S', 'now', '-{secs} seconds')");
    let mut rows = Vec::new();
    for i in 0..20 {
        rows.push(format!("('success', {})", iso(60 + 60 * i)));
    }
    // 20 failures between 2 and 3 hours ago (the same day, unless run just after midnight).
    for i in 0..20 {
        rows.push(format!("('failed', {})", iso(2 * 3600 + 60 * i)));
    }
    db.exec(&format!(
        "CREATE TABLE runs (status TEXT, started_at TEXT); INSERT INTO runs VALUES {};",
        rows.join(", ")
    ));
    let spike = [
        ("table", s("runs")),
        ("status_column", s("status")),
        ("failure_values", r#"["failed"]"#.to_string()),
        ("timestamp_column", s("started_at")),
        ("window", s("1h")),
    ];
    db.rule_check(
        "iso_spike",
        &rule_toml("failure_rate_spike", "warehouse", &[], &spike, ""),
    );
    let fresh = [("table", s("runs")), ("timestamp_column", s("started_at"))];
    db.rule_check(
        "iso_fresh",
        &rule_toml(
            "freshness_lag",
            "warehouse",
            &[],
            &fresh,
            "[thresholds]\nP1 = \"> 30m\"\n",
        ),
    );
    let mut v = Verdicts::new(&db.run(), Kind::Sqlite);
    v.expect("iso_fresh", &[(key("dataset", "all"), "pass")]);
    v.metric("iso_fresh", &key("dataset", "all"), 60.0, 120.0);
    v.expect("iso_spike", &[(key("subject", "all"), "pass")]);
    v.metric("iso_spike", &key("subject", "all"), 0.0, 0.0);
    v.finish();
}
