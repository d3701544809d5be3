//! Mail delivery under faults: a relay that is down, refuses our login, holds a message, a
//! sender killed with SIGKILL before or during a send, two senders at once. Each test counts
//! what arrived at a real SMTP server (aiosmtpd, driven by `tests/fixtures/smtp_sink.py`):
//! delivered, duplicated (by Message-ID), lost. Needs `DQWATCH_TEST_AIOSMTPD=1`.
// See: issues/8

use crate::daemon::{Daemon, SOON, pg_rows};
use crate::require_env;
use crate::util::{PgSchema, TestEnv, output, sqlite_exec};
use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `tests/fixtures/smtp_sink.py`: aiosmtpd writing `DIR/new/NNNNNN.eml` in arrival order.
pub struct Sink {
    child: Child,
    dir: PathBuf,
}

impl Sink {
    pub fn start(port: u16, dir: &Path, extra: &[&str]) -> Sink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
        let child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 smtp_sink.py");
        wait_for(Duration::from_secs(15), "the SMTP sink to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Sink {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// A relay that holds the first message's DATA far longer than any test (a slow relay),
    /// touching `marker.1` when it arrives; later messages go through at once.
    pub fn holding_the_first(port: u16, dir: &Path, marker: &Path) -> Sink {
        let marker = marker.display().to_string();
        let args = ["--delay", "600", "--delay-first", "1", "--marker", &marker];
        Sink::start(port, dir, &args)
    }

    /// The messages received, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("new"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Asserts that `want` messages arrived, none twice; returns their Message-IDs in order.
    #[track_caller]
    pub fn delivered_once(&self, want: usize) -> Vec<String> {
        let ids: Vec<String> = self
            .messages()
            .iter()
            .map(|m| header(m, "Message-ID"))
            .collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            (ids.len(), unique.len()),
            (want, want),
            "delivered / distinct Message-IDs: {ids:?}"
        );
        ids
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints a measured figure past libtest's capture (`FIGURE …` on stderr).
pub fn figure(line: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("FIGURE {line}\n").as_bytes());
}

/// A header's value (the first one).
pub fn header(mail: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    mail.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_default()
        .to_string()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `done` until it holds; fails the test after `limit`. Waiting on a condition, not
/// on time: the pause between polls only spares the CPU.
#[track_caller]
pub fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// A SQLite warehouse with `keys` breaching keys (one incident, one ticket each) and an SMTP
/// relay on `port`; `mail` adds lines to `[mail]`, `state` replaces the state store.
fn env(port: u16, keys: usize, mail: &str, state: Option<&str>) -> TestEnv {
    let rows: Vec<String> = (0..keys).map(|k| format!("('k{k:02}', 5)")).collect();
    let env = TestEnv::sqlite(
        &format!(
            "CREATE TABLE t (k TEXT, v INT); INSERT INTO t VALUES {};",
            rows.join(", ")
        ),
        "",
    );
    let cfg = env.read("dqwatch.toml");
    let state = state.map_or(String::new(), |s| format!("state = \"{s}\"\n"));
    env.config(&format!(
        "{state}{cfg}\n[mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\n\
         port = {port}\ntls = \"none\"\n{mail}\n[[routes]]\nemail = [\"oncall@example.com\"]\n"
    ));
    env.check_with(
        "t",
        &[
            "keys = [\"k\"]",
            "metric = \"v\"",
            // One ticket per key, however many: these tests count mails per key.
            "group_keys = 0",
            "[thresholds]",
            "P2 = \"> 1\"",
        ],
        "SELECT k, v FROM t",
    );
    env
}

/// Pending and dead mails, from `dqwatch outbox list`.
fn outbox_states(env: &TestEnv) -> (usize, usize) {
    let out = env.run(["outbox", "list", "--state", "all"]);
    out.code(0);
    let count = |state: &str| {
        out.stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(state))
            .count()
    };
    (count("pending"), count("dead"))
}

// See: issues/8 item 5
#[test]
fn smtp_down_under_repeated_runs_kills_no_mail() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(port, 3, "", None);
    // Cron runs `dqwatch run` every minute while the relay is down: more runs than a mail
    // has attempts. Nothing is a verdict on a mail, so nothing dies.
    env.run(["run"])
        .code(0)
        .stdout_has("3 queued, 0 sent, 3 pending");
    for _ in 0..11 {
        env.run(["run"])
            .code(0)
            .stdout_has("0 queued, 0 sent, 3 pending")
            .stdout_has("mail delivery failed: SMTP 127.0.0.1");
    }
    assert_eq!(outbox_states(&env), (3, 0));
    env.run(["outbox", "list"]).code(0).nowhere(" dead ");
    // Up: every mail goes out, oldest first, once.
    let sink = Sink::start(port, &env.path().join("mail"), &[]);
    env.run(["run"]).code(0).stdout_has("0 queued, 3 sent");
    env.run(["run"]).code(0).stdout_has("0 queued, 0 sent");
    let msgs = sink.messages();
    sink.delivered_once(3);
    let keys: Vec<bool> = msgs
        .iter()
        .zip(["k00", "k01", "k02"])
        .map(|(m, k)| m.contains(&format!("k={k}")))
        .collect();
    assert_eq!(keys, [true, true, true], "oldest first");
}

