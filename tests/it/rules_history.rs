//! Rules judged against dqwatch's stored history, end to end on SQLite: volume_anomaly,
//! schema_change, and trend_risk over another check's metric history.
// See: issues/5

use crate::util::{TestEnv, check_doc, sqlite_exec};

fn run_json(env: &TestEnv) -> serde_json::Value {
    let out = env.run(["run", "--format", "json"]);
    assert!(
        out.code == 0 || out.code == 1,
        "exit {}: {}",
        out.code,
        out.stderr
    );
    out.json()
}

fn statuses(report: &serde_json::Value, id: &str) -> Vec<(String, String)> {
    check_doc(report, id)["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"]["subject"]
                    .as_str()
                    .or(o["key"]["column"].as_str())
                    .unwrap_or("")
                    .to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn volume_anomaly_waits_for_history_then_flags_a_drop() {
    let env = TestEnv::sqlite(
        "CREATE TABLE ev (kind TEXT); WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) INSERT INTO ev SELECT CASE WHEN n % 2 = 0 THEN 'a' ELSE 'b' END FROM r;",
        "",
    );
    env.write(
        "checks/vol.toml",
        "rule = \"volume_anomaly\"\n[params]\ntable = \"ev\"\nkey_column = \"kind\"\nmin_history = 3\n",
    );
    // No history: no_data, not a breach.
    let r = run_json(&env);
    assert_eq!(
        statuses(&r, "vol"),
        [
            ("a".into(), "no_data".into()),
            ("b".into(), "no_data".into())
        ]
    );
    // Slightly varying counts build the baseline.
    for extra in ["a", "b", "a"] {
        sqlite_exec(
            &env.path().join("warehouse.db"),
            &format!("INSERT INTO ev VALUES ('{extra}')"),
        );
        let r = run_json(&env);
        assert!(
            statuses(&r, "vol").iter().all(|(_, s)| s != "breach"),
            "{r:#}"
        );
    }
    // Kind a loses most of its rows: an anomaly; kind b is unchanged.
    sqlite_exec(
        &env.path().join("warehouse.db"),
        "DELETE FROM ev WHERE kind = 'a' AND rowid % 5 <> 0",
    );
    let r = run_json(&env);
    let vol = check_doc(&r, "vol");
    assert_eq!(vol["status"], "breach", "{vol:#}");
    assert_eq!(
        statuses(&r, "vol"),
        [("a".into(), "breach".into()), ("b".into(), "pass".into())]
    );
    assert!(
        vol["observations"][0]["metric"].as_f64().unwrap() < -3.5,
        "the metric is the z-score"
    );
    // The breaching run stays out of the baseline: the same low count breaches again.
    let r = run_json(&env);
    assert_eq!(statuses(&r, "vol")[0], ("a".into(), "breach".into()));
}

/// Without the state store (`--no-incidents`) a history rule is skipped, not an error
/// (issue 14; surfaces.rs has the full test).
#[test]
fn history_rules_need_the_state_store() {
    let env = TestEnv::sqlite("CREATE TABLE ev (kind TEXT);", "");
    env.write(
        "checks/vol.toml",
        "rule = \"volume_anomaly\"\n[params]\ntable = \"ev\"\n",
    );
    env.run(["run", "--no-incidents"])
        .code(0)
        .stdout_has("compares with dqwatch's stored history");
}

#[test]
fn schema_change_reports_dropped_retyped_and_added_columns() {
    let env = TestEnv::sqlite("CREATE TABLE t (a INTEGER, b TEXT, c REAL);", "");
    env.write(
        "checks/schema.toml",
        "rule = \"schema_change\"\n[params]\ntable = \"t\"\n",
    );
    let r = run_json(&env);
    assert_eq!(
        check_doc(&r, "schema")["observations"][0]["status"],
        "no_data",
        "the first run takes the snapshot"
    );
    let r = run_json(&env);
    assert_eq!(check_doc(&r, "schema")["status"], "pass");
    sqlite_exec(
        &env.path().join("warehouse.db"),
        "ALTER TABLE t DROP COLUMN c; ALTER TABLE t ADD COLUMN d TEXT;",
    );
    let out = env.run(["run", "--format", "json"]);
    let r = out.code(1).json();
    let obs = check_doc(&r, "schema")["observations"]
        .as_array()
        .unwrap()
        .clone();
    let got: Vec<(&str, &str)> = obs
        .iter()
        .map(|o| {
            (
                o["key"]["column"].as_str().unwrap(),
                o["severity"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(got, [("t.c", "P1"), ("t.d", "P3")]);
    assert_eq!(check_doc(&r, "schema")["category"], "schema_break");
}

#[test]
fn trend_risk_over_another_checks_stored_history() {
    let env = TestEnv::sqlite("CREATE TABLE s (v REAL); INSERT INTO s VALUES (100);", "");
    env.check_with(
        "score",
        &["metric = \"v\"", "[thresholds]", "P3 = \"< 0\""],
        "SELECT v FROM s",
    );
    env.write(
        "checks/trend.toml",
        "rule = \"trend_risk\"\n[params]\nof = \"score\"\n",
    );
    // No history of `score` yet: the trend check cannot judge (on_no_data = error by default).
    let first = env.run(["run", "--select", "trend", "--format", "json"]);
    first.code(3).stdout_has("no stored metric history");
    env.run(["run", "--select", "score"]).code(0);
    sqlite_exec(&env.path().join("warehouse.db"), "UPDATE s SET v = 80");
    env.run(["run", "--select", "score"]).code(0);
    // A 20 % drop against the previous run, but no value a week ago: not both limits, a pass.
    let r = run_json(&env);
    assert_eq!(check_doc(&r, "trend")["status"], "pass", "{r:#}");
    assert!(
        (check_doc(&r, "trend")["observations"][0]["metric"]
            .as_f64()
            .unwrap()
            - 20.0)
            .abs()
            < 1e-9
    );
    env.run(["render", "trend"])
        .code(0)
        .stdout_has("computed by dqwatch from the stored metric history");
}

/// schema_change on a server: a snapshot, then a dropped and a retyped column.
fn schema_change_on(url: &str, exec: &dyn Fn(&str)) {
    let env = TestEnv::with_connection(url, "");
    env.write(
        "checks/schema.toml",
        "rule = \"schema_change\"\n[params]\ntable = \"t\"\n",
    );
    let r = run_json(&env);
    assert_eq!(
        check_doc(&r, "schema")["observations"][0]["status"],
        "no_data",
        "{r:#}"
    );
    exec("ALTER TABLE t DROP COLUMN c");
    exec("ALTER TABLE t ADD COLUMN d VARCHAR(10)");
    let out = env.run(["run", "--format", "json"]);
    let r = out.code(1).json();
    let obs = check_doc(&r, "schema")["observations"]
        .as_array()
        .unwrap()
        .clone();
    let got: Vec<(&str, &str)> = obs
        .iter()
        .map(|o| {
            (
                o["key"]["column"].as_str().unwrap(),
                o["severity"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(got, [("t.c", "P1"), ("t.d", "P3")], "{r:#}");
    env.run(["validate", "--connect"]).code(0);
}

#[test]
fn schema_change_on_postgres() {
    let admin = crate::require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = crate::util::PgSchema::new(&admin, "schema_change");
    schema.exec("CREATE TABLE t (a INT, b TEXT, c NUMERIC)");
    schema_change_on(&schema.url, &|sql| schema.exec(sql));
}

#[test]
fn schema_change_on_mariadb() {
    let admin = crate::require_env!("DQWATCH_TEST_MARIADB_URL");
    let db = crate::util::MyDatabase::new(&admin, "schema_change");
    db.exec("CREATE TABLE t (a INT, b TEXT, c DECIMAL(10, 2))");
    schema_change_on(&db.url, &|sql| db.exec(sql));
}

/// Runs SQL on a test database.
type Exec = Box<dyn Fn(&str)>;

#[test]
fn volume_anomaly_on_postgres_and_mariadb_counts() {
    for (var, make) in [
        ("DQWATCH_TEST_POSTGRES_URL", 0),
        ("DQWATCH_TEST_MARIADB_URL", 1),
    ] {
        let Ok(admin) = std::env::var(var) else {
            crate::util::skip(
                "rules_history::volume_anomaly_on_postgres_and_mariadb_counts",
                &format!("{var} not set"),
            );
            continue;
        };
        let (url, exec): (String, Exec) = if make == 0 {
            let s = crate::util::PgSchema::new(&admin, "volume");
            (s.url.clone(), Box::new(move |sql: &str| s.exec(sql)))
        } else {
            let d = crate::util::MyDatabase::new(&admin, "volume");
            (d.url.clone(), Box::new(move |sql: &str| d.exec(sql)))
        };
        exec("CREATE TABLE ev (kind VARCHAR(5))");
        exec("INSERT INTO ev VALUES ('a'), ('a'), ('a'), ('a'), ('b')");
        let env = TestEnv::with_connection(&url, "");
        env.write("checks/vol.toml", "rule = \"volume_anomaly\"\n[params]\ntable = \"ev\"\nkey_column = \"kind\"\nmin_history = 1\n");
        let r = run_json(&env);
        assert_eq!(
            statuses(&r, "vol"),
            [
                ("a".into(), "no_data".into()),
                ("b".into(), "no_data".into())
            ],
            "{var}"
        );
        let r = run_json(&env);
        assert_eq!(
            statuses(&r, "vol"),
            [("a".into(), "pass".into()), ("b".into(), "pass".into())],
            "{var}: {r:#}"
        );
    }
}

#[test]
fn schema_change_over_a_table_pattern() {
    let env = TestEnv::sqlite(
        "CREATE TABLE orders_2025 (a INTEGER); CREATE TABLE orders_2026 (a INTEGER, b TEXT); CREATE TABLE other (z INTEGER);",
        "",
    );
    env.write(
        "checks/schema.toml",
        "rule = \"schema_change\"\n[params]\ntable_pattern = \"orders_%\"\n",
    );
    env.run(["render", "schema"])
        .code(0)
        .stdout_has("LIKE 'orders_%'");
    run_json(&env);
    sqlite_exec(
        &env.path().join("warehouse.db"),
        "ALTER TABLE orders_2026 DROP COLUMN b; ALTER TABLE other ADD COLUMN y TEXT;",
    );
    let r = env.run(["run", "--format", "json"]).code(1).json();
    let keys: Vec<String> = check_doc(&r, "schema")["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"]["column"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        ["orders_2026.b"],
        "only tables matching the pattern are watched"
    );
    // table and table_pattern together, or neither, is an error.
    env.write(
        "checks/schema.toml",
        "rule = \"schema_change\"\n[params]\ntable = \"other\"\ntable_pattern = \"orders_%\"\n",
    );
    env.run(["validate"])
        .code(2)
        .stderr_has("exactly one of these parameter groups");
}
