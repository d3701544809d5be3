//! The incident lifecycle tells people the truth (issue 10, "Lifecycle bugs"): the real
//! binary, a SQLite warehouse and state store, mail to `.eml` files.

use crate::util::{TestEnv, sqlite_exec};

/// A SQLite warehouse from `sql`, a state store, file mail, one route for every severity,
/// `extra_config` appended to the config and `extra_conn` inside the connection table.
fn env(sql: &str, extra_conn: &str, extra_config: &str) -> TestEnv {
    let env = TestEnv::sqlite(sql, extra_conn);
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "state = \"sqlite://state.db\"\n{cfg}\n[mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"file\"\ndir = \"outbox\"\n\
         [[routes]]\nseverity = [\"P0\", \"P1\", \"P2\", \"P3\"]\nemail = [\"oncall@example.com\"]\n{extra_config}"
    ));
    env
}

fn mails(env: &TestEnv) -> Vec<String> {
    let dir = env.path().join("outbox");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort_by_key(|p: &std::path::PathBuf| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<i64>().ok())
    });
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn warehouse(env: &TestEnv, sql: &str) {
    sqlite_exec(&env.path().join("warehouse.db"), sql);
}

fn incidents(env: &TestEnv) -> serde_json::Value {
    env.run(["incidents", "list", "--state", "all", "--format", "json"])
        .code(0)
        .json()
}

#[test]
fn impact_raise_gates_ci_in_every_output() {
    // See: issues/10 item 1
    let env = env(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', 500);",
        "",
        "[impact.revenue]\nmin_severity = \"P1\"\n",
    );
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "impact = [\"revenue\"]",
            "[thresholds]",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    let out = env.run([
        "run",
        "--fail-on",
        "P1",
        "--format",
        "json",
        "--no-incidents",
    ]);
    let doc = out.code(1).json();
    assert_eq!(doc["status"], "breach", "{doc}");
    assert_eq!(doc["checks"][0]["severity"], "P1", "{doc}");
    assert_eq!(doc["checks"][0]["observations"][0]["severity"], "P1");
    env.run([
        "run",
        "--fail-on",
        "P1",
        "--format",
        "junit",
        "--no-incidents",
    ])
    .code(1)
    .stdout_has("<failure")
    .stdout_has("worst P1");
    // The text report, its exit code and the incident it opens agree.
    env.run(["run", "--fail-on", "P1"])
        .code(1)
        .stdout_has("✗ P1")
        .stdout_has("FAIL: 1 breaching key at P1 or worse")
        .stdout_has("incidents: 1 opened");
    let list = incidents(&env);
    assert_eq!(list[0]["severity"], "P1", "{list}");
}

#[test]
fn capped_result_resolves_nothing_it_did_not_read() {
    // See: issues/10 item 2
    let env = env(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d9', 500);",
        "max_rows = 5",
        "",
    );
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon ORDER BY day",
    );
    env.run(["run"]).code(0).stdout_has("incidents: 1 opened");
    // Rows that sort first push d9, still breaching, past the cap.
    warehouse(
        &env,
        "INSERT INTO recon VALUES ('d1', 1), ('d2', 1), ('d3', 1), ('d4', 1), ('d5', 1), ('d6', 1);",
    );
    env.run(["run"])
        .code(0)
        .stdout_has("capped at 5 rows")
        .stdout_has("0 resolved");
    assert_eq!(incidents(&env)[0]["state"], "open");
    assert_eq!(mails(&env).len(), 1, "no resolution mail");
    // A ticket opened from a capped result says so.
    warehouse(&env, "UPDATE recon SET gap = 900 WHERE day = 'd2'");
    env.run(["run"]).code(0).stdout_has("1 opened");
    let m = mails(&env);
    assert_eq!(m.len(), 2);
    assert!(
        m[1].contains(
            "The result was capped at 5 rows (max_rows): keys past them were not judged."
        ),
        "{}",
        m[1]
    );
}

