//! A password is never printed (issues/8 item 4): a connection URL whose password holds
//! `?`, `/`, `@`, `#`, `:` and `%`, in every output format of `run`, in `validate --connect`,
//! in the state store and the mailed check-failure ticket, over the daemon's HTTP; the state
//! store's URL and the SMTP password too. A raw password that cannot be read unambiguously
//! is refused at load with a hint to percent-encode it, and is not echoed either.

use crate::require_env;
use crate::util::{Output, TestEnv, with_password, with_path};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The password, as a user would type it.
const RAW: &str = "p?a/ss@w#rd";
/// The same, percent-encoded as a URL needs it.
const ENCODED: &str = "p%3Fa%2Fss%40w%23rd";
/// Every form in which the password (or a telling piece of it) could leak.
const FORMS: [&str; 5] = [RAW, ENCODED, "p%3fa%2fss%40w%23rd", "ss@w#rd", "w%23rd"];

/// Fails when `text` holds any form of the password.
#[track_caller]
fn hidden(what: &str, text: &str) {
    for form in FORMS {
        assert!(!text.contains(form), "{what} shows {form:?}:\n{text}");
    }
}

#[track_caller]
fn hidden_out(what: &str, out: &Output) {
    hidden(&format!("{what} (stdout)"), &out.stdout);
    hidden(&format!("{what} (stderr)"), &out.stderr);
}

/// Every file under `dir` but the config (state store, outbox mails, reports, logs), read
/// lossily.
#[track_caller]
fn hidden_files(dir: &Path) {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name() != Some("dqwatch.toml".as_ref()) {
                let bytes = std::fs::read(&path).unwrap_or_default();
                hidden(
                    &path.display().to_string(),
                    &String::from_utf8_lossy(&bytes),
                );
            }
        }
    }
}

/// A config with a SQLite state store, check-failure tickets after one error, mail as files
/// to one route, and the connection `url`.
fn env_with(url: &str) -> TestEnv {
    let env = TestEnv::new();
    env.config(&format!(
        "state = \"sqlite://state.db\"\n\
         [incidents]\nerror_after = 1\n\
         [mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"file\"\ndir = \"outbox\"\n\
         [[routes]]\nemail = [\"oncall@example.com\"]\n\
         [connections.warehouse]\nurl = \"{url}\"\nstatement_timeout = \"5s\"\n"
    ));
    env.check_with(
        "orders/none",
        &["description = \"no orders\""],
        "SELECT 1 AS n",
    );
    env
}

