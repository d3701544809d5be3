//! One round trip per check (issue 13), counted on the wire: a relay started by the test sits
//! between dqwatch and the real server and counts the times the client speaks after the
//! server did (one request and its answer, however many packets each takes). The per-check
//! count is the difference between a run of 5 checks and a run of 1 on one connection, so
//! the connection's start-up and close cancel out. Next to it, the texts the one-message path
//! must not let through (a second statement, a text that swallows our ROLLBACK) are refused
//! with the data intact, and texts it leaves to the prepared path still run.

use crate::require_env;
use crate::util::{MyDatabase, PgSchema, TestEnv, check_doc};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Client requests seen by a relay: (the last side that spoke was the client, requests).
type Exchanges = Arc<Mutex<(bool, u64)>>;

/// A relay on 127.0.0.1 in front of `target` ("host:port"); returns its port and its count.
pub(crate) fn relay(target: String) -> (u16, Exchanges) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count: Exchanges = Arc::new(Mutex::new((false, 0)));
    let c = Arc::clone(&count);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else {
                return;
            };
            for (from, to, is_client) in [
                (
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                ),
                (server, client, false),
            ] {
                let c = Arc::clone(&c);
                std::thread::spawn(move || pump(from, to, is_client, &c));
            }
        }
    });
    (port, count)
}

fn pump(mut from: TcpStream, mut to: TcpStream, is_client: bool, count: &Exchanges) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut c = count.lock().unwrap();
            if is_client && !c.0 {
                c.1 += 1;
            }
            c.0 = is_client;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// `url` with its host:port replaced by 127.0.0.1:`port`, and `(host:port, new url)`.
pub(crate) fn through(url: &str, port: u16) -> (String, String) {
    let auth_start = url.find("://").map_or(0, |i| i + 3);
    let end = url[auth_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| auth_start + i);
    let (user, host) = match url[auth_start..end].rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h.to_string()),
        None => (String::new(), url[auth_start..end].to_string()),
    };
    let new = format!(
        "{}{user}127.0.0.1:{port}{}",
        &url[..auth_start],
        &url[end..]
    );
    (host, new)
}

/// Requests the client made in a `dqwatch run` of `n` one-row checks on one connection.
fn requests_for(url: &str, n: usize) -> u64 {
    let (host, _) = through(url, 0);
    let (port, count) = relay(host);
    let (_, relayed) = through(url, port);
    let env = TestEnv::with_connection(&relayed, "max_concurrency = 1");
    for i in 0..n {
        env.check_with(
            &format!("c{i}"),
            &["metric = \"n\"", "[thresholds]", "P1 = \"> 5\""],
            &format!("SELECT COUNT(*) AS n FROM t WHERE n = {i}"),
        );
    }
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    let report = out.json();
    for i in 0..n {
        let doc = check_doc(&report, &format!("c{i}"));
        assert_eq!(doc["status"], "pass", "{doc:#}");
    }
    out.code(0);
    // The relay saw everything the run sent before the run ended.
    let c = count.lock().unwrap();
    c.1
}

fn assert_one_round_trip_per_check(url: &str) {
    let one = requests_for(url, 1);
    let five = requests_for(url, 5);
    assert!(five > one, "{one} then {five}");
    let per_check = (five - one) as f64 / 4.0;
    assert_eq!(
        per_check, 1.0,
        "requests per check: {per_check} (1 check: {one}, 5 checks: {five})"
    );
}

/// See: issues/13
#[test]
fn postgres_a_check_is_one_round_trip() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "one_round_trip");
    schema.exec("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3);");
    assert_one_round_trip_per_check(&format!("{}&sslmode=disable", schema.url));
}

/// See: issues/13
#[test]
fn mariadb_a_check_is_one_round_trip() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let db = MyDatabase::new(&admin, "one_round_trip");
    db.exec("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3);");
    let sep = if db.url.contains('?') { '&' } else { '?' };
    assert_one_round_trip_per_check(&format!("{}{sep}ssl-mode=disabled", db.url));
}

/// Writes checks `id` = sql, each judged on column `n` (a pass when it runs: n is 1).
fn checks(env: &TestEnv, list: &[(&str, &str)]) {
    for (id, sql) in list {
        env.check_with(id, &["metric = \"n\"", "[thresholds]", "P1 = \"> 5\""], sql);
    }
}

fn run(env: &TestEnv) -> serde_json::Value {
    let mut cmd = env.command();
    cmd.args([
        "--config",
        "dqwatch.toml",
        "run",
        "--no-incidents",
        "--format",
        "json",
    ]);
    crate::util::output_within(&mut cmd, Duration::from_secs(60))
        .unwrap_or_else(|out| panic!("dqwatch run hung: {out:?}"))
        .json()
}

