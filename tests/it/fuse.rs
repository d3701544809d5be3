//! Fused scans (issue 13): rule checks on one table that run together share one query, and
//! each still finds exactly what it finds alone. Every scenario writes each check twice, once
//! as is and once with `fuse = false`, runs them in one pass and compares the two outcomes
//! key by key; the JSON report says which checks shared a scan.

use crate::db::{Db, on_every_database};
use crate::require_env;
use crate::util::{PgSchema, TestEnv, check_doc};
use serde_json::Value;
use std::collections::BTreeMap;

on_every_database!(
    "f_",
    fused_checks_find_what_they_find_alone,
    a_broken_member_fails_alone,
);

/// `ev`: datasets a (newest row 3 days old, half failed), b (1 hour old, all fine) and c
/// (excluded by the checks' `where`), timestamps relative to the server's clock.
fn fixture(db: &Db) {
    db.exec(CREATE);
    let ago = |n: &str, unit: &str| {
        db.pick(
            format!("now() - interval '{n} {unit}'"),
            format!("NOW() - INTERVAL {n} {}", unit.to_uppercase()),
            format!("datetime('now', '-{n} {unit}s')"),
        )
    };
    for insert in inserts(ago) {
        db.exec(&insert);
    }
}

const CREATE: &str = "CREATE TABLE ev (ds VARCHAR(10), st VARCHAR(10), ts TIMESTAMP)";

/// The fixture's rows, with `ago(n, unit)` the dialect's "n units before now".
fn inserts(ago: impl Fn(&str, &str) -> String) -> Vec<String> {
    let rows = [
        ("a", "ok", ago("3", "day")),
        ("a", "failed", ago("3", "day")),
        ("a", "failed", ago("4", "day")),
        ("b", "ok", ago("1", "hour")),
        ("b", "ok", ago("2", "hour")),
        ("b", "skip", ago("2", "hour")),
        ("c", "failed", ago("1", "hour")),
    ];
    rows.into_iter()
        .map(|(ds, st, ts)| format!("INSERT INTO ev VALUES ('{ds}', '{st}', {ts})"))
        .collect()
}

/// The checks, each as `NAME` and as `alone_NAME` with `fuse = false`.
const CHECKS: &[(&str, &str)] = &[
    (
        "fresh_all",
        "rule = \"freshness_lag\"\n[params]\ntable = \"ev\"\ntimestamp_column = \"ts\"\n",
    ),
    (
        "fail_all",
        "rule = \"failure_rate_spike\"\n[params]\ntable = \"ev\"\nstatus_column = \"st\"\n\
         failure_values = [\"failed\"]\ntimestamp_column = \"ts\"\nwindow = \"7d\"\nmin_volume = 1\n",
    ),
    (
        "fresh_key",
        "rule = \"freshness_lag\"\n[params]\ntable = \"ev\"\ntimestamp_column = \"ts\"\n\
         key_column = \"ds\"\nwhere = \"ds <> 'c'\"\n",
    ),
    (
        "fail_key",
        "rule = \"failure_rate_spike\"\n[params]\ntable = \"ev\"\nstatus_column = \"st\"\n\
         failure_values = [\"failed\"]\ntimestamp_column = \"ts\"\nwindow = \"2d\"\nmin_volume = 1\n\
         key_column = \"ds\"\n",
    ),
    (
        "vol_key",
        "rule = \"volume_anomaly\"\n[params]\ntable = \"ev\"\nkey_column = \"ds\"\n\
         where = \"st <> 'skip'\"\n",
    ),
];

fn write_checks(env: &TestEnv, extra: &[(&str, &str)]) {
    for (name, text) in CHECKS.iter().chain(extra) {
        env.write(&format!("checks/{name}.toml"), text);
        let alone = text.replacen("[params]", "fuse = false\n[params]", 1);
        env.write(&format!("checks/alone_{name}.toml"), alone);
    }
}

/// A check's observations: key → (status, severity, value).
fn observations(doc: &Value) -> BTreeMap<String, (Value, Value, Value)> {
    doc["observations"]
        .as_array()
        .unwrap_or_else(|| panic!("no observations: {doc:#}"))
        .iter()
        .map(|o| {
            (
                o["key"].to_string(),
                (
                    o["status"].clone(),
                    o["severity"].clone(),
                    o["value"].clone(),
                ),
            )
        })
        .collect()
}

/// The fused check `name` and its `alone_` twin found the same (seconds of lag may differ
/// by the moments the two queries ran).
#[track_caller]
fn same_as_alone(report: &Value, name: &str) {
    let (fused, alone) = (
        check_doc(report, name),
        check_doc(report, &format!("alone_{name}")),
    );
    assert_eq!(fused["status"], alone["status"], "{fused:#}\n{alone:#}");
    let (f, a) = (observations(fused), observations(alone));
    assert_eq!(
        f.keys().collect::<Vec<_>>(),
        a.keys().collect::<Vec<_>>(),
        "{name}"
    );
    assert!(!f.is_empty(), "{name} judged nothing: {fused:#}");
    for (key, (fs, fsev, fv)) in &f {
        let (s, sev, v) = &a[key];
        assert_eq!((fs, fsev), (s, sev), "{name} {key}");
        match (fv.as_f64(), v.as_f64()) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 5.0, "{name} {key}: {x} vs {y}"),
            _ => assert_eq!(fv, v, "{name} {key}"),
        }
    }
}