// See: issues/8 item 5
#[test]
fn smtp_login_refused_is_the_transport_s_problem_not_the_mail_s() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(
        port,
        2,
        "username = \"dq\"\npassword = \"${SMTP_PASSWORD:-unset}\"",
        None,
    );
    let sink = Sink::start(port, &env.path().join("mail"), &["--auth", "dq:right-one"]);
    let run = |password: &str| {
        let mut cmd = env.command();
        cmd.args(["--config", "dqwatch.toml", "run"])
            .env("SMTP_PASSWORD", password);
        output(&mut cmd)
    };
    for _ in 0..3 {
        let out = run("wrong-one");
        out.code(0)
            .stdout_has("0 sent, 2 pending")
            .stdout_has("535");
        out.nowhere("wrong-one");
    }
    assert_eq!(outbox_states(&env), (2, 0), "a refused login kills no mail");
    // The password is fixed: both go out with no `outbox retry`.
    run("right-one").code(0).stdout_has("0 queued, 2 sent");
    sink.delivered_once(2);
}

// See: issues/8 item 5
#[test]
fn a_mail_the_relay_refuses_is_a_dead_letter_and_the_rest_go_out() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(port, 2, "", None);
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "{cfg}[[routes]]\nseverity = [\"P2\"]\nemail = [\"nobody@example.com\"]\n"
    ));
    // 550 for one recipient is a verdict on that mail: dead at once. Both mails have it.
    let sink = Sink::start(
        port,
        &env.path().join("mail"),
        &["--reject-rcpt", "nobody@example.com"],
    );
    env.run(["run"])
        .code(0)
        .stdout_has("2 queued, 0 sent, 2 dead");
    env.run(["outbox", "list", "--state", "dead"])
        .code(0)
        .stdout_has("550");
    assert!(sink.messages().is_empty());
    // The address is fixed at the relay: a dead letter can be sent again by hand, once.
    drop(sink);
    let sink = Sink::start(port, &env.path().join("mail2"), &[]);
    env.run(["outbox", "retry", "1"])
        .code(0)
        .stdout_has("1 sent");
    env.run(["outbox", "retry", "1"])
        .code(2)
        .stderr_has("no pending or dead message 1");
    sink.delivered_once(1);
}

/// Creates `keys` tickets while the relay is down (committed, never attempted), so that a
/// test can start delivery at a moment of its choosing.
fn queued(port: u16, keys: usize, mail: &str, state: Option<&str>) -> TestEnv {
    let env = env(port, keys, mail, state);
    env.run(["run"])
        .code(0)
        .stdout_has(&format!("{keys} queued, 0 sent, {keys} pending"));
    env
}

