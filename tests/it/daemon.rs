//! `dqwatch daemon` end to end: the real binary as a child process on a port picked by the
//! kernel, HTTP through a tiny client on `TcpStream`, signals through `kill`, mail as `.eml`
//! files, and the state store (SQLite, or PostgreSQL with `DQWATCH_TEST_POSTGRES_URL`) read
//! back. Nothing sleeps: every wait polls a condition (an HTTP answer, a file, a row count,
//! a log line) under a deadline, paced by a 20 ms blocking read ([`pace`]) so that polling
//! does not starve the daemons. Each daemon is killed on drop.
//! The incidents page in a real browser needs `DQWATCH_TEST_CHROMIUM` (and OCR of its
//! screenshot `DQWATCH_TEST_TESSERACT`), both paths of binaries.

use crate::require_env;
use crate::util::{
    PgCluster, PgSchema, TestEnv, block_on, output_within, skip, sqlite_exec, sqlite_scalar,
};
use chrono::{DateTime, Timelike, Utc};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// From spawn to `/healthz` answering (the store is opened and migrated first).
const START_LIMIT: Duration = Duration::from_secs(20);
/// From SIGTERM to exit: the daemon's own grace period is 10 s; with nothing slow in flight
/// it must be far quicker.
const STOP_LIMIT: Duration = Duration::from_secs(5);
/// Waits for things a per-second schedule makes happen within a few seconds.
pub(crate) const SOON: Duration = Duration::from_secs(15);
/// The read timeout of a probe that may hang.
const SECOND: Duration = Duration::from_secs(1);
/// The pause between two polls (see [`pace`]).
const PACE: Duration = Duration::from_millis(20);

/// The warehouse: one row that every check below returns, so every run breaches (a check
/// without `metric` breaches at P2 for each row). The key is markup, to test escaping.
pub(crate) const WAREHOUSE: &str =
    "CREATE TABLE t (k TEXT, v REAL); INSERT INTO t VALUES ('<b>x</b>', 5);";
/// The key as a browser must show it (text, not markup).
const KEY: &str = "<b>x</b>";
/// The key as it must appear in HTML source.
const KEY_ESCAPED: &str = "&lt;b&gt;x&lt;/b&gt;";
const TOKEN: &str = "s3cret-token";

// ---------------------------------------------------------------------------------------
// The daemon process

/// A running `dqwatch daemon`, its stdout and stderr going to a log file in the temp dir.
/// Killed (SIGKILL) on drop if still running.
pub(crate) struct Daemon {
    child: RefCell<Option<Child>>,
    pid: u32,
    pub(crate) port: u16,
    log: PathBuf,
}

impl Daemon {
    /// Starts `dqwatch --config dqwatch.toml daemon --listen 127.0.0.1:PORT` in `env` with the
    /// extra environment `vars`, and waits for `/healthz`. A port taken between picking and
    /// binding is picked again.
    pub(crate) fn start(env: &TestEnv, vars: &[(&str, &str)]) -> Daemon {
        for attempt in 1..=3 {
            let daemon = Daemon::spawn(env, vars);
            let deadline = Instant::now() + START_LIMIT;
            loop {
                if let Some(status) = daemon.exited() {
                    let log = daemon.log_text();
                    if attempt < 3 && log.contains("cannot listen") {
                        break;
                    }
                    panic!("dqwatch daemon exited at start ({status})\n--- log\n{log}");
                }
                // Up means past the stand-in server that answers while the state store opens.
                if let Ok(r) = http_within(daemon.port, "GET", "/readyz", &[], None, SECOND)
                    && !r.body.contains("starting: waiting for the state store")
                {
                    return daemon;
                }
                assert!(
                    Instant::now() < deadline,
                    "/healthz did not answer within {START_LIMIT:?}\n--- log\n{}",
                    daemon.log_text()
                );
                pace();
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Spawns the daemon on a free port without waiting for anything.
    pub(crate) fn spawn(env: &TestEnv, vars: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let log = env.path().join(format!("daemon-{port}.log"));
        let file = std::fs::File::create(&log).expect("create the daemon log");
        let mut cmd = env.command();
        cmd.args(["--config", "dqwatch.toml", "daemon", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log handle"))
            .stderr(file);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn dqwatch daemon");
        Daemon {
            pid: child.id(),
            child: RefCell::new(Some(child)),
            port,
            log,
        }
    }

    /// The exit status, if the process has ended.
    fn exited(&self) -> Option<ExitStatus> {
        let mut child = self.child.borrow_mut();
        match child.as_mut() {
            Some(c) => c.try_wait().expect("try_wait"),
            None => panic!("the daemon was already stopped"),
        }
    }

    /// What the daemon logged so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `kill -SIG pid`.
    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid);
    }

    /// Sends SIGTERM and waits (bounded) for the exit: its code and how long it took.
    pub(crate) fn stop(&self) -> (i32, Duration) {
        self.stop_with("TERM")
    }

    /// Sends `sig` and waits (bounded) for the exit: its code and how long it took.
    pub(crate) fn stop_with(&self, sig: &str) -> (i32, Duration) {
        let start = Instant::now();
        self.signal(sig);
        let code = self.wait_exit(STOP_LIMIT, &format!("SIG{sig}"));
        (code, start.elapsed())
    }

    /// Waits at most `limit` for the process to exit (after `why`); its exit code.
    pub(crate) fn wait_exit(&self, limit: Duration, why: &str) -> i32 {
        let mut child = self.child.borrow_mut().take().expect("running");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(());
            status
        });
        if rx.recv_timeout(limit).is_err() {
            self.signal("KILL");
            let _ = waiter.join();
            panic!(
                "the daemon did not exit within {limit:?} of {why}\n--- log\n{}",
                self.log_text()
            );
        }
        let status = waiter
            .join()
            .expect("waiter thread")
            .expect("wait for dqwatch");
        status.code().unwrap_or_else(|| {
            panic!(
                "the daemon died by a signal after {why}: {status}\n--- log\n{}",
                self.log_text()
            )
        })
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub(crate) fn kill_hard(&self) {
        let mut child = self.child.borrow_mut().take().expect("running");
        self.signal("KILL");
        let status = child.wait().expect("wait for dqwatch");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
    }

    /// Polls `probe` until it gives a value, failing after `limit` or if the daemon exits.
    pub(crate) fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = probe() {
                return v;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "the daemon exited ({status}) while waiting for {what}\n--- log\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}\n--- log\n{}",
                self.log_text()
            );
            pace();
        }
    }

    /// `GET path`; a failed connection fails the test.
    pub(crate) fn get(&self, path: &str) -> Response {
        http(self.port, "GET", path, &[], None).unwrap_or_else(|e| {
            panic!("GET {path}: {e}\n--- log\n{}", self.log_text());
        })
    }

    /// `POST path` with a JSON body and, if given, `Authorization: <auth>`.
    pub(crate) fn post(&self, path: &str, auth: Option<&str>, body: &str) -> Response {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        http(self.port, "POST", path, &headers, Some(body)).unwrap_or_else(|e| {
            panic!("POST {path}: {e}\n--- log\n{}", self.log_text());
        })
    }

