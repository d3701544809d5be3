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
pub(crate) fn fakesnow(test: &str) -> Option<String> {
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
pub(crate) fn plant(base: &str, database: &str, statements: &[String]) {
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
pub(crate) fn env(base: &str, database: &str, extra: &str) -> TestEnv {
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
pub(crate) fn run_with(env: &TestEnv, args: &[&str], password: &str) -> Output {
    let mut cmd = env.command();
    cmd.arg("--config")
        .arg("dqwatch.toml")
        .args(args)
        .env("DQ_SF_PASSWORD", password);
    output(&mut cmd)
}

/// The database name for a test: its own, upper case.
pub(crate) fn db_name(test: &str) -> String {
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

/// The rules judged against dqwatch's stored history find their planted breaches on
/// Snowflake too: a dropped column (schema_change) and a key losing most of its rows after a
/// baseline of runs (volume_anomaly).
#[test]
fn history_rules_find_their_planted_breaches() {
    let Some(base) = fakesnow("snowflake::history_rules_find_their_planted_breaches") else {
        return;
    };
    let db = db_name("history");
    plant(
        &base,
        &db,
        &[
            "CREATE OR REPLACE TABLE ev (n INT, kind VARCHAR)".into(),
            "INSERT INTO ev WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) \
             SELECT n, CASE WHEN n % 2 = 0 THEN 'a' ELSE 'b' END FROM r"
                .into(),
            "CREATE OR REPLACE TABLE t (id INT, note VARCHAR)".into(),
        ],
    );
    let env = env(&base, &db, "");
    env.write(
        "checks/vol.toml",
        "rule = \"volume_anomaly\"\nconnection = \"sf\"\n[params]\ntable = \"ev\"\nkey_column = \"kind\"\nmin_history = 3\n",
    );
    env.write(
        "checks/schema.toml",
        "rule = \"schema_change\"\nconnection = \"sf\"\n[params]\ntable = \"t\"\n",
    );
    let run = || run_with(&env, &["run", "--format", "json", "--fail-on", "P0"], "pw").json();
    let first = run();
    assert_eq!(
        breaches(check_doc(&first, "vol")),
        Vec::<String>::new(),
        "{first}"
    );
    for (i, extra) in ["a", "b", "a"].iter().enumerate() {
        plant(
            &base,
            &db,
            &[format!("INSERT INTO ev VALUES ({}, '{extra}')", 1000 + i)],
        );
        let r = run();
        assert_eq!(breaches(check_doc(&r, "vol")), Vec::<String>::new(), "{r}");
        assert_eq!(
            breaches(check_doc(&r, "schema")),
            Vec::<String>::new(),
            "{r}"
        );
    }
    plant(
        &base,
        &db,
        &[
            "DELETE FROM ev WHERE kind = 'a' AND n % 5 <> 0".into(),
            "ALTER TABLE t DROP COLUMN note".into(),
        ],
    );
    let r = run();
    assert_eq!(breaches(check_doc(&r, "vol")), ["subject=a:P2"], "{r}");
    assert_eq!(
        breaches(check_doc(&r, "schema")),
        ["column=T.NOTE:P1"],
        "{r}"
    );
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

// ---------------------------------------------------------------------------------------
// The parts of the protocol fakesnow does not exercise (it answers every query at once, in
// Arrow, inline, ignores parameters and never expires a session), against a loopback server
// that answers as Snowflake's connectors expect: JSON rowsets, "in progress" (333334) with a
// result URL to poll, result chunks behind `qrmk` headers, an expired session (390112), a
// 503, and `abort-request` for the request id of a statement given up on. It checks that each
// statement carries QUERY_TAG and STATEMENT_TIMEOUT_IN_SECONDS. Needs no feature.

mod contract {
    use super::*;
    use axum::extract::{Path, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Fake {
        port: u16,
        logins: Vec<Value>,
        /// (requestId, body) of every query-request.
        queries: Vec<(String, Value)>,
        aborts: Vec<Value>,
        chunks_read: Vec<String>,
        /// Tokens that were valid once and have expired.
        expired: Vec<String>,
        flaky: u32,
    }
    type Shared = Arc<Mutex<Fake>>;

    fn token_of(h: &HeaderMap) -> String {
        h.get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Snowflake Token=\""))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_default()
            .to_string()
    }

    async fn login(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
        let mut f = s.lock().unwrap();
        f.logins.push(body.clone());
        let d = &body["data"];
        if d["LOGIN_NAME"] != json!("dq_reader")
            || d["ACCOUNT_NAME"] != json!("XY12345")
            || d["PASSWORD"] != json!("pw")
            || d["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"] != json!(1)
        {
            return Json(json!({"success": false, "code": "390100",
                "message": "Incorrect username or password was specified.", "data": null}))
            .into_response();
        }
        let token = format!("T{}", f.logins.len());
        Json(json!({"success": true, "data": {"token": token, "masterToken": "M"}})).into_response()
    }

    fn rowtype() -> Value {
        json!([{"name": "REGION", "type": "text", "scale": null},
               {"name": "GAP", "type": "fixed", "scale": 2}])
    }

    async fn query(
        State(s): State<Shared>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
        Json(body): Json<Value>,
    ) -> Response {
        let mut f = s.lock().unwrap();
        let token = token_of(&headers);
        let sql = body["sqlText"].as_str().unwrap_or_default().to_string();
        f.queries.push((
            q.get("requestId").cloned().unwrap_or_default(),
            body.clone(),
        ));
        if !token.starts_with('T') {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"success": false, "code": "390101",
                "message": "Authorization header not found in the request data."})),
            )
                .into_response();
        }
        if f.expired.contains(&token) {
            return Json(json!({"success": false, "code": "390112", "data": null,
                "message": "Your session has expired. Please login again."}))
            .into_response();
        }
        let p = &body["parameters"];
        if !p["QUERY_TAG"]
            .as_str()
            .is_some_and(|t| t.starts_with("dqwatch:"))
            || p["STATEMENT_TIMEOUT_IN_SECONDS"] != json!(1)
        {
            return Json(
                json!({"success": false, "code": "000999", "message": format!("contract: {body}")}),
            )
            .into_response();
        }
        if sql.contains("expire") && !f.expired.contains(&token) && f.logins.len() == 1 {
            f.expired.push(token);
            return Json(json!({"success": false, "code": "390112", "data": null,
                "message": "Your session has expired. Please login again."}))
            .into_response();
        }
        if body["describeOnly"] == json!(true) {
            return Json(json!({"success": true, "data": {"rowtype": rowtype(), "rowset": [],
                "total": 0, "statementTypeId": 4096, "queryId": "describe-1", "queryResultFormat": "json"}}))
                .into_response();
        }
        if sql.contains("flaky") && f.flaky == 0 {
            f.flaky += 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
        }
        let id = if sql.contains("hang") { "hang" } else { "q1" };
        if sql.contains("hang") || sql.contains("chunks") {
            return Json(json!({"success": true, "code": "333334",
                "message": "Asynchronous execution in progress.",
                "data": {"queryId": id, "getResultUrl": format!("/queries/{id}/result")}}))
            .into_response();
        }
        Json(json!({"success": true, "data": {"rowtype": rowtype(), "rowset": [["EU", "10000.50"]],
            "total": 1, "returned": 1, "statementTypeId": 4096, "queryId": "q0", "queryResultFormat": "json"}}))
            .into_response()
    }

    async fn result(
        State(s): State<Shared>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> Response {
        let f = s.lock().unwrap();
        if !token_of(&headers).starts_with('T') {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if id == "hang" {
            return Json(
                json!({"success": true, "code": "333334", "message": "in progress",
                "data": {"queryId": id, "getResultUrl": "/queries/hang/result"}}),
            )
            .into_response();
        }
        let chunk = |n: u32| json!({"url": format!("http://127.0.0.1:{}/chunk/{n}", f.port), "rowCount": 3});
        Json(json!({"success": true, "data": {"rowtype": rowtype(),
            "rowset": [["A", "1.00"], ["B", "2.00"]], "total": 11, "returned": 2,
            "chunks": [chunk(1), chunk(2), chunk(3)], "qrmk": "secret-qrmk",
            "statementTypeId": 4096, "queryId": id, "queryResultFormat": "json"}}))
        .into_response()
    }

    async fn chunk(State(s): State<Shared>, headers: HeaderMap, Path(n): Path<u32>) -> Response {
        let mut f = s.lock().unwrap();
        f.chunks_read.push(n.to_string());
        if headers
            .get("x-amz-server-side-encryption-customer-key")
            .and_then(|v| v.to_str().ok())
            != Some("secret-qrmk")
        {
            return StatusCode::FORBIDDEN.into_response();
        }
        let base = n * 3;
        format!(
            "[\"C{base}\", \"{base}.00\"],\n[\"C{}\", \"{}.50\"],\n[\"C{}\", null]",
            base + 1,
            base + 1,
            base + 2
        )
        .into_response()
    }

    async fn abort(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
        s.lock().unwrap().aborts.push(body);
        Json(json!({"success": true, "data": null})).into_response()
    }

    fn start() -> (TestEnv, Shared, tokio::runtime::Runtime) {
        let fake: Shared = Arc::default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        fake.lock().unwrap().port = port;
        let app = Router::new()
            .route("/session/v1/login-request", post(login))
            .route("/queries/v1/query-request", post(query))
            .route("/queries/{id}/result", get(result))
            .route("/queries/v1/abort-request", post(abort))
            .route("/chunk/{n}", get(chunk))
            .with_state(Arc::clone(&fake));
        rt.spawn(async move { axum::serve(listener, app).await });
        let env = TestEnv::new();
        env.config(&format!(
            "[connections.sf]\n\
             url = \"snowflake://dq_reader@xy12345.eu-central-1/DB/PUBLIC?warehouse=WH\"\n\
             password = \"${{DQ_SF_PASSWORD}}\"\n\
             api_base = \"http://127.0.0.1:{port}\"\n\
             statement_timeout = \"1s\"\nmax_rows = 6\nmax_concurrency = 1\n"
        ));
        std::fs::create_dir_all(env.path().join("checks")).unwrap();
        (env, fake, rt)
    }

    /// Polling, chunks up to max_rows, JSON cells, re-login, retry, abort.
    #[test]
    fn polls_reads_chunks_to_the_cap_relogs_retries_and_aborts() {
        let (env, fake, _rt) = start();
        let h = [
            "connection = \"sf\"",
            "metric = \"gap\"",
            "keys = [\"region\"]",
            "[thresholds]",
            "P1 = \">= 10000\"",
        ];
        env.check_with("chunks", &h, "SELECT region, gap FROM chunks");
        env.check_with("expire", &h, "SELECT region, gap FROM expire");
        env.check_with("flaky", &h, "SELECT region, gap FROM flaky");
        env.check_with("hang", &h, "SELECT region, gap FROM hang");
        let out = run_with(&env, &["run", "--no-incidents", "--format", "json"], "pw");
        out.nowhere("secret-qrmk");
        let report = out.json();
        let chunks = check_doc(&report, "chunks");
        assert_eq!(
            chunks["rows"],
            json!(6),
            "2 inline + 3 + 1 of the next chunk: {chunks}"
        );
        assert_eq!(chunks["capped"], json!(true), "{chunks}");
        assert_eq!(chunks["query_ids"], json!(["q1"]), "{chunks}");
        let f = fake.lock().unwrap();
        assert_eq!(
            f.chunks_read,
            ["1", "2"],
            "the chunk after the cap was downloaded"
        );
        let expire = check_doc(&report, "expire");
        assert_eq!(expire["status"], json!("breach"), "{expire}");
        assert_eq!(
            expire["observations"][0]["metric"],
            json!(10000.5),
            "{expire}"
        );
        assert!(
            f.logins.len() >= 2,
            "no new login after the session expired"
        );
        assert_eq!(
            check_doc(&report, "flaky")["status"],
            json!("breach"),
            "a 503 is retried: {report}"
        );
        let hang = check_doc(&report, "hang");
        assert_eq!(hang["error"]["kind"], json!("timeout"), "{hang}");
        let hang_request = f
            .queries
            .iter()
            .find(|(_, b)| {
                b["sqlText"].as_str().unwrap_or_default().contains("hang")
                    && b["describeOnly"] == json!(false)
            })
            .map(|(id, _)| id.clone())
            .unwrap();
        assert!(
            f.aborts
                .iter()
                .any(|a| a["requestId"] == json!(hang_request)),
            "no abort-request for {hang_request}: {:?}",
            f.aborts
        );
        // Every statement was tagged with its check.
        for (_, b) in &f.queries {
            let tag = b["parameters"]["QUERY_TAG"].as_str().unwrap_or_default();
            assert!(
                [
                    "dqwatch:chunks",
                    "dqwatch:expire",
                    "dqwatch:flaky",
                    "dqwatch:hang"
                ]
                .contains(&tag),
                "{b}"
            );
        }
    }

    /// A refused login is an error naming the connection, in Snowflake's words, without the
    /// password.
    #[test]
    fn a_refused_login_names_the_connection() {
        let (env, fake, _rt) = start();
        env.check_with(
            "one",
            &[
                "connection = \"sf\"",
                "metric = \"gap\"",
                "[thresholds]",
                "P1 = \">= 1\"",
            ],
            "SELECT 1 AS gap",
        );
        let out = run_with(
            &env,
            &["run", "--no-incidents", "--format", "json"],
            "wrong-pw-Zq9",
        );
        out.nowhere("wrong-pw-Zq9");
        let doc = check_doc(&out.json(), "one").clone();
        assert_eq!(doc["error"]["kind"], json!("connection"), "{doc}");
        let msg = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("connection \"sf\": authentication failed: Incorrect username or password was specified. (code 390100)"),
            "{msg}"
        );
        // One attempt: a refused login is not retried (accounts lock after a few).
        assert_eq!(fake.lock().unwrap().logins.len(), 1);
    }
}