#[test]
fn null_metric_is_that_keys_problem_and_other_keys_are_judged() {
    // See: issues/10 item 4
    let env = env(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', NULL), ('d2', 500), ('d3', 1);",
        "",
        "",
    );
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    // d2's breach is judged, told and gates CI; d1 is an error of its own.
    env.run(["run", "--fail-on", "P2"])
        .code(1)
        .stdout_has("✗ P2    recon  [day=d2]")
        .stdout_has("! ERROR recon  [day=d1]  metric \"gap\" is NULL for day=d1")
        .stdout_has("incidents: 1 opened");
    // Alone, the NULL key is a check error (exit 3), and it resolves nothing of its own.
    warehouse(&env, "UPDATE recon SET gap = NULL WHERE day = 'd2'");
    env.run(["run"]).code(3).stdout_has("0 resolved");
    assert_eq!(incidents(&env)[0]["state"], "open");
}

#[test]
fn pending_that_never_opened_neither_resolves_nor_reopens() {
    // See: issues/10 item 5
    let env = env(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', 500);",
        "",
        "",
    );
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "open_after = 2",
            "reopen_within = \"1h\"",
            "[thresholds]",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    env.run(["run"]).code(0).stdout_has("0 opened");
    warehouse(&env, "UPDATE recon SET gap = 1");
    env.run(["run"]).code(0).stdout_has("0 resolved");
    warehouse(&env, "UPDATE recon SET gap = 500");
    // A later breach starts over in pending: no reopen, no mail into an unsent thread.
    env.run(["run"]).code(0).stdout_has("0 opened");
    assert_eq!(mails(&env), Vec::<String>::new());
    let list = incidents(&env);
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"pending"), "{list}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|i| i["repeat_count"] == 0),
        "{list}"
    );
    // The second breach in a row opens it: a first mail, not a reply.
    env.run(["run"]).code(0).stdout_has("1 opened");
    let m = mails(&env);
    assert_eq!(m.len(), 1);
    assert!(!m[0].contains("In-Reply-To"), "{}", m[0]);
}

#[test]
fn duplicate_keys_are_reported_not_merged() {
    // See: issues/10 item 8
    let env = env(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', 500), ('d1', 1), ('d2', 1);",
        "",
        "",
    );
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    env.run(["run", "--no-incidents"])
        .code(3)
        .stdout_has("[day=d1]  key day=d1 is on 2 rows: a key must name one row");
}

#[test]
fn schema_break_stays_open_until_the_schema_is_back_or_accepted() {
    // See: issues/10 item 3
    let env = env("CREATE TABLE t (a INTEGER, c REAL);", "", "");
    env.write(
        "checks/schema.toml",
        "rule = \"schema_change\"\n[params]\ntable = \"t\"\n",
    );
    env.run(["run"]).code(0).stdout_has("0 opened");
    warehouse(&env, "ALTER TABLE t DROP COLUMN c;");
    env.run(["run"]).code(1).stdout_has("incidents: 1 opened");
    // The column is still gone: still breaching, not resolved by a moved snapshot.
    env.run(["run"])
        .code(1)
        .stdout_has("✗ P1    schema  [column=t.c]")
        .stdout_has("0 resolved");
    assert_eq!(incidents(&env)[0]["state"], "open");
    // The schema is back: resolved.
    warehouse(&env, "ALTER TABLE t ADD COLUMN c REAL;");
    env.run(["run"]).code(0).stdout_has("1 resolved");
    // Dropped again, then accepted by hand: the new schema is the baseline, nothing reopens.
    warehouse(&env, "ALTER TABLE t DROP COLUMN c;");
    env.run(["run"]).code(1).stdout_has("1 reopened");
    env.run([
        "incidents",
        "resolve",
        "1",
        "--by",
        "alice",
        "--note",
        "c is retired",
    ])
    .code(0);
    env.run(["run"]).code(0).stdout_has("0 opened");
    env.run(["run"]).code(0).stdout_has("0 opened");
    assert_eq!(incidents(&env)[0]["state"], "resolved");
}

/// A recon check on `d1` with a reopen window, for the episode tests.
fn recon_env() -> TestEnv {
    let env = env(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', 500);",
        "",
        "",
    );
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "reopen_within = \"1h\"",
            "[thresholds]",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    env
}

