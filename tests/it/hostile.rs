//! Checks written to escape, on every database: README's Safety promises tried the way an
//! adversarial check author would. A check cannot write (directly, through several
//! statements, or by changing its session for the next check on the same connection), and
//! its timeout is the database's. Each test asserts that the data is intact AND that the
//! hostile check is reported as an error (exit 3), never as a pass. PostgreSQL and MariaDB
//! tests need `DQWATCH_TEST_POSTGRES_URL` / `DQWATCH_TEST_MARIADB_URL`; SQLite always runs.

use crate::require_env;
use crate::util::{MyDatabase, Output, PgSchema, TestEnv, check_doc, sqlite_scalar, unique_name};
use std::time::Duration;

/// Runs `dqwatch run --no-incidents --format json`, killed if it takes over a minute.
fn run_json(env: &TestEnv) -> (Output, serde_json::Value) {
    let mut cmd = env.command();
    cmd.args([
        "--config",
        "dqwatch.toml",
        "run",
        "--no-incidents",
        "--format",
        "json",
    ]);
    let out = crate::util::output_within(&mut cmd, Duration::from_secs(60))
        .unwrap_or_else(|out| panic!("dqwatch run hung: {out:?}"));
    let report = out.json();
    (out, report)
}

/// Asserts that each check of `ids` is an error, never a pass or a breach.
#[track_caller]
fn assert_errors(report: &serde_json::Value, ids: &[&str]) {
    for id in ids {
        let doc = check_doc(report, id);
        assert_eq!(doc["status"], "error", "{id} was not refused: {doc:#}");
    }
}

/// A check judging `sql`'s `s` column: it passes when the query completes, whatever it
/// returns (`s` is 0 or 1). Used for a query that must time out.
fn completes_check(env: &TestEnv, id: &str, sql: &str) {
    env.check_with(id, &["metric = \"s\"", "[thresholds]", "P1 = \"> 5\""], sql);
}

/// `url` with `user` as its user name and no password.
fn with_user(url: &str, user: &str) -> String {
    let auth_start = url.find("://").map_or(0, |i| i + 3);
    let auth_end = url[auth_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| auth_start + i);
    let host = url[auth_start..auth_end]
        .rsplit_once('@')
        .map_or(&url[auth_start..auth_end], |(_, h)| h);
    format!("{}{user}@{host}{}", &url[..auth_start], &url[auth_end..])
}

// --- MariaDB ---------------------------------------------------------------------------

fn my_setup(admin: &str, test: &str, extra: &str) -> (MyDatabase, TestEnv) {
    let db = MyDatabase::new(admin, test);
    let env = TestEnv::with_connection(&db.url, extra);
    (db, env)
}

/// (rows in t, sum of t, tables in the database)
fn my_state(db: &MyDatabase) -> (i64, i64, i64) {
    (
        db.scalar("SELECT COUNT(*) FROM t"),
        db.scalar("SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM t"),
        db.scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}'",
            db.name
        )),
    )
}

/// See: issues/8 item 1
#[test]
fn mariadb_a_check_cannot_switch_its_connection_back_to_read_write() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = my_setup(&admin, "read_write_switch", "max_concurrency = 1");
    db.exec(
        "CREATE TABLE t (n INT); INSERT INTO t VALUES (1), (2), (3); CREATE TABLE victim (n INT);",
    );
    // The checks run in this order on the one connection: each switch before each write.
    let hostile = [
        ("a1_set_transaction", "SET SESSION TRANSACTION READ WRITE"),
        ("a2_set_variable", "SET SESSION tx_read_only = 0"),
        ("a3_set_autocommit", "SET autocommit = 0"),
        ("b1_truncate", "TRUNCATE TABLE t"),
        ("b2_drop", "DROP TABLE victim"),
        ("b3_delete", "DELETE FROM t"),
        ("b4_insert", "INSERT INTO t VALUES (9)"),
        ("b5_create", "CREATE TABLE sneaky (a INT)"),
    ];
    for (id, sql) in hostile {
        env.check_with(id, &[], sql);
    }
    let (out, report) = run_json(&env);
    assert_eq!(
        my_state(&db),
        (3, 6, 2),
        "the warehouse was changed:\n{report:#}"
    );
    let ids: Vec<&str> = hostile.iter().map(|(id, _)| *id).collect();
    assert_errors(&report, &ids);
    out.code(3);
}

