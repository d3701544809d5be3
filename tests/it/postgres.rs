//! `dqwatch` against a real PostgreSQL (`DQWATCH_TEST_POSTGRES_URL`, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`). Each test works in its own schema, dropped at
//! the end. Without the variable, each test prints a `SKIP` line and passes.

use crate::require_env;
use crate::util::{PgSchema, TestEnv, check_doc, output};
use indoc::indoc;
use std::time::Duration;

/// A schema named for `test` and a temp dir whose connection `warehouse` uses it.
fn setup(admin: &str, test: &str, extra: &str) -> (PgSchema, TestEnv) {
    let schema = PgSchema::new(admin, test);
    let env = TestEnv::with_connection(&schema.url, extra);
    (schema, env)
}

/// A check judging `sql`'s `gap` column: P1 when `threshold` holds.
fn metric_check(env: &TestEnv, id: &str, sql: &str, threshold: &str) {
    let level = format!("P1 = \"{threshold}\"");
    env.check_with(id, &["metric = \"gap\"", "[thresholds]", &level], sql);
}

#[test]
fn numeric_types() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (schema, env) = setup(&admin, "numeric_types", "");
    schema.exec(indoc! {"
        CREATE TABLE nums (
            i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, n_big numeric, n_neg numeric(12, 3)
        );
        INSERT INTO nums VALUES (
            32767, 2147483647, 9223372036854775807, 1.5, 0.95, 100.005,
            1234567890123456789012345678901234567890, -0.5
        );
    "});
    // (id, sql, threshold, breach)
    let cases = [
        ("int2_hit", "SELECT i2 AS gap FROM nums", ">= 32767", true),
        ("int2_miss", "SELECT i2 AS gap FROM nums", "> 32767", false),
        (
            "int4_hit",
            "SELECT i4 AS gap FROM nums",
            "== 2147483647",
            true,
        ),
        (
            "int4_miss",
            "SELECT i4 AS gap FROM nums",
            "< 2147483647",
            false,
        ),
        ("int8_hit", "SELECT i8 AS gap FROM nums", "> 9e18", true),
        ("int8_miss", "SELECT i8 AS gap FROM nums", "< 9e18", false),
        ("float4_hit", "SELECT f4 AS gap FROM nums", "> 1.4", true),
        ("float4_miss", "SELECT f4 AS gap FROM nums", "!= 1.5", false),
        ("float8_hit", "SELECT f8 AS gap FROM nums", "<= 0.95", true),
        ("float8_miss", "SELECT f8 AS gap FROM nums", "< 0.95", false),
        (
            "numeric_hit",
            "SELECT n AS gap FROM nums",
            "> 100.004",
            true,
        ),
        (
            "numeric_miss",
            "SELECT n AS gap FROM nums",
            "> 100.006",
            false,
        ),
        (
            "numeric_40_digits_hit",
            "SELECT n_big AS gap FROM nums",
            "> 1e39",
            true,
        ),
        (
            "numeric_40_digits_miss",
            "SELECT n_big AS gap FROM nums",
            "> 2e39",
            false,
        ),
        (
            "numeric_negative_hit",
            "SELECT n_neg AS gap FROM nums",
            "< -0.4",
            true,
        ),
        (
            "numeric_negative_miss",
            "SELECT n_neg AS gap FROM nums",
            "< -0.5",
            false,
        ),
        (
            "count_is_int8",
            "SELECT count(*) AS gap FROM nums",
            "== 1",
            true,
        ),
        (
            "sum_is_numeric",
            "SELECT sum(i8) AS gap FROM nums",
            "> 9e18",
            true,
        ),
        (
            "avg_is_numeric",
            "SELECT avg(i2) AS gap FROM nums",
            "== 32767",
            true,
        ),
        (
            "bool_cast_to_int",
            "SELECT (i2 > 0)::int AS gap FROM nums",
            "== 1",
            true,
        ),
    ];
    for (id, sql, threshold, _) in cases {
        metric_check(&env, id, sql, threshold);
    }
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(1)
        .json();
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
    for (id, _, _, breach) in cases {
        let doc = check_doc(&report, id);
        assert_eq!(
            doc["status"],
            if breach { "breach" } else { "pass" },
            "{id}: {doc:#}"
        );
    }
    let big = check_doc(&report, "numeric_40_digits_hit")["observations"][0]["metric"]
        .as_f64()
        .unwrap();
    assert!(
        (big / 1.234_567_890_123_456_8e39 - 1.0).abs() < 1e-12,
        "{big}"
    );
    let n = check_doc(&report, "numeric_hit")["observations"][0]["metric"]
        .as_f64()
        .unwrap();
    assert!((n - 100.005).abs() < 1e-9, "{n}");
}

#[test]
fn nan_and_infinity_are_never_a_pass() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = setup(&admin, "nan_and_infinity", "");
    for (id, sql) in [
        ("numeric_nan", "SELECT 'NaN'::numeric AS gap"),
        ("float8_nan", "SELECT 'NaN'::float8 AS gap"),
        ("float4_nan", "SELECT 'NaN'::float4 AS gap"),
        ("numeric_infinity", "SELECT 'Infinity'::numeric AS gap"),
        ("float8_infinity", "SELECT 'Infinity'::float8 AS gap"),
    ] {
        env.check_with(
            id,
            &[
                "on_no_data = \"pass\"",
                "metric = \"gap\"",
                "[thresholds]",
                "P1 = \"> 1\"",
            ],
            sql,
        );
    }
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .json();
    for id in ["numeric_nan", "float8_nan", "float4_nan"] {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], "error", "{id}: {doc:#}");
        assert_eq!(doc["error"]["kind"], "result", "{id}: {doc:#}");
    }
    for id in ["numeric_infinity", "float8_infinity"] {
        let doc = check_doc(&report, id);
        assert_ne!(doc["status"], "pass", "{id}: {doc:#}");
    }
}

