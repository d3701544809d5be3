//! `dqwatch` against a real MariaDB (`DQWATCH_TEST_MARIADB_URL`, e.g.
//! `mysql://root@127.0.0.1:3306/test`). Each test works in its own database, dropped at the
//! end. Without the variable, each test prints a `SKIP` line and passes.

use crate::require_env;
use crate::util::{MyDatabase, TestEnv, check_doc};
use indoc::indoc;
use std::time::Duration;

/// A database named for `test` and a temp dir whose connection `warehouse` uses it.
fn setup(admin: &str, test: &str, extra: &str) -> (MyDatabase, TestEnv) {
    let db = MyDatabase::new(admin, test);
    let env = TestEnv::with_connection(&db.url, extra);
    (db, env)
}

/// A check judging `sql`'s `gap` column: P1 when `threshold` holds.
fn metric_check(env: &TestEnv, id: &str, sql: &str, threshold: &str) {
    let level = format!("P1 = \"{threshold}\"");
    env.check_with(id, &["metric = \"gap\"", "[thresholds]", &level], sql);
}

#[test]
fn numeric_types() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = setup(&admin, "numeric_types", "");
    db.exec(indoc! {"
        CREATE TABLE nums (
            i INT, si SMALLINT, mi MEDIUMINT, b BIGINT, bu BIGINT UNSIGNED, iu INT UNSIGNED,
            d DECIMAL(65, 30), d_big DECIMAL(40, 0), dbl DOUBLE, f FLOAT, flag TINYINT(1), ti TINYINT
        );
        INSERT INTO nums VALUES (
            2147483647, -32768, 8388607, 9223372036854775807, 18446744073709551615, 4294967295,
            100.005, 1234567890123456789012345678901234567890, 0.95, 1.5, 1, -128
        );
    "});
    // (id, sql, threshold, breach)
    let cases = [
        (
            "int_hit",
            "SELECT i AS gap FROM nums",
            "== 2147483647",
            true,
        ),
        (
            "int_miss",
            "SELECT i AS gap FROM nums",
            "> 2147483647",
            false,
        ),
        ("smallint_hit", "SELECT si AS gap FROM nums", "< 0", true),
        (
            "mediumint_hit",
            "SELECT mi AS gap FROM nums",
            ">= 8388607",
            true,
        ),
        ("bigint_hit", "SELECT b AS gap FROM nums", "> 9e18", true),
        ("bigint_miss", "SELECT b AS gap FROM nums", "< 9e18", false),
        (
            "bigint_unsigned_hit",
            "SELECT bu AS gap FROM nums",
            "> 1.8e19",
            true,
        ),
        (
            "bigint_unsigned_miss",
            "SELECT bu AS gap FROM nums",
            "< 1.8e19",
            false,
        ),
        (
            "int_unsigned_hit",
            "SELECT iu AS gap FROM nums",
            "== 4294967295",
            true,
        ),
        (
            "decimal_hit",
            "SELECT d AS gap FROM nums",
            "> 100.004",
            true,
        ),
        (
            "decimal_miss",
            "SELECT d AS gap FROM nums",
            "> 100.006",
            false,
        ),
        (
            "decimal_40_digits_hit",
            "SELECT d_big AS gap FROM nums",
            "> 1e39",
            true,
        ),
        (
            "decimal_40_digits_miss",
            "SELECT d_big AS gap FROM nums",
            "> 2e39",
            false,
        ),
        ("double_hit", "SELECT dbl AS gap FROM nums", "<= 0.95", true),
        (
            "double_miss",
            "SELECT dbl AS gap FROM nums",
            "< 0.95",
            false,
        ),
        ("float_hit", "SELECT f AS gap FROM nums", "== 1.5", true),
        ("tinyint1_hit", "SELECT flag AS gap FROM nums", "== 1", true),
        (
            "tinyint1_miss",
            "SELECT flag AS gap FROM nums",
            "!= 1",
            false,
        ),
        ("tinyint_hit", "SELECT ti AS gap FROM nums", "< -100", true),
        (
            "count_hit",
            "SELECT COUNT(*) AS gap FROM nums",
            "== 1",
            true,
        ),
        (
            "sum_is_decimal",
            "SELECT SUM(i) AS gap FROM nums",
            "== 2147483647",
            true,
        ),
        ("literal_decimal", "SELECT 1.5 AS gap", "> 1.4", true),
        (
            "comparison_is_int",
            "SELECT (i > 0) AS gap FROM nums",
            "== 1",
            true,
        ),
    ];
    for (id, sql, threshold, _) in cases {
        metric_check(&env, id, sql, threshold);
    }
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .json();
    let errors: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "error")
        .map(|c| format!("{}: {}", c["id"], c["error"]["message"]))
        .collect();
    assert!(
        errors.is_empty(),
        "checks that could not run:\n{}",
        errors.join("\n")
    );
    for (id, _, _, breach) in cases {
        let doc = check_doc(&report, id);
        assert_eq!(
            doc["status"],
            if breach { "breach" } else { "pass" },
            "{id}: {doc:#}"
        );
    }
    let big = check_doc(&report, "decimal_40_digits_hit")["observations"][0]["metric"]
        .as_f64()
        .unwrap();
    assert!(
        (big / 1.234_567_890_123_456_8e39 - 1.0).abs() < 1e-12,
        "{big}"
    );
}