#[test]
fn a_reopen_keeps_each_episodes_times() {
    // See: issues/10 item 6
    let env = recon_env();
    env.run(["run"]).code(0).stdout_has("1 opened");
    env.run(["incidents", "ack", "1", "--by", "alice"]).code(0);
    warehouse(&env, "UPDATE recon SET gap = 1");
    env.run(["run"]).code(0).stdout_has("1 resolved");
    warehouse(&env, "UPDATE recon SET gap = 500");
    env.run(["run"]).code(0).stdout_has("1 reopened");
    // The second episode is open and unacknowledged; the first keeps alice's acknowledgement.
    let pm = env
        .run(["incidents", "postmortem", "1"])
        .code(0)
        .stdout
        .clone();
    assert!(pm.contains("## Episodes"), "{pm}");
    let rows: Vec<&str> = pm
        .lines()
        .filter(|l| l.starts_with("| 1 |") || l.starts_with("| 2 |"))
        .collect();
    assert_eq!(rows.len(), 2, "{pm}");
    assert!(
        rows[0].contains("alice") && rows[0].contains(" dqwatch |"),
        "{pm}"
    );
    assert!(
        rows[1].contains("ongoing") && !rows[1].contains("alice"),
        "{pm}"
    );
    // Stats count episodes: one acknowledged, one resolved.
    let stats = env
        .run(["incidents", "stats", "--format", "json"])
        .code(0)
        .json();
    let all = &stats["stats"]["overall"];
    assert_eq!(all["incidents"], 1, "{stats}");
    assert_eq!(all["episodes"], 2, "{stats}");
    assert!(all["mean_time_to_acknowledge"].is_number(), "{stats}");
    assert!(all["mean_time_to_resolve"].is_number(), "{stats}");
}

#[test]
fn an_open_incidents_postmortem_says_it_is_ongoing() {
    // See: issues/10 item 8
    let env = recon_env();
    env.run(["run"]).code(0).stdout_has("1 opened");
    let pm = env
        .run(["incidents", "postmortem", "1"])
        .code(0)
        .stdout
        .clone();
    assert!(!pm.contains("| Duration | 0s |"), "{pm}");
    assert!(pm.contains("so far, ongoing"), "{pm}");
    assert!(pm.contains("## What went well"), "{pm}");
}

#[test]
fn incidents_note_does_what_readme_says() {
    // See: issues/10 item 9 — README said every by-hand command mails the thread; a note
    // does not (it is the timeline's), and README now says so.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.contains("`note ID TEXT`"))
        .unwrap();
    assert!(row.contains("a `note` does not"), "{row}");
    let env = recon_env();
    env.run(["run"]).code(0).stdout_has("1 opened");
    env.run(["incidents", "note", "1", "backfill running", "--by", "bob"])
        .code(0)
        .stdout_has("incident #1 note (on the timeline; no mail)");
    assert_eq!(mails(&env).len(), 1);
    env.run(["incidents", "show", "1"])
        .code(0)
        .stdout_has("bob: backfill running");
}

/// An incident that keeps changing state says so once and shows it: `incidents list` and
/// the JSON carry `flapping`, and no mail follows until it is stable.
// See: issues/10 (flap damping over time)
#[test]
fn a_flapping_incident_is_shown_as_flapping_and_goes_quiet() {
    let env = env(
        "CREATE TABLE m (v REAL); INSERT INTO m VALUES (5);",
        "",
        "[incidents]\nflap = \"3 of 10\"\n",
    );
    env.check_with(
        "flappy",
        &["metric = \"v\"", "[thresholds]", "P2 = \"> 1\""],
        "SELECT v FROM m",
    );
    let set = |v: i32| warehouse(&env, &format!("UPDATE m SET v = {v};"));
    env.run(["run"]).code(0); // breach: opened
    set(0);
    env.run(["run"]).code(0); // pass: resolved
    set(5);
    env.run(["run"]).code(0); // breach: reopened, flapping (3 changes)
    let before = mails(&env).len();
    assert_eq!(before, 3, "opened, resolved, reopened (flapping)");
    assert!(mails(&env)[2].contains("flapping"), "{}", mails(&env)[2]);
    for v in [0, 5, 0, 5] {
        set(v);
        env.run(["run"]).code(0);
    }
    assert_eq!(mails(&env).len(), before, "quiet while flapping");
    let list = incidents(&env);
    assert_eq!(list[0]["flapping"], true, "{list}");
    env.run(["incidents", "list"])
        .code(0)
        .stdout_has("open, flapping");
    // Stable again: five passing runs in a row resolve it, told once.
    set(0);
    for _ in 0..5 {
        env.run(["run"]).code(0);
    }
    assert_eq!(mails(&env).len(), before + 1);
    let last = mails(&env).last().cloned().unwrap();
    assert!(last.contains("Resolved: [P2] flappy"), "{last}");
    assert_eq!(incidents(&env)[0]["flapping"], false);
}
