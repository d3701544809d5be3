//! Mail through a real SMTP server on loopback: aiosmtpd (aio-libs, `pip install
//! aiosmtpd==1.4.6`), started by the test on a port it picks. Needs `DQWATCH_TEST_AIOSMTPD=1`.
// See: issues/3

use crate::require_env;
use crate::util::{TestEnv, sqlite_exec};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An aiosmtpd process writing a Maildir; killed on drop.
struct Smtp {
    child: Child,
    maildir: PathBuf,
}

impl Smtp {
    fn start(port: u16, maildir: &Path, extra: &[&str]) -> Smtp {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(maildir.parent().unwrap_or(maildir))
            .spawn()
            .expect("python3 -m aiosmtpd");
        // Readiness: the port accepts connections (bounded, no fixed sleep).
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on port {port}"
            );
            std::thread::yield_now();
        }
        Smtp {
            child,
            maildir: maildir.to_path_buf(),
        }
    }

    fn messages(&self) -> Vec<String> {
        let dir = self.maildir.join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env(port: u16) -> TestEnv {
    let env = TestEnv::sqlite(
        "CREATE TABLE t (k TEXT, v INT); INSERT INTO t VALUES ('a', 5), ('b', 7);",
        "",
    );
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "{cfg}\n[mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         [[routes]]\nemail = [\"oncall@example.com\"]\n"
    ));
    env.check_with(
        "t",
        &[
            "keys = [\"k\"]",
            "metric = \"v\"",
            "[thresholds]",
            "P2 = \"> 1\"",
        ],
        "SELECT k, v FROM t",
    );
    env
}

#[test]
fn delivers_to_a_real_server_with_threading() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(port);
    let server = Smtp::start(port, &env.path().join("maildir"), &[]);
    env.run(["run"]).code(0).stdout_has("2 queued, 2 sent");
    sqlite_exec(
        &env.path().join("warehouse.db"),
        "UPDATE t SET v = 0 WHERE k = 'a'",
    );
    env.run(["run"]).code(0).stdout_has("1 resolved");
    let msgs = server.messages();
    assert_eq!(msgs.len(), 3);
    assert!(
        msgs.iter()
            .all(|m| m.contains("X-RcptTo: oncall@example.com"))
    );
    let opened = msgs
        .iter()
        .find(|m| m.contains("Subject: [P2] t") && m.contains("k=a"))
        .unwrap();
    let root = opened
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap();
    let resolved = msgs
        .iter()
        .find(|m| m.contains("Subject: Re: [P2] t"))
        .unwrap();
    assert!(resolved.contains(&format!("In-Reply-To: {root}")));
}

#[test]
fn smtp_down_then_up_loses_nothing_and_sends_nothing_twice() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(port);
    // Down: the run reports by its outcomes, the mails wait.
    let out = env.run(["run"]);
    out.code(0)
        .stdout_has("2 queued, 0 sent, 2 pending")
        .stdout_has("mail delivery failed");
    env.run(["outbox", "list", "--state", "pending"])
        .code(0)
        .stdout_has("last error: SMTP 127.0.0.1");
    // Up: the next run delivers them, once.
    let server = Smtp::start(port, &env.path().join("maildir"), &[]);
    env.run(["run"]).code(0).stdout_has("0 queued, 2 sent");
    env.run(["run"]).code(0).stdout_has("0 queued, 0 sent");
    env.run(["outbox", "deliver"]).code(0).stdout_has("0 sent");
    let msgs = server.messages();
    assert_eq!(msgs.len(), 2);
    let mut ids: Vec<&str> = msgs
        .iter()
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Message-ID: ")))
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 2);
}

#[test]
fn a_tls_only_relay_refusing_plaintext_is_the_transport_s_problem() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(port);
    // See: issues/8 item 5
    // A server that requires STARTTLS refuses a plaintext send with 530: a permanent reply,
    // but about the session, not a mail. No mail dies of a transport misconfiguration.
    let certs = env.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .current_dir(&certs)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let tls = Smtp::start(
        port,
        &env.path().join("maildir"),
        &["--tlscert", "certs/cert.pem", "--tlskey", "certs/key.pem"],
    );
    // aiosmtpd resolves the cert paths against its working directory.
    let _ = &tls;
    env.run(["run"]).code(0).stdout_has("0 sent, 2 pending");
    env.run(["run"]).code(0).stdout_has("0 sent, 2 pending");
    env.run(["outbox", "list", "--state", "pending"])
        .code(0)
        .stdout_has("530");
    env.run(["outbox", "list", "--state", "dead"])
        .code(0)
        .stdout_has("outbox is empty");
    drop(tls);
    // The relay is fixed: both go out with no `outbox retry`.
    let plain = Smtp::start(port, &env.path().join("maildir2"), &[]);
    env.run(["outbox", "deliver"]).code(0).stdout_has("2 sent");
    assert_eq!(plain.messages().len(), 2);
    env.run(["outbox", "retry", "1"])
        .code(2)
        .stderr_has("no pending or dead message 1");
}

/// Makes a CA and a leaf certificate for 127.0.0.1 / localhost (rustls refuses a bare
/// self-signed server certificate).
fn certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dq-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}

#[test]
fn starttls_with_a_private_ca() {
    let _ = require_env!("DQWATCH_TEST_AIOSMTPD");
    let port = free_port();
    let env = env(port);
    certificates(&env.path().join("certs"));
    let cfg = env.read("dqwatch.toml").replace(
        "tls = \"none\"",
        "tls = \"starttls\"\nca_file = \"certs/ca.pem\"",
    );
    env.config(&cfg);
    let server = Smtp::start(
        port,
        &env.path().join("maildir"),
        &["--tlscert", "certs/leaf.pem", "--tlskey", "certs/leaf.key"],
    );
    env.run(["run"]).code(0).stdout_has("2 queued, 2 sent");
    assert_eq!(server.messages().len(), 2);
    // Without the CA the relay's certificate is not trusted: the mail waits, nothing is lost.
    let env2 = self::env(port);
    let cfg = env2
        .read("dqwatch.toml")
        .replace("tls = \"none\"", "tls = \"starttls\"");
    env2.config(&cfg);
    env2.run(["run"])
        .code(0)
        .stdout_has("2 pending")
        .stdout_has("mail delivery failed");
}