    /// The value of a Prometheus series (0 when absent).
    pub(crate) fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&self.get("/metrics").body, name, labels).unwrap_or(0.0)
    }

    /// Waits until the process catches SIGTERM (Linux: `SigCgt` in `/proc/PID/status`), the
    /// only sign of life of a daemon that does not serve HTTP yet.
    fn await_signal_handlers(&self) {
        let status = format!("/proc/{}/status", self.pid);
        self.wait_for("the SIGTERM handler", SOON, || {
            let text = std::fs::read_to_string(&status).ok()?;
            let mask = text.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            let mask = u64::from_str_radix(mask.trim(), 16).ok()?;
            (mask & (1 << (15 - 1)) != 0).then_some(())
        });
    }

    /// True when this daemon's replica name (`host-PID`) is `claimed_by`.
    pub(crate) fn is(&self, claimed_by: &str) -> bool {
        claimed_by.ends_with(&format!("-{}", self.pid))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.get_mut().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Blocks for [`PACE`] without burning CPU, between two polls of a condition: a read, with
/// that timeout, from a loopback connection nobody writes to. Nothing relies on it for
/// correctness (every wait re-checks its condition under a deadline); it only keeps polling
/// loops from starving the daemons they watch (2 cores, tests in parallel).
pub(crate) fn pace() {
    thread_local! {
        static QUIET: (TcpListener, TcpStream) = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().expect("local address");
            // The kernel completes the handshake; nobody accepts, nobody writes.
            let stream = TcpStream::connect(addr).expect("connect to loopback");
            stream.set_read_timeout(Some(PACE)).expect("read timeout");
            (listener, stream)
        };
    }
    QUIET.with(|(_, stream)| {
        let _ = (&*stream).read(&mut [0u8; 1]);
    });
}

/// A port on loopback that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

// ---------------------------------------------------------------------------------------
// A tiny blocking HTTP/1.1 client

pub(crate) struct Response {
    pub(crate) status: u16,
    /// The status line and headers.
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Response> {
    http_within(port, method, path, headers, body, Duration::from_secs(10))
}

/// [`http`] with a read and write timeout.
pub(crate) fn http_within(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    if let Some(b) = body {
        let _ = write!(
            req,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        );
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("bad chunk"))?;
            let size_text = String::from_utf8_lossy(&rest[..eol]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size).ok_or_else(|| bad("short chunk"))?);
            rest = rest.get(size + 2..).unwrap_or_default();
        }
        out
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The sum of the series `name` whose labels include `labels`, from Prometheus text (`None`
/// when no series matches): `dqwatch_runs_total{check="a"}` counts every outcome.
pub(crate) fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.trim().rsplit_once(' ')?;
            let (n, lbl) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let have: Vec<(&str, &str)> = lbl
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim_matches('"')))
                .collect();
            labels
                .iter()
                .all(|l| have.contains(l))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .reduce(|a, b| a + b)
}

// ---------------------------------------------------------------------------------------
// The temp dir: config, checks, mail, state

/// The config: state store `state`, `[daemon]` lines `daemon`, the SQLite warehouse, mail
/// as files in `outbox/` to oncall for every severity, then `tail` (severity policies…).
pub(crate) fn config(state: &str, daemon: &str, tail: &str) -> String {
    format!(
        "state = \"{state}\"\n\
         [daemon]\ntimezone = \"UTC\"\n{daemon}\n\
         [connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n\
         [mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"file\"\ndir = \"outbox\"\n\
         [[routes]]\nseverity = [\"P0\", \"P1\", \"P2\", \"P3\"]\nemail = [\"oncall@example.com\"]\n\
         {tail}\n"
    )
}

/// A temp dir with the warehouse, `config(state, daemon, tail)`, and a check `id` that
/// breaches every second, one incident per key.
pub(crate) fn breaching(id: &str, state: &str, daemon: &str, tail: &str) -> TestEnv {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config(state, daemon, tail));
    env.check_with(
        id,
        &[
            "description = \"breaches every second\"",
            "schedule = \"* * * * * *\"",
            "keys = [\"k\"]",
        ],
        "SELECT k, v FROM t",
    );
    env
}

/// The SQLite state store of a temp dir configured with `state = "sqlite://state.db"`.
fn state_db(env: &TestEnv) -> PathBuf {
    env.path().join("state.db")
}

/// The `.eml` files in `outbox/`: (outbox id, contents), by id.
fn eml_files(env: &TestEnv) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = std::fs::read_dir(env.path().join("outbox"))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let id = p
                .file_name()?
                .to_str()?
                .strip_suffix(".eml")?
                .parse::<i64>()
                .ok()?;
            Some((id, std::fs::read_to_string(&p).ok()?))
        })
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out
}

/// Every row of `sql` on the SQLite file `path`, each column as text ("" for NULL).
fn sqlite_rows(path: &Path, sql: &str) -> Vec<Vec<String>> {
    use sqlx::{ConnectOptions, Connection, Row};
    block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .connect()
            .await
            .expect("open the SQLite state store");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.expect("close");
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .expect("a text column")
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect()
    })
}

/// Every row of `sql` on PostgreSQL at `url`, each column as text ("" for NULL).
pub(crate) fn pg_rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    use sqlx::{Connection, Row};
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("connect to PostgreSQL");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.expect("close");
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .expect("a text column")
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect()
    })
}

/// An outbox row with the kind of the event that caused it.
#[derive(Debug, Clone)]
struct MailRow {
    id: i64,
    kind: String,
    to: String,
    state: String,
}

/// Outbox rows and their event kinds (same SQL on SQLite and PostgreSQL).
const OUTBOX_SQL: &str = "SELECT CAST(o.id AS TEXT), COALESCE(e.kind, ''), o.recipients, o.state \
                          FROM outbox o LEFT JOIN events e ON e.id = o.event_id ORDER BY o.id";

fn mail_rows(rows: Vec<Vec<String>>) -> Vec<MailRow> {
    rows.into_iter()
        .map(|r| MailRow {
            id: r[0].parse().expect("an outbox id"),
            kind: r[1].clone(),
            to: r[2].clone(),
            state: r[3].clone(),
        })
        .collect()
}

/// The sent mails of event `kind` whose `.eml` file is written, from the SQLite store.
fn sent(env: &TestEnv, kind: &str) -> Vec<MailRow> {
    let files: Vec<i64> = eml_files(env).into_iter().map(|(id, _)| id).collect();
    mail_rows(sqlite_rows(&state_db(env), OUTBOX_SQL))
        .into_iter()
        .filter(|m| m.kind == kind && m.state == "sent" && files.contains(&m.id))
        .collect()
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not a time {s:?}: {e}"))
        .with_timezone(&Utc)
}

fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The one active incident listed by the API, once there is one.
pub(crate) fn open_incident(d: &Daemon) -> serde_json::Value {
    d.wait_for("an open incident in /api/incidents", SOON, || {
        let list = d.get("/api/incidents").json();
        list.as_array()
            .and_then(|l| l.iter().find(|i| i["state"] == "open"))
            .cloned()
    })
}

// ---------------------------------------------------------------------------------------
// Tests

