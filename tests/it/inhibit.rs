//! A connection that cannot be reached is one incident, not one per check; its checks'
//! connection errors are held until it is back, which resolves that one incident.
// See: issues/10 (connection incidents and inhibition)

use crate::util::TestEnv;

fn env(url: &str) -> TestEnv {
    let env = TestEnv::new();
    env.config(&format!(
        "state = \"sqlite://state.db\"\n\
         [incidents]\nerror_after = 1\n\
         [connections.warehouse]\nurl = \"{url}\"\n\
         [mail]\nfrom = \"dq <dq@example.com>\"\ndir = \"outbox\"\n\
         [[routes]]\nemail = [\"oncall@example.com\"]\n"
    ));
    for n in 0..5 {
        env.check_with(&format!("c{n}"), &[], "SELECT 1 AS n WHERE 1 = 0");
    }
    env
}

fn active(env: &TestEnv) -> Vec<String> {
    let out = env.run(["incidents", "list", "--format", "json"]);
    out.code(0);
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["check_id"].as_str().unwrap(),
                i["state"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_unreachable_connection_is_one_incident_and_holds_its_checks() {
    let env = env("postgres://dq@127.0.0.1:1/warehouse");
    // Five checks cannot connect, twice: one incident, one ticket, no check_failure per check
    // (error_after = 1 would open one for each).
    env.run(["run"]).code(3).stdout_has("1 opened");
    env.run(["run"]).code(3).stdout_has("0 opened");
    assert_eq!(active(&env), ["connection/warehouse open"]);
    assert_eq!(
        std::fs::read_dir(env.path().join("outbox"))
            .unwrap()
            .count(),
        1
    );
    // The connection is back (here: pointed at a reachable warehouse): one resolution, and
    // the checks are judged again.
    let cfg = env.read("dqwatch.toml").replace(
        "postgres://dq@127.0.0.1:1/warehouse",
        "sqlite://warehouse.db",
    );
    env.config(&cfg);
    crate::util::sqlite_exec(&env.path().join("warehouse.db"), "CREATE TABLE t (n INT);");
    env.run(["run"]).code(0).stdout_has("1 resolved");
    let listed = env.run(["incidents", "list", "--state", "all", "--format", "json"]);
    let all = listed.json();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all:#}");
    assert_eq!(all[0]["state"], "resolved");
}

/// The connection's incident is classified as its `[connections.NAME]` says: severity,
/// category and tags, and routes match those tags as they match a check's.
#[test]
fn a_connection_s_incident_has_the_severity_category_and_route_it_is_given() {
    let env = TestEnv::new();
    env.config(
        "state = \"sqlite://state.db\"\n\
         [incidents]\nerror_after = 1\n\
         [connections.warehouse]\nurl = \"postgres://dq@127.0.0.1:1/warehouse\"\n\
         down_severity = \"P0\"\ndown_category = \"pipeline_failure\"\ndown_tags = [\"platform\"]\n\
         [mail]\nfrom = \"dq <dq@example.com>\"\ndir = \"outbox\"\n\
         [[routes]]\ntags = [\"platform\"]\nemail = [\"platform@example.com\"]\n",
    );
    env.check_with("c0", &[], "SELECT 1 AS n WHERE 1 = 0");
    env.run(["run", "--fail-on", "P0"])
        .code(3)
        .stdout_has("1 opened");
    let list = env
        .run(["incidents", "list", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(list[0]["check_id"], "connection/warehouse", "{list}");
    assert_eq!(list[0]["severity"], "P0", "{list}");
    assert_eq!(list[0]["category"], "pipeline_failure", "{list}");
    let mails: Vec<String> = std::fs::read_dir(env.path().join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("To: platform@example.com"),
        "{}",
        mails[0]
    );
}

#[test]
fn a_bad_down_severity_is_a_diagnostic_with_its_line() {
    let env = TestEnv::new();
    env.config("[connections.warehouse]\nurl = \"sqlite://w.db\"\ndown_severity = \"P7\"\n");
    env.run(["validate"])
        .code(2)
        .stderr_has("dqwatch.toml:3:17: error: unknown severity \"P7\"");
}