#[test]
fn text_and_null_metrics_are_errors() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (_db, env) = setup(&admin, "text_and_null_metrics", "");
    metric_check(&env, "text", "SELECT '12' AS gap", "> 1");
    metric_check(&env, "date", "SELECT DATE '2026-01-01' AS gap", "> 1");
    metric_check(&env, "null", "SELECT CAST(NULL AS SIGNED) AS gap", "> 1");
    metric_check(
        &env,
        "empty",
        "SELECT 1 AS gap FROM DUAL WHERE 1 = 0",
        "> 1",
    );
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(3)
        .json();
    for id in ["text", "date"] {
        assert_eq!(
            check_doc(&report, id)["error"]["kind"],
            "result",
            "{id}: {report:#}"
        );
    }
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
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = setup(&admin, "keys_of_every_type", "");
    db.exec(indoc! {"
        CREATE TABLE k (d DATE, s VARCHAR(10), c CHAR(3), bin VARCHAR(10) COLLATE utf8mb4_bin,
                        vb VARBINARY(10), i INT, b BIGINT, n DECIMAL(6, 2), ts DATETIME, gap INT);
        INSERT INTO k VALUES ('2026-01-02', 'abc', 'xy', 'Bin', 'raw', 7, 8000000000, 1.50,
                              '2026-01-02 03:04:05', 5);
    "});
    env.check_with(
        "k",
        &[
            "keys = [\"d\", \"s\", \"c\", \"bin\", \"vb\", \"i\", \"b\", \"n\", \"ts\"]",
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
            "d": "2026-01-02", "s": "abc", "c": "xy", "bin": "Bin", "vb": "raw", "i": "7",
            "b": "8000000000", "n": "1.5", "ts": "2026-01-02T03:04:05"
        })
    );
    let again = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(1)
        .json();
    assert_eq!(&check_doc(&again, "k")["observations"][0]["key"], key);
}

#[test]
fn dml_writes_fail_and_leave_the_table_unchanged() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = setup(&admin, "dml_writes_fail", "max_concurrency = 1");
    db.exec(indoc! {"
        CREATE TABLE t (n INT);
        INSERT INTO t VALUES (1), (2), (3);
        CREATE FUNCTION sneaky() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO t VALUES (7); RETURN 1; END;
    "});
    let writes = [
        ("insert", "INSERT INTO t VALUES (99)"),
        ("update", "UPDATE t SET n = n + 100"),
        ("delete", "DELETE FROM t"),
        ("function", "SELECT sneaky() AS n"),
        ("multi_statement", "COMMIT; DELETE FROM t"),
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
    assert!(msg.contains("READ ONLY transaction"), "{msg}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM t"), 3);
    assert_eq!(db.scalar("SELECT CAST(SUM(n) AS SIGNED) FROM t"), 6);
}

/// See: bug — MariaDB commits the read-only transaction implicitly before any DDL, so a
/// check whose SQL is `TRUNCATE`/`DROP`/`CREATE` runs outside it and changes the warehouse.
#[test]
fn ddl_fails_and_leaves_the_tables_unchanged() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = setup(&admin, "ddl_writes_fail", "max_concurrency = 1");
    db.exec(
        "CREATE TABLE t (n INT); INSERT INTO t VALUES (1), (2), (3); CREATE TABLE victim (n INT);",
    );
    let ddl = [
        ("truncate", "TRUNCATE TABLE t"),
        ("drop", "DROP TABLE victim"),
        ("create", "CREATE TABLE sneaky (a INT)"),
    ];
    for (id, sql) in ddl {
        env.check_with(id, &[], sql);
    }
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .json();
    let tables = db.scalar(&format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}'",
        db.name
    ));
    let rows = db.scalar("SELECT COUNT(*) FROM t");
    assert_eq!(
        (rows, tables),
        (3, 2),
        "the warehouse was changed by a check:\n{report:#}"
    );
    for (id, _) in ddl {
        assert_eq!(
            check_doc(&report, id)["status"],
            "error",
            "{id}: {report:#}"
        );
    }
}