fn fused_checks_find_what_they_find_alone(db: &Db) {
    fixture(db);
    write_checks(&db.env, &[]);
    let report = db.env.run(["run", "--format", "json"]).code(1).json();
    assert_same_findings(&report);
}

/// The same on the Snowflake stand-in (fakesnow).
#[test]
fn snowflake_fused_checks_find_what_they_find_alone() {
    use crate::snowflake::{db_name, env, fakesnow, plant, run_with};
    let Some(base) = fakesnow("fuse::snowflake_fused_checks_find_what_they_find_alone") else {
        return;
    };
    let db = db_name("fused");
    let ago = |n: &str, unit: &str| {
        format!("DATEADD('{unit}', -{n}, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ)")
    };
    let mut statements = vec![CREATE.replace("CREATE TABLE", "CREATE OR REPLACE TABLE")];
    statements.extend(inserts(ago));
    plant(&base, &db, &statements);
    let env = env(&base, &db, "");
    write_checks(&env, &[]);
    let report = run_with(&env, &["run", "--format", "json"], "pw")
        .code(1)
        .json();
    assert_same_findings(&report);
}

fn assert_same_findings(report: &Value) {
    let report = report.clone();
    for (name, _) in CHECKS {
        same_as_alone(&report, name);
        assert_eq!(
            check_doc(&report, &format!("alone_{name}"))["fused"],
            Value::Null
        );
    }
    // One scan for the two whole-table checks, one for the three keyed by ds.
    for (name, n) in [
        ("fresh_all", 2),
        ("fail_all", 2),
        ("fresh_key", 3),
        ("fail_key", 3),
        ("vol_key", 3),
    ] {
        assert_eq!(check_doc(&report, name)["fused"], n, "{name}");
    }
    // What the fixture plants, found through the scan: a is stale and failing, b is fresh;
    // c is left out by `where`.
    let fresh = observations(check_doc(&report, "fresh_key"));
    assert_eq!(fresh.len(), 2, "{fresh:?}");
    let (status, severity, _) = &fresh["{\"dataset\":\"a\"}"];
    assert_eq!(
        (status.as_str(), severity.as_str()),
        (Some("breach"), Some("P2"))
    );
    assert_eq!(fresh["{\"dataset\":\"b\"}"].0, "pass");
    let fail = observations(check_doc(&report, "fail_key"));
    assert_eq!(
        fail.len(),
        2,
        "a and c failed within 2 days, b is fine: {fail:?}"
    );
    assert_eq!(
        check_doc(&report, "vol_key")["observations"][0]["key"]["subject"],
        "a"
    );
}

/// A member whose condition the server refuses sinks the shared query: every member then
/// runs alone, so the error is that check's and the others' results are unchanged.
fn a_broken_member_fails_alone(db: &Db) {
    fixture(db);
    let broken = "rule = \"freshness_lag\"\n[params]\ntable = \"ev\"\ntimestamp_column = \"ts\"\n\
                  key_column = \"ds\"\nwhere = \"no_such_column > 1\"\n";
    write_checks(&db.env, &[("broken", broken)]);
    let report = db.env.run(["run", "--format", "json"]).code(1).json();
    for id in ["broken", "alone_broken"] {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], "error", "{doc:#}");
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no_such_column"),
            "{doc:#}"
        );
    }
    for name in ["fresh_key", "fail_key", "vol_key"] {
        same_as_alone(&report, name);
        assert_eq!(
            check_doc(&report, name)["fused"],
            Value::Null,
            "{name} ran alone"
        );
    }
    // The whole-table scan was not touched by the keyed one's failure.
    assert_eq!(check_doc(&report, "fresh_all")["fused"], 2);
}

/// Five checks on one table cost the warehouse one query: the relay of `roundtrips.rs`
/// counts as many requests for five fused freshness checks as for one.
#[test]
fn postgres_fused_checks_are_one_round_trip() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "fused_round_trip");
    schema.exec("CREATE TABLE ev (ds text, ts timestamp); INSERT INTO ev VALUES ('a', now());");
    let requests = |n: usize, fuse: bool| {
        let url = format!("{}&sslmode=disable", schema.url);
        let (host, _) = crate::roundtrips::through(&url, 0);
        let (port, count) = crate::roundtrips::relay(host);
        let (_, relayed) = crate::roundtrips::through(&url, port);
        let env = TestEnv::with_connection(&relayed, "max_concurrency = 1");
        for i in 0..n {
            env.write(
                &format!("checks/c{i}.toml"),
                format!(
                    "rule = \"freshness_lag\"\nfuse = {fuse}\n[params]\ntable = \"ev\"\n\
                     timestamp_column = \"ts\"\nwhere = \"ds <> 'x{i}'\"\n"
                ),
            );
        }
        let report = env
            .run(["run", "--no-incidents", "--format", "json"])
            .code(0)
            .json();
        assert_eq!(report["checks"].as_array().map(Vec::len), Some(n));
        let c = count.lock().unwrap();
        c.1
    };
    let one = requests(1, true);
    assert_eq!(requests(5, true), one, "five fused checks, one query");
    assert_eq!(
        requests(5, false),
        one + 4,
        "five checks alone, five queries"
    );
}

