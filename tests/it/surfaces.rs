//! The surfaces other tools read (issue 14): Prometheus text checked by `promtool`
//! (`DQWATCH_TEST_PROMTOOL`), JUnit checked by `xmllint --schema` (`DQWATCH_TEST_XMLLINT`),
//! GitHub annotations, the JSON report, shell completions, colours, `init`, and the mails'
//! headers.

use crate::daemon::{Daemon, WAREHOUSE, config};
use crate::require_env;
use crate::util::{TestEnv, dqwatch, output};
use std::io::Write as _;
use std::process::{Command, Stdio};

/// A daemon whose one check never fires during the test (first of January only).
fn quiet_daemon() -> (TestEnv, Daemon) {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    env.check_with(
        "quiet",
        &["schedule = \"0 0 1 1 *\"", "keys = [\"k\"]"],
        "SELECT k, v FROM t",
    );
    let d = Daemon::start(&env, &[]);
    (env, d)
}

/// `promtool check metrics` on `text`: (success, its output).
fn promtool(bin: &str, text: &str) -> (bool, String) {
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The family names in the order a scrape lists them.
fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

// See: issues/14 Prometheus
/// A live scrape of a real daemon passes `promtool check metrics` with no finding: every family
/// has HELP and TYPE, the documented counters and histograms exist from start-up at 0, the
/// families come in name order, the content type names UTF-8, and `dqwatch_ready` says what
/// `/readyz` says.
#[test]
fn a_live_scrape_passes_promtool_with_every_family_from_start_up() {
    let promtool_bin = require_env!("DQWATCH_TEST_PROMTOOL");
    let (_env, d) = quiet_daemon();
    let scrape = d.get("/metrics");
    assert_eq!(scrape.status, 200, "{scrape:?}");
    assert!(
        scrape
            .head
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        scrape.head
    );
    let text = scrape.body;
    let (ok, findings) = promtool(&promtool_bin, &text);
    assert!(
        ok && findings.trim().is_empty(),
        "promtool: {findings}\n{text}"
    );
    for family in [
        "dqwatch_escalations_total",
        "dqwatch_mail_sent_total",
        "dqwatch_slots_skipped_total",
        "dqwatch_slots_taken_over_total",
    ] {
        assert!(
            text.lines().any(|l| l == format!("{family} 0")),
            "{family} is not exported at 0 from start-up\n{text}"
        );
        assert!(text.contains(&format!("# HELP {family} ")), "{text}");
    }
    for family in [
        "dqwatch_run_duration_seconds",
        "dqwatch_scheduler_lag_seconds",
    ] {
        assert!(
            text.lines().any(|l| l == format!("{family}_count 0")),
            "{family} is not exported at 0 from start-up\n{text}"
        );
    }
    for outcome in ["pass", "breach", "error"] {
        assert_eq!(
            crate::daemon::metric(
                &text,
                "dqwatch_runs_total",
                &[("check", "quiet"), ("outcome", outcome)]
            ),
            Some(0.0),
            "{text}"
        );
    }
    let names = families(&text);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "families in name order");
    assert_eq!(
        names,
        families(&d.get("/metrics").body),
        "the same order twice"
    );
    let ready = d.get("/readyz");
    let gauge = crate::daemon::metric(&d.get("/metrics").body, "dqwatch_ready", &[]);
    assert_eq!(
        gauge,
        Some(if ready.status == 200 { 1.0 } else { 0.0 }),
        "{ready:?}"
    );
}

/// A warehouse with two keys breaching at P2 (a check without `metric` breaches at P2 per row)
/// and a volume rule that reads dqwatch's stored history.
fn p2_and_history() -> TestEnv {
    let env = TestEnv::sqlite(
        "CREATE TABLE t (k TEXT, v REAL); INSERT INTO t VALUES ('a', 1), ('b', 2);\
         CREATE TABLE ev (kind TEXT);",
        "",
    );
    env.check_with("mild", &["keys = [\"k\"]"], "SELECT k, v FROM t");
    env.write(
        "checks/vol.toml",
        "rule = \"volume_anomaly\"\n[params]\ntable = \"ev\"\n",
    );
    env
}

// See: issues/14 CI reports
/// A P2 breach under `--fail-on P1` leaves the job green, so the JUnit report must not show a
/// failure either: the breaching keys go to `<system-out>`.
#[test]
fn junit_breach_below_fail_on_is_not_a_failure() {
    let env = p2_and_history();
    let out = env.run([
        "run",
        "--no-incidents",
        "--format",
        "junit",
        "--fail-on",
        "P1",
    ]);
    out.code(0);
    let xml = &out.stdout;
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(
        xml.contains("<system-out>2 breaching keys below --fail-on P1"),
        "{xml}"
    );
    assert!(xml.contains("P2 [k=a]"), "{xml}");
    // At --fail-on P2 the same breach fails.
    let out = env.run([
        "run",
        "--no-incidents",
        "--format",
        "junit",
        "--fail-on",
        "P2",
    ]);
    out.code(1);
    assert!(out.stdout.contains("<failure"), "{}", out.stdout);
}

