//! `dqwatch` against a Snowflake stand-in: the `fakesnow` server from PyPI (Snowflake SQL on
//! DuckDB behind the HTTP protocol of Snowflake's connectors), whose base URL
//! `DQWATCH_TEST_SNOWFLAKE_URL` names (`.ci/run` starts it). Without it, or in a build without
//! the `snowflake-arrow` feature (fakesnow answers queries in Arrow only), each test prints a
//! `SKIP` line.
//!
//! Data is planted through the same protocol (login-request, query-request) by a few lines
//! here; dqwatch itself never writes. Each test works in its own database.

use crate::util::{Output, TestEnv, block_on, check_doc, output, skip};
use serde_json::{Value, json};

/// The stand-in's base URL, or `None` after printing why the test is skipped.
fn fakesnow(test: &str) -> Option<String> {
    if !cfg!(feature = "snowflake-arrow") {
        skip(
            test,
            "built without the snowflake-arrow feature (fakesnow answers in Arrow only)",
        );
        return None;
    }
    match std::env::var("DQWATCH_TEST_SNOWFLAKE_URL") {
        Ok(u) if !u.is_empty() => Some(u.trim_end_matches('/').to_string()),
        _ => {
            skip(test, "DQWATCH_TEST_SNOWFLAKE_URL not set");
            None
        }
    }
}