/// Health, readiness, a ticket, metrics, dedup across runs, and a clean stop on SIGTERM.
#[test]
fn end_to_end_on_sqlite() {
    let env = breaching("e2e", "sqlite://state.db", "", "");
    let d = Daemon::start(&env, &[]);

    let health = d.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = d.get("/readyz");
    assert_eq!(ready.status, 200, "{ready:?}");
    let ready = ready.json();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["state_store"], "ok", "{ready}");
    assert_eq!(ready["connections"]["warehouse"], "ok", "{ready}");

    // The incident gauges come from the background check (every 2 s): wait for them too.
    let metrics = d.wait_for("a ticket, two breaching runs and the gauge", SOON, || {
        let text = d.get("/metrics").body;
        let breaches = metric(
            &text,
            "dqwatch_runs_total",
            &[("check", "e2e"), ("outcome", "breach")],
        )?;
        let open = metric(&text, "dqwatch_open_incidents", &[("severity", "P2")])?;
        (breaches >= 2.0 && open >= 1.0 && !eml_files(&env).is_empty()).then_some(text)
    });
    let slots = metric(&metrics, "dqwatch_scheduler_lag_seconds_count", &[]).unwrap_or(0.0);
    assert!(slots >= 2.0, "lag histogram: {slots} slots\n{metrics}");
    let lag = metric(&metrics, "dqwatch_scheduler_lag_seconds_sum", &[]).unwrap_or(f64::MAX);
    assert!(
        lag / slots < 0.5,
        "per-second slots start late: {lag} s over {slots} slots\n{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "dqwatch_open_incidents",
            &[("severity", "P2"), ("category", "quality_degradation")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "dqwatch_open_incidents", &[("severity", "P0")]),
        Some(0.0),
        "every severity is exported, 0 when none: {metrics}"
    );
    assert_eq!(metric(&metrics, "dqwatch_ready", &[]), Some(1.0));

    let (code, took) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
    assert!(took < STOP_LIMIT, "stopped in {took:?}");

    let db = state_db(&env);
    let runs = sqlite_scalar(
        &db,
        "SELECT COUNT(*) FROM runs WHERE check_id = 'e2e' AND outcome = 'breach'",
    );
    assert!(runs >= 2, "{runs} runs");
    let mails = eml_files(&env);
    assert_eq!(
        mails.len(),
        1,
        "one ticket for {runs} breaching runs: {mails:#?}"
    );
    let (id, ticket) = &mails[0];
    assert!(ticket.contains("To: oncall@example.com"), "{ticket}");
    assert!(ticket.contains("Subject: [P2] e2e"), "{ticket}");
    let rows = mail_rows(sqlite_rows(&db, OUTBOX_SQL));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].id, rows[0].kind.as_str(), rows[0].state.as_str()),
        (*id, "opened", "sent")
    );
    assert_eq!(sqlite_scalar(&db, "SELECT COUNT(*) FROM incidents"), 1);
    assert_eq!(
        sqlite_scalar(&db, "SELECT COUNT(*) FROM slots WHERE check_id = 'e2e'"),
        runs,
        "every claimed slot ran once"
    );
}