fn spawn(env: &TestEnv, args: &[&str]) -> Child {
    env.command()
        .args(["--config", "dqwatch.toml"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill9(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
}

/// Sends by hand until nothing is pending; returns how long that took.
fn drain(env: &TestEnv, limit: Duration) -> Duration {
    let start = Instant::now();
    wait_for(limit, "the outbox to drain", || {
        env.run(["outbox", "deliver"]);
        outbox_states(env).0 == 0
    });
    start.elapsed()
}

// See: issues/8 item 6
#[test]
fn a_sender_killed_before_its_send_delays_only_that_mail_for_one_lease() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    // The relay accepts the connection and says nothing: the sender has claimed the first
    // mail and waits for the greeting. The other four were committed and never touched.
    let port = free_port();
    let env = queued(port, 5, "timeout = \"3s\"", None);
    let hung = TcpListener::bind(("127.0.0.1", port)).unwrap();
    hung.set_nonblocking(true).unwrap();
    let sender = spawn(&env, &["outbox", "deliver"]);
    let mut conn = None;
    wait_for(Duration::from_secs(20), "the sender to connect", || {
        conn = hung.accept().ok();
        conn.is_some()
    });
    kill9(sender);
    drop((conn, hung));
    let killed = Instant::now();
    let sink = Sink::start(port, &env.path().join("mail"), &[]);
    // The next run sends the four at once and says which mail waits, and until when.
    env.run(["run"])
        .code(0)
        .stdout_has("4 sent")
        .stdout_has("1 leased by a sender until");
    env.run(["outbox", "list"])
        .code(0)
        .stdout_has("leased until");
    drain(&env, Duration::from_secs(60));
    sink.delivered_once(5);
    figure(&format!(
        "killed sender: its mail went out {:.1} s after the kill (lease for timeout = 3s)",
        killed.elapsed().as_secs_f64()
    ));
}

// See: issues/8 item 6
#[test]
fn a_sender_killed_during_a_send_loses_nothing_and_delays_only_that_mail() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = queued(port, 5, "timeout = \"3s\"", None);
    let marker = env.path().join("data");
    // The relay holds the first message's DATA (far longer than the test), as a slow relay
    // does; the sender is killed while it waits for the 250.
    let sink = Sink::holding_the_first(port, &env.path().join("mail"), &marker);
    let sender = spawn(&env, &["outbox", "deliver"]);
    let first_data = PathBuf::from(format!("{}.1", marker.display()));
    wait_for(Duration::from_secs(20), "the first DATA", || {
        first_data.exists()
    });
    kill9(sender);
    let killed = Instant::now();
    env.run(["outbox", "deliver"])
        .code(0)
        .stdout_has("4 sent")
        .stdout_has("1 leased by a sender until");
    let waited = drain(&env, Duration::from_secs(60));
    // The held message never completed: the resend is its only copy.
    sink.delivered_once(5);
    figure(&format!(
        "killed mid-send: the mail in flight went out {:.1} s after the kill ({:.1} s of polling)",
        killed.elapsed().as_secs_f64(),
        waited.as_secs_f64()
    ));
}

// See: issues/8 item 7
#[test]
fn two_senders_on_one_postgres_store_send_each_mail_once() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "two_senders");
    let port = free_port();
    let env = queued(port, 20, "timeout = \"5s\"", Some(&schema.url));
    // A slow relay: each message takes 200 ms, so both senders are busy at once.
    let sink = Sink::start(port, &env.path().join("mail"), &["--delay", "0.2"]);
    let a = spawn_out(&env);
    let b = spawn_out(&env);
    let sent = |c: Child| -> usize {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (sa, sb) = (sent(a), sent(b));
    assert_eq!(sa + sb, 20, "settled by the senders: {sa} + {sb}");
    assert!(sa > 0 && sb > 0, "both senders worked: {sa} + {sb}");
    sink.delivered_once(20);
    assert_eq!(outbox_states(&env), (0, 0));
}

fn spawn_out(env: &TestEnv) -> Child {
    env.command()
        .args(["--config", "dqwatch.toml", "outbox", "deliver"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

// See: issues/8 item 9
#[test]
fn a_thread_goes_out_in_event_order_after_an_outage() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(port, 1, "", None);
    let db = env.path().join("warehouse.db");
    // While the relay is down: opened, resolved, reopened — three mails of one thread.
    env.run(["run"]).code(0).stdout_has("1 opened");
    sqlite_exec(&db, "UPDATE t SET v = 0");
    env.run(["run"]).code(0).stdout_has("1 resolved");
    sqlite_exec(&db, "UPDATE t SET v = 5");
    env.run(["run"]).code(0).stdout_has("3 pending");
    // The relay defers the first message once (451): the opening mail backs off, and the
    // two replies wait for it instead of overtaking it.
    let sink = Sink::start(port, &env.path().join("mail"), &["--defer-first", "1"]);
    env.run(["outbox", "deliver"])
        .code(3)
        .stdout_has("0 sent, 1 retrying")
        .stdout_has("1 waiting to retry");
    assert!(
        sink.messages().is_empty(),
        "no reply before its thread's first mail"
    );
    env.run(["outbox", "retry", "1"])
        .code(0)
        .stdout_has("3 sent");
    let msgs = sink.messages();
    let ids = sink.delivered_once(3);
    assert_eq!(
        header(&msgs[0], "In-Reply-To"),
        "",
        "the thread starts with its first mail"
    );
    for m in &msgs[1..] {
        assert_eq!(header(m, "In-Reply-To"), ids[0]);
    }
    assert!(!header(&msgs[0], "Subject").starts_with("Re:"));
    assert!(msgs[1].contains("Resolved: [P2] t"), "{}", msgs[1]);
    assert!(!msgs[2].contains("Resolved: [P2] t"), "{}", msgs[2]);
}

/// The daemon's config on top of [`env`]: a schedule every second, `[daemon]` in UTC.
fn daemon_env(port: u16, keys: usize, mail: &str, state: Option<&str>) -> TestEnv {
    let env = env(port, keys, mail, state);
    let cfg = env.read("dqwatch.toml");
    env.config(&format!("{cfg}\n[daemon]\ntimezone = \"UTC\"\n"));
    env.check_with(
        "t",
        &[
            "schedule = \"* * * * * *\"",
            "keys = [\"k\"]",
            "metric = \"v\"",
            "[thresholds]",
            "P2 = \"> 1\"",
        ],
        "SELECT k, v FROM t",
    );
    env
}

/// Outbox rows of a SQLite state store: (id, state, attempts).
fn outbox_rows(env: &TestEnv) -> Vec<(i64, String, i64)> {
    let out = env.run(["outbox", "list", "--state", "all"]);
    let mut rows: Vec<(i64, String, i64)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.parse().ok()?,
                w.next()?.to_string(),
                w.next()?.parse().ok()?,
            ))
        })
        .collect();
    rows.sort();
    rows
}