/// Runs every output format, `validate --connect`, then reads back incidents, the outbox
/// and every file: the check cannot run (exit 3) and no form of the password shows.
fn run_everywhere(env: &TestEnv, shown_url: &str) {
    let text = env.run(["run"]);
    text.code(3).stdout_has(shown_url);
    hidden_out("run", &text);
    for format in ["json", "junit", "github"] {
        let out = env.run(["run", "--format", format]);
        out.code(3).stdout_has("****");
        hidden_out(&format!("run --format {format}"), &out);
    }
    let out = env.run(["run", "--format", "json", "--output", "report.json"]);
    hidden_out("run --output", &out);
    let out = env.run(["validate", "--connect"]);
    out.code(2);
    hidden_out("validate --connect", &out);

    let list = env.run(["incidents", "list", "--format", "json"]);
    list.code(0).stdout_has("check_failure");
    hidden_out("incidents list", &list);
    let id = list.json()[0]["id"].as_i64().expect("an incident id");
    for format in ["text", "json"] {
        let show = env.run(["incidents", "show", &id.to_string(), "--format", format]);
        show.code(0).stdout_has("****");
        hidden_out("incidents show", &show);
    }
    let outbox = env.run(["outbox", "list"]);
    hidden_out("outbox list", &outbox);
    let mails = std::fs::read_dir(env.path().join("outbox"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert!(
        mails > 0,
        "no check-failure ticket was mailed\n{}",
        outbox.stdout
    );
    hidden_files(env.path());
}

// See: issues/8 item 4
#[test]
fn a_password_is_never_printed_when_the_server_refuses_the_connection() {
    let env = env_with(&format!("postgres://postgres:{ENCODED}@127.0.0.1:1/test"));
    run_everywhere(&env, "postgres://postgres:****@127.0.0.1:1/test");
}

// See: issues/8 item 4
#[test]
fn a_password_is_never_printed_when_postgres_rejects_the_database() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let url = with_path(&with_password(&admin, ENCODED), "dqwatch_no_such_database");
    let env = env_with(&url);
    let out = env.run(["run"]);
    out.code(3).stdout_has("does not exist");
    run_everywhere(&env, ":****@");
}

// See: issues/8 item 4
#[test]
fn a_password_is_never_printed_when_mariadb_refuses_the_login() {
    let admin = require_env!("DQWATCH_TEST_MARIADB_URL");
    let url = with_path(&with_password(&admin, ENCODED), "dqwatch_no_such_database");
    let env = env_with(&url);
    let out = env.run(["run"]);
    out.code(3).stdout_has("denied");
    run_everywhere(&env, ":****@");
}

// See: issues/8 item 4
#[test]
fn a_raw_password_that_ends_the_host_early_is_refused_and_not_echoed() {
    let env = env_with(&format!("postgres://postgres:{RAW}@127.0.0.1:1/test"));
    for args in [
        vec!["run"],
        vec!["run", "--format", "json"],
        vec!["run", "--format", "junit"],
        vec!["run", "--format", "github"],
        vec!["validate", "--connect"],
        vec!["list"],
        vec!["daemon", "--listen", "127.0.0.1:0"],
    ] {
        let out = env.run(&args);
        out.code(2)
            .stderr_has("dqwatch.toml:11:7: error: the url of connection \"warehouse\" cannot be read unambiguously")
            .stderr_has("percent-encode");
        hidden_out(&args.join(" "), &out);
    }
    hidden_files(env.path());
}

// See: issues/8 item 4
#[test]
fn a_state_store_password_is_never_printed() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER);", "");
    env.check_with("a", &["description = \"x\""], "SELECT n FROM t");
    // Raw: refused at load.
    env.config(&format!(
        "state = \"postgres://postgres:{RAW}@127.0.0.1:1/x\"\n\
         [connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n"
    ));
    let out = env.run(["run"]);
    out.code(2)
        .stderr_has("dqwatch.toml:1:9: error: the state store url cannot be read unambiguously");
    hidden_out("run with a raw state url", &out);
    // Encoded, to a port nobody listens on: the store cannot be opened.
    env.config(&format!(
        "state = \"postgres://postgres:{ENCODED}@127.0.0.1:1/x\"\n\
         [connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n"
    ));
    // `run` still runs and reports its (passing) check, and says it recorded nothing.
    let out = env.run(["run"]);
    out.code(0).stderr_has("not recorded");
    hidden_out("run", &out);
    for args in [vec!["incidents", "list"], vec!["outbox", "list"]] {
        let out = env.run(&args);
        assert_ne!(out.code, 0, "{out:?}");
        hidden_out(&args.join(" "), &out);
    }
}

// See: issues/8 item 4
#[test]
fn a_state_store_password_is_never_printed_when_postgres_rejects_the_database() {
    let admin = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let state = with_path(&with_password(&admin, ENCODED), "dqwatch_no_such_database");
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER);", "");
    env.check_with("a", &["description = \"x\""], "SELECT n FROM t");
    env.config(&format!(
        "state = \"{state}\"\n[connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n"
    ));
    let out = env.run(["run"]);
    out.stderr_has("does not exist");
    hidden_out("run", &out);
}