/// The JSON API with a bearer token: list, show, ack (401 without or with a wrong token),
/// 409 on a second ack, resolve; the acknowledgement mail; /api/checks; the page escapes.
#[test]
fn api_changes_incidents_with_the_token() {
    // A breach after the manual resolve opens a new incident rather than reopening this one,
    // so that its resolved state can be asserted while the check keeps breaching.
    let env = breaching(
        "api",
        "sqlite://state.db",
        "api_token = \"${DQWATCH_API_TOKEN}\"",
        "[incidents]\nreopen_within = \"0s\"",
    );
    let d = Daemon::start(&env, &[("DQWATCH_API_TOKEN", TOKEN)]);
    let auth = format!("Bearer {TOKEN}");

    let inc = open_incident(&d);
    let id = inc["id"].as_i64().expect("an incident id");
    assert_eq!(inc["check_id"], "api");
    let title = inc["title"].as_str().expect("a title").to_string();
    assert_eq!(title, format!("[P2] api — k={KEY}"));
    assert_eq!(
        d.get(&format!("/api/incidents/{id}")).json()["incident"]["title"],
        title.as_str()
    );
    assert_eq!(d.get("/api/incidents/999999").status, 404);
    assert_eq!(d.get("/api/incidents?state=bogus").status, 400);

    // The page: the title as text, never as markup.
    let page = d.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!("[P2] api — k={KEY_ESCAPED}")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(KEY),
        "unescaped markup in the page:\n{}",
        page.body
    );

    // Checks with their next run.
    let checks = d.get("/api/checks").json();
    let list = checks.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{checks}");
    assert_eq!(list[0]["id"], "api");
    assert_eq!(list[0]["schedule"], "* * * * * *");
    let next = parse_time(list[0]["next_run"].as_str().expect("next_run"));
    assert_eq!(next.nanosecond(), 0, "a per-second slot: {next}");

    // The opened ticket first, so that the acknowledgement mail is told apart.
    d.wait_for("the opened ticket", SOON, || {
        (!sent(&env, "opened").is_empty()).then_some(())
    });

    let body = r#"{"by": "alice", "note": "looking"}"#;
    let ack = format!("/api/incidents/{id}/ack");
    let r = d.post(&ack, None, body);
    assert_eq!(r.status, 401, "{r:?}");
    let r = d.post(&ack, Some("Bearer wrong"), body);
    assert_eq!(r.status, 401, "{r:?}");
    let r = d.post(&ack, Some(TOKEN), body);
    assert_eq!(r.status, 401, "the scheme is needed: {r:?}");
    assert_eq!(
        d.get(&format!("/api/incidents/{id}")).json()["incident"]["state"],
        "open",
        "refused requests change nothing"
    );
    let r = d.post(&ack, Some(&auth), body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "acknowledged");
    let shown = d.get(&format!("/api/incidents/{id}")).json();
    assert_eq!(shown["incident"]["state"], "acknowledged", "{shown}");
    assert_eq!(shown["incident"]["acknowledged_by"], "alice", "{shown}");
    let timeline = shown["timeline"].as_array().expect("a timeline");
    assert!(
        timeline.iter().any(|e| e["kind"] == "acknowledged"
            && e["actor"] == "alice"
            && e["note"] == "looking"),
        "{shown}"
    );

    // The `updated` mail of the acknowledgement, in the incident's thread.
    let acked = d.wait_for("the acknowledgement mail", SOON, || {
        sent(&env, "acknowledged").pop()
    });
    let file = std::fs::read_to_string(env.path().join(format!("outbox/{}.eml", acked.id)))
        .expect("the .eml of the acknowledgement");
    assert!(file.contains("Subject: Re: [P2] api"), "{file}");
    assert!(
        file.contains("acknowledged") && file.contains("alice"),
        "{file}"
    );
    assert!(file.contains("In-Reply-To: <incident-"), "{file}");

    let r = d.post(&ack, Some(&auth), body);
    assert_eq!(r.status, 409, "a second ack: {r:?}");
    let r = d.post("/api/incidents/999999/ack", Some(&auth), body);
    assert_eq!(r.status, 404, "{r:?}");

    let resolve = format!("/api/incidents/{id}/resolve");
    let r = d.post(
        &resolve,
        Some("Bearer wrong"),
        r#"{"by": "alice", "note": "fixed"}"#,
    );
    assert_eq!(r.status, 401, "{r:?}");
    let r = d.post(
        &resolve,
        Some(&auth),
        r#"{"by": "alice", "note": "fixed upstream"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "resolved");
    let shown = d.get(&format!("/api/incidents/{id}")).json();
    assert_eq!(shown["incident"]["state"], "resolved", "{shown}");
    assert_eq!(shown["incident"]["resolved_by"], "alice", "{shown}");
    let r = d.post(&resolve, Some(&auth), r#"{"by": "alice", "note": "again"}"#);
    assert_eq!(r.status, 409, "resolving a resolved incident: {r:?}");

    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
    assert!(
        !d.log_text().contains(TOKEN),
        "the token was logged:\n{}",
        d.log_text()
    );
}

/// Without `[daemon] api_token` the API is read-only: 403 whatever the request carries.
#[test]
fn api_is_read_only_without_a_token() {
    let env = breaching("ro", "sqlite://state.db", "", "");
    // The variable alone does not enable changes: only the config does.
    let d = Daemon::start(&env, &[("DQWATCH_API_TOKEN", TOKEN)]);
    let id = open_incident(&d)["id"].as_i64().expect("an incident id");
    let body = r#"{"by": "mallory"}"#;
    for path in [
        format!("/api/incidents/{id}/ack"),
        format!("/api/incidents/{id}/resolve"),
    ] {
        for auth in [
            None,
            Some(format!("Bearer {TOKEN}")),
            Some("Bearer ".to_string()),
        ] {
            let r = d.post(&path, auth.as_deref(), body);
            assert_eq!(r.status, 403, "{path} {auth:?}: {r:?}");
            assert!(r.body.contains("api_token"), "{r:?}");
        }
    }
    assert_eq!(
        d.get(&format!("/api/incidents/{id}")).json()["incident"]["state"],
        "open"
    );
    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
}

/// SIGHUP reloads config and checks: a changed check, a new one that the scheduler then
/// runs, a new timezone; an invalid config is refused and the old one keeps running; a later
/// valid one is taken again.
#[test]
fn sighup_reloads_and_keeps_the_old_config_when_the_new_one_is_invalid() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    let quiet = "SELECT k FROM t WHERE 1 = 0";
    env.check_with(
        "a",
        &[
            "description = \"first version\"",
            "schedule = \"0 0 1 1 *\"",
        ],
        quiet,
    );
    let d = Daemon::start(&env, &[]);
    let checks = |d: &Daemon| -> Vec<(String, String, String)> {
        let list = d.get("/api/checks").json();
        let mut v: Vec<(String, String, String)> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("id"), s("schedule"), s("next_run"))
            })
            .collect();
        v.sort();
        v
    };
    let ids = |d: &Daemon| -> Vec<(String, String)> {
        checks(d).into_iter().map(|(id, s, _)| (id, s)).collect()
    };
    assert_eq!(ids(&d), [("a".to_string(), "0 0 1 1 *".to_string())]);
    assert!(
        checks(&d)[0].2.ends_with("-01-01T00:00:00.000Z"),
        "{:?}",
        checks(&d)
    );
    assert!(d.get("/").body.contains("first version"));

    // A changed check, a new one every second, and cron read in another zone.
    let cfg = config("sqlite://state.db", "", "").replace("\"UTC\"", "\"Asia/Kolkata\"");
    env.config(&cfg);
    env.check_with(
        "a",
        &[
            "description = \"second version\"",
            "schedule = \"30 6 * * *\"",
        ],
        quiet,
    );
    env.check_with("b", &["schedule = \"* * * * * *\""], quiet);
    d.signal("HUP");
    let want = vec![
        ("a".to_string(), "30 6 * * *".to_string()),
        ("b".to_string(), "* * * * * *".to_string()),
    ];
    d.wait_for("the reloaded checks", SOON, || {
        (ids(&d) == want).then_some(())
    });
    let page = d.get("/").body;
    assert!(
        page.contains("second version") && !page.contains("first version"),
        "{page}"
    );
    let a_next = checks(&d)[0].2.clone();
    assert!(
        a_next.ends_with("T01:00:00.000Z"),
        "06:30 in Kolkata is 01:00 UTC: {a_next}"
    );
    d.wait_for("a run of the new check", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "b")]) >= 1.0).then_some(())
    });

    // An invalid config (an unknown key), and a new check that must not be loaded with it.
    env.config(&format!("bogus_key = 1\n{cfg}"));
    env.check_with("c", &["schedule = \"0 8 * * *\""], quiet);
    d.signal("HUP");
    d.wait_for("the refused reload in the log", SOON, || {
        d.log_text().contains("Reload refused").then_some(())
    });
    assert!(
        d.log_text().contains("bogus_key"),
        "the log names the problem:\n{}",
        d.log_text()
    );
    assert_eq!(ids(&d), want, "the old checks keep running");
    assert_eq!(d.get("/healthz").status, 200);
    assert_eq!(d.get("/readyz").status, 200);
    let runs = d.metric("dqwatch_runs_total", &[("check", "b")]);
    d.wait_for("the old schedule still running", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "b")]) > runs).then_some(())
    });

    // Fixed: the next SIGHUP loads it.
    env.config(&cfg);
    d.signal("HUP");
    d.wait_for("check c after the fixed config", SOON, || {
        (ids(&d).len() == 3).then_some(())
    });

    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
}

/// A SIGHUP that comes while the scheduler is busy claiming a slot (here: waiting for the
/// SQLite state store, which the test keeps locked for a moment) still re-plans: the new
/// check runs. The scheduler must not miss the reload because it was not waiting for it.
#[test]
fn sighup_while_the_scheduler_is_busy_still_replans() {
    use sqlx::{ConnectOptions, Connection};
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    let quiet = "SELECT k FROM t WHERE 1 = 0";
    env.check_with("a", &["schedule = \"* * * * * *\""], quiet);
    let d = Daemon::start(&env, &[]);
    d.wait_for("a first run", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "a")]) >= 1.0).then_some(())
    });
    let next_of_a = |d: &Daemon| {
        let list = d.get("/api/checks").json();
        parse_time(list[0]["next_run"].as_str().expect("next_run"))
    };

    // Lock the store for writing: the next slot claim waits (busy timeout 10 s).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut lock = rt.block_on(async {
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(state_db(&env))
            .connect()
            .await
            .expect("open the state store");
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .expect("lock the state store");
        c
    });
    // Once the wall clock is a second past the next slot, the scheduler is stuck claiming it.
    let slot = next_of_a(&d);
    d.wait_for("the scheduler stuck on a claim", SOON, || {
        (next_of_a(&d) > slot + chrono::Duration::seconds(1)).then_some(())
    });

    env.check_with("b", &["schedule = \"* * * * * *\""], quiet);
    d.signal("HUP");
    d.wait_for("the reload", SOON, || {
        (d.get("/api/checks").json().as_array().map(Vec::len) == Some(2)).then_some(())
    });
    rt.block_on(async {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut lock)
            .await
            .expect("unlock");
        lock.close().await.expect("close");
    });

    // The scheduler is alive again (the old check runs on)…
    let runs_of_a = d.metric("dqwatch_runs_total", &[("check", "a")]);
    d.wait_for("runs of the old check after the unlock", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "a")]) >= runs_of_a + 2.0).then_some(())
    });
    // …and must run the new one too.
    d.wait_for(
        "a run of the check added by the reload",
        Duration::from_secs(5),
        || (d.metric("dqwatch_runs_total", &[("check", "b")]) >= 1.0).then_some(()),
    );
    assert_eq!(d.stop().0, 0, "{}", d.log_text());
}