/// Runs `statements` in `database` on the stand-in (a session of its own).
fn plant(base: &str, database: &str, statements: &[String]) {
    block_on(async {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/session/v1/login-request"))
            .query(&[("databaseName", database), ("schemaName", "PUBLIC")])
            .json(&json!({"data": {"LOGIN_NAME": "planter", "PASSWORD": "x",
                "ACCOUNT_NAME": "FAKE", "SESSION_PARAMETERS": {}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["data"]["token"].as_str().unwrap().to_string();
        for sql in statements {
            let v: Value = http
                .post(format!("{base}/queries/v1/query-request"))
                .header("Authorization", format!("Snowflake Token=\"{token}\""))
                .json(&json!({"sqlText": sql, "sequenceId": 1}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(v["success"], json!(true), "{sql}: {v}");
        }
    });
}

/// A temp dir whose connection `sf` is the stand-in's `database`, logging in with a
/// password from the environment.
fn env(base: &str, database: &str, extra: &str) -> TestEnv {
    let env = TestEnv::new();
    env.config(&format!(
        "state = \"sqlite://state.db\"\n\
         [connections.sf]\n\
         url = \"snowflake://dq_reader@fakeacct/{database}/PUBLIC?warehouse=CHECKS_WH&role=DQ_READER\"\n\
         password = \"${{DQ_SF_PASSWORD}}\"\n\
         api_base = \"{base}\"\n{extra}\n"
    ));
    std::fs::create_dir_all(env.path().join("checks")).unwrap();
    env
}

/// `dqwatch --config dqwatch.toml ARGS` with the Snowflake password in the environment.
fn run_with(env: &TestEnv, args: &[&str], password: &str) -> Output {
    let mut cmd = env.command();
    cmd.arg("--config")
        .arg("dqwatch.toml")
        .args(args)
        .env("DQ_SF_PASSWORD", password);
    output(&mut cmd)
}

/// The database name for a test: its own, upper case.
fn db_name(test: &str) -> String {
    format!("DQ_{}", test.to_ascii_uppercase())
}

/// Every observation of a check: key text → status (`P1`… for a breach).
fn statuses(doc: &Value) -> Vec<(String, String)> {
    doc["observations"]
        .as_array()
        .map(|obs| {
            obs.iter()
                .map(|o| {
                    let key = o["key"]
                        .as_object()
                        .map(|k| {
                            k.iter()
                                .map(|(n, v)| format!("{n}={}", v.as_str().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    let status = match o["status"].as_str().unwrap_or_default() {
                        "breach" => o["severity"].as_str().unwrap_or_default().to_string(),
                        s => s.to_string(),
                    };
                    (key, status)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn breaches(doc: &Value) -> Vec<String> {
    statuses(doc)
        .into_iter()
        .filter(|(_, s)| s.starts_with('P'))
        .map(|(k, s)| format!("{k}:{s}"))
        .collect()
}

/// The five classic checks and every other built-in rule find exactly their planted
/// breaches on Snowflake, each query tagged and its query id in the JSON report.
#[test]
fn every_rule_finds_its_planted_breaches() {
    let Some(base) = fakesnow("snowflake::every_rule_finds_its_planted_breaches") else {
        return;
    };
    let db = db_name("rules");
    let mut sql = vec![
        "CREATE OR REPLACE TABLE events (id INT, event_date DATE)".to_string(),
        "CREATE OR REPLACE TABLE loads (dataset VARCHAR, loaded_at TIMESTAMP_NTZ)".into(),
        "CREATE OR REPLACE TABLE runs (pipeline VARCHAR, status VARCHAR, run_at TIMESTAMP_NTZ)"
            .into(),
        "CREATE OR REPLACE TABLE revenue (subject VARCHAR, day DATE, amount NUMBER(12,2))".into(),
        "CREATE OR REPLACE TABLE ledger (region VARCHAR, amount NUMBER(12,2))".into(),
        "CREATE OR REPLACE TABLE billing (region VARCHAR, amount NUMBER(12,2))".into(),
        "CREATE OR REPLACE TABLE orders (id INT, note VARCHAR)".into(),
    ];
    // Partitions: 3 days ago is missing.
    for ago in [7, 6, 5, 4, 2, 1] {
        sql.push(format!(
            "INSERT INTO events VALUES ({ago}, DATEADD('day', -{ago}, CURRENT_DATE()))"
        ));
    }
    // Freshness: `stale` was loaded 3 hours ago, `fresh` 10 minutes ago (2-hour limit).
    sql.push(
        "INSERT INTO loads VALUES \
         ('fresh', DATEADD('minute', -10, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ)), \
         ('stale', DATEADD('hour', -3, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ))"
            .into(),
    );
    // Failure rate: `etl` fails 3 of 10 runs (30 %), `ml` 1 of 10 (10 %); limit 15 %.
    for (pipeline, failed) in [("etl", 3), ("ml", 1)] {
        for i in 0..10 {
            let status = if i < failed { "failed" } else { "ok" };
            sql.push(format!(
                "INSERT INTO runs VALUES ('{pipeline}', '{status}', \
                 DATEADD('minute', -{}, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ))",
                5 + i
            ));
        }
    }
    // Trend: `shop` halves against yesterday and a week ago; `app` holds steady.
    for (subject, today) in [("shop", 50), ("app", 100)] {
        for (ago, v) in [(0, today), (1, 100), (7, 100)] {
            sql.push(format!(
                "INSERT INTO revenue VALUES ('{subject}', DATEADD('day', -{ago}, CURRENT_DATE()), {v})"
            ));
        }
    }
    // Reconciliation: EU is $10,000 short in billing; US agrees.
    sql.push("INSERT INTO ledger VALUES ('EU', 250000.00), ('US', 120000.00)".into());
    sql.push("INSERT INTO billing VALUES ('EU', 240000.00), ('US', 120000.00)".into());
    // Duplicates: order 7 loaded twice.
    sql.push("INSERT INTO orders VALUES (6, 'a'), (7, 'b'), (7, 'b'), (8, 'c')".into());
    plant(&base, &db, &sql);

    let env = env(&base, &db, "");
    let checks = [
        (
            "missing_partition",
            "rule = \"missing_partition\"\nconnection = \"sf\"\n[params]\ntable = \"events\"\npartition_column = \"event_date\"\nlookback = \"7d\"\n",
        ),
        (
            "freshness",
            "rule = \"freshness_lag\"\nconnection = \"sf\"\n[params]\ntable = \"loads\"\ntimestamp_column = \"loaded_at\"\nkey_column = \"dataset\"\n[thresholds]\nP2 = \"> 2h\"\n",
        ),
        (
            "failure_rate",
            "rule = \"failure_rate_spike\"\nconnection = \"sf\"\n[params]\ntable = \"runs\"\nstatus_column = \"status\"\nfailure_values = [\"failed\"]\ntimestamp_column = \"run_at\"\nkey_column = \"pipeline\"\nmin_volume = 5\n[thresholds]\nP2 = \"> 15\"\n",
        ),
        (
            "trend",
            "rule = \"trend_risk\"\nconnection = \"sf\"\n[params]\ntable = \"revenue\"\nkey_column = \"subject\"\ndate_column = \"day\"\nvalue_column = \"amount\"\n",
        ),
        (
            "reconciliation",
            "rule = \"reconciliation_gap\"\nconnection = \"sf\"\n[params]\nsource = { table = \"ledger\", key_column = \"region\", value_expression = \"SUM(amount)\" }\ntarget = { table = \"billing\", key_column = \"region\", value_expression = \"SUM(amount)\" }\ntolerance_abs = 9999.99\n",
        ),
        (
            "duplicates",
            "rule = \"duplicate_rows\"\nconnection = \"sf\"\n[params]\ntable = \"orders\"\nkey_columns = [\"id\"]\n",
        ),
        (
            "schema",
            "rule = \"schema_change\"\nconnection = \"sf\"\n[params]\ntable = \"orders\"\n",
        ),
        (
            "volume",
            "rule = \"volume_anomaly\"\nconnection = \"sf\"\n[params]\ntable = \"orders\"\n",
        ),
    ];
    for (id, text) in checks {
        env.write(&format!("checks/{id}.toml"), text);
    }
    let out = run_with(
        &env,
        &["run", "--format", "json", "--fail-on", "P3"],
        "sf-secret-pw-1",
    );
    out.nowhere("sf-secret-pw-1");
    let report = out.json();
    // The stand-in runs on this machine's clock (a run across midnight UTC may fail once).
    let today = dqwatch::clock::Clock::now(&dqwatch::clock::SystemClock).date_naive();
    let day = |ago: u64| {
        (today - chrono::Days::new(ago))
            .format("%Y-%m-%d")
            .to_string()
    };
    let want: [(&str, Vec<String>); 8] = [
        (
            "missing_partition",
            vec![format!("partition={}:P1", day(3))],
        ),
        ("freshness", vec!["dataset=stale:P2".into()]),
        ("failure_rate", vec!["subject=etl:P2".into()]),
        ("trend", vec!["subject=shop:P1".into()]),
        ("reconciliation", vec!["key=EU:P2".into()]),
        // One duplicated key (order 7): the metric is the count of such keys.
        ("duplicates", vec![":P2".into()]),
        ("schema", vec![]),
        ("volume", vec![]),
    ];
    for (id, breaches_wanted) in want {
        let doc = check_doc(&report, id);
        assert_ne!(doc["status"], json!("error"), "{id}: {doc}");
        assert_eq!(breaches(doc), breaches_wanted, "{id}: {doc}");
        let ids = doc["query_ids"].as_array().map_or(0, Vec::len);
        let want_ids = if id == "reconciliation" { 2 } else { 1 };
        assert_eq!(
            ids, want_ids,
            "{id}: the query ids are in the report: {doc}"
        );
    }
    // validate --connect describes every query without running it.
    run_with(&env, &["validate", "--connect"], "sf-secret-pw-1")
        .code(0)
        .stdout_has("✓ warehouse");
}

/// A check that writes is refused before it runs, and the table is unchanged; a wrong
/// kind of statement is named.
#[test]
fn a_check_that_writes_is_refused() {
    let Some(base) = fakesnow("snowflake::a_check_that_writes_is_refused") else {
        return;
    };
    let db = db_name("writes");
    plant(
        &base,
        &db,
        &[
            "CREATE OR REPLACE TABLE t (n INT)".into(),
            "INSERT INTO t VALUES (1)".into(),
        ],
    );
    let env = env(&base, &db, "");
    env.check_with(
        "insert",
        &["connection = \"sf\""],
        "INSERT INTO t VALUES (2)",
    );
    env.check_with(
        "delete",
        &["connection = \"sf\""],
        "/* a comment first */ DELETE FROM t",
    );
    env.check_with(
        "count",
        &[
            "connection = \"sf\"",
            "metric = \"n\"",
            "[thresholds]",
            "P1 = \"> 1\"",
        ],
        "SELECT COUNT(*) AS n FROM t",
    );
    let out = run_with(&env, &["run", "--no-incidents", "--format", "json"], "pw");
    let report = out.json();
    for id in ["insert", "delete"] {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], json!("error"), "{doc}");
        assert!(
            doc["error"]["message"].to_string().contains("refused"),
            "{doc}"
        );
    }
    // The table still holds one row: nothing was written.
    assert_eq!(
        check_doc(&report, "count")["status"],
        json!("pass"),
        "{report}"
    );
}

/// A statement that outlives its timeout is an error (the client aborts it on the
/// server when the server has not stopped it itself), never a pass.
#[test]
fn a_timeout_is_an_error() {
    let Some(base) = fakesnow("snowflake::a_timeout_is_an_error") else {
        return;
    };
    let db = db_name("timeout");
    plant(
        &base,
        &db,
        &[
            "CREATE OR REPLACE TABLE big (n INT)".into(),
            "INSERT INTO big SELECT * FROM (VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10)) v(n)"
                .into(),
        ],
    );
    let env = env(&base, &db, "statement_timeout = \"1s\"");
    // 10^10 rows of a cross join: about ten seconds of work on DuckDB (fakesnow neither
    // enforces STATEMENT_TIMEOUT_IN_SECONDS nor aborts, so the client's deadline fires).
    env.check_with(
        "slow",
        &["connection = \"sf\"", "metric = \"c\"", "[thresholds]", "P1 = \"< 0\""],
        "SELECT COUNT(*) AS c FROM big a, big b, big c, big d, big e, big f, big g, big h, big i, big j",
    );
    let out = run_with(&env, &["run", "--no-incidents", "--format", "json"], "pw");
    let doc = out.json();
    let doc = check_doc(&doc, "slow");
    assert_eq!(doc["status"], json!("error"), "{doc}");
    assert_eq!(doc["error"]["kind"], json!("timeout"), "{doc}");
}

/// A wrong password is a connection error naming the connection, and the password is not
/// printed.
#[test]
fn a_missing_key_file_is_an_auth_error_naming_the_connection() {
    let Some(base) =
        fakesnow("snowflake::a_missing_key_file_is_an_auth_error_naming_the_connection")
    else {
        return;
    };
    let env = TestEnv::new();
    env.config(&format!(
        "[connections.sf]\n\
         url = \"snowflake://dq_reader@fakeacct/DQ_AUTH/PUBLIC\"\n\
         private_key_file = \"missing.p8\"\n\
         api_base = \"{base}\"\n"
    ));
    env.check_with(
        "one",
        &[
            "connection = \"sf\"",
            "metric = \"n\"",
            "[thresholds]",
            "P1 = \"> 1\"",
        ],
        "SELECT 1 AS n",
    );
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    let report = out.json();
    let doc = check_doc(&report, "one");
    assert_eq!(doc["error"]["kind"], json!("connection"), "{doc}");
    let err = doc["error"]["message"].to_string();
    assert!(
        err.contains("connection \\\"sf\\\": authentication failed"),
        "{err}"
    );
}

/// A query Snowflake described as a query once is not described again by the same process
/// (the daemon's later runs save the round trip); a new text is.
#[test]
fn a_described_query_is_not_described_again() {
    let Some(base) = fakesnow("snowflake::a_described_query_is_not_described_again") else {
        return;
    };
    let env = env(&base, &db_name("described"), "max_concurrency = 1");
    let header = [
        "connection = \"sf\"",
        "metric = \"n\"",
        "[thresholds]",
        "P1 = \"> 1\"",
    ];
    env.check_with("a", &header, "SELECT 1 AS n");
    env.check_with("b", &header, "SELECT 1 AS n");
    env.check_with("c", &header, "SELECT 0 AS n");
    let mut cmd = env.command();
    cmd.args([
        "--config",
        "dqwatch.toml",
        "--log-format",
        "json",
        "run",
        "--no-incidents",
    ])
    .env("DQ_SF_PASSWORD", "pw")
    .env("RUST_LOG", "dqwatch::warehouse=debug");
    let out = output(&mut cmd);
    let described: Vec<(String, bool)> = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["fields"]["message"] == json!("snowflake statement"))
        .map(|e| {
            (
                e["fields"]["check"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["fields"]["described"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(described.len(), 3, "{}", out.stderr);
    let same: Vec<bool> = described
        .iter()
        .filter(|(c, _)| c != "c")
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(same.iter().filter(|d| **d).count(), 1, "{described:?}");
    assert!(
        described.iter().any(|(c, d)| c == "c" && *d),
        "{described:?}"
    );
}