// See: issues/8 item 4
#[test]
fn a_url_given_where_a_table_belongs_is_not_echoed_by_the_type_error() {
    let env = TestEnv::new();
    env.config(&format!(
        "[connections]\nwarehouse = \"postgres://postgres:{ENCODED}@127.0.0.1:1/x\"\n"
    ));
    let out = env.run(["validate"]);
    out.code(2).stderr_has("dqwatch.toml:2:");
    hidden_out("validate", &out);
}

// See: issues/8 item 4
#[test]
fn an_smtp_password_is_never_printed() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);", "");
    env.check_with("a", &["description = \"x\""], "SELECT n FROM t");
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    drop(server);
    env.config(&format!(
        "state = \"sqlite://state.db\"\n\
         [connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n\
         [mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\n\
         port = {port}\ntls = \"none\"\nusername = \"dq\"\npassword = \"{RAW}\"\ntimeout = \"2s\"\n\
         [[routes]]\nemail = [\"oncall@example.com\"]\n"
    ));
    let out = env.run(["run"]);
    out.code(0).stdout_has("mail delivery failed");
    hidden_out("run", &out);
    for args in [
        vec!["outbox", "list"],
        vec!["outbox", "deliver"],
        vec!["validate"],
    ] {
        let out = env.run(&args);
        hidden_out(&args.join(" "), &out);
    }
    hidden_files(env.path());
}

// ---------------------------------------------------------------------------------------
// The daemon

/// A `dqwatch daemon` child with its log in the temp dir, killed on drop. (Also used by
/// `config_errors` for SIGHUP reloads.)
pub(crate) struct Daemon {
    child: Child,
    /// Its HTTP port.
    pub port: u16,
    log: std::path::PathBuf,
    /// A loopback connection nobody writes to: reading it paces polling loops.
    quiet: (TcpListener, TcpStream),
}