/// `catch_up`: a slot missed while no daemon ran runs once at start (the latest one only),
/// and not at all with `catch_up = false`. The missed slot is made deterministic with a
/// daily schedule 30 minutes in the past and a last claimed slot the day before.
#[test]
fn catch_up_runs_a_missed_slot_once_at_start() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "catch_up = false", ""));
    let quiet = "SELECT k FROM t WHERE 1 = 0";
    env.check_with("daily", &[], quiet);
    // `dqwatch run` creates the store and tells the time the way the daemon reads it.
    env.run(["run"]).code(0);
    let db = state_db(&env);
    let now =
        parse_time(&sqlite_rows(&db, "SELECT started_at FROM runs WHERE check_id = 'daily'")[0][0]);
    let fire = (now - chrono::Duration::minutes(30))
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a whole minute");
    let cron = format!("{} {} * * *", fire.minute(), fire.hour());
    let before = fire - chrono::Duration::days(1);
    sqlite_exec(
        &db,
        &format!(
            "INSERT INTO slots (check_id, fire_at, claimed_by, claimed_at) VALUES ('daily', '{0}', 'old-replica', '{0}')",
            format_time(before)
        ),
    );
    env.check_with("daily", &[&format!("schedule = \"{cron}\"")], quiet);
    // A per-second check: its first run shows that start-up (where catch-up happens) is over.
    env.check_with("tick", &["schedule = \"* * * * * *\""], quiet);
    let runs = |id: &str| {
        sqlite_scalar(
            &db,
            &format!("SELECT COUNT(*) FROM runs WHERE check_id = '{id}'"),
        )
    };
    let ticked = |d: &Daemon| {
        d.wait_for("a run of the per-second check", SOON, || {
            (d.metric("dqwatch_runs_total", &[("check", "tick")]) >= 1.0).then_some(())
        });
    };

    // Off: nothing runs for the missed slot.
    let d = Daemon::start(&env, &[]);
    ticked(&d);
    assert_eq!(d.stop().0, 0, "{}", d.log_text());
    assert_eq!(runs("daily"), 1, "catch_up = false ran the missed slot");
    assert_eq!(
        sqlite_scalar(&db, "SELECT COUNT(*) FROM slots WHERE check_id = 'daily'"),
        1
    );

    // On: the missed slot runs once, claimed by this replica.
    env.config(&config("sqlite://state.db", "catch_up = true", ""));
    let d = Daemon::start(&env, &[]);
    d.wait_for("the catch-up run", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "daily")]) >= 1.0).then_some(())
    });
    ticked(&d);
    assert_eq!(d.stop().0, 0, "{}", d.log_text());
    assert!(
        d.log_text().contains("Catching up slots missed while down"),
        "{}",
        d.log_text()
    );
    assert_eq!(runs("daily"), 2, "one catch-up run");
    let slots = sqlite_rows(
        &db,
        "SELECT fire_at, claimed_by FROM slots WHERE check_id = 'daily' ORDER BY fire_at",
    );
    assert_eq!(slots.len(), 2, "{slots:?}");
    assert_eq!(
        slots[1][0],
        format_time(fire),
        "the latest missed slot: {slots:?}"
    );
    assert!(d.is(&slots[1][1]), "claimed by the new daemon: {slots:?}");

    // Again: that slot is not missed any more.
    let d = Daemon::start(&env, &[]);
    ticked(&d);
    assert_eq!(d.stop().0, 0, "{}", d.log_text());
    assert_eq!(runs("daily"), 2, "a caught-up slot ran again");
}

/// Two replicas on one PostgreSQL store: each slot is claimed and run once, one incident,
/// each mail sent once; one replica killed with SIGKILL loses nothing, the other goes on.
#[test]
fn replicas_share_slots_incidents_and_mail_on_postgres() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&admin, "daemon_ha");
    let env = breaching("ha", &schema.url, "", "");
    let a = Daemon::start(&env, &[]);
    let b = Daemon::start(&env, &[]);
    let slots = || {
        pg_rows(
            &schema.url,
            "SELECT fire_at, claimed_by FROM slots WHERE check_id = 'ha' ORDER BY fire_at",
        )
    };

    a.wait_for("both replicas claiming slots, and the ticket", SOON, || {
        let s = slots();
        let by_a = s.iter().filter(|r| a.is(&r[1])).count();
        let by_b = s.iter().filter(|r| b.is(&r[1])).count();
        let mailed = schema.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent'");
        (by_a >= 1 && by_b >= 1 && s.len() >= 4 && mailed >= 1).then_some(())
    });

    let last_before_kill = slots().last().map(|r| r[0].clone()).unwrap_or_default();
    a.kill_hard();
    b.wait_for("the survivor claiming slots after the kill", SOON, || {
        let after = slots()
            .into_iter()
            .filter(|r| r[0] > last_before_kill && b.is(&r[1]))
            .count();
        let pending = schema.scalar("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'");
        (after >= 2 && pending == 0).then_some(())
    });
    let (code, _) = b.stop();
    assert_eq!(code, 0, "{}", b.log_text());

    // Slots: unique, both replicas, the survivor after the kill.
    let s = slots();
    assert_eq!(
        schema.scalar("SELECT COUNT(*) FROM (SELECT check_id, fire_at FROM slots GROUP BY check_id, fire_at HAVING COUNT(*) > 1) d"),
        0
    );
    assert!(
        s.iter().any(|r| a.is(&r[1])) && s.iter().any(|r| b.is(&r[1])),
        "{s:?}"
    );
    assert!(
        s.iter().any(|r| r[0] > last_before_kill && b.is(&r[1])),
        "{s:?}"
    );

    // Runs: each matches one slot it started in (within 2 s of the fire time), no slot has
    // two; only a slot of the killed replica may have none (its run was in flight; the
    // survivor takes it over only once the 30 s lease ran out, see `replicas.rs`).
    let runs = pg_rows(
        &schema.url,
        "SELECT started_at FROM runs WHERE check_id = 'ha' ORDER BY started_at",
    );
    let mut free: Vec<(DateTime<Utc>, String)> = s
        .iter()
        .map(|r| (parse_time(&r[0]), r[1].clone()))
        .collect();
    for run in &runs {
        let at = parse_time(&run[0]);
        let i = free
            .iter()
            .position(|(fire, _)| *fire <= at && at - *fire < chrono::Duration::seconds(2))
            .unwrap_or_else(|| {
                panic!(
                    "run at {} has no slot of its own\nslots {s:?}\nruns {runs:?}",
                    run[0]
                )
            });
        free.remove(i);
    }
    assert!(
        free.len() <= 1 && free.iter().all(|(_, by)| a.is(by)),
        "slots without a run: {free:?}\nruns {runs:?}"
    );
    assert!(runs.len() >= 5, "{runs:?}");

    // One incident, one ticket, sent once, one file.
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM incidents"), 1);
    let mails = mail_rows(pg_rows(&schema.url, OUTBOX_SQL));
    assert!(mails.iter().all(|m| m.state == "sent"), "{mails:?}");
    assert_eq!(
        mails.iter().filter(|m| m.kind == "opened").count(),
        1,
        "{mails:?}"
    );
    let files: Vec<i64> = eml_files(&env).into_iter().map(|(id, _)| id).collect();
    let ids: Vec<i64> = mails.iter().map(|m| m.id).collect();
    assert_eq!(files, ids, "one .eml per outbox row");
}

