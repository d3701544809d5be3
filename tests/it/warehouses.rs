//! `dqwatch` against each real warehouse: how values decode, what a check may not do, what
//! stops it, and what an unreachable server looks like. Each scenario is written once and
//! runs on every database it applies to (`warehouses::<scenario>::{postgres, mariadb,
//! sqlite}`, see `db.rs`); what differs between them (type names, SQL spelling, server
//! messages) sits next to the case that needs it.
//!
//! Each database test works in its own schema (PostgreSQL), database (MariaDB) or file
//! (SQLite), dropped at the end. PostgreSQL and MariaDB tests print a `SKIP` line without
//! `DQWATCH_TEST_POSTGRES_URL` / `DQWATCH_TEST_MARIADB_URL`; the connection scenarios need
//! no server and always run.

use crate::db::{Db, Kind, on_databases, on_every_database, on_kinds, on_servers};
use crate::util::{
    PgCluster, TestEnv, check_doc, output, output_within, silent_server, skip, with_password,
};
use std::time::Duration;

on_every_database!(
    "w_",
    numeric_types,
    text_and_null_metrics_are_errors,
    keys_of_every_type_become_stable_strings,
    statement_timeout_cancels_a_slow_query,
    statement_timeout_interrupts_a_heavy_query,
    max_rows_caps_the_result,
    bad_sql_carries_the_server_message,
    a_trailing_semicolon_is_fine,
    validate_connect_prepares_every_query,
);

on_servers!(
    "w_",
    writes_fail_and_leave_the_tables_unchanged,
    a_wrong_password_is_a_connection_error,
);

on_databases!(
    "w_",
    [postgres],
    nan_and_infinity_are_never_a_pass,
    uuid_keys_stay_distinct,
    sslmode_require_runs_the_check_over_tls,
);

on_databases!("w_", [mariadb], tls_required_of_a_plain_server,);

on_kinds!(
    [postgres, mariadb],
    a_refused_connection_exits_3_without_the_password,
    a_password_query_parameter_is_not_printed,
    a_password_from_the_environment_is_not_printed,
    secrets_stay_out_of_debug_logs,
    a_server_that_never_answers_is_an_error_not_a_hang,
);

/// A check judging `sql`'s `gap` column: P1 when `threshold` holds.
fn metric_check(db: &Db, id: &str, sql: &str, threshold: &str) {
    let level = format!("P1 = \"{threshold}\"");
    db.env
        .check_with(id, &["metric = \"gap\"", "[thresholds]", &level], sql);
}

/// `run --no-incidents --format json`.
fn run_json(db: &Db) -> crate::util::Output {
    db.env.run(["run", "--no-incidents", "--format", "json"])
}

/// SQLite has no sleep: counting to two billion stands in for a slow query.
const SQLITE_SLOW: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r \
                           WHERE n < 2000000000) SELECT count(*) AS c FROM r";

// ---------------------------------------------------------------------------------------
// Values.