#[test]
fn text_and_null_metrics_are_errors() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = setup(&admin, "text_and_null_metrics", "");
    metric_check(&env, "text", "SELECT '12'::text AS gap", "> 1");
    metric_check(&env, "varchar", "SELECT 'x'::varchar(3) AS gap", "> 1");
    metric_check(&env, "boolean", "SELECT true AS gap", "> 1");
    metric_check(&env, "interval", "SELECT interval '2 hours' AS gap", "> 1");
    metric_check(&env, "null", "SELECT NULL::int AS gap", "> 1");
    metric_check(&env, "empty", "SELECT 1 AS gap WHERE false", "> 1");
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(3)
        .json();
    for id in ["text", "varchar", "boolean", "interval"] {
        assert_eq!(
            check_doc(&report, id)["error"]["kind"],
            "result",
            "{id}: {report:#}"
        );
    }
    let text = check_doc(&report, "text")["error"]["message"]
        .as_str()
        .unwrap();
    assert!(text.contains("is text (\"12\")"), "{text}");
    for id in ["null", "empty"] {
        assert_eq!(
            check_doc(&report, id)["error"]["kind"],
            "no_data",
            "{id}: {report:#}"
        );
    }
}

#[test]
fn keys_of_every_type_become_stable_strings() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (schema, env) = setup(&admin, "keys_of_every_type", "");
    schema.exec(indoc! {"
        CREATE TABLE k (d date, s text, c char(3), v varchar(10), i int4, b int8, n numeric(6, 2),
                        ts timestamp, tz timestamptz, gap int);
        INSERT INTO k VALUES ('2026-01-02', 'abc', 'xy', 'vv', 7, 8000000000, 1.50,
                              '2026-01-02 03:04:05', '2026-01-02 03:04:05+02', 5);
    "});
    env.check_with(
        "k",
        &[
            "keys = [\"d\", \"s\", \"c\", \"v\", \"i\", \"b\", \"n\", \"ts\", \"tz\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P1 = \"> 1\"",
        ],
        "SELECT * FROM k",
    );
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(1)
        .json();
    let key = &check_doc(&report, "k")["observations"][0]["key"];
    assert_eq!(
        key,
        &serde_json::json!({
            "d": "2026-01-02", "s": "abc", "c": "xy ", "v": "vv", "i": "7", "b": "8000000000",
            "n": "1.5", "ts": "2026-01-02T03:04:05", "tz": "2026-01-02T01:04:05Z"
        })
    );
    let again = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(1)
        .json();
    assert_eq!(&check_doc(&again, "k")["observations"][0]["key"], key);
}

/// See: bug — a key column of a type the decoder does not read (uuid, inet, …) renders as
/// `<UUID>` for every row, so distinct subjects collapse into one key.
#[test]
fn uuid_keys_stay_distinct() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = setup(&admin, "uuid_keys", "");
    env.check_with(
        "u",
        &[
            "keys = [\"id\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P1 = \"> 1\"",
        ],
        "SELECT * FROM (VALUES ('00000000-0000-0000-0000-000000000001'::uuid, 5), \
         ('00000000-0000-0000-0000-000000000002'::uuid, 0)) AS v(id, gap)",
    );
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .json();
    let doc = check_doc(&report, "u");
    let obs = doc["observations"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(obs.len(), 2, "two uuids are two subjects: {doc:#}");
    assert_eq!(
        obs[0]["key"]["id"], "00000000-0000-0000-0000-000000000001",
        "{doc:#}"
    );
}

#[test]
fn writes_fail_and_leave_the_table_unchanged() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (schema, env) = setup(&admin, "writes_fail", "max_concurrency = 1");
    schema.exec(indoc! {"
        CREATE TABLE t (n int);
        INSERT INTO t VALUES (1), (2), (3);
        CREATE SEQUENCE s;
        CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'INSERT INTO t VALUES (7) RETURNING n';
    "});
    let writes = [
        ("insert_returning", "INSERT INTO t VALUES (99) RETURNING n"),
        (
            "modifying_cte",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) AS n FROM d",
        ),
        ("update", "UPDATE t SET n = n + 100 RETURNING n"),
        ("nextval", "SELECT nextval('s') AS n"),
        ("function", "SELECT sneaky() AS n"),
        ("truncate", "TRUNCATE t"),
        ("drop", "DROP TABLE t"),
        ("create", "CREATE TABLE sneaky_table (a int)"),
        ("commit_then_delete", "COMMIT; DELETE FROM t"),
        ("select_into", "SELECT * INTO copied FROM t"),
    ];
    for (id, sql) in writes {
        env.check_with(id, &[], sql);
    }
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(3)
        .json();
    for (id, _) in writes {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], "error", "{id} was not refused: {doc:#}");
    }
    let msg = check_doc(&report, "function")["error"]["message"]
        .as_str()
        .unwrap();
    assert!(
        msg.contains("read-only transaction") && msg.contains("SQLSTATE 25006"),
        "{msg}"
    );
    assert_eq!(schema.scalar("SELECT count(*) FROM t"), 3);
    assert_eq!(schema.scalar("SELECT sum(n)::int8 FROM t"), 6);
    assert_eq!(schema.scalar("SELECT last_value FROM s"), 1);
    assert_eq!(
        schema.scalar("SELECT count(*) FROM pg_class WHERE relname IN ('sneaky_table', 'copied')"),
        0
    );
}

