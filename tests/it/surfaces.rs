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

/// A state store, `.eml` mail, and a check breaching at P2 on one key.
fn mailing() -> TestEnv {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    env.check_with("m", &["keys = [\"k\"]"], "SELECT k, v FROM t");
    env
}

/// The `.eml` files of `env`'s outbox, by outbox id.
fn emls(env: &TestEnv) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(env.path().join("outbox"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p: &std::path::PathBuf| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<i64>().ok())
    });
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

// See: issues/14 mail
/// Every mail says `Auto-Submitted: auto-generated` (RFC 3834), so that out-of-office replies
/// do not land on on-call lists; the acknowledgement mail suggests resolving, not `ack`.
#[test]
fn every_mail_is_auto_submitted_and_the_ack_mail_does_not_suggest_ack() {
    let env = mailing();
    env.run(["run"]).code(0);
    env.run(["incidents", "ack", "1", "--by", "alice"]).code(0);
    env.run([
        "incidents",
        "resolve",
        "1",
        "--by",
        "alice",
        "--note",
        "fixed",
    ])
    .code(0);
    let mails = emls(&env);
    assert_eq!(mails.len(), 3, "opened, acknowledged, resolved");
    for mail in &mails {
        assert!(
            mail.lines().any(|l| l == "Auto-Submitted: auto-generated"),
            "{mail}"
        );
    }
    let ack = &mails[1];
    assert!(ack.contains("acknowledged by alice"), "{ack}");
    assert!(!ack.contains("incidents ack"), "{ack}");
    assert!(ack.contains("dqwatch incidents resolve 1"), "{ack}");
}

