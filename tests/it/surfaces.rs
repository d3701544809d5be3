//! The surfaces other tools read (issue 14): Prometheus text checked by `promtool`
//! (`DQWATCH_TEST_PROMTOOL`), JUnit checked by `xmllint --schema` (`DQWATCH_TEST_XMLLINT`),
//! GitHub annotations, the JSON report, shell completions, colours, `init`, and the mails'
//! headers.

use crate::daemon::{Daemon, WAREHOUSE, config};
use crate::require_env;
use crate::util::TestEnv;
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