#[test]
fn statement_timeout_cancels_a_slow_query() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = setup(&admin, "statement_timeout", "statement_timeout = \"1s\"");
    env.check_with("sleepy", &[], "SELECT pg_sleep(5)");
    env.check_with("quick", &[], "SELECT 1 WHERE false");
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    let report = out.code(3).json();
    let doc = check_doc(&report, "sleepy");
    assert_eq!(doc["error"]["kind"], "timeout", "{doc:#}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{doc:#}"
    );
    assert_eq!(check_doc(&report, "quick")["status"], "pass");
    assert!(
        out.elapsed < Duration::from_secs(4),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn max_rows_caps_the_result() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = setup(&admin, "max_rows", "max_rows = 100\nmax_concurrency = 1");
    env.check_with(
        "a_many",
        &[],
        "SELECT g FROM generate_series(1, 1000000) AS g",
    );
    env.check_with(
        "b_after",
        &["metric = \"gap\"", "[thresholds]", "P1 = \"> 1\""],
        "SELECT 0 AS gap",
    );
    let out = env.run([
        "run",
        "--no-incidents",
        "--format",
        "json",
        "--fail-on",
        "P2",
    ]);
    let report = out.code(1).json();
    let doc = check_doc(&report, "a_many");
    assert_eq!(doc["capped"], true, "{doc:#}");
    assert_eq!(doc["rows"], 100);
    // The capped connection is not handed to the next check mid-result.
    assert_eq!(
        check_doc(&report, "b_after")["status"],
        "pass",
        "{report:#}"
    );
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    env.run(["run", "--no-incidents", "--select", "a_many"])
        .code(0)
        .stdout_has("(capped at 100 rows)");
}

#[test]
fn bad_sql_carries_the_server_message() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = setup(&admin, "bad_sql", "");
    env.check_with("broken", &[], "SELECT * FROM no_such_table");
    env.run(["run", "--no-incidents"]).code(3).stdout_has(
        "! ERROR broken  query: relation \"no_such_table\" does not exist (SQLSTATE 42P01)",
    );
}

#[test]
fn a_trailing_semicolon_is_fine() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = setup(&admin, "trailing_semicolon", "");
    env.check_with("semi", &[], "SELECT 1 WHERE false;\n-- end");
    env.run(["run", "--no-incidents"]).code(0);
}

#[test]
fn validate_connect_prepares_every_query() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (schema, env) = setup(&admin, "validate_connect", "");
    schema.exec("CREATE TABLE t (n int)");
    env.check_with(
        "good",
        &["severity = \"P1\""],
        "SELECT n FROM t WHERE n < 0",
    );
    env.check_with("also_good", &[], "SELECT count(*) FROM t");
    let out = env.run(["validate", "--connect"]);
    out.code(0).stdout_has("✓ warehouse  2 queries prepared");

    env.check_with(
        "sub/bad",
        &["description = \"d\"", "tags = [\"x\"]"],
        "SELECT nope FROM t",
    );
    let out = env.run(["validate", "--connect"]);
    out.code(2)
        .stderr_has("checks/sub/bad.sql:4:1: error: query does not prepare on \"warehouse\": column \"nope\" does not exist")
        .stdout_has("✗ warehouse  1 of 3 queries do not prepare");
    // Without --connect nothing talks to the database.
    env.run(["validate"]).code(0);
}