/// A shared scan that outlasts the statement timeout is every member's timeout, saying that
/// the scan was shared and how to run a check alone; nothing is judged a pass.
#[test]
fn postgres_a_shared_scan_that_times_out_is_each_members_timeout() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "fused_timeout");
    schema.exec(
        "CREATE VIEW slow AS SELECT 'a'::text AS ds, now() AS ts FROM (SELECT pg_sleep(5)) s;",
    );
    let env = TestEnv::with_connection(&schema.url, "statement_timeout = \"1s\"");
    for (id, col) in [("lag", "ts"), ("lag2", "ts")] {
        env.write(
            &format!("checks/{id}.toml"),
            format!("rule = \"freshness_lag\"\n[params]\ntable = \"slow\"\ntimestamp_column = \"{col}\"\n"),
        );
    }
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(3)
        .json();
    for id in ["lag", "lag2"] {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], "error", "{doc:#}");
        assert_eq!(doc["error"]["kind"], "timeout", "{doc:#}");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("shared by 2 checks") && message.contains("fuse = false"),
            "{message}"
        );
    }
}

/// `fuse` belongs to rule checks: on a `.sql` check it is an error naming the line.
#[test]
fn fuse_on_a_sql_check_is_refused_with_its_line() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER);", "");
    env.check_with(
        "plain",
        &["fuse = false", "metric = \"n\""],
        "SELECT 1 AS n",
    );
    env.run(["validate"])
        .code(2)
        .stderr_has("plain.sql:3")
        .stderr_has("`fuse` applies to rule checks only");
}

/// A condition cannot close the parentheses it is put in (inside a shared query it would
/// reach the other checks' columns): refused at load, naming the parameter.
#[test]
fn a_condition_that_closes_its_parenthesis_is_refused() {
    let env = TestEnv::sqlite("CREATE TABLE ev (ds TEXT, ts TEXT);", "");
    env.write(
        "checks/sneaky.toml",
        "rule = \"freshness_lag\"\n[params]\ntable = \"ev\"\ntimestamp_column = \"ts\"\n\
         key_column = \"ds\"\nwhere = \"ds = 'a') THEN ts END) AS dq1, MAX((ts\"\n",
    );
    env.run(["validate"])
        .code(2)
        .stderr_has("sneaky.toml:6")
        .stderr_has("closes a parenthesis it did not open");
}

/// A `rules_dir` rule may have a fused form; one that the warehouse refuses is a warning of
/// `validate --connect` (exit code unchanged), and at run time its checks run alone with the
/// results they have alone.
#[test]
fn a_broken_fused_template_is_a_warning_and_its_checks_run_alone() {
    let env = TestEnv::sqlite(
        "CREATE TABLE ev (ds TEXT); INSERT INTO ev VALUES ('a'), ('b');",
        "",
    );
    let toml = std::fs::read_to_string(env.path().join("dqwatch.toml")).unwrap();
    env.config(&format!("rules_dir = \"rules\"\n{toml}"));
    env.write(
        "rules/row_count/rule.toml",
        "description = \"rows\"\ncategory = \"data_loss\"\nkeys = [\"subject\"]\nmetric = \"n\"\n\
         [thresholds]\nP2 = \"< 1\"\n[params.table]\ntype = \"identifier\"\nrequired = true\n",
    );
    for dialect in ["postgres", "mysql", "sqlite"] {
        env.write(
            &format!("rules/row_count/{dialect}.sql"),
            "SELECT 'all' AS subject, COUNT(*) AS n FROM {{params.table}}",
        );
    }
    env.write(
        "rules/row_count/sqlite.fused.sql",
        "table: {{params.table}}\ngroup:\nrows:\nsubject: 'all'\nn: COUNT(no_such_column)\n",
    );
    for id in ["a", "b"] {
        env.write(
            &format!("checks/{id}.toml"),
            "rule = \"row_count\"\n[params]\ntable = \"ev\"\n",
        );
    }
    env.run(["validate", "--connect"])
        .code(0)
        .stderr_has("shared by 2 checks")
        .stderr_has("does not prepare")
        .stderr_has("no_such_column");
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(0)
        .json();
    for id in ["a", "b"] {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], "pass", "{doc:#}");
        assert_eq!(doc["fused"], Value::Null, "{doc:#}");
        assert_eq!(doc["observations"][0]["metric"], 2.0, "{doc:#}");
    }
}