#[track_caller]
fn assert_status(report: &serde_json::Value, ids: &[&str], want: &str) {
    for id in ids {
        let doc = check_doc(report, id);
        assert_eq!(doc["status"], want, "{id}: {doc:#}");
    }
}

/// See: issues/13
/// The one-message path on PostgreSQL: a second statement, hidden or not, never runs; a text
/// that would swallow the ROLLBACK is a syntax error with nothing run; a `;` in a string
/// goes the prepared way and still works; and a trailing `;` or comment is fine.
#[test]
fn postgres_the_one_message_path_lets_no_second_statement_through() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "one_message_hostile");
    schema.exec("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3);");
    let env = TestEnv::with_connection(&schema.url, "max_concurrency = 1");
    checks(
        &env,
        &[
            (
                "a1_second_statement",
                "SELECT 1 AS n; COMMIT; SET default_transaction_read_only = off; DELETE FROM t",
            ),
            (
                "a2_commit_then_delete",
                "SELECT 1 AS n; COMMIT; DELETE FROM t;",
            ),
            ("a3_open_comment", "SELECT 1 AS n /* swallows the rollback"),
            ("a4_open_string", "SELECT 1 AS n WHERE 'x' <> 'swallows"),
            ("a5_open_escape_string", "SELECT 1 AS n WHERE E'x\\'"),
            ("a6_open_dollar_quote", "SELECT 1 AS n WHERE $q$x$q$ <> $q$"),
            ("a7_open_identifier", "SELECT 1 AS \"n"),
            (
                "a8_session_change",
                "SELECT 1 AS n WHERE set_config('default_transaction_read_only', 'off', false) IS NULL",
            ),
            (
                "b1_trailing_semicolon",
                "SELECT count(*)::int AS n FROM t WHERE n = 1;",
            ),
            ("b2_trailing_comment", "SELECT 1 AS n -- a note"),
            ("b3_semicolon_in_string", "SELECT length(';') AS n"),
            (
                "b4_after_the_session_change",
                "SELECT current_setting('default_transaction_read_only') = 'on' AS ok, 1 AS n WHERE current_setting('default_transaction_read_only') = 'on'",
            ),
            (
                "c_delete_after",
                "WITH d AS (DELETE FROM t RETURNING n) SELECT count(*) AS n FROM d",
            ),
        ],
    );
    let report = run(&env);
    assert_eq!(schema.scalar("SELECT count(*) FROM t"), 3);
    assert_status(
        &report,
        &[
            "a1_second_statement",
            "a2_commit_then_delete",
            "a3_open_comment",
            "a4_open_string",
            "a5_open_escape_string",
            "a6_open_dollar_quote",
            "a7_open_identifier",
            "a8_session_change",
            "c_delete_after",
        ],
        "error",
    );
    assert_status(
        &report,
        &[
            "b1_trailing_semicolon",
            "b2_trailing_comment",
            "b3_semicolon_in_string",
            "b4_after_the_session_change",
        ],
        "pass",
    );
}

/// See: issues/13
/// The same on MariaDB, where the one-message path is SET STATEMENT … FOR the text: a second
/// statement, an INTO (a file, a session variable) never runs; `;` in a string still works.
#[test]
fn mariadb_the_one_message_path_lets_no_second_statement_through() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let db = MyDatabase::new(&admin, "one_message_hostile");
    db.exec("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3);");
    let env = TestEnv::with_connection(&db.url, "max_concurrency = 1");
    checks(
        &env,
        &[
            ("a1_second_statement", "SELECT 1 AS n; DELETE FROM t"),
            ("a2_into_variable", "SELECT 1 AS n INTO @dq_v"),
            ("a3_open_comment", "SELECT 1 AS n /* swallows"),
            (
                "b1_trailing_semicolon",
                "SELECT COUNT(*) AS n FROM t WHERE n = 1;",
            ),
            ("b2_semicolon_in_string", "SELECT LENGTH(';') AS n"),
            (
                "b3_no_variable_left",
                "SELECT 1 AS n FROM DUAL WHERE @dq_v IS NULL",
            ),
        ],
    );
    let report = run(&env);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM t"), 3);
    assert_status(
        &report,
        &["a1_second_statement", "a2_into_variable", "a3_open_comment"],
        "error",
    );
    assert_status(
        &report,
        &[
            "b1_trailing_semicolon",
            "b2_semicolon_in_string",
            "b3_no_variable_left",
        ],
        "pass",
    );
}