/// See: issues/8 item 1
#[test]
fn mariadb_writes_in_every_form_are_errors() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = my_setup(&admin, "every_write", "max_concurrency = 1");
    db.exec(indoc::indoc! {"
        CREATE TABLE t (n INT);
        INSERT INTO t VALUES (1), (2), (3);
        CREATE PROCEDURE wipe() MODIFIES SQL DATA DELETE FROM t;
        CREATE FUNCTION escape() RETURNS INT MODIFIES SQL DATA
        BEGIN SET SESSION TRANSACTION READ WRITE; INSERT INTO t VALUES (7); RETURN 1; END;
    "});
    let hostile = [
        ("replace", "REPLACE INTO t VALUES (9)"),
        ("update", "UPDATE t SET n = n + 100"),
        ("delete_returning", "DELETE FROM t RETURNING n"),
        ("alter", "ALTER TABLE t ADD COLUMN m INT"),
        ("rename", "RENAME TABLE t TO t2"),
        ("multi_statement", "SELECT 1; DELETE FROM t"),
        ("commit_then_delete", "COMMIT; DELETE FROM t"),
        (
            "statement_read_write",
            "SET STATEMENT tx_read_only = 0 FOR DELETE FROM t RETURNING n",
        ),
        (
            "executable_comment",
            "/*!SET STATEMENT tx_read_only = 0 FOR*/ DELETE FROM t RETURNING n",
        ),
        (
            "statement_optimize",
            "SET STATEMENT tx_read_only = 0 FOR OPTIMIZE TABLE t",
        ),
        ("call", "CALL wipe()"),
        ("lock", "LOCK TABLES t WRITE"),
        ("handler", "HANDLER t OPEN"),
        ("into_variable", "SELECT n INTO @v FROM t LIMIT 1"),
        // A query whose function switches to read-write and writes, in one statement.
        ("function_switch_then_write", "SELECT escape() AS n"),
    ];
    for (id, sql) in hostile {
        env.check_with(id, &[], sql);
    }
    let (out, report) = run_json(&env);
    assert_eq!(
        my_state(&db),
        (3, 6, 1),
        "the warehouse was changed:\n{report:#}"
    );
    let ids: Vec<&str> = hostile.iter().map(|(id, _)| *id).collect();
    assert_errors(&report, &ids);
    out.code(3);
}

/// See: issues/8 item 1
#[test]
fn mariadb_select_into_outfile_is_refused_before_it_runs() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = my_setup(&admin, "into_outfile", "");
    db.exec("CREATE TABLE t (n INT); INSERT INTO t VALUES (1), (2), (3);");
    let outfile = format!("/tmp/{}_outfile.txt", unique_name("into_outfile"));
    let dumpfile = format!("/tmp/{}_dumpfile.txt", unique_name("into_outfile"));
    env.check_with(
        "outfile",
        &[],
        &format!("SELECT n FROM t INTO OUTFILE '{outfile}'"),
    );
    env.check_with(
        "dumpfile",
        &[],
        &format!("SELECT n FROM t LIMIT 1 INTO DUMPFILE '{dumpfile}'"),
    );
    let (out, report) = run_json(&env);
    for path in [&outfile, &dumpfile] {
        // LOAD_FILE reads the file where the server would have written it.
        let written = db.scalar(&format!("SELECT LOAD_FILE('{path}') IS NOT NULL"));
        // The server is usually this machine: do not leave the file behind.
        let _ = std::fs::remove_file(path);
        assert_eq!(written, 0, "{path} was written by a check:\n{report:#}");
    }
    assert_errors(&report, &["outfile", "dumpfile"]);
    out.code(3);
}

/// Threads of the server whose query text contains `marker` (other than the asking one).
fn my_threads_running(db: &MyDatabase, marker: &str) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
    ))
}