impl Daemon {
    /// Starts `dqwatch daemon` in `env` and waits until it serves HTTP past the state store
    /// (its signal handlers are installed before that).
    pub(crate) fn start(env: &TestEnv) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = env.path().join(format!("daemon-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = env
            .command()
            .args(["--config", "dqwatch.toml", "daemon", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let quiet = TcpStream::connect(silent.local_addr().unwrap()).unwrap();
        quiet
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut daemon = Daemon {
            child,
            port,
            log,
            quiet: (silent, quiet),
        };
        daemon.wait_for("the daemon to serve", |d| {
            get(d.port, "/readyz").filter(|r| !r.contains("starting: waiting"))
        });
        daemon
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `kill -SIG`.
    pub(crate) fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Polls `probe` (paced) until it gives a value; fails after 30 s or if the daemon exits.
    pub(crate) fn wait_for<T>(
        &mut self,
        what: &str,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = probe(self) {
                return v;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the daemon exited ({status}) while waiting for {what}\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within 30 s\n{}",
                self.log()
            );
            let _ = (&self.quiet.1).read(&mut [0u8; 1]);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `GET` on a fresh connection; the whole response (head and body), or `None`.
pub(crate) fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    Some(String::from_utf8_lossy(&raw).into_owned())
}

// See: issues/8 item 4
#[test]
fn a_password_is_never_served_by_the_daemon() {
    let env = env_with(&format!("postgres://postgres:{ENCODED}@127.0.0.1:1/test"));
    env.check_with(
        "orders/every_second",
        &[
            "description = \"runs every second\"",
            "schedule = \"* * * * * *\"",
        ],
        "SELECT 1 AS n",
    );
    let mut daemon = Daemon::start(&env);
    let (ready, incidents) = daemon.wait_for("a check-failure incident", |d| {
        let ready = get(d.port, "/readyz").unwrap_or_default();
        let incidents = get(d.port, "/api/incidents").unwrap_or_default();
        (ready.contains("127.0.0.1:1") && incidents.contains("check_failure"))
            .then_some((ready, incidents))
    });
    assert!(ready.contains(":****@"), "{ready}");
    hidden("/readyz", &ready);
    hidden("/api/incidents", &incidents);
    for path in ["/", "/metrics", "/api/checks", "/api/incidents/1"] {
        hidden(path, &get(daemon.port, path).unwrap_or_default());
    }
    drop(daemon);
    hidden_files(env.path());
}

/// The secrets of the HTTP warehouses: a Snowflake password (with the characters that break
/// URLs) and private key, and a BigQuery service-account key, in every output format,
/// `validate --connect`, the state store and trace-level logs (where HTTP libraries log).
/// The Snowflake half needs the fakesnow stand-in (`DQWATCH_TEST_SNOWFLAKE_URL`).
#[test]
fn snowflake_and_bigquery_secrets_are_never_printed() {
    let env = TestEnv::new();
    let key = env.path().join("sf.p8");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        crate::util::skip(
            "redaction::snowflake_and_bigquery_secrets_are_never_printed",
            "openssl is not installed",
        );
        return;
    }
    let pem = std::fs::read_to_string(&key).unwrap();
    // A line of the key's body: any piece of it printed would show one.
    let key_line = pem.lines().nth(3).unwrap().to_string();
    env.write(
        "sa.json",
        serde_json::json!({"type": "service_account", "client_email": "dq@p.iam.gserviceaccount.com",
            "private_key": pem, "token_uri": "http://127.0.0.1:9/token"})
        .to_string(),
    );
    let snowflake = std::env::var("DQWATCH_TEST_SNOWFLAKE_URL")
        .ok()
        .filter(|u| !u.is_empty() && cfg!(feature = "snowflake-arrow"));
    // Without the stand-in, a port nothing listens on: the login fails, which must not print
    // the password either.
    let base = snowflake.unwrap_or_else(|| "http://127.0.0.1:9".into());
    env.config(&format!(
        "state = \"sqlite://state.db\"\n\
         [connections.sf_password]\n\
         url = \"snowflake://dq@acct/DQ_REDACT/PUBLIC\"\n\
         password = \"${{SF_PW}}\"\n\
         api_base = \"{base}\"\n\
         [connections.sf_key]\n\
         url = \"snowflake://dq@acct/DQ_REDACT/PUBLIC\"\n\
         private_key_file = \"sf.p8\"\n\
         api_base = \"{base}\"\n\
         [connections.bq]\n\
         url = \"bigquery://p/d\"\n\
         credentials_file = \"sa.json\"\n\
         api_base = \"http://127.0.0.1:9/bigquery/v2\"\n"
    ));
    for conn in ["sf_password", "sf_key", "bq"] {
        let header = format!("connection = \"{conn}\"");
        env.check_with(
            &format!("c_{conn}"),
            &[&header, "metric = \"n\"", "[thresholds]", "P1 = \"> 1\""],
            "SELECT 1 AS n",
        );
    }
    let secrets = [
        RAW.to_string(),
        ENCODED.to_string(),
        key_line,
        "PRIVATE KEY".into(),
    ];
    let runs: [&[&str]; 4] = [
        &["run", "--format", "json"],
        &["run", "--format", "text"],
        &["run", "--format", "junit"],
        &["validate", "--connect"],
    ];
    for args in runs {
        let mut cmd = env.command();
        cmd.arg("--config")
            .arg("dqwatch.toml")
            .args(args)
            .env("SF_PW", RAW)
            .env("RUST_LOG", "trace");
        let out = crate::util::output(&mut cmd);
        for s in &secrets {
            assert!(
                !out.stdout.contains(s.as_str()) && !out.stderr.contains(s.as_str()),
                "{args:?} printed {s:?}:\n{}\n{}",
                out.stdout,
                out.stderr
            );
        }
    }
    hidden_files(env.path());
    let state = std::fs::read(env.path().join("state.db")).unwrap_or_default();
    let state = String::from_utf8_lossy(&state);
    assert!(
        !state.contains(secrets[2].as_str()),
        "the state store holds the key"
    );
}