/// Refused connections need no server: port 1 on loopback refuses.
#[test]
fn a_refused_connection_exits_3_without_the_password() {
    let env = TestEnv::with_connection("postgres://postgres:hunter2@127.0.0.1:1/test", "");
    env.check_with("c", &[], "SELECT 1");
    let out = env.run(["run", "--no-incidents"]);
    out.code(3)
        .stdout_has(
            "! ERROR c  connection: failed to connect to postgres://postgres:****@127.0.0.1:1/test",
        )
        .nowhere("hunter2");
    for format in ["json", "junit", "github"] {
        env.run(["run", "--no-incidents", "--format", format])
            .code(3)
            .nowhere("hunter2");
    }
    let out = env.run(["validate", "--connect"]);
    out.code(2)
        .stderr_has("postgres://postgres:****@127.0.0.1:1/test")
        .nowhere("hunter2");
}

#[test]
fn a_password_query_parameter_is_not_printed() {
    let env = TestEnv::with_connection("postgres://postgres@127.0.0.1:1/test?password=hunter2", "");
    env.check_with("c", &[], "SELECT 1");
    env.run(["run", "--no-incidents"])
        .code(3)
        .stdout_has("password=****")
        .nowhere("hunter2");
    env.run(["validate", "--connect"])
        .code(2)
        .nowhere("hunter2");
}

#[test]
fn secrets_stay_out_of_debug_logs() {
    let env = TestEnv::with_connection(
        "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable",
        "",
    );
    env.check_with("c", &[], "SELECT 1");
    let mut cmd = env.command();
    cmd.env("RUST_LOG", "trace")
        .args(["--config", "dqwatch.toml", "run"]);
    output(&mut cmd).code(3).nowhere("hunter2");
    let mut cmd = env.command();
    cmd.env("RUST_LOG", "trace").args([
        "--log-format",
        "json",
        "--config",
        "dqwatch.toml",
        "validate",
        "--connect",
    ]);
    output(&mut cmd).code(2).nowhere("hunter2");
}

#[test]
fn a_password_from_the_environment_is_not_printed() {
    let env = TestEnv::with_connection(
        "postgres://postgres:${DQWATCH_IT_PG_PASSWORD}@127.0.0.1:1/test",
        "",
    );
    env.check_with("c", &[], "SELECT 1");
    let mut cmd = env.command();
    cmd.env("DQWATCH_IT_PG_PASSWORD", "s3cr%40t").args([
        "--config",
        "dqwatch.toml",
        "run",
        "--format",
        "json",
    ]);
    let out = output(&mut cmd);
    out.code(3)
        .nowhere("s3cr")
        .stdout_has("postgres://postgres:****@127.0.0.1:1/test");
}

#[test]
fn a_wrong_password_is_a_connection_error() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let bad = crate::util::with_password(&admin, "wrong-pw-xyzzy");
    let env = TestEnv::with_connection(&bad, "");
    env.check_with("c", &[], "SELECT 1");
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    if out.code == 0 {
        // Trust authentication accepts any password: nothing to test here.
        crate::util::skip(
            "postgres::a_wrong_password_is_a_connection_error",
            "the server accepts any password (trust authentication)",
        );
        return;
    }
    let report = out.code(3).json();
    assert_eq!(check_doc(&report, "c")["error"]["kind"], "connection");
    out.nowhere("wrong-pw-xyzzy");
}

/// See: bug — connecting has no timeout: a server that accepts the TCP connection but never
/// answers (hung server, load balancer without backend) makes `dqwatch run` hang forever,
/// whatever `statement_timeout` says.
#[test]
fn a_server_that_never_answers_is_an_error_not_a_hang() {
    let (_listener, port) = crate::util::silent_server();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let env = TestEnv::with_connection(&url, "statement_timeout = \"1s\"");
    env.check_with("c", &[], "SELECT 1");
    let mut cmd = env.command();
    cmd.args([
        "--config",
        "dqwatch.toml",
        "run",
        "--no-incidents",
        "--format",
        "json",
    ]);
    match crate::util::output_within(&mut cmd, Duration::from_secs(8)) {
        Ok(out) => {
            let report = out.code(3).json();
            assert_eq!(check_doc(&report, "c")["status"], "error");
        }
        Err(out) => panic!(
            "dqwatch run still waited for the server after {:?}: {out:?}",
            out.elapsed
        ),
    }
}