/// See: issues/8 item 2
#[test]
fn mariadb_a_check_cannot_outlive_its_timeout() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = my_setup(&admin, "outlive_timeout", "statement_timeout = \"2s\"");
    let marker = unique_name("outlive_marker");
    env.check_with(
        "lifted",
        &[],
        &format!("SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(100) AS {marker}"),
    );
    env.check_with(
        "nested",
        &[],
        &format!(
            "SET STATEMENT max_statement_time = 0 FOR SET STATEMENT max_statement_time = 0 \
             FOR SELECT SLEEP(100) AS {marker}_2"
        ),
    );
    let (out, report) = run_json(&env);
    let running = my_threads_running(&db, &marker);
    // Do not leave a sleeper behind for the other tests.
    for _ in 0..running {
        let id = db.scalar(&format!(
            "SELECT COALESCE(MIN(ID), 0) FROM information_schema.PROCESSLIST \
             WHERE INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
        ));
        if id > 0 {
            db.exec(&format!("KILL {id}"));
        }
    }
    assert_eq!(
        running, 0,
        "the check still runs on the server:\n{report:#}"
    );
    assert_errors(&report, &["lifted", "nested"]);
    out.code(3);
}

/// See: issues/8 item 2
#[test]
fn mariadb_a_session_setting_never_reaches_the_next_check() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = my_setup(
        &admin,
        "session_setting",
        "statement_timeout = \"1s\"\nmax_concurrency = 1",
    );
    db.exec(indoc::indoc! {"
        CREATE FUNCTION lift() RETURNS INT BEGIN SET SESSION max_statement_time = 0; RETURN 1; END;
    "});
    env.check_with("a1_set", &[], "SET SESSION max_statement_time = 0");
    env.check_with(
        "a2_set_global_name",
        &[],
        "SET @@session.max_statement_time = 0",
    );
    // A query may call a function that changes the session: that change must not outlive
    // the query either (the query itself passes: it returns no rows).
    env.check_with(
        "a3_function",
        &[],
        "SELECT 1 AS n FROM DUAL WHERE lift() = 0",
    );
    completes_check(&env, "b_sleep", "SELECT SLEEP(3) AS s");
    let (out, report) = run_json(&env);
    assert_errors(&report, &["a1_set", "a2_set_global_name"]);
    assert_eq!(
        check_doc(&report, "a3_function")["status"],
        "pass",
        "{report:#}"
    );
    let sleep = check_doc(&report, "b_sleep");
    assert_eq!(
        sleep["error"]["kind"], "timeout",
        "the limit was lifted: {sleep:#}"
    );
    out.code(3);
}

// --- PostgreSQL ------------------------------------------------------------------------

fn pg_setup(admin: &str, test: &str, extra: &str) -> (PgSchema, TestEnv) {
    let schema = PgSchema::new(admin, test);
    let env = TestEnv::with_connection(&schema.url, extra);
    (schema, env)
}

/// See: issues/8 item 1
#[test]
fn postgres_a_set_never_reaches_the_next_check() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (schema, env) = pg_setup(
        &admin,
        "set_next_check",
        "statement_timeout = \"1s\"\nmax_concurrency = 1",
    );
    schema.exec(indoc::indoc! {"
        CREATE TABLE t (n int);
        INSERT INTO t VALUES (1), (2), (3);
        CREATE FUNCTION escape() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN SET TRANSACTION READ WRITE; INSERT INTO t VALUES (7); RETURN 1; END $$;
    "});
    env.check_with("a1_set_timeout", &[], "SET statement_timeout = 0");
    env.check_with(
        "a2_read_write",
        &[],
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    );
    env.check_with("a3_commit", &[], "COMMIT");
    env.check_with("a4_reset", &[], "RESET ALL");
    // A query may change the session through a function: the rollback after it undoes that.
    env.check_with(
        "a5_set_config",
        &[],
        "SELECT 1 AS n WHERE set_config('statement_timeout', '0', false) IS NULL",
    );
    completes_check(&env, "b_sleep", "SELECT 0 AS s FROM pg_sleep(3)");
    env.check_with("c_delete", &[], "DELETE FROM t");
    env.check_with("c_truncate", &[], "TRUNCATE t");
    env.check_with("c_function_switch_then_write", &[], "SELECT escape() AS n");
    let (out, report) = run_json(&env);
    assert_eq!(schema.scalar("SELECT count(*) FROM t"), 3);
    assert_errors(
        &report,
        &[
            "a1_set_timeout",
            "a2_read_write",
            "a3_commit",
            "a4_reset",
            "c_delete",
            "c_truncate",
            "c_function_switch_then_write",
        ],
    );
    let sleep = check_doc(&report, "b_sleep");
    assert_eq!(
        sleep["error"]["kind"], "timeout",
        "the limit was lifted: {sleep:#}"
    );
    out.code(3);
}

/// See: issues/8 item 15
#[test]
fn postgres_copy_to_program_is_refused_before_it_runs() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (_schema, env) = pg_setup(&admin, "copy_program", "");
    let marker = format!("/tmp/{}", unique_name("copy_program"));
    env.check_with(
        "copy",
        &[],
        &format!("COPY (SELECT 1) TO PROGRAM 'touch {marker}'"),
    );
    env.check_with(
        "copy_after_comment",
        &[],
        &format!("/* SELECT */ COPY (SELECT 1) TO PROGRAM 'touch {marker}'"),
    );
    let (out, report) = run_json(&env);
    let ran = std::path::Path::new(&marker).exists();
    let _ = std::fs::remove_file(&marker);
    assert!(!ran, "the check ran a program on the server:\n{report:#}");
    assert_errors(&report, &["copy", "copy_after_comment"]);
    out.code(3);
}

// --- SQLite ----------------------------------------------------------------------------

/// See: issues/8 item 3
#[test]
fn sqlite_a_check_is_one_statement_and_query_only_stays_on() {
    let env = TestEnv::sqlite(
        "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);",
        "max_concurrency = 1",
    );
    let dir = env.path().display().to_string();
    let hostile = [
        (
            "a_pragma_then_vacuum",
            format!("PRAGMA query_only = 0; VACUUM INTO '{dir}/copy1.db'"),
        ),
        (
            "b_select_then_pragma_then_vacuum",
            format!("SELECT 1; PRAGMA query_only = 0; VACUUM INTO '{dir}/copy2.db'"),
        ),
        // SQLite ends `$a('x)` at the ")": the quote starts no string.
        (
            "c_tcl_parameter",
            format!("SELECT $a('x); PRAGMA query_only = 0; VACUUM INTO '{dir}/copy3.db'; --')"),
        ),
        ("d1_pragma", "PRAGMA query_only = 0".to_string()),
        ("d2_vacuum", format!("VACUUM INTO '{dir}/copy4.db'")),
        ("e_attach", format!("ATTACH DATABASE '{dir}/new.db' AS x")),
        ("f_begin", "BEGIN".to_string()),
        ("g_delete", "DELETE FROM t".to_string()),
        ("g_drop", "DROP TABLE t".to_string()),
    ];
    for (id, sql) in &hostile {
        env.check_with(id, &[], sql);
    }
    let (out, report) = run_json(&env);
    for file in ["copy1.db", "copy2.db", "copy3.db", "copy4.db", "new.db"] {
        assert!(
            !env.path().join(file).exists(),
            "a check wrote {file}:\n{report:#}"
        );
    }
    let db = env.path().join("warehouse.db");
    assert_eq!(sqlite_scalar(&db, "SELECT count(*) FROM t"), 3);
    let ids: Vec<&str> = hostile.iter().map(|(id, _)| *id).collect();
    assert_errors(&report, &ids);
    out.code(3);
}

/// See: issues/8 item 3
#[test]
fn sqlite_a_second_statement_is_refused_with_its_line() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER);", "");
    env.check_with("two", &[], "SELECT n FROM t;\nDELETE FROM t");
    env.check_with("semi", &[], "SELECT n FROM t;\n-- end\n;");
    env.run(["run", "--no-incidents"])
        .code(3)
        .stdout_has("refused: a check is one statement, and more follows the \";\" on line");
    let (_, report) = run_json(&env);
    assert_eq!(check_doc(&report, "semi")["status"], "pass", "{report:#}");
}