/// Every numeric type a metric may have decodes to its value: each case judges one column
/// of a one-row table and breaches exactly when the value meets its threshold, including
/// 64-bit extremes, a 40-digit decimal and the types of `COUNT`, `SUM` and `AVG`.
fn numeric_types(db: &Db) {
    // (column, its type, the value)
    let mut columns = vec![
        ("i2", db.pick("int2", "SMALLINT", "INTEGER"), "32767"),
        ("i2_neg", db.pick("int2", "SMALLINT", "INTEGER"), "-32768"),
        ("i4", db.pick("int4", "INT", "INTEGER"), "2147483647"),
        (
            "i8",
            db.pick("int8", "BIGINT", "INTEGER"),
            "9223372036854775807",
        ),
        ("f4", db.pick("float4", "FLOAT", "REAL"), "1.5"),
        ("f8", db.pick("float8", "DOUBLE", "REAL"), "0.95"),
        (
            "n",
            db.pick("numeric", "DECIMAL(65, 30)", "NUMERIC"),
            "100.005",
        ),
        (
            "n_big",
            db.pick("numeric", "DECIMAL(40, 0)", "NUMERIC"),
            "1234567890123456789012345678901234567890",
        ),
        (
            "n_neg",
            db.pick("numeric(12, 3)", "DECIMAL(12, 3)", "NUMERIC"),
            "-0.5",
        ),
    ];
    // (id, the metric, threshold, breach): one check `SELECT <metric> AS gap FROM nums`.
    let mut cases = vec![
        ("smallint_hit", "i2", ">= 32767", true),
        ("smallint_miss", "i2", "> 32767", false),
        ("smallint_negative_hit", "i2_neg", "< 0", true),
        ("int_hit", "i4", "== 2147483647", true),
        ("int_miss_below", "i4", "< 2147483647", false),
        ("int_miss_above", "i4", "> 2147483647", false),
        ("bigint_hit", "i8", "> 9e18", true),
        ("bigint_miss", "i8", "< 9e18", false),
        ("real_hit", "f4", "> 1.4", true),
        ("real_equal_hit", "f4", "== 1.5", true),
        ("real_miss", "f4", "!= 1.5", false),
        ("double_hit", "f8", "<= 0.95", true),
        ("double_miss", "f8", "< 0.95", false),
        ("decimal_hit", "n", "> 100.004", true),
        ("decimal_miss", "n", "> 100.006", false),
        ("decimal_40_digits_hit", "n_big", "> 1e39", true),
        ("decimal_40_digits_miss", "n_big", "> 2e39", false),
        ("decimal_negative_hit", "n_neg", "< -0.4", true),
        ("decimal_negative_miss", "n_neg", "< -0.5", false),
        ("count", "COUNT(*)", "== 1", true),
        ("sum_of_int", "SUM(i4)", "== 2147483647", true),
        ("sum_of_bigint", "SUM(i8)", "> 9e18", true),
        ("avg_of_smallint", "AVG(i2)", "== 32767", true),
        ("literal_decimal", "1.5", "> 1.4", true),
        // PostgreSQL's comparison is a boolean, no metric: cast it. MariaDB and SQLite give
        // 1 or 0.
        (
            "comparison",
            db.pick("(i2 > 0)::int", "(i2 > 0)", "(i2 > 0)"),
            "== 1",
            true,
        ),
    ];
    if db.kind == Kind::Mariadb {
        // MariaDB's own integer types: unsigned (beyond i64), MEDIUMINT, TINYINT, and
        // TINYINT(1), which is its BOOLEAN.
        columns.extend([
            ("bu", "BIGINT UNSIGNED", "18446744073709551615"),
            ("iu", "INT UNSIGNED", "4294967295"),
            ("mi", "MEDIUMINT", "8388607"),
            ("ti", "TINYINT", "-128"),
            ("flag", "TINYINT(1)", "1"),
        ]);
        cases.extend([
            ("bigint_unsigned_hit", "bu", "> 1.8e19", true),
            ("bigint_unsigned_miss", "bu", "< 1.8e19", false),
            ("int_unsigned_hit", "iu", "== 4294967295", true),
            ("mediumint_hit", "mi", ">= 8388607", true),
            ("tinyint_hit", "ti", "< -100", true),
            ("tinyint1_hit", "flag", "== 1", true),
            ("tinyint1_miss", "flag", "!= 1", false),
        ]);
    }
    let definitions: Vec<String> = columns.iter().map(|(c, t, _)| format!("{c} {t}")).collect();
    let values: Vec<&str> = columns.iter().map(|(_, _, v)| *v).collect();
    db.exec(&format!(
        "CREATE TABLE nums ({}); INSERT INTO nums VALUES ({});",
        definitions.join(", "),
        values.join(", ")
    ));
    for (id, metric, threshold, _) in &cases {
        metric_check(
            db,
            id,
            &format!("SELECT {metric} AS gap FROM nums"),
            threshold,
        );
    }
    let out = run_json(db);
    let report = out.json();
    let errors: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "error")
        .map(|c| format!("{}: {}", c["id"], c["error"]["message"]))
        .collect();
    assert!(
        errors.is_empty(),
        "{:?}: checks that could not run:\n{}",
        db.kind,
        errors.join("\n")
    );
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
    for (id, _, _, breach) in &cases {
        let doc = check_doc(&report, id);
        assert_eq!(
            doc["status"],
            if *breach { "breach" } else { "pass" },
            "{:?} {id}: {doc:#}",
            db.kind
        );
    }
    out.code(1);
    let metric = |id: &str| {
        check_doc(&report, id)["observations"][0]["metric"]
            .as_f64()
            .unwrap()
    };
    let big = metric("decimal_40_digits_hit");
    assert!(
        (big / 1.234_567_890_123_456_8e39 - 1.0).abs() < 1e-12,
        "{:?}: {big}",
        db.kind
    );
    let n = metric("decimal_hit");
    assert!((n - 100.005).abs() < 1e-9, "{:?}: {n}", db.kind);
}

