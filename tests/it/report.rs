//! What users read, as reviewed snapshots (`cargo insta review`): the report of one fixed
//! warehouse in every format, with times and durations masked.
// See: issues/9

use crate::util::TestEnv;

/// A warehouse with a breach at each level, a duration metric, a severity map, rows-fail,
/// no data and a check error.
fn env() -> TestEnv {
    let env = TestEnv::sqlite(
        "CREATE TABLE recon (day TEXT, gap REAL); \
         INSERT INTO recon VALUES ('2026-11-20', 12500), ('2026-11-21', 150), ('2026-11-22', 3); \
         CREATE TABLE feeds (feed TEXT, lag_seconds INT); \
         INSERT INTO feeds VALUES ('orders', 93600), ('customers', 2700), ('events', 60); \
         CREATE TABLE risk (dataset TEXT, level TEXT, drop_pct REAL); \
         INSERT INTO risk VALUES ('profiles', 'HIGH', 7.95), ('accounts', 'LOW', 0.1); \
         CREATE TABLE dupes (id INT); INSERT INTO dupes VALUES (1), (1);",
        "",
    );
    env.check_with(
        "finance/recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P0 = \"> 10000\"",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    env.check_with(
        "ops/freshness",
        &[
            "keys = [\"feed\"]",
            "metric = \"lag_seconds\"",
            "[thresholds]",
            "P1 = \"> 24h\"",
            "P3 = \"> 30m\"",
        ],
        "SELECT feed, lag_seconds FROM feeds",
    );
    env.check_with(
        "quality/trend",
        &[
            "keys = [\"dataset\"]",
            "severity_column = \"level\"",
            "metric = \"drop_pct\"",
            "[severity_map]",
            "HIGH = \"P1\"",
            "LOW = \"pass\"",
        ],
        "SELECT dataset, level, drop_pct FROM risk",
    );
    env.check_with(
        "quality/dupes",
        &[],
        "SELECT id, COUNT(*) AS n FROM dupes GROUP BY id HAVING COUNT(*) > 1",
    );
    env.check_with(
        "quality/empty",
        &[
            "metric = \"n\"",
            "on_no_data = \"pass\"",
            "[thresholds]",
            "P2 = \"> 0\"",
        ],
        "SELECT 1 AS n WHERE 0",
    );
    env.check_with("broken", &[], "SELECT nope FROM missing_table");
    env
}

/// Replaces the digits (and `.`) right before each `suffix` with `[N]`: `12 ms` → `[N] ms`.
fn mask_numbers_before(text: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(suffix) {
        let head = &rest[..at];
        let digits = head.len()
            - head
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
                .len();
        out.push_str(&head[..head.len() - digits]);
        out.push_str(if digits > 0 { "[N]" } else { "" });
        out.push_str(suffix);
        rest = &rest[at + suffix.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces the value of every `name="…"` attribute with `[X]`.
fn mask_attribute(text: &str, name: &str) -> String {
    let open = format!("{name}=\"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&open) {
        out.push_str(&rest[..at + open.len()]);
        rest = &rest[at + open.len()..];
        out.push_str("[X]");
        rest = &rest[rest.find('"').unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// The text report with durations masked.
fn text_masked(text: &str) -> String {
    mask_numbers_before(&mask_numbers_before(text, " ms"), " s:")
}

#[test]
fn the_text_report_reads_as_reviewed() {
    let env = env();
    let out = env.run(["run", "--no-incidents"]);
    out.code(1);
    insta::assert_snapshot!(text_masked(&out.stdout));
}

#[test]
fn the_json_report_reads_as_reviewed() {
    let env = env();
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    out.code(1);
    let mut doc = out.json();
    for key in ["started_at", "duration_ms", "version"] {
        doc[key] = serde_json::json!("[X]");
    }
    for check in doc["checks"].as_array_mut().unwrap() {
        for key in ["duration_ms", "queue_ms", "started_at"] {
            if check.get(key).is_some() {
                check[key] = serde_json::json!("[X]");
            }
        }
    }
    insta::assert_snapshot!(serde_json::to_string_pretty(&doc).unwrap());
}

#[test]
fn the_junit_and_github_reports_read_as_reviewed() {
    let env = env();
    let junit = env.run(["run", "--no-incidents", "--format", "junit"]);
    junit.code(1);
    let mut xml = junit.stdout;
    for attr in ["time", "timestamp", "hostname"] {
        xml = mask_attribute(&xml, attr);
    }
    insta::assert_snapshot!("junit", xml);
    let github = env.run(["run", "--no-incidents", "--format", "github"]);
    github.code(1);
    insta::assert_snapshot!("github", text_masked(&github.stdout));
}

// See: issues/9 — a threshold keeps its unit through the store: the terminal, the stored
// incident (`incidents show`/`list`) and its mail print the metric alike. Before, the mail
// said `Metric: 93600 (threshold > 24h)` and a severity-map label sat in `threshold`.
#[test]
fn a_duration_metric_reads_the_same_in_report_incident_and_mail() {
    let env = env();
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "state = \"sqlite://.dqwatch/state.db\"\n{cfg}\n[mail]\nfrom = \"dq <dq@example.com>\"\n\
         transport = \"file\"\ndir = \"outbox\"\n[[routes]]\nemail = [\"oncall@example.com\"]\n"
    ));
    let out = env.run(["run"]);
    out.code(1).stdout_has("lag_seconds=1d 2h (P1 > 24h)");

    let list = env.run(["incidents", "list", "--format", "json"]).json();
    let list = list.as_array().unwrap();
    let late = list
        .iter()
        .find(|i| i["check_id"] == "ops/freshness" && i["severity"] == "P1")
        .unwrap();
    assert_eq!(late["metric"], 93600.0);
    assert_eq!(late["unit"], "seconds");
    assert_eq!(late["threshold"], "> 24h");
    assert_eq!(late["threshold_severity"], "P1");
    let trend = list
        .iter()
        .find(|i| i["check_id"] == "quality/trend")
        .unwrap();
    assert_eq!(trend["label"], "HIGH");
    assert_eq!(trend["threshold"], serde_json::Value::Null);

    let id = late["id"].as_i64().unwrap().to_string();
    env.run(["incidents", "show", &id])
        .code(0)
        .stdout_has("metric       1d 2h (threshold P1 > 24h)");
    env.run(["incidents", "list"]).code(0).stdout_has(" 1d 2h ");

    let mails: Vec<String> = std::fs::read_dir(env.path().join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    let mail = mails
        .iter()
        .find(|m| m.contains("lag_seconds") || m.contains("feed=orders"))
        .unwrap();
    assert!(
        mail.contains("Metric:      1d 2h (threshold P1 > 24h)"),
        "{mail}"
    );

    // A store written before migration 0006 (no unit, a label in `threshold`) migrates to the
    // same reading: units from the threshold text, its level from the current severity.
    crate::util::sqlite_exec(
        &env.path().join(".dqwatch/state.db"),
        "ALTER TABLE incidents DROP COLUMN unit; ALTER TABLE incidents DROP COLUMN threshold_severity; \
         ALTER TABLE incidents DROP COLUMN label; DELETE FROM _sqlx_migrations WHERE version = 6; \
         UPDATE incidents SET threshold = 'HIGH' WHERE check_id = 'quality/trend';",
    );
    env.run(["incidents", "show", &id])
        .code(0)
        .stdout_has("metric       1d 2h (threshold P1 > 24h)");
    let list = env.run(["incidents", "list", "--format", "json"]).json();
    let trend = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["check_id"] == "quality/trend")
        .unwrap();
    assert_eq!(trend["label"], "HIGH");
    assert_eq!(trend["threshold"], serde_json::Value::Null);
    assert_eq!(trend["unit"], "number");
}

// See: issues/13 (durations are the query's own)
#[test]
fn a_check_s_duration_excludes_its_wait_for_a_connection_slot() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INT);", "max_concurrency = 1");
    // Three checks that each keep the one connection busy for a while.
    for id in ["a", "b", "c"] {
        env.check_with(
            id,
            &["metric = \"n\"", "[thresholds]", "P1 = \"< 0\""],
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 400000) \
             SELECT COUNT(*) AS n FROM r",
        );
    }
    let out = env.run(["run", "--no-incidents", "--format", "json"]);
    out.code(0);
    let doc = out.json();
    let checks = doc["checks"].as_array().unwrap();
    let ms = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap();
    let busy: u64 = checks.iter().map(|c| ms(c, "duration_ms")).sum();
    let waited = checks.iter().filter(|c| ms(c, "queue_ms") > 0).count();
    // One connection runs them one after another: their own times fit in the wall time
    // (they did not when each included the others' time), and two of them waited.
    assert!(busy <= ms(&doc, "duration_ms"), "{doc:#}");
    assert!(waited >= 2, "{doc:#}");
}

/// A key that could not be judged (a NULL metric, `on_no_data = "error"`) is the check's
/// error in JUnit as in the exit code, never a passing testcase.
#[test]
fn an_unjudged_key_is_a_junit_error_not_a_success() {
    let env = TestEnv::sqlite(
        "CREATE TABLE m (k TEXT, v REAL); INSERT INTO m VALUES ('a', 1), ('b', NULL);",
        "",
    );
    env.check_with(
        "partly",
        &[
            "keys = [\"k\"]",
            "metric = \"v\"",
            "[thresholds]",
            "P2 = \"> 5\"",
        ],
        "SELECT k, v FROM m",
    );
    let out = env.run(["run", "--no-incidents", "--format", "junit"]);
    out.code(3);
    assert!(out.stdout.contains("<error"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 key could not be judged"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("k=b"), "{}", out.stdout);
}