#[test]
fn statement_timeout_interrupts_sleep() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (_db, env) = setup(&admin, "statement_timeout", "statement_timeout = \"1s\"");
    env.check_with("sleepy", &[], "SELECT SLEEP(5) AS s");
    env.check_with("quick", &[], "SELECT 1 FROM DUAL WHERE 1 = 0");
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
fn statement_timeout_interrupts_a_heavy_query() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (_db, env) = setup(
        &admin,
        "statement_timeout_heavy",
        "statement_timeout = \"300ms\"",
    );
    env.check_with(
        "heavy",
        &[],
        "SELECT COUNT(*) AS c FROM seq_1_to_1000000 a, seq_1_to_1000000 b WHERE a.seq + b.seq = 3",
    );
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    let report = out.code(3).json();
    assert_eq!(
        check_doc(&report, "heavy")["error"]["kind"],
        "timeout",
        "{report:#}"
    );
    assert!(
        out.elapsed < Duration::from_secs(4),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn max_rows_caps_the_result() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (_db, env) = setup(&admin, "max_rows", "max_rows = 100\nmax_concurrency = 1");
    env.check_with("a_many", &[], "SELECT seq FROM seq_1_to_1000000");
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
}

#[test]
fn bad_sql_carries_the_server_message() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = setup(&admin, "bad_sql", "");
    env.check_with("broken", &[], "SELECT * FROM no_such_table");
    env.run(["run", "--no-incidents"])
        .code(3)
        .stdout_has(&format!(
            "! ERROR broken  query: Table '{}.no_such_table' doesn't exist",
            db.name
        ));
}

#[test]
fn a_trailing_semicolon_is_fine() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (_db, env) = setup(&admin, "trailing_semicolon", "");
    env.check_with("semi", &[], "SELECT 1 FROM DUAL WHERE 1 = 0;\n-- end");
    env.run(["run", "--no-incidents"]).code(0);
}

#[test]
fn validate_connect_prepares_every_query() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = setup(&admin, "validate_connect", "");
    db.exec("CREATE TABLE t (n INT)");
    env.check_with(
        "good",
        &["severity = \"P1\""],
        "SELECT n FROM t WHERE n < 0",
    );
    env.check_with("also_good", &[], "SELECT COUNT(*) FROM t");
    env.run(["validate", "--connect"])
        .code(0)
        .stdout_has("✓ warehouse  2 queries prepared");

    env.check_with("sub/bad", &["description = \"d\""], "SELECT nope FROM t");
    let out = env.run(["validate", "--connect"]);
    out.code(2)
        .stderr_has("checks/sub/bad.sql:3:1: error: query does not prepare on \"warehouse\": Unknown column 'nope'")
        .stdout_has("✗ warehouse  1 of 3 queries do not prepare");
}

/// Refused connections need no server: port 1 on loopback refuses.
#[test]
fn a_refused_connection_exits_3_without_the_password() {
    let env = TestEnv::with_connection("mysql://root:hunter2@127.0.0.1:1/test", "");
    env.check_with("c", &[], "SELECT 1");
    env.run(["run", "--no-incidents"])
        .code(3)
        .stdout_has(
            "! ERROR c  connection: failed to connect to mysql://root:****@127.0.0.1:1/test",
        )
        .nowhere("hunter2");
    env.run(["run", "--no-incidents", "--format", "json"])
        .code(3)
        .nowhere("hunter2");
    env.run(["validate", "--connect"])
        .code(2)
        .nowhere("hunter2");
}

#[test]
fn a_wrong_password_is_a_connection_error_without_the_password() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let bad = crate::util::with_password(&admin, "wrong-pw-xyzzy");
    let env = TestEnv::with_connection(&bad, "");
    env.check_with("c", &[], "SELECT 1");
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    if out.code == 0 {
        crate::util::skip(
            "mariadb::a_wrong_password_is_a_connection_error_without_the_password",
            "the server accepts any password",
        );
        return;
    }
    let report = out.code(3).json();
    let doc = check_doc(&report, "c");
    assert_eq!(doc["error"]["kind"], "connection", "{doc:#}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Access denied"),
        "{doc:#}"
    );
    out.nowhere("wrong-pw-xyzzy");
}

/// See: bug — connecting has no timeout: a server that accepts the TCP connection but never
/// answers (hung server, load balancer without backend) makes `dqwatch run` hang forever,
/// whatever `statement_timeout` says.
#[test]
fn a_server_that_never_answers_is_an_error_not_a_hang() {
    let (_listener, port) = crate::util::silent_server();
    let url = format!("mysql://root@127.0.0.1:{port}/test");
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