/// A check that counts to `n` in a recursive CTE: CPU-bound, about 0.85 s per million rows
/// (debug build), returning one row (a breach).
pub(crate) fn slow_check(env: &TestEnv, n: u32) {
    env.check_with(
        "slow",
        &["schedule = \"* * * * * *\""],
        &format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT COUNT(*) AS n FROM c"
        ),
    );
}

/// Waits until a claimed slot has no recorded run yet: a run is in flight.
fn in_flight(d: &Daemon, env: &TestEnv) {
    let db = state_db(env);
    d.wait_for("a run in flight", SOON, || {
        let slots = sqlite_scalar(&db, "SELECT COUNT(*) FROM slots");
        let runs = sqlite_scalar(&db, "SELECT COUNT(*) FROM runs");
        (slots > runs).then_some(())
    });
}

/// SIGINT while a check runs: the run finishes and is recorded, then the daemon exits 0.
#[test]
fn sigint_lets_the_run_in_flight_finish() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    slow_check(&env, 500_000);
    let d = Daemon::start(&env, &[]);
    in_flight(&d, &env);
    let (code, took) = d.stop_with("INT");
    assert_eq!(code, 0, "{}", d.log_text());
    assert!(
        d.log_text().contains("finishing what is in flight"),
        "{}",
        d.log_text()
    );
    let db = state_db(&env);
    let slots = sqlite_scalar(&db, "SELECT COUNT(*) FROM slots");
    let runs = sqlite_scalar(&db, "SELECT COUNT(*) FROM runs");
    assert_eq!(
        runs, slots,
        "every claimed slot's run is recorded (stopped in {took:?})"
    );
}

/// A second stop signal while the first waits for a run: the daemon exits at once (130).
#[test]
fn a_second_sigterm_exits_at_once() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    // Long enough that the run is still going when the second signal comes.
    slow_check(&env, 4_000_000);
    let d = Daemon::start(&env, &[]);
    in_flight(&d, &env);
    d.signal("TERM");
    d.wait_for("the first signal handled", SOON, || {
        d.log_text()
            .contains("finishing what is in flight")
            .then_some(())
    });
    let start = Instant::now();
    d.signal("TERM");
    let code = d.wait_exit(STOP_LIMIT, "the second SIGTERM");
    assert_eq!(code, 130, "{}", d.log_text());
    assert!(
        d.log_text().contains("Second stop signal"),
        "{}",
        d.log_text()
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// `/readyz` checks every warehouse: one that cannot be reached makes it 503 and names it;
/// `/healthz` is still 200.
#[test]
fn readyz_is_503_when_a_warehouse_is_unreachable() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config(
        "sqlite://state.db",
        "",
        "[connections.gone]\nurl = \"sqlite://missing/gone.db\"\n\
         [connections.bq]\nurl = \"bigquery://acme/sales\"\ncredentials_file = \"missing.json\"",
    ));
    let d = Daemon::start(&env, &[]);
    let r = d.get("/readyz");
    assert_eq!(r.status, 503, "{r:?}");
    let j = r.json();
    assert_eq!(j["ready"], false, "{j}");
    assert_eq!(j["state_store"], "ok", "{j}");
    assert_eq!(j["connections"]["warehouse"], "ok", "{j}");
    let gone = j["connections"]["gone"].as_str().unwrap_or_default();
    assert!(!gone.is_empty() && gone != "ok", "{j}");
    // An HTTP warehouse's ping names the connection and why (issue 12).
    let bq = j["connections"]["bq"].as_str().unwrap_or_default();
    assert!(
        bq.contains("connection \"bq\": authentication failed") && bq.contains("missing.json"),
        "{j}"
    );
    // The page shows each connection's state too.
    let page = d.get("/");
    assert!(
        page.body.contains("warehouse ✓")
            && page.body.contains("gone ✗")
            && page.body.contains("bq ✗"),
        "{}",
        page.body
    );
    assert_eq!(d.get("/healthz").status, 200);
    assert_eq!(d.stop().0, 0, "{}", d.log_text());
}

/// The daemon exits 2 at once on a taken port or an invalid config, saying why.
#[test]
fn refuses_to_start_on_a_taken_port_or_an_invalid_config() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let mut cmd = env.command();
    cmd.args(["--config", "dqwatch.toml", "daemon", "--listen", &addr]);
    let out = output_within(&mut cmd, Duration::from_secs(10))
        .unwrap_or_else(|o| panic!("the daemon ran on a taken port: {o:?}"));
    out.code(2).stderr_has(&format!("cannot listen on {addr}"));

    env.config(&config("sqlite://state.db", "", "").replace("\"UTC\"", "\"Mars/Base\""));
    let mut cmd = env.command();
    cmd.args([
        "--config",
        "dqwatch.toml",
        "daemon",
        "--listen",
        "127.0.0.1:0",
    ]);
    let out = output_within(&mut cmd, Duration::from_secs(10))
        .unwrap_or_else(|o| panic!("the daemon ran with an invalid config: {o:?}"));
    out.code(2)
        .stderr_has("dqwatch.toml")
        .stderr_has("Mars/Base");
}

/// A state store that is down at start: the daemon still answers `/healthz` (alive) and
/// `/readyz` with 503 (not ready) while it retries, rather than leaving requests hanging.
#[test]
fn health_answers_while_the_state_store_is_down() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    let down = format!("postgres://dqwatch@127.0.0.1:{}/dqwatch", free_port());
    env.config(&config(&down, "", ""));
    let d = Daemon::spawn(&env, &[]);
    d.await_signal_handlers();
    let probe = |path: &str| http_within(d.port, "GET", path, &[], None, SECOND).ok();
    d.wait_for(
        "/healthz while the state store is down",
        Duration::from_secs(5),
        || probe("/healthz").filter(|r| r.status == 200),
    );
    let ready = probe("/readyz").expect("/readyz answers");
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_ne!(ready.json()["state_store"], "ok", "{ready:?}");
    assert_eq!(d.stop().0, 0, "{}", d.log_text());
}