// See: issues/14 command line
/// The CLI and the API agree: resolving by hand needs a note that says something.
#[test]
fn resolve_needs_a_note_in_the_cli_and_the_api() {
    let env = mailing();
    env.run(["run"]).code(0);
    env.run(["incidents", "resolve", "1", "--by", "alice", "--note", " "])
        .code(2)
        .stderr_has("a note is required");
    let env = crate::daemon::breaching("api", "sqlite://state.db", "api_token = \"t0ken\"", "");
    let d = Daemon::start(&env, &[]);
    let id = crate::daemon::open_incident(&d)["id"].as_i64().unwrap();
    let resolve = format!("/api/incidents/{id}/resolve");
    for body in [r#"{"by": "alice"}"#, r#"{"by": "alice", "note": "  "}"#] {
        let r = d.post(&resolve, Some("Bearer t0ken"), body);
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.body.contains("a note is required"), "{r:?}");
    }
    let r = d.post(&resolve, None, r#"{"by": "alice"}"#);
    assert_eq!(r.status, 401, "authentication first: {r:?}");
    let r = d.post(
        &resolve,
        Some("Bearer t0ken"),
        r#"{"by": "alice", "note": "fixed"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
}

// See: issues/14 command line
/// `dqwatch init` makes a project that `validate` and `run` accept as written, in an empty
/// (or new) folder, and refuses a folder with anything in it.
#[test]
fn init_scaffolds_a_project_that_validates_and_runs() {
    let env = TestEnv::new();
    let mut cmd = dqwatch(env.path());
    cmd.args(["init", "proj"]);
    output(&mut cmd).code(0).stdout_has("dqwatch validate");
    let proj = env.path().join("proj");
    for file in [
        "dqwatch.toml",
        "checks/example.sql",
        "templates/opened.txt.hbs",
    ] {
        assert!(proj.join(file).is_file(), "{file}");
    }
    let mut cmd = dqwatch(&proj);
    cmd.arg("validate");
    output(&mut cmd).code(0);
    let mut cmd = dqwatch(&proj);
    cmd.args(["run", "--no-incidents"]);
    output(&mut cmd).code(0).stdout_has("1 check in");
    // Never over an existing project.
    let before = std::fs::read_to_string(proj.join("dqwatch.toml")).unwrap();
    let mut cmd = dqwatch(&proj);
    cmd.arg("init");
    output(&mut cmd).code(2).stderr_has("is not empty");
    assert_eq!(
        std::fs::read_to_string(proj.join("dqwatch.toml")).unwrap(),
        before
    );
}

// See: issues/14 command line
/// `dqwatch completions SHELL` prints a script the shell parses (`bash -n`; zsh and fish when
/// installed) that completes the subcommands.
#[test]
fn completions_for_bash_zsh_and_fish() {
    let env = TestEnv::new();
    for (shell, marker) in [
        ("bash", "_dqwatch"),
        ("zsh", "#compdef dqwatch"),
        ("fish", "complete -c dqwatch"),
    ] {
        let mut cmd = dqwatch(env.path());
        cmd.args(["completions", shell]);
        let out = output(&mut cmd);
        out.code(0).stdout_has(marker).stdout_has("validate");
        let script = env.write(&format!("dqwatch.{shell}"), &out.stdout);
        let Ok(check) = Command::new(shell).arg("-n").arg(&script).output() else {
            crate::util::skip("surfaces::completions", &format!("{shell} not installed"));
            continue;
        };
        assert!(
            check.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

// See: issues/14 mail and service
/// The shipped systemd unit is hardened (`systemd-analyze security` rates it at most 2.0 when
/// systemd-analyze is installed) and the config it names uses absolute paths inside its
/// StateDirectory.
#[test]
fn the_systemd_unit_is_hardened_and_its_config_absolute() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/config/dqwatch.service")).unwrap();
    for line in [
        "CapabilityBoundingSet=",
        "PrivateDevices=true",
        "ProtectKernelTunables=true",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "StateDirectory=dqwatch",
        "ExecStart=/usr/local/bin/dqwatch --config /etc/dqwatch/dqwatch.toml --log-format json daemon",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let cfg: toml::Table = toml::from_str(
        &std::fs::read_to_string(format!("{root}/config/etc/dqwatch.toml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        cfg["state"].as_str(),
        Some("sqlite:///var/lib/dqwatch/state.db")
    );
    assert_eq!(cfg["mail"]["dir"].as_str(), Some("/var/lib/dqwatch/outbox"));
    for key in ["checks_dir", "templates_dir"] {
        assert!(cfg[key].as_str().unwrap().starts_with('/'), "{key}");
    }
    let Ok(out) = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(format!("{root}/config/dqwatch.service"))
        .output()
    else {
        crate::util::skip(
            "surfaces::the_systemd_unit",
            "systemd-analyze not installed",
        );
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for dqwatch.service: ")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    assert!(score <= 2.0, "exposure {score}:\n{text}");
}

// See: issues/14 command line
/// A schedule that names no date (`0 0 31 2 *`) is a validate error at its file and line, not
/// a check the daemon silently never runs.
#[test]
fn a_schedule_that_never_fires_is_a_validate_error() {
    let env = TestEnv::sqlite("CREATE TABLE t (k TEXT);", "");
    env.check_with("feb", &["schedule = \"0 0 31 2 *\""], "SELECT k FROM t");
    env.run(["validate"])
        .code(2)
        .stderr_has("checks/feb.sql:2:15: error: cron \"0 0 31 2 *\" never fires");
}

// See: issues/14 command line
/// `validate --connect` checks that the columns a check judges (`keys`, `metric`,
/// `severity_column`) are in the prepared query's result, not only that it prepares: a wrong
/// metric column used to pass validate and fail every run.
#[test]
fn validate_connect_checks_the_judged_columns_exist() {
    let env = TestEnv::sqlite("CREATE TABLE t (day TEXT, gap REAL, risk TEXT);", "");
    env.check_with(
        "wrong",
        &[
            "keys = [\"dya\"]",
            "metric = \"gapp\"",
            "[thresholds]",
            "P2 = \"> 1\"",
        ],
        "SELECT day, gap FROM t",
    );
    env.check_with(
        "label",
        &[
            "severity_column = \"riks\"",
            "[severity_map]",
            "HIGH = \"P1\"",
        ],
        "SELECT risk FROM t",
    );
    env.check_with(
        "right",
        &[
            "keys = [\"DAY\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P2 = \"> 1\"",
        ],
        "SELECT day, gap FROM t",
    );
    let out = env.run(["validate", "--connect"]);
    out.code(2)
        .stderr_has("checks/wrong.sql:6:1: error: keys column \"dya\" is not in the query's result")
        .stderr_has(
            "checks/wrong.sql:6:1: error: metric column \"gapp\" is not in the query's result",
        )
        .stderr_has("hint: the query returns: day, gap")
        .stderr_has("checks/label.sql:5:1: error: severity_column column \"riks\"")
        .stdout_has("✗ warehouse  2 of 3 checks do not prepare or lack a judged column");
    assert!(!out.stderr.contains("right.sql"), "{}", out.stderr);
    // Without --connect nothing is prepared, so nothing is known about columns.
    env.run(["validate"]).code(0);
}

// See: issues/14 command line
/// `incidents stats` lines its columns up whatever the group names and durations: every row of
/// the table is as wide as the header ("category quality_degradation" overflowed a fixed width).
#[test]
fn incidents_stats_columns_are_aligned() {
    let env = mailing();
    env.run(["run"]).code(0);
    env.run(["incidents", "ack", "1", "--by", "alice"]).code(0);
    let out = env.run(["incidents", "stats"]);
    let text = &out.code(0).stdout;
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("GROUP"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("category quality_degradation")),
        "{text}"
    );
    let width = table[0].chars().count();
    for line in &table {
        assert_eq!(line.chars().count(), width, "misaligned:\n{text}");
    }
    // The header's column ends line up with the cells' ends.
    let ends = |l: &str| -> Vec<usize> {
        let chars: Vec<char> = l.chars().collect();
        (0..chars.len())
            .filter(|&i| chars[i] != ' ' && chars.get(i + 1).is_none_or(|c| *c == ' '))
            .collect()
    };
    let header_ends = ends(table[0]);
    for line in &table[1..] {
        let e = ends(line);
        assert_eq!(
            e[e.len() - 8..],
            header_ends[header_ends.len() - 8..],
            "{text}"
        );
    }
}

// See: issues/14 command line
/// A slot skipped because the previous run still goes is counted in
/// `dqwatch_slots_skipped_total` and logged at debug level only: at the default levels one
/// slow per-second check no longer writes a WARN every second.
#[test]
fn a_skipped_slot_is_a_metric_not_a_warning() {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    env.config(&config("sqlite://state.db", "", ""));
    // About 3 s a run on a 2-core machine: every run outlasts the next two slots.
    crate::daemon::slow_check(&env, 12_000_000);
    let d = Daemon::start(&env, &[]);
    d.wait_for("two skipped slots", crate::daemon::SOON, || {
        (d.metric("dqwatch_slots_skipped_total", &[]) >= 2.0).then_some(())
    });
    let log = d.log_text();
    assert!(!log.contains("Slot skipped"), "{log}");
}

// See: issues/14 mail
/// The metric is printed in its unit (a duration threshold: `1h 30m`, not `5400`) in every mail
/// of an incident: opened, acknowledged, resolved.
#[test]
fn every_mail_prints_the_metric_in_its_unit() {
    let env = TestEnv::sqlite(
        "CREATE TABLE feeds (feed TEXT, lag_seconds REAL); INSERT INTO feeds VALUES ('orders', 5400);",
        "",
    );
    env.config(&config("sqlite://state.db", "", ""));
    env.check_with(
        "fresh",
        &[
            "keys = [\"feed\"]",
            "metric = \"lag_seconds\"",
            "[thresholds]",
            "P2 = \"> 1h\"",
        ],
        "SELECT feed, lag_seconds FROM feeds",
    );
    env.run(["run"]).code(0);
    env.run(["incidents", "ack", "1", "--by", "alice"]).code(0);
    env.run([
        "incidents",
        "resolve",
        "1",
        "--by",
        "alice",
        "--note",
        "fixed",
    ])
    .code(0);
    let mails = emls(&env);
    assert_eq!(mails.len(), 3);
    for mail in &mails {
        let text = mail.split("Content-Type: text/html").next().unwrap();
        assert!(text.contains("1h 30m (threshold P2 > 1h)"), "{mail}");
    }
}

// See: issues/14 command line
/// On a terminal the progress bar shows while the first check still runs and names it
/// (`running: slow`); it used to name a check only once it had finished.
#[test]
fn the_progress_bar_names_the_running_checks() {
    let env = TestEnv::sqlite("CREATE TABLE t (k TEXT);", "");
    // About 1.7 s of CPU in a debug build: many redraws of a 100 ms tick.
    env.check_with(
        "slow",
        &[],
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT x FROM c WHERE x < 0",
    );
    let Ok(out) = Command::new("script")
        .current_dir(env.path())
        .args(["-qec"])
        .arg(format!(
            "{} --config dqwatch.toml run --no-incidents",
            crate::util::BIN
        ))
        .arg("/dev/null")
        .env("TERM", "xterm")
        .output()
    else {
        crate::util::skip("surfaces::the_progress_bar", "script not available");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("running: slow"), "{text:?}");
    assert!(text.contains("slow  0 rows"), "{text:?}");
}