// See: issues/14 CI reports
/// The JUnit report validates against the schema Jenkins and GitLab expect
/// (tests/fixtures/junit/junit.xsd): testsuite `time`, `timestamp` and `hostname`, no `skipped`
/// attribute on `<testsuites>`, skipped checks as `<skipped/>`.
#[test]
fn junit_validates_against_the_junit_schema() {
    let xmllint = require_env!("DQWATCH_TEST_XMLLINT");
    let env = p2_and_history();
    env.check_with("bad", &[], "SELECT * FROM missing_table");
    let report = env.path().join("report.xml");
    env.run([
        "run",
        "--no-incidents",
        "--format",
        "junit",
        "--fail-on",
        "P2",
        "--output",
        "report.xml",
    ])
    .code(1);
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(xml.contains("<skipped"), "{xml}");
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/junit/junit.xsd"
    );
    let out = Command::new(xmllint)
        .args(["--noout", "--schema", schema])
        .arg(&report)
        .output()
        .expect("run xmllint");
    assert!(
        out.status.success(),
        "xmllint: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// See: issues/14 CI reports
/// `run --no-incidents` skips the history rules (which need the state store) instead of
/// failing the job with exit 3: text, JSON and JUnit say "skipped".
#[test]
fn no_incidents_skips_history_rules_without_failing() {
    let env = p2_and_history();
    env.run(["run", "--no-incidents"])
        .code(0)
        .stdout_has("○ skip   vol  skipped:")
        .stdout_has("1 skipped");
    let json = env.run(["run", "--no-incidents", "--format", "json"]);
    let doc = json.code(0).json();
    let vol = crate::util::check_doc(&doc, "vol");
    assert_eq!(vol["status"], "skipped", "{vol}");
    assert_eq!(doc["summary"]["skipped"], 1, "{doc}");
    assert_eq!(doc["status"], "clean", "{doc}");
    let junit = env.run(["run", "--no-incidents", "--format", "junit"]);
    assert!(
        junit.code(0).stdout.contains("<skipped"),
        "{}",
        junit.stdout
    );
}

// See: issues/14 CI reports
/// The JSON report carries `schema_version`.
#[test]
fn json_report_has_a_schema_version() {
    let env = p2_and_history();
    let doc = env
        .run(["run", "--no-incidents", "--format", "json"])
        .json();
    assert_eq!(doc["schema_version"], 1, "{doc}");
}

// See: issues/14 CI reports
/// GitHub resolves `file=` against the repository root, whatever folder the job runs in, and
/// shows only 10 annotations of a type per step: one annotation per check, listing its keys.
#[test]
fn github_annotations_are_per_check_and_relative_to_the_repository_root() {
    let env = p2_and_history();
    // The project lives in `dq/` of a git repository; the job runs from `dq/`.
    let repo = TestEnv::new();
    crate::util::copy_tree(env.path(), &repo.path().join("dq"));
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(repo.path())
        .status();
    if !git.is_ok_and(|s| s.success()) {
        crate::util::skip("surfaces::github_annotations", "git not available");
        return;
    }
    let mut cmd = dqwatch(&repo.path().join("dq"));
    cmd.args([
        "--config",
        "dqwatch.toml",
        "run",
        "--no-incidents",
        "--format",
        "github",
    ]);
    let out = output(&mut cmd);
    let annotations: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning") || l.starts_with("::error"))
        .collect();
    assert_eq!(annotations.len(), 1, "one per check:\n{}", out.stdout);
    let line = annotations[0];
    assert!(
        line.starts_with("::warning file=dq/checks/mild.sql,"),
        "{line}"
    );
    assert!(
        line.contains("P2 [k=a]") && line.contains("P2 [k=b]"),
        "{line}"
    );
    // Outside git, relative to the current folder.
    let out = env.run(["run", "--no-incidents", "--format", "github"]);
    assert!(
        out.stdout.contains("::warning file=checks/mild.sql,"),
        "{}",
        out.stdout
    );
}

// See: issues/14 command line
/// On a terminal the text report is coloured (severity, ✓/✗); piped, or with `NO_COLOR`, it is
/// plain. `script` gives the run a pseudo-terminal.
#[test]
fn colours_on_a_terminal_only() {
    let env = p2_and_history();
    let piped = env.run(["run", "--no-incidents"]);
    assert!(!piped.stdout.contains('\x1b'), "{}", piped.stdout);
    let on_tty = |no_color: Option<&str>| {
        let mut cmd = Command::new("script");
        cmd.current_dir(env.path())
            .args(["-qec"])
            .arg(format!(
                "{} --config dqwatch.toml run --no-incidents",
                crate::util::BIN
            ))
            .arg("/dev/null")
            .env_remove("NO_COLOR")
            .env("TERM", "xterm");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        cmd.output()
    };
    let Ok(tty) = on_tty(None) else {
        crate::util::skip(
            "surfaces::colours_on_a_terminal_only",
            "script not available",
        );
        return;
    };
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.contains("\x1b[33m✗ P2\x1b[0m"), "{text:?}");
    let plain = on_tty(Some("1")).unwrap();
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        text.contains("✗ P2") && !text.contains("\x1b[33m"),
        "{text:?}"
    );
}