/// SIGTERM while the daemon waits for its state store: it stops at once and exits 0 (the
/// systemd unit promises "SIGTERM … exits 0").
#[test]
fn sigterm_stops_a_daemon_waiting_for_its_state_store() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    let down = format!("postgres://dqwatch@127.0.0.1:{}/dqwatch", free_port());
    env.config(&config(&down, "", ""));
    let d = Daemon::spawn(&env, &[]);
    d.await_signal_handlers();
    let (code, took) = d.stop();
    assert_eq!(code, 0, "stopped in {took:?}\n{}", d.log_text());
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");
}

/// Escalation `after = "1s"` goes out once to its recipients; reminders every second while
/// unacknowledged, none after an acknowledgement through the API.
#[test]
fn escalates_and_reminds_until_acknowledged() {
    let env = breaching(
        "esc",
        "sqlite://state.db",
        "api_token = \"${DQWATCH_API_TOKEN}\"",
        "[severity.P2]\nrenotify_every = \"1s\"\nescalation = [{ after = \"1s\", email = [\"boss@example.com\"] }]",
    );
    let d = Daemon::start(&env, &[("DQWATCH_API_TOKEN", TOKEN)]);
    let id = open_incident(&d)["id"].as_i64().expect("an incident id");

    d.wait_for("the escalation and two reminders", SOON, || {
        (!sent(&env, "escalated").is_empty() && sent(&env, "reminder").len() >= 2).then_some(())
    });
    let escalated = sent(&env, "escalated");
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    assert_eq!(escalated[0].to, "boss@example.com");
    let file = std::fs::read_to_string(env.path().join(format!("outbox/{}.eml", escalated[0].id)))
        .expect("the escalation .eml");
    assert!(
        file.contains("To: boss@example.com") && file.contains("Escalated"),
        "{file}"
    );
    assert!(
        sent(&env, "reminder")
            .iter()
            .all(|m| m.to == "oncall@example.com"),
        "reminders go to the routes"
    );

    let r = d.post(
        &format!("/api/incidents/{id}/ack"),
        Some(&format!("Bearer {TOKEN}")),
        r#"{"by": "bob"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let shown = d.get(&format!("/api/incidents/{id}")).json();
    let acked_at = shown["timeline"]
        .as_array()
        .and_then(|t| t.iter().find(|e| e["kind"] == "acknowledged"))
        .and_then(|e| e["at"].as_str())
        .map(parse_time)
        .expect("the acknowledgement on the timeline");

    // Three more runs of the per-second check: three escalator ticks have passed too.
    let runs_at_ack = d.metric("dqwatch_runs_total", &[("check", "esc")]);
    d.wait_for("three more runs after the acknowledgement", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "esc")]) >= runs_at_ack + 3.0).then_some(())
    });
    let shown = d.get(&format!("/api/incidents/{id}")).json();
    let late: Vec<&serde_json::Value> = shown["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter(|e| {
            e["kind"] == "reminder"
                && e["at"]
                    .as_str()
                    .map(parse_time)
                    .is_some_and(|t| t > acked_at)
        })
        .collect();
    assert!(
        late.is_empty(),
        "reminders after the acknowledgement: {late:?}"
    );
    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
    assert_eq!(sent(&env, "escalated").len(), 1, "escalated once");
    assert_eq!(sent(&env, "acknowledged").len(), 1);
}

/// The incidents page in headless Chromium: a real PNG screenshot, and the title in the
/// rendered DOM as text (escaped), not markup. With `DQWATCH_TEST_TESSERACT`, OCR of the
/// screenshot shows the title's `<b>x</b>` literally.
#[test]
fn incidents_page_renders_in_chromium() {
    let chromium = require_env!("DQWATCH_TEST_CHROMIUM");
    let env = breaching("orders", "sqlite://state.db", "", "");
    let d = Daemon::start(&env, &[]);
    open_incident(&d);
    d.wait_for("two runs on the page", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "orders")]) >= 2.0).then_some(())
    });
    let url = format!("http://127.0.0.1:{}/", d.port);
    let browser = |out: &str, extra: &[&str]| {
        let mut cmd = Command::new(&chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ])
        .arg(format!(
            "--user-data-dir={}",
            env.path().join(format!("chromium-{out}")).display()
        ))
        .args(extra)
        .arg(&url);
        let r = output_within(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|o| panic!("chromium hung: {o:?}"));
        assert_eq!(r.code, 0, "chromium failed: {}", r.stderr);
        r
    };

    let png = env.path().join("page.png");
    // Two browsers at once: a screenshot and the DOM after rendering.
    let shot = format!("--screenshot={}", png.display());
    let dom = std::thread::scope(|scope| {
        let dom = scope.spawn(|| browser("dom", &["--dump-dom"]).stdout);
        browser("shot", &[&shot]);
        dom.join().expect("the --dump-dom thread")
    });
    let bytes = std::fs::read(&png).expect("the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
    assert_eq!((width, height), (1200, 900));
    assert!(
        bytes.len() > 10_000,
        "a near-empty screenshot: {} bytes",
        bytes.len()
    );

    assert!(dom.contains("1 active incident"), "{dom}");
    assert!(
        dom.contains(&format!("[P2] orders — k={KEY_ESCAPED}")),
        "{dom}"
    );
    assert!(!dom.contains(KEY), "the key became markup:\n{dom}");

    match std::env::var("DQWATCH_TEST_TESSERACT") {
        Ok(tesseract) if !tesseract.is_empty() => {
            let mut cmd = Command::new(tesseract);
            cmd.arg(&png).arg("stdout");
            let text = output_within(&mut cmd, Duration::from_secs(60))
                .unwrap_or_else(|o| panic!("tesseract hung: {o:?}"))
                .stdout;
            assert!(text.contains("active incident"), "OCR:\n{text}");
            assert!(text.contains("orders"), "OCR:\n{text}");
            assert!(
                text.contains(KEY),
                "the key is shown as text:\nOCR:\n{text}"
            );
        }
        _ => skip(
            "daemon::incidents_page_renders_in_chromium (OCR)",
            "DQWATCH_TEST_TESSERACT not set",
        ),
    }
    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
}

// ---------------------------------------------------------------------------------------
// The state store stopped and started again (a PostgreSQL cluster of the test's own)

/// The PostgreSQL server's clock in the stored time format (the test reads no clock itself).
fn pg_now(url: &str) -> String {
    pg_rows(
        url,
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
    )[0][0]
        .clone()
}

/// `GET path` with a 3 s client timeout (the failure mode of a probe that hangs): the
/// response and how long it took.
fn probe(d: &Daemon, path: &str) -> (Response, Duration) {
    let start = Instant::now();
    let r =
        http_within(d.port, "GET", path, &[], None, Duration::from_secs(3)).unwrap_or_else(|e| {
            panic!(
                "GET {path} did not answer within 3 s: {e}\n--- log\n{}",
                d.log_text()
            )
        });
    (r, start.elapsed())
}

