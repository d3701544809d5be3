//! A pass reads the incident state of the checks it ran only (issue 13): a `--select`ed run
//! still resolves, keeps and reopens its own checks' incidents exactly as a full run does,
//! and leaves the other checks' incidents as they are.

use crate::util::{TestEnv, sqlite_exec};

fn env() -> TestEnv {
    let env = TestEnv::sqlite("CREATE TABLE v (n int); INSERT INTO v VALUES (5);", "");
    let cfg = env.read("dqwatch.toml");
    env.config(&format!("state = \"sqlite://state.db\"\n{cfg}"));
    for id in ["a", "b"] {
        env.check_with(
            id,
            &["metric = \"x\"", "[thresholds]", "P2 = \"> 1\""],
            "SELECT n AS x FROM v",
        );
    }
    env
}

fn set(env: &TestEnv, n: i64) {
    sqlite_exec(
        &env.path().join("warehouse.db"),
        &format!("UPDATE v SET n = {n}"),
    );
}

/// See: issues/13
#[test]
fn a_selected_run_reconciles_its_own_incidents_and_leaves_the_rest() {
    let env = env();
    env.run(["run"])
        .code(0)
        .stdout_has("incidents: 2 opened, 0 raised, 0 resolved");
    set(&env, 0);
    env.run(["run", "--select", "a"])
        .code(0)
        .stdout_has("incidents: 0 opened, 0 raised, 1 resolved");
    // Nothing left to resolve for `a`, and `b` was not run: nothing changes.
    env.run(["run", "--select", "a"])
        .code(0)
        .stdout_has("incidents: 0 opened, 0 raised, 0 resolved");
    let open = env.run(["incidents", "list", "--state", "open", "--format", "json"]);
    let open = open.json();
    let ids: Vec<&str> = open
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["check_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["b"], "{open:#}");
    // `b` breaches still when it runs again: its open incident is found, not a second one.
    set(&env, 5);
    env.run(["run", "--select", "b"])
        .code(0)
        .stdout_has("incidents: 0 opened, 0 raised, 0 resolved");
}