// See: issues/8 items 5 and 9
#[test]
fn smtp_down_then_up_under_the_daemon_loses_nothing_and_keeps_each_thread_in_order() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = daemon_env(port, 1, "", None);
    let db = env.path().join("warehouse.db");
    let d = Daemon::start(&env, &[]);
    // While the relay is down the incident opens, resolves and reopens: three mails of one
    // thread wait, none uses an attempt, none dies.
    let env = &env;
    let pending = |n: usize| {
        move || {
            let rows = outbox_rows(env);
            (rows.len() == n && rows.iter().all(|(_, s, a)| s == "pending" && *a == 0))
                .then_some(())
        }
    };
    d.wait_for("the opening mail, pending", SOON, pending(1));
    sqlite_exec(&db, "UPDATE t SET v = 0");
    d.wait_for("the resolution mail, pending", SOON, pending(2));
    sqlite_exec(&db, "UPDATE t SET v = 5");
    d.wait_for("the reopening mail, pending", SOON, pending(3));
    // The relay comes back: the daemon's next pass sends the thread, in order, once.
    let sink = Sink::start(port, &env.path().join("mail"), &[]);
    d.wait_for("three delivered mails", Duration::from_secs(60), || {
        (sink.messages().len() >= 3).then_some(())
    });
    let msgs = sink.messages();
    let ids = sink.delivered_once(3);
    assert_eq!(header(&msgs[0], "In-Reply-To"), "");
    assert!(msgs[1].contains("Resolved: [P2] t"), "{}", msgs[1]);
    assert!(msgs[1..].iter().all(|m| header(m, "In-Reply-To") == ids[0]));
    assert!(outbox_rows(env).iter().all(|(_, s, _)| s == "sent"));
    d.stop();
}

// See: issues/8 items 6 and 7
#[test]
fn two_daemons_one_killed_mid_send_lose_nothing_and_send_nothing_twice() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "faults_two_daemons");
    let port = free_port();
    let marker = env_marker();
    // The relay holds the first message it gets (far longer than the test): the daemon
    // sending it is killed while it waits.
    let env = daemon_env(port, 5, "timeout = \"5s\"", Some(&schema.url));
    let sink = Sink::holding_the_first(port, &env.path().join("mail"), &marker);
    let a = Daemon::start(&env, &[]);
    let b = Daemon::start(&env, &[]);
    let first = PathBuf::from(format!("{}.1", marker.display()));
    a.wait_for("the first DATA at the relay", SOON, || {
        first.exists().then_some(())
    });
    let holder = pg_rows(
        &schema.url,
        "SELECT CAST(id AS text), lease_owner FROM outbox WHERE lease_owner IS NOT NULL AND state = 'pending'",
    );
    assert_eq!(holder.len(), 1, "one mail is being sent: {holder:?}");
    let (held, owner) = (holder[0][0].clone(), holder[0][1].clone());
    let (dying, survivor) = if a.is(&owner) { (&a, &b) } else { (&b, &a) };
    assert!(dying.is(&owner), "the lease names a live daemon: {owner}");
    dying.kill_hard();
    let killed = std::time::Instant::now();
    // The survivor sends the other four at once, and the held one when its lease ends.
    survivor.wait_for("all five delivered", Duration::from_secs(90), || {
        let sent = pg_rows(
            &schema.url,
            "SELECT CAST(COUNT(*) AS text) FROM outbox WHERE state = 'sent'",
        );
        (sent[0][0] == "5").then_some(())
    });
    let waited = killed.elapsed();
    sink.delivered_once(5);
    let dead = pg_rows(
        &schema.url,
        "SELECT CAST(COUNT(*) AS text) FROM outbox WHERE state <> 'sent'",
    );
    assert_eq!(dead[0][0], "0");
    figure(&format!(
        "daemon killed mid-send: its mail {held} went out {:.1} s after the kill (SMTP timeout 5s, lease 15 s); 5 delivered, 0 duplicated, 0 lost",
        waited.as_secs_f64()
    ));
    survivor.stop();
}

fn env_marker() -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("dqwatch-marker-")
        .tempdir()
        .unwrap();
    // Kept for the test's life: the sink writes marker files into it.
    let path = dir.path().join("data");
    std::mem::forget(dir);
    path
}