/// PostgreSQL's NaN is no number to compare; its infinity breaches or errs, never passes.
fn nan_and_infinity_are_never_a_pass(db: &Db) {
    for (id, sql) in [
        ("numeric_nan", "SELECT 'NaN'::numeric AS gap"),
        ("float8_nan", "SELECT 'NaN'::float8 AS gap"),
        ("float4_nan", "SELECT 'NaN'::float4 AS gap"),
        ("numeric_infinity", "SELECT 'Infinity'::numeric AS gap"),
        ("float8_infinity", "SELECT 'Infinity'::float8 AS gap"),
    ] {
        db.env.check_with(
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
    let report = run_json(db).json();
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

/// A metric that is not a number is a result error (exit 3), naming the text it got; a
/// NULL metric or no row at all is "no data".
fn text_and_null_metrics_are_errors(db: &Db) {
    // (id, SQL, error kind)
    let mut cases = vec![
        (
            "text",
            db.pick(
                "SELECT '12'::text AS gap",
                "SELECT '12' AS gap",
                "SELECT '12' AS gap",
            ),
            "result",
        ),
        (
            "varchar",
            db.pick(
                "SELECT 'x'::varchar(3) AS gap",
                "SELECT CAST('x' AS CHAR(3)) AS gap",
                "SELECT CAST('x' AS VARCHAR(3)) AS gap",
            ),
            "result",
        ),
        (
            "date",
            // SQLite has no date type: a date is text.
            db.pick(
                "SELECT DATE '2026-01-01' AS gap",
                "SELECT DATE '2026-01-01' AS gap",
                "SELECT date('2026-01-01') AS gap",
            ),
            "result",
        ),
        (
            "null",
            db.pick(
                "SELECT NULL::int AS gap",
                "SELECT CAST(NULL AS SIGNED) AS gap",
                "SELECT CAST(NULL AS INTEGER) AS gap",
            ),
            "no_data",
        ),
        (
            "empty",
            db.pick(
                "SELECT 1 AS gap WHERE false",
                "SELECT 1 AS gap FROM DUAL WHERE 1 = 0",
                "SELECT 1 AS gap WHERE 0",
            ),
            "no_data",
        ),
    ];
    if db.kind == Kind::Postgres {
        // Only PostgreSQL has a boolean (MariaDB's and SQLite's `true` is 1) and an interval.
        cases.extend([
            ("boolean", "SELECT true AS gap", "result"),
            ("interval", "SELECT interval '2 hours' AS gap", "result"),
        ]);
    }
    for (id, sql, _) in &cases {
        metric_check(db, id, sql, "> 1");
    }
    let out = run_json(db);
    let report = out.json();
    for (id, _, kind) in &cases {
        assert_eq!(
            check_doc(&report, id)["error"]["kind"],
            *kind,
            "{:?} {id}: {report:#}",
            db.kind
        );
    }
    let text = check_doc(&report, "text")["error"]["message"]
        .as_str()
        .unwrap();
    assert!(text.contains("is text (\"12\")"), "{text}");
    out.code(3);
}

/// A key column of every common type becomes the same string on every run.
fn keys_of_every_type_become_stable_strings(db: &Db) {
    // (column, its type, the value, the key's text)
    let mut columns = vec![
        (
            "d",
            db.pick("date", "DATE", "DATE"),
            "'2026-01-02'",
            "2026-01-02",
        ),
        ("s", db.pick("text", "VARCHAR(10)", "TEXT"), "'abc'", "abc"),
        // PostgreSQL pads a char(n) with blanks; MariaDB strips them; SQLite keeps the text.
        ("c", "CHAR(3)", "'xy'", db.pick("xy ", "xy", "xy")),
        ("v", "VARCHAR(10)", "'vv'", "vv"),
        ("i", db.pick("int4", "INT", "INTEGER"), "7", "7"),
        (
            "b",
            db.pick("int8", "BIGINT", "INTEGER"),
            "8000000000",
            "8000000000",
        ),
        (
            "n",
            db.pick("numeric(6, 2)", "DECIMAL(6, 2)", "NUMERIC"),
            "1.50",
            "1.5",
        ),
        (
            "ts",
            db.pick("timestamp", "DATETIME", "DATETIME"),
            "'2026-01-02 03:04:05'",
            // SQLite stores the text it is given.
            db.pick(
                "2026-01-02T03:04:05",
                "2026-01-02T03:04:05",
                "2026-01-02 03:04:05",
            ),
        ),
    ];
    match db.kind {
        // A time zone is normalised to UTC.
        Kind::Postgres => columns.push((
            "tz",
            "timestamptz",
            "'2026-01-02 03:04:05+02'",
            "2026-01-02T01:04:05Z",
        )),
        // Binary collations and binary strings come back as bytes.
        Kind::Mariadb => columns.extend([
            ("bin", "VARCHAR(10) COLLATE utf8mb4_bin", "'Bin'", "Bin"),
            ("vb", "VARBINARY(10)", "'raw'", "raw"),
        ]),
        Kind::Sqlite => {}
    }
    let definitions: Vec<String> = columns
        .iter()
        .map(|(c, t, _, _)| format!("{c} {t}"))
        .collect();
    let values: Vec<&str> = columns.iter().map(|(_, _, v, _)| *v).collect();
    db.exec(&format!(
        "CREATE TABLE k ({}, gap INT); INSERT INTO k VALUES ({}, 5);",
        definitions.join(", "),
        values.join(", ")
    ));
    let names: Vec<String> = columns.iter().map(|(c, ..)| format!("\"{c}\"")).collect();
    let keys = format!("keys = [{}]", names.join(", "));
    db.env.check_with(
        "k",
        &[&keys, "metric = \"gap\"", "[thresholds]", "P1 = \"> 1\""],
        "SELECT * FROM k",
    );
    let want: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .map(|(c, _, _, key)| ((*c).to_string(), (*key).into()))
        .collect();
    let report = run_json(db).code(1).json();
    let key = &check_doc(&report, "k")["observations"][0]["key"];
    assert_eq!(key, &serde_json::Value::Object(want), "{:?}", db.kind);
    let again = run_json(db).code(1).json();
    assert_eq!(&check_doc(&again, "k")["observations"][0]["key"], key);
}

/// See: bug — a key column of a type the decoder does not read (uuid, inet, …) renders as
/// `<UUID>` for every row, so distinct subjects collapse into one key.
fn uuid_keys_stay_distinct(db: &Db) {
    db.env.check_with(
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
    let report = run_json(db).json();
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

// ---------------------------------------------------------------------------------------
// What a check may not do, and what stops it.

/// Every kind of write a check's SQL might attempt (DML, DDL, a function or sequence that
/// writes, a COMMIT to escape the read-only transaction) is refused, and the warehouse is
/// unchanged. SQLite's own list is in `sqlite.rs`.
///
/// See: bug — MariaDB commits the read-only transaction implicitly before any DDL, so a
/// check whose SQL is `TRUNCATE`/`DROP`/`CREATE` ran outside it and changed the warehouse.
fn writes_fail_and_leave_the_tables_unchanged(db: &Db) {
    db.connection_options("max_concurrency = 1");
    db.exec(&format!(
        "CREATE TABLE t (n INT);
         INSERT INTO t VALUES (1), (2), (3);
         CREATE TABLE victim (n INT);
         CREATE SEQUENCE s;
         {}",
        db.pick(
            "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'INSERT INTO t VALUES (7) RETURNING n';",
            "CREATE FUNCTION sneaky() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO t VALUES (7); RETURN 1; END;",
            "",
        )
    ));
    let mut writes = vec![
        ("insert", "INSERT INTO t VALUES (99)"),
        ("insert_returning", "INSERT INTO t VALUES (99) RETURNING n"),
        ("update", "UPDATE t SET n = n + 100"),
        ("delete", "DELETE FROM t"),
        ("function", "SELECT sneaky() AS n"),
        (
            "nextval",
            db.pick("SELECT nextval('s') AS n", "SELECT NEXTVAL(s) AS n", ""),
        ),
        ("truncate", "TRUNCATE TABLE t"),
        ("drop", "DROP TABLE t"),
        ("drop_other", "DROP TABLE victim"),
        ("create", "CREATE TABLE sneaky_table (a INT)"),
        ("create_table_as", "CREATE TABLE copied AS SELECT * FROM t"),
        ("commit_then_delete", "COMMIT; DELETE FROM t"),
    ];
    if db.kind == Kind::Postgres {
        // Writes only PostgreSQL can spell.
        writes.extend([
            ("update_returning", "UPDATE t SET n = n + 100 RETURNING n"),
            (
                "modifying_cte",
                "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) AS n FROM d",
            ),
            ("select_into", "SELECT * INTO copied FROM t"),
        ]);
    }
    for (id, sql) in &writes {
        db.env.check_with(id, &[], sql);
    }
    let out = run_json(db);
    let report = out.json();
    let tables = db.int(&format!(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = '{}' AND table_type = 'BASE TABLE'",
        db.schema()
    ));
    assert_eq!(
        (db.count("t"), tables),
        (3, 2),
        "{:?}: the warehouse was changed by a check:\n{report:#}",
        db.kind
    );
    assert_eq!(db.int("SELECT SUM(n) FROM t"), 6);
    assert_eq!(db.count("victim"), 0);
    assert_eq!(
        db.int(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_name IN ('sneaky_table', 'copied')"
        ),
        0,
        "a check created a table in some schema"
    );
    // The sequence did not move.
    assert_eq!(
        db.int(db.pick(
            "SELECT last_value FROM s",
            "SELECT next_not_cached_value FROM s",
            "",
        )),
        1
    );
    for (id, _) in &writes {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], "error", "{id} was not refused: {doc:#}");
    }
    // A write spelled as a write is refused before it runs; one hidden in a function reaches
    // the server and meets its read-only guard.
    let refused = check_doc(&report, "insert")["error"]["message"]
        .as_str()
        .unwrap();
    assert!(refused.contains("refused"), "{refused}");
    let msg = check_doc(&report, "function")["error"]["message"]
        .as_str()
        .unwrap();
    match db.kind {
        Kind::Postgres => assert!(
            msg.contains("read-only transaction") && msg.contains("SQLSTATE 25006"),
            "{msg}"
        ),
        Kind::Mariadb => assert!(msg.contains("READ ONLY transaction"), "{msg}"),
        Kind::Sqlite => unreachable!("SQLite's writes are in sqlite.rs"),
    }
    out.code(3);
}

/// `statement_timeout` cancels a query that takes too long: a timeout error (exit 3) naming
/// the limit and the connection, while a quick check still passes.
fn statement_timeout_cancels_a_slow_query(db: &Db) {
    db.connection_options("statement_timeout = \"1s\"");
    db.env.check_with(
        "sleepy",
        &[],
        db.pick("SELECT pg_sleep(5)", "SELECT SLEEP(5) AS s", SQLITE_SLOW),
    );
    db.env.check_with(
        "quick",
        &[],
        db.pick(
            "SELECT 1 WHERE false",
            "SELECT 1 FROM DUAL WHERE 1 = 0",
            "SELECT 1 WHERE 0",
        ),
    );
    let out = run_json(db);
    let report = out.code(3).json();
    let doc = check_doc(&report, "sleepy");
    assert_eq!(doc["error"]["kind"], "timeout", "{doc:#}");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains("timed out after 1s"), "{doc:#}");
    assert!(msg.contains("\"warehouse\""), "{doc:#}");
    assert_eq!(check_doc(&report, "quick")["status"], "pass");
    assert!(
        out.elapsed < Duration::from_secs(4),
        "took {:?}",
        out.elapsed
    );
}

/// A query that computes (rather than sleeps) for too long is interrupted too, below a
/// second.
fn statement_timeout_interrupts_a_heavy_query(db: &Db) {
    db.connection_options("statement_timeout = \"300ms\"");
    db.env.check_with(
        "heavy",
        &[],
        db.pick(
            "SELECT count(*) AS c FROM generate_series(1, 1000000) a, \
             generate_series(1, 1000000) b WHERE a + b = 3",
            "SELECT COUNT(*) AS c FROM seq_1_to_1000000 a, seq_1_to_1000000 b \
             WHERE a.seq + b.seq = 3",
            SQLITE_SLOW,
        ),
    );
    let out = run_json(db);
    let report = out.code(3).json();
    let doc = check_doc(&report, "heavy");
    assert_eq!(doc["error"]["kind"], "timeout", "{report:#}");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains("timed out after 300ms"), "{doc:#}");
    assert!(
        out.elapsed < Duration::from_secs(4),
        "took {:?}",
        out.elapsed
    );
}

/// `max_rows` stops reading a big result, says so, and the connection serves the next
/// check cleanly.
fn max_rows_caps_the_result(db: &Db) {
    db.connection_options("max_rows = 100\nmax_concurrency = 1");
    db.env.check_with(
        "a_many",
        &[],
        db.pick(
            "SELECT g FROM generate_series(1, 1000000) AS g",
            "SELECT seq FROM seq_1_to_1000000",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000) \
             SELECT n FROM r",
        ),
    );
    db.env.check_with(
        "b_after",
        &["metric = \"gap\"", "[thresholds]", "P1 = \"> 1\""],
        "SELECT 0 AS gap",
    );
    let out = db.env.run([
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
    db.env
        .run(["run", "--no-incidents", "--select", "a_many"])
        .code(0)
        .stdout_has("(capped at 100 rows)");
}

/// SQL the database refuses is a query error carrying the database's own message.
fn bad_sql_carries_the_server_message(db: &Db) {
    db.env
        .check_with("broken", &[], "SELECT * FROM no_such_table");
    let message = match db.kind {
        Kind::Postgres => "relation \"no_such_table\" does not exist (SQLSTATE 42P01)".to_string(),
        Kind::Mariadb => format!("Table '{}.no_such_table' doesn't exist", db.schema()),
        Kind::Sqlite => "no such table: no_such_table".to_string(),
    };
    db.env
        .run(["run", "--no-incidents"])
        .code(3)
        .stdout_has(&format!("! ERROR broken  query: {message}"));
}

/// A query may end with a semicolon and a comment.
fn a_trailing_semicolon_is_fine(db: &Db) {
    let sql = db.pick(
        "SELECT 1 WHERE false;\n-- end",
        "SELECT 1 FROM DUAL WHERE 1 = 0;\n-- end",
        "SELECT 1 WHERE 0;\n-- end",
    );
    db.env.check_with("semi", &[], sql);
    db.env
        .run(["run", "--no-incidents"])
        .code(0)
        .stdout_has("✓ pass  semi");
}

/// `validate --connect` prepares every query on its warehouse and reports one that does
/// not prepare at its file and line, with the database's message; plain `validate` does not
/// connect.
fn validate_connect_prepares_every_query(db: &Db) {
    db.exec("CREATE TABLE t (n INT)");
    db.env.check_with(
        "good",
        &["severity = \"P1\""],
        "SELECT n FROM t WHERE n < 0",
    );
    db.env
        .check_with("also_good", &[], "SELECT COUNT(*) FROM t");
    db.env
        .run(["validate", "--connect"])
        .code(0)
        .stdout_has("✓ warehouse  2 queries prepared");

    db.env.check_with(
        "sub/bad",
        &["description = \"d\"", "tags = [\"x\"]"],
        "SELECT nope FROM t",
    );
    let message = db.pick(
        "column \"nope\" does not exist",
        "Unknown column 'nope'",
        "no such column: nope",
    );
    db.env
        .run(["validate", "--connect"])
        .code(2)
        .stderr_has(&format!(
            "checks/sub/bad.sql:4:1: error: query does not prepare on \"warehouse\": {message}"
        ))
        .stdout_has("✗ warehouse  1 of 3 checks do not prepare or lack a judged column");
    // Without --connect nothing talks to the database.
    db.env.run(["validate"]).code(0);
}

// ---------------------------------------------------------------------------------------
// Connections that fail, and the secrets in their URLs.

/// The scheme and user of a URL for `kind`'s server.
fn scheme_and_user(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Postgres => ("postgres", "postgres"),
        Kind::Mariadb => ("mysql", "root"),
        Kind::Sqlite => unreachable!("SQLite has no server"),
    }
}

/// A refused connection (port 1 on loopback: no server needed) is a connection error
/// (exit 3) whose URL hides the password, in every report format and in `validate`.
fn a_refused_connection_exits_3_without_the_password(kind: Kind) {
    let (scheme, user) = scheme_and_user(kind);
    let env = TestEnv::with_connection(&format!("{scheme}://{user}:hunter2@127.0.0.1:1/test"), "");
    env.check_with("c", &[], "SELECT 1");
    let masked = format!("{scheme}://{user}:****@127.0.0.1:1/test");
    env.run(["run", "--no-incidents"])
        .code(3)
        .stdout_has(&format!(
            "! ERROR c  connection: failed to connect to {masked}"
        ))
        .nowhere("hunter2");
    for format in ["json", "junit", "github"] {
        env.run(["run", "--no-incidents", "--format", format])
            .code(3)
            .nowhere("hunter2");
    }
    env.run(["validate", "--connect"])
        .code(2)
        .stderr_has(&masked)
        .nowhere("hunter2");
}

/// A password given as a query parameter is masked too.
fn a_password_query_parameter_is_not_printed(kind: Kind) {
    let (scheme, user) = scheme_and_user(kind);
    let env = TestEnv::with_connection(
        &format!("{scheme}://{user}@127.0.0.1:1/test?password=hunter2"),
        "",
    );
    env.check_with("c", &[], "SELECT 1");
    env.run(["run", "--no-incidents"])
        .code(3)
        .stdout_has("password=****")
        .nowhere("hunter2");
    env.run(["validate", "--connect"])
        .code(2)
        .nowhere("hunter2");
}

/// A password interpolated from the environment (`${VAR}`, percent-encoded) is masked.
fn a_password_from_the_environment_is_not_printed(kind: Kind) {
    let (scheme, user) = scheme_and_user(kind);
    let env = TestEnv::with_connection(
        &format!("{scheme}://{user}:${{DQWATCH_IT_PASSWORD}}@127.0.0.1:1/test"),
        "",
    );
    env.check_with("c", &[], "SELECT 1");
    let mut cmd = env.command();
    cmd.env("DQWATCH_IT_PASSWORD", "s3cr%40t").args([
        "--config",
        "dqwatch.toml",
        "run",
        "--format",
        "json",
    ]);
    output(&mut cmd)
        .code(3)
        .nowhere("s3cr")
        .stdout_has(&format!("{scheme}://{user}:****@127.0.0.1:1/test"));
}

/// Trace-level logs (text and JSON) of `run` and `validate --connect` never show the
/// password.
fn secrets_stay_out_of_debug_logs(kind: Kind) {
    let (scheme, user) = scheme_and_user(kind);
    let tls_off = kind.pick("sslmode=disable", "ssl-mode=disabled", "");
    let env = TestEnv::with_connection(
        &format!("{scheme}://{user}:hunter2@127.0.0.1:1/test?{tls_off}"),
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

/// A password the server refuses is a connection error that does not print it.
fn a_wrong_password_is_a_connection_error(db: &Db) {
    let bad = with_password(&db.url, "wrong-pw-xyzzy");
    let env = TestEnv::with_connection(&bad, "");
    env.check_with("c", &[], "SELECT 1");
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    if out.code == 0 {
        // Trust authentication accepts any password: nothing to test here.
        let kind = db.pick("postgres", "mariadb", "sqlite");
        skip(
            &format!("warehouses::a_wrong_password_is_a_connection_error::{kind}"),
            "the server accepts any password (trust authentication)",
        );
        return;
    }
    let report = out.code(3).json();
    let doc = check_doc(&report, "c");
    assert_eq!(doc["error"]["kind"], "connection", "{doc:#}");
    if db.kind == Kind::Mariadb {
        let msg = doc["error"]["message"].as_str().unwrap();
        assert!(msg.contains("Access denied"), "{doc:#}");
    }
    out.nowhere("wrong-pw-xyzzy");
}

/// See: bug — connecting had no timeout: a server that accepts the TCP connection but never
/// answers (hung server, load balancer without backend) made `dqwatch run` hang forever,
/// whatever `statement_timeout` says.
fn a_server_that_never_answers_is_an_error_not_a_hang(kind: Kind) {
    let (scheme, user) = scheme_and_user(kind);
    let (_listener, port) = silent_server();
    let url = format!("{scheme}://{user}@127.0.0.1:{port}/test");
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
    match output_within(&mut cmd, Duration::from_secs(8)) {
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

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// With `sslmode=require` the connection goes through dqwatch's `TCP_NODELAY` relay
/// (src/warehouse/relay.rs); the check runs, on a TLS connection (the test server has
/// `ssl = on`).
fn sslmode_require_runs_the_check_over_tls(db: &Db) {
    let env = TestEnv::with_connection(&with_param(&db.url, "sslmode=require"), "");
    env.check_with(
        "tls",
        &["metric = \"gap\"", "[thresholds]", "P1 = \"< 1\""],
        "SELECT CASE WHEN ssl THEN 1 ELSE 0 END AS gap FROM pg_stat_ssl \
         WHERE pid = pg_backend_pid()",
    );
    let report = env
        .run(["run", "--no-incidents", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(check_doc(&report, "tls")["status"], "pass", "{report:#}");
}

/// TLS required of a server without it is that check's connection error saying so; the
/// default (TLS if the server has it) runs the check.
fn tls_required_of_a_plain_server(db: &Db) {
    assert_tls_refused(&db.url, "ssl-mode=REQUIRED", "mariadb");
}

/// The same against a PostgreSQL cluster of the test's own (initdb leaves `ssl` off).
#[test]
fn postgres_without_tls_refuses_sslmode_require() {
    let Some(pg) = PgCluster::start("warehouses::postgres_without_tls_refuses_sslmode_require")
    else {
        return;
    };
    assert_tls_refused(&pg.url(), "sslmode=require", "postgres");
}

fn assert_tls_refused(url: &str, require: &str, kind: &str) {
    let env = TestEnv::with_connection(&with_param(url, require), "");
    env.check_with("c", &[], "SELECT 1 AS one");
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    if out.code == 0 {
        skip(
            &format!("warehouses::tls_required_of_a_plain_server::{kind}"),
            "the server has TLS",
        );
        return;
    }
    let report = out.code(3).json();
    let doc = check_doc(&report, "c");
    assert_eq!(doc["error"]["kind"], "connection", "{doc:#}");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains("server does not support TLS"), "{doc:#}");
    let plain = TestEnv::with_connection(url, "");
    plain.check_with("c", &[], "SELECT 1 AS one");
    plain.run(["run", "--no-incidents"]).code(0);
}