// --- validate --connect: the role's privileges (item 15) -------------------------------

const PRIVILEGE_WARNING: &str = "warning: connection \"warehouse\" logs in as a role that";

/// A PostgreSQL role that lives as long as the value.
struct PgRole {
    admin: String,
    name: String,
}

impl Drop for PgRole {
    fn drop(&mut self) {
        let sql = format!("DROP OWNED BY {0}; DROP ROLE IF EXISTS {0}", self.name);
        let admin = self.admin.clone();
        let _ = std::thread::spawn(move || {
            crate::util::block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

/// See: issues/8 item 15
#[test]
fn postgres_validate_connect_warns_about_a_superuser_not_a_select_only_role() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let (schema, env) = pg_setup(&admin, "privilege_warning", "");
    schema.exec("CREATE TABLE t (n int); INSERT INTO t VALUES (1);");
    env.check_with("c", &[], "SELECT n FROM t WHERE n < 0");
    env.run(["validate", "--connect"])
        .code(0)
        .stderr_has(&format!("{PRIVILEGE_WARNING} is a superuser"));

    // README's least-privilege role, line for line.
    let role = PgRole {
        admin,
        name: unique_name("reader"),
    };
    schema.exec(&format!(
        "CREATE ROLE {r} LOGIN; \
         DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO {r}', current_database()); END $$; \
         GRANT USAGE ON SCHEMA {s} TO {r}; \
         GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}; \
         ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {r}; \
         ALTER ROLE {r} SET default_transaction_read_only = on;",
        r = role.name,
        s = schema.name
    ));
    let reader = TestEnv::with_connection(&with_user(&schema.url, &role.name), "");
    reader.check_with("c", &[], "SELECT n FROM t WHERE n < 0");
    let out = reader.run(["validate", "--connect"]);
    out.code(0).stdout_has("✓ warehouse");
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    reader.run(["run", "--no-incidents"]).code(0);

    // The same role, able to write one table: warned.
    schema.exec(&format!("GRANT INSERT ON t TO {}", role.name));
    reader
        .run(["validate", "--connect"])
        .code(0)
        .stderr_has(&format!(
            "{PRIVILEGE_WARNING} can write to tables ({}.t)",
            schema.name
        ));
}

/// A MariaDB account that lives as long as the value.
struct MyUser {
    admin: String,
    name: String,
}

impl Drop for MyUser {
    fn drop(&mut self) {
        let sql = format!(
            "DROP USER IF EXISTS '{0}'@'%', '{0}'@'localhost'",
            self.name
        );
        let admin = self.admin.clone();
        let _ = std::thread::spawn(move || {
            crate::util::block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

/// See: issues/8 item 15
#[test]
fn mariadb_validate_connect_warns_about_root_not_a_select_only_user() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let (db, env) = my_setup(&admin, "privilege_warning", "");
    db.exec("CREATE TABLE t (n INT); INSERT INTO t VALUES (1);");
    env.check_with("c", &[], "SELECT n FROM t WHERE n < 0");
    env.run(["validate", "--connect"])
        .code(0)
        .stderr_has(&format!("{PRIVILEGE_WARNING} is a superuser (SUPER"));

    // README's least-privilege account, line for line (for both host patterns, so that a
    // loopback connection finds it whichever the server matches).
    let user = MyUser {
        admin,
        name: unique_name("reader"),
    };
    db.exec(&format!(
        "CREATE USER '{u}'@'%'; GRANT SELECT ON {d}.* TO '{u}'@'%'; \
         CREATE USER '{u}'@'localhost'; GRANT SELECT ON {d}.* TO '{u}'@'localhost';",
        u = user.name,
        d = db.name
    ));
    let reader = TestEnv::with_connection(&with_user(&db.url, &user.name), "");
    reader.check_with("c", &[], "SELECT n FROM t WHERE n < 0");
    let out = reader.run(["validate", "--connect"]);
    out.code(0).stdout_has("✓ warehouse");
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    reader.run(["run", "--no-incidents"]).code(0);

    db.exec(&format!(
        "GRANT DELETE ON {d}.t TO '{u}'@'%'; GRANT DELETE ON {d}.t TO '{u}'@'localhost';",
        u = user.name,
        d = db.name
    ));
    reader
        .run(["validate", "--connect"])
        .code(0)
        .stderr_has(&format!("{PRIVILEGE_WARNING} has DELETE"));
}

/// See: issues/8 item 15
#[test]
fn sqlite_validate_connect_does_not_warn() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER);", "");
    env.check_with("c", &[], "SELECT n FROM t WHERE n < 0");
    let out = env.run(["validate", "--connect"]);
    out.code(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn with_user_replaces_the_user_and_drops_the_password() {
    assert_eq!(
        with_user("postgres://postgres@127.0.0.1:5432/test?options=x", "r"),
        "postgres://r@127.0.0.1:5432/test?options=x"
    );
    assert_eq!(with_user("mysql://root:pw@h/db", "r"), "mysql://r@h/db");
}