// See: issues/8 item 11
/// With the state store stopped, `/readyz` turns 503 and `/metrics` (`dqwatch_ready 0`) and
/// `/healthz` keep answering, at once: the probes read the last background check and never
/// wait for the store. Started again, the daemon is ready and records runs again; nothing
/// was resolved while the store was down.
#[test]
fn probes_answer_at_once_while_the_state_store_is_down() {
    let Some(pg) = PgCluster::start("daemon::probes_answer_at_once_while_the_state_store_is_down")
    else {
        return;
    };
    let url = pg.url();
    let env = breaching("down", &url, "", "");
    let d = Daemon::start(&env, &[]);
    let count = |sql: &str| -> i64 { pg_rows(&url, sql)[0][0].parse().expect("a count") };
    d.wait_for("the incident open and a mail sent", SOON, || {
        (count("SELECT CAST(COUNT(*) AS TEXT) FROM incidents WHERE state = 'open'") == 1
            && count("SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE state = 'sent'") >= 1)
            .then_some(())
    });
    let (ready, up) = probe(&d, "/readyz");
    assert_eq!(ready.status, 200, "{ready:?}");

    pg.stop();
    let stopped = Instant::now();
    let mut latencies: Vec<(&str, Duration)> = Vec::new();
    let down = d.wait_for("/readyz 503 with the store stopped", SOON, || {
        let (r, took) = probe(&d, "/readyz");
        latencies.push(("/readyz", took));
        (r.status == 503).then_some(r)
    });
    let unready_after = stopped.elapsed();
    assert_ne!(down.json()["state_store"], "ok", "{down:?}");
    assert_eq!(down.json()["connections"]["warehouse"], "ok", "{down:?}");
    for path in ["/metrics", "/healthz", "/readyz", "/metrics"] {
        let (r, took) = probe(&d, path);
        latencies.push((path, took));
        assert_eq!(
            r.status,
            if path == "/readyz" { 503 } else { 200 },
            "{path}: {r:?}"
        );
        if path == "/metrics" {
            assert_eq!(
                metric(&r.body, "dqwatch_ready", &[]),
                Some(0.0),
                "dqwatch_ready agrees with /readyz"
            );
        }
    }
    // The scheduler keeps trying: a slot it cannot claim is not run.
    d.wait_for("a failed attempt to claim a slot", SOON, || {
        d.log_text().contains("Cannot claim slots").then_some(())
    });
    let slowest = |path: &str| {
        let of: Vec<Duration> = latencies
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, t)| *t)
            .collect();
        (of.iter().max().copied().unwrap_or_default(), of.len())
    };
    eprintln!(
        "probes with the store up: /readyz {up:?}; store down: /readyz 503 {unready_after:?} after the stop; \
         slowest /readyz {:?}, /metrics {:?}, /healthz {:?} (slowest, probes)",
        slowest("/readyz"),
        slowest("/metrics"),
        slowest("/healthz")
    );

    pg.start_again();
    let back = pg_now(&url);
    d.wait_for("/readyz 200 again", Duration::from_secs(30), || {
        (probe(&d, "/readyz").0.status == 200).then_some(())
    });
    d.wait_for("a run recorded after the restart", Duration::from_secs(60), || {
        (count(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM runs WHERE check_id = 'down' AND started_at > '{back}'"
        )) >= 1)
            .then_some(())
    });
    let (r, _) = probe(&d, "/metrics");
    assert_eq!(metric(&r.body, "dqwatch_ready", &[]), Some(1.0), "{r:?}");
    assert_eq!(d.stop().0, 0, "{}", d.log_text());
    assert_eq!(
        count("SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE kind = 'resolved'"),
        0,
        "nothing resolved"
    );
    assert_eq!(
        count("SELECT CAST(COUNT(*) AS TEXT) FROM incidents WHERE state = 'open'"),
        1
    );
}

/// A config whose state store is `state`, with one check `b` that breaches at P2.
fn run_env(state: &str) -> TestEnv {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config(state, "", ""));
    env.check_with("b", &["keys = [\"k\"]"], "SELECT k, v FROM t");
    env
}

/// `dqwatch run ARGS` in `env`, killed (and failed) after 60 s.
fn run_in(env: &TestEnv, args: &[&str]) -> crate::util::Output {
    let mut cmd = env.command();
    cmd.args(["--config", "dqwatch.toml", "run"]).args(args);
    output_within(&mut cmd, Duration::from_secs(60))
        .unwrap_or_else(|o| panic!("dqwatch run hung: {o:?}"))
}

/// `run` against a state store that does not answer: every format reports the checks, the
/// exit code follows the outcomes, stderr and the JSON report say they were not recorded.
fn runs_without_the_store(env: &TestEnv, what: &str) {
    let out = run_in(env, &["--fail-on", "P2", "--format", "json"]);
    out.code(1)
        .stderr_has("outcomes were not recorded")
        .stderr_has("no mail was queued");
    let doc = out.json();
    assert_eq!(doc["recorded"], false, "{doc:#}");
    assert!(
        doc["record_error"]
            .as_str()
            .is_some_and(|e| e.contains("failed to open the state store")),
        "{doc:#}"
    );
    assert_eq!(crate::util::check_doc(&doc, "b")["status"], "breach");
    eprintln!("{what}: `run` took {:?}", out.elapsed);
    run_in(env, &["--fail-on", "P1", "--format", "json"])
        .code(0)
        .stderr_has("outcomes were not recorded");
    run_in(env, &["--fail-on", "P2"])
        .code(1)
        .stdout_has("b")
        .stdout_has("incidents: not recorded");
    run_in(env, &["--fail-on", "P2", "--format", "junit"])
        .code(1)
        .stdout_has("<failure");
    run_in(env, &["--fail-on", "P2", "--format", "github"])
        .code(1)
        .stdout_has("::warning title=dqwatch::outcomes not recorded");
}

// See: issues/8 item 14
/// A state store that refuses connections at the start of `run`: the checks still run and
/// are reported, the exit code follows them, and the outcomes are said not to be recorded.
#[test]
fn run_reports_and_exits_by_the_outcomes_when_the_state_store_refuses() {
    let down = format!("postgres://dqwatch@127.0.0.1:{}/dqwatch", free_port());
    let env = run_env(&down);
    runs_without_the_store(&env, "refused port");
}

// See: issues/8 item 14
/// The same with a PostgreSQL cluster that is stopped; started again, `run` records (one
/// incident) and says so in the JSON report.
#[test]
fn run_reports_and_exits_by_the_outcomes_when_the_state_store_is_stopped() {
    let Some(pg) = PgCluster::start(
        "daemon::run_reports_and_exits_by_the_outcomes_when_the_state_store_is_stopped",
    ) else {
        return;
    };
    let env = run_env(&pg.url());
    pg.stop();
    runs_without_the_store(&env, "stopped cluster");
    pg.start_again();
    let out = run_in(&env, &["--fail-on", "P2", "--format", "json"]);
    out.code(1);
    assert_eq!(out.json()["recorded"], true, "{}", out.stdout);
    assert!(out.json().get("record_error").is_none(), "{}", out.stdout);
    assert_eq!(
        pg_rows(&pg.url(), "SELECT CAST(COUNT(*) AS TEXT) FROM incidents")[0][0],
        "1"
    );
}
