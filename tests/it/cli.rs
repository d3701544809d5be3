//! The command line itself: usage errors, where the config is found, and paths in the
//! config resolved against its folder whatever the working directory.

use crate::util::{TestEnv, check_doc, dqwatch, output, sqlite_exec};
use test_case::test_case;

#[test]
fn version_and_help_exit_0() {
    let env = TestEnv::new();
    output(env.command().arg("--version"))
        .code(0)
        .stdout_has(env!("CARGO_PKG_VERSION"));
    let help = output(env.command().arg("--help"));
    help.code(0);
    for cmd in ["run", "validate", "list", "render", "demo"] {
        help.stdout_has(cmd);
    }
    output(env.command().args(["run", "--help"]))
        .code(0)
        .stdout_has("--fail-on");
}

#[test_case(&[] ; "no subcommand")]
#[test_case(&["frobnicate"] ; "unknown subcommand")]
#[test_case(&["run", "--format", "xml"] ; "unknown format")]
#[test_case(&["run", "--fail-on", "P4"] ; "unknown severity")]
#[test_case(&["run", "--no-such-flag"] ; "unknown flag")]
#[test_case(&["render"] ; "render without id")]
#[test_case(&["validate", "extra"] ; "extra argument")]
fn usage_errors_exit_2(args: &[&str]) {
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER)", "");
    let out = output(env.command().args(["--config", "dqwatch.toml"]).args(args));
    out.code(2);
    assert!(!out.stderr.is_empty());
}

/// A tree with the config in `conf/`, checks in `checks/` and the database in `data/`, all
/// named relative to the config file.
fn nested_env() -> TestEnv {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path().join("data")).unwrap();
    sqlite_exec(
        &env.path().join("data/wh.db"),
        "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (5);",
    );
    env.write(
        "conf/dqwatch.toml",
        "checks_dir = \"../checks\"\n[connections.warehouse]\nurl = \"sqlite://../data/wh.db\"\n",
    );
    env.check(
        "fin/big",
        "-- dqwatch\n-- severity = \"P1\"\nSELECT n FROM t WHERE n > 1\n",
    );
    env
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let env = nested_env();
    let out =
        output(
            env.command()
                .args(["--config", "conf/dqwatch.toml", "run", "--format", "json"]),
        );
    let report = out.code(1).json();
    // Shown paths are normalized: checks/…, not conf/../checks/….
    assert_eq!(check_doc(&report, "fin/big")["path"], "checks/fin/big.sql");

    // From an unrelated working directory, with an absolute config path.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = env.path().join("conf/dqwatch.toml");
    let out = output(
        dqwatch(elsewhere.path())
            .arg("--config")
            .arg(&config)
            .args(["run", "--format", "json"]),
    );
    let report = out.code(1).json();
    let path = check_doc(&report, "fin/big")["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        path.ends_with("checks/fin/big.sql") && !path.contains(".."),
        "{path}"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing is written to the cwd"
    );
}

#[test]
fn config_from_the_environment_variable() {
    let env = nested_env();
    let out = output(
        env.command()
            .env("DQWATCH_CONFIG", "conf/dqwatch.toml")
            .arg("run"),
    );
    out.code(1).stdout_has("✗ P1    fin/big");
    // --config wins over the variable.
    let out = output(env.command().env("DQWATCH_CONFIG", "nope.toml").args([
        "--config",
        "conf/dqwatch.toml",
        "run",
    ]));
    out.code(1);
    let out = output(env.command().env("DQWATCH_CONFIG", "nope.toml").arg("run"));
    out.code(2).stderr_has("nope.toml");
}

#[test]
fn config_from_the_default_locations() {
    let env = nested_env();
    // ./config/dqwatch.toml
    std::fs::rename(env.path().join("conf"), env.path().join("config")).unwrap();
    output(env.command().arg("run"))
        .code(1)
        .stdout_has("✗ P1    fin/big");
    // ./dqwatch.toml comes first.
    env.write(
        "dqwatch.toml",
        "checks_dir = \"checks\"\n[connections.warehouse]\nurl = \"sqlite://data/wh.db\"\n",
    );
    env.check("fin/big", "-- dqwatch\nSELECT n FROM t WHERE n > 100\n");
    output(env.command().arg("run"))
        .code(0)
        .stdout_has("✓ pass  fin/big");
}

#[test]
fn log_format_json_is_accepted() {
    let env = nested_env();
    output(env.command().args([
        "--log-format",
        "json",
        "--config",
        "conf/dqwatch.toml",
        "validate",
    ]))
    .code(0);
}

#[test]
fn sqlite_url_without_slashes_is_resolved_too() {
    let env = nested_env();
    env.write(
        "conf/dqwatch.toml",
        "checks_dir = \"../checks\"\n[connections.warehouse]\nurl = \"sqlite:../data/wh.db\"\n",
    );
    output(env.command().args(["--config", "conf/dqwatch.toml", "run"])).code(1);
}

// See: issues/9 — one loader: a broken template stops `run` before any check runs, with
// `validate`'s own message, in every command that loads.
#[test]
fn a_broken_template_stops_run_before_anything_runs_with_validate_s_message() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INT); INSERT INTO t VALUES (5);", "");
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "state = \"sqlite://state.db\"\ntemplates_dir = \"templates\"\n{cfg}\
         [mail]\nfrom = \"dq <dq@example.com>\"\ndir = \"outbox\"\n[[routes]]\nemail = [\"oncall@example.com\"]\n"
    ));
    env.write("templates/opened.txt.hbs", "Breach: {{incident.titel}}\n");
    env.check_with(
        "t",
        &["metric = \"n\"", "[thresholds]", "P1 = \"> 1\""],
        "SELECT n FROM t",
    );
    let validate = env.run(["validate"]);
    validate.code(2);
    let message = validate
        .stderr
        .lines()
        .find(|l| l.contains("error:"))
        .expect("validate names the problem")
        .to_string();
    assert!(message.contains("templates"), "{message}");
    for args in [
        vec!["run"],
        vec!["run", "--no-incidents"],
        vec!["list"],
        vec!["incidents", "list"],
    ] {
        let out = env.run(&args);
        out.code(2).stderr_has(&message);
        assert!(
            !out.stdout.contains("✗"),
            "{args:?} ran a check:\n{}",
            out.stdout
        );
    }
    assert!(
        !env.path().join("state.db").exists(),
        "nothing was recorded"
    );
    assert!(!env.path().join("outbox").exists(), "nothing was mailed");
}
