//! Bad inputs: every one exits 2 with `path:line:col: error: message` on stderr, lines
//! counted in the file the user wrote (the `.sql` file, not the TOML cut out of it).
//! Also the encodings that must parse (BOM, CRLF, tabs) from `tests/fixtures/`.

use crate::util::{Output, TestEnv, check_doc, copy_tree};
use indoc::indoc;
use std::path::Path;
use test_case::test_case;

const SQLITE: &str = "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);";

fn env() -> TestEnv {
    TestEnv::sqlite(SQLITE, "")
}

/// Runs `validate`, `run` and `list`; each must exit 2 with `needle` on stderr.
/// Returns the `validate` output.
#[track_caller]
fn invalid(env: &TestEnv, needle: &str) -> Output {
    for cmd in ["run", "list"] {
        env.run([cmd]).code(2).stderr_has(needle);
    }
    let out = env.run(["validate"]);
    out.code(2).stderr_has(needle);
    out
}

/// The `error:` lines of a stderr.
fn errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(": error: ")).collect()
}

#[test]
fn unknown_key_in_the_config() {
    let env = env();
    env.config(indoc! {r#"
        checks_dir = "checks"
        [connections.warehouse]
        url = "sqlite://warehouse.db"
        statement_timout = "1s"
    "#});
    let out = invalid(
        &env,
        "dqwatch.toml:4:1: error: unknown field `statement_timout`, expected one of `url`, `max_concurrency`, `statement_timeout`, `max_rows`",
    );
    out.stderr_has("  hint: remove the key or fix its spelling")
        .stdout_has("✗ config");
}

#[test]
fn unknown_top_level_key_in_the_config() {
    let env = env();
    env.config(
        "check_dir = \"checks\"\n[connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n",
    );
    invalid(&env, "dqwatch.toml:1:1: error: unknown field `check_dir`");
}

#[test]
fn a_config_syntax_error_has_a_line() {
    let env = env();
    env.config("[connections.warehouse]\nurl = \"sqlite://warehouse.db\nmax_rows = 5\n");
    let out = invalid(&env, "dqwatch.toml:2:");
    assert_eq!(errors(&out.stderr).len(), 1, "{}", out.stderr);
}

#[test]
fn unknown_key_in_a_check_header_is_at_its_sql_line() {
    let env = env();
    env.check(
        "finance/a",
        indoc! {r#"
            -- dqwatch
            -- description = "x"
            -- shedule = "*/5 * * * *"
            SELECT 1
        "#},
    );
    let out = invalid(
        &env,
        "checks/finance/a.sql:3:4: error: unknown field `shedule`",
    );
    out.stderr_has("hint: remove the key or fix its spelling");
    out.stdout_has("✓ config").stdout_has("✗ checks");
}

#[test]
fn a_toml_syntax_error_in_a_header_is_at_its_sql_line() {
    let env = env();
    env.check(
        "a",
        "-- dqwatch\n-- description = \"x\"\n--\n-- tags = [\"a\",\n-- oops\nSELECT 1\n",
    );
    let out = invalid(&env, "checks/a.sql:");
    let line = errors(&out.stderr)[0];
    let n: usize = line.split(':').nth(1).unwrap().parse().unwrap();
    assert!(
        (4..=5).contains(&n),
        "error should point at line 4 or 5 of the .sql file: {line}"
    );
}

#[test]
fn unknown_connection_lists_the_defined_ones() {
    let env = env();
    env.config(indoc! {r#"
        [connections.warehouse]
        url = "sqlite://warehouse.db"
        [connections.finance]
        url = "sqlite://warehouse.db"
    "#});
    env.check("a", "-- dqwatch\n-- connection = \"warehose\"\nSELECT 1\n");
    invalid(
        &env,
        "checks/a.sql:2:17: error: unknown connection \"warehose\"",
    )
    .stderr_has("  hint: defined connections: finance, warehouse");
}

#[test]
fn a_check_without_connection_needs_one_when_there_are_several() {
    let env = env();
    env.config("[connections.a]\nurl = \"sqlite://warehouse.db\"\n[connections.b]\nurl = \"sqlite://warehouse.db\"\n");
    env.check("c", "-- dqwatch\nSELECT 1\n");
    invalid(
        &env,
        "checks/c.sql:1:1: error: the header names no connection",
    )
    .stderr_has("defined connections: a, b");
}

#[test_case("*/15 * * *", "expected 5 or 6 fields, found 4" ; "four fields")]
#[test_case("0 0 * * 8", "8 is not a weekday" ; "weekday 8")]
#[test_case("61 * * * *", "minute field \"61\" is not valid" ; "minute 61")]
#[test_case("@often", "unknown shorthand @often" ; "bad shorthand")]
fn bad_cron(cron: &str, message: &str) {
    let env = env();
    env.check(
        "sched/c",
        &format!("-- dqwatch\n-- tags = [\"x\"]\n-- schedule = \"{cron}\"\nSELECT 1\n"),
    );
    let out = invalid(
        &env,
        &format!("checks/sched/c.sql:3:15: error: invalid cron \"{cron}\""),
    );
    out.stderr_has(message).stderr_has("hint: 5 fields");
}

#[test_case("*/15 * * * *" ; "five fields")]
#[test_case("*/10 * * * * *" ; "six fields")]
#[test_case("0 9 * * 7" ; "sunday as 7")]
#[test_case("0 9 * * Mon-Fri" ; "names")]
#[test_case("@daily" ; "shorthand")]
fn good_cron(cron: &str) {
    let env = env();
    env.check(
        "c",
        &format!("-- dqwatch\n-- schedule = \"{cron}\"\nSELECT 1\n"),
    );
    env.run(["validate"]).code(0);
}

#[test]
fn bad_threshold() {
    let env = env();
    env.check(
        "c",
        "-- dqwatch\n-- metric = \"gap\"\n-- [thresholds]\n-- P1 = \"> lots\"\nSELECT 1 AS gap\n",
    );
    invalid(
        &env,
        "checks/c.sql:4:9: error: invalid threshold \"> lots\"",
    );
}

#[test]
fn unknown_severity_in_thresholds() {
    let env = env();
    env.check("c", "-- dqwatch\n-- metric = \"gap\"\n-- [thresholds]\n-- P1 = \"> 1\"\n-- P5 = \"> 10\"\nSELECT 1 AS gap\n");
    invalid(&env, "checks/c.sql:5:")
        .stderr_has("unknown severity P5 in [thresholds]")
        .stderr_has("levels are P0, P1, P2 and P3");
}

#[test]
fn metric_without_thresholds() {
    let env = env();
    env.check(
        "c",
        "-- dqwatch\n-- description = \"d\"\n-- metric = \"gap\"\nSELECT 1 AS gap\n",
    );
    invalid(
        &env,
        "checks/c.sql:3:13: error: metric \"gap\" has no [thresholds]",
    );
}

#[test]
fn thresholds_without_metric() {
    let env = env();
    env.check(
        "c",
        "-- dqwatch\n-- [thresholds]\n-- P1 = \"> 1\"\nSELECT 1 AS gap\n",
    );
    invalid(&env, "checks/c.sql:").stderr_has("[thresholds] needs a metric column");
}

#[test]
fn missing_marker() {
    let env = env();
    env.check("plain", "SELECT 1\n");
    env.check(
        "almost",
        "-- dqwatch check\n-- severity = \"P1\"\nSELECT 1\n",
    );
    let out = invalid(
        &env,
        "checks/plain.sql:1:1: error: a check must start with the line `-- dqwatch`",
    );
    out.stderr_has("checks/almost.sql:1:1: error: a check must start with the line `-- dqwatch`");
}

#[test]
fn header_without_query() {
    let env = env();
    env.check("c", "-- dqwatch\n-- severity = \"P1\"\n");
    invalid(
        &env,
        "checks/c.sql:3:1: error: the check has no query after its header",
    );
    env.check("c", "-- dqwatch\n-- severity = \"P1\"\n\n   \n");
    invalid(&env, "error: the check has no query after its header");
}

#[test_case("category = \"oops\"", "unknown category \"oops\"" ; "category")]
#[test_case("severity = \"P7\"", "unknown severity \"P7\"" ; "severity")]
#[test_case("owners = [\"nobody\"]", "owner \"nobody\" is not an email address" ; "owner")]
#[test_case("runbook = \"wiki/page\"", "runbook \"wiki/page\" is not an http(s) link" ; "runbook")]
#[test_case("on_no_data = \"ignore\"", "invalid on_no_data \"ignore\"" ; "on_no_data")]
#[test_case("error_after = 0", "error_after must be between 1 and 1000, found 0" ; "error_after")]
#[test_case("tags = \"x\"", "invalid type" ; "tags not a list")]
fn bad_header_values(line: &str, message: &str) {
    let env = env();
    env.check(
        "c",
        &format!("-- dqwatch\n-- description = \"d\"\n-- {line}\nSELECT 1\n"),
    );
    invalid(&env, "checks/c.sql:3:").stderr_has(message);
}

#[test]
fn severity_map_needs_a_column_and_valid_severities() {
    let env = env();
    env.check("a", "-- dqwatch\n-- severity_column = \"risk\"\n-- [severity_map]\n-- HIGH = \"P9\"\nSELECT 'HIGH' AS risk\n");
    env.check(
        "b",
        "-- dqwatch\n-- [severity_map]\n-- HIGH = \"P1\"\nSELECT 'HIGH' AS risk\n",
    );
    env.check(
        "c",
        "-- dqwatch\n-- severity_column = \"risk\"\nSELECT 'HIGH' AS risk\n",
    );
    let out = invalid(
        &env,
        "checks/a.sql:4:11: error: invalid severity \"P9\" for label HIGH",
    );
    out.stderr_has("checks/b.sql:2:")
        .stderr_has("[severity_map] needs a severity_column");
    out.stderr_has("checks/c.sql:2:")
        .stderr_has("severity_column needs a [severity_map]");
}

#[test]
fn missing_variable_names_it_and_its_line() {
    let env = env();
    env.config("checks_dir = \"checks\"\n\n[connections.warehouse]\nurl = \"sqlite://${DQWATCH_IT_UNSET_VAR}\"\n");
    invalid(
        &env,
        "dqwatch.toml:4:7: error: environment variable DQWATCH_IT_UNSET_VAR is not set",
    )
    .stderr_has("${DQWATCH_IT_UNSET_VAR:-value}");
}

#[test]
fn every_missing_variable_is_reported() {
    let env = env();
    env.config("[connections.warehouse]\nurl = \"${DQWATCH_IT_A}/${DQWATCH_IT_B}\"\n[daemon]\napi_token = \"${DQWATCH_IT_C}\"\n");
    let out = invalid(&env, "DQWATCH_IT_A is not set");
    out.stderr_has("DQWATCH_IT_B is not set")
        .stderr_has("dqwatch.toml:4:13: error: environment variable DQWATCH_IT_C is not set");
    assert_eq!(errors(&out.stderr).len(), 3, "{}", out.stderr);
}

#[test]
fn variables_and_defaults_are_interpolated() {
    let env = env();
    env.check("c", "-- dqwatch\nSELECT n FROM t WHERE n > 1\n");
    env.config(
        "[connections.warehouse]\nurl = \"${DQWATCH_IT_UNSET_VAR:-sqlite://warehouse.db}\"\n",
    );
    env.run(["run"]).code(0);
    env.config("[connections.warehouse]\nurl = \"sqlite://${DQWATCH_IT_DB}\"\n");
    let out = crate::util::output(
        env.command()
            .args(["--config", "dqwatch.toml", "run"])
            .env("DQWATCH_IT_DB", "warehouse.db"),
    );
    out.code(0);
}

#[test]
fn bad_connection_values_are_all_reported() {
    let env = env();
    env.config(indoc! {r#"
        [connections.warehouse]
        url = "sqlite://warehouse.db"
        statement_timeout = "soon"
        max_rows = 0
        max_concurrency = -1
        [connections.legacy]
        url = "oracle://scott:hunter2@db.example.com/orcl"
    "#});
    let out = invalid(&env, "dqwatch.toml:3:21: error: invalid duration \"soon\"");
    out.stderr_has("dqwatch.toml:4:12: error: max_rows must be between 1 and")
        .stderr_has("dqwatch.toml:5:19: error: max_concurrency must be between 1 and 1024, found -1")
        .stderr_has("dqwatch.toml:7:7: error: connection \"legacy\" has \"oracle://scott:****@db.example.com/orcl\"")
        .stderr_has("4 problems found")
        .nowhere("hunter2");
}

#[test]
fn duplicate_ids_across_sql_and_toml() {
    let env = env();
    env.check("a", "-- dqwatch\nSELECT 1\n");
    env.write(
        "checks/a.toml",
        "rule = \"duplicate_rows\"\n[params]\ntable = \"t\"\nkey_columns = [\"k\"]\n",
    );
    invalid(&env, "checks/a.toml: error: duplicate check id \"a\"")
        .stderr_has("hint: checks/a.sql has the same id");
}

#[test]
fn a_missing_config_file() {
    let env = env();
    let out = crate::util::output(env.command().args(["--config", "nope.toml", "validate"]));
    out.code(2)
        .stderr_has("nope.toml: error: cannot read config")
        .stderr_has("hint: pass --config PATH or set DQWATCH_CONFIG");
    let out = crate::util::output(env.command().args(["--config", "nope.toml", "run"]));
    out.code(2)
        .stderr_has("nope.toml: error: cannot read config");
}

#[test]
fn no_config_anywhere() {
    let env = TestEnv::new();
    let out = crate::util::output(env.command().arg("run"));
    out.code(2)
        .stderr_has("dqwatch.toml: error: no config file found");
}

#[test]
fn a_missing_checks_dir() {
    let env = env();
    env.config(
        "checks_dir = \"nowhere\"\n[connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n",
    );
    invalid(&env, "nowhere: error: checks_dir is not a folder");
}

#[test]
fn validate_prints_every_problem_at_once() {
    let env = env();
    env.check(
        "a/three",
        indoc! {r#"
            -- dqwatch
            -- schedule = "* * * *"
            -- metric = "gap"
            -- [thresholds]
            -- P1 = "> lots"
            -- P9 = "> 1"
            SELECT 1 AS gap
        "#},
    );
    env.check("b/conn", "-- dqwatch\n-- connection = \"nope\"\nSELECT 1\n");
    env.check("c/marker", "SELECT 1\n");
    env.check("d/unknown", "-- dqwatch\n-- colour = \"red\"\nSELECT 1\n");
    env.check("e/fine", "-- dqwatch\nSELECT 1\n");
    let out = env.run(["validate"]);
    out.code(2);
    let errs = errors(&out.stderr);
    assert_eq!(errs.len(), 6, "{}", out.stderr);
    // Sorted by file, then line.
    let want = [
        "checks/a/three.sql:2:",
        "checks/a/three.sql:5:",
        "checks/a/three.sql:6:",
        "checks/b/conn.sql:2:",
        "checks/c/marker.sql:1:",
        "checks/d/unknown.sql:2:",
    ];
    for (e, w) in errs.iter().zip(want) {
        assert!(
            e.starts_with(w),
            "{e} should start with {w}\n{}",
            out.stderr
        );
    }
    out.stderr_has("6 problems found");
    out.stdout_has("✓ config")
        .stdout_has("✗ checks     6 problems in checks");
}

#[test]
fn validate_diagnostics_snapshot() {
    let env = env();
    env.check(
        "finance/revenue",
        indoc! {r#"
            -- dqwatch
            -- connection = "warehose"
            -- schedule = "*/15 * * *"
            -- metric = "gap"
            -- [thresholds]
            -- P0 = "> lots"
            SELECT 1 AS gap
        "#},
    );
    let out = env.run(["validate"]);
    out.code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_key_given_twice_in_a_header() {
    let env = env();
    env.check(
        "c",
        "-- dqwatch\n-- severity = \"P1\"\n-- tags = [\"a\"]\n-- severity = \"P2\"\nSELECT 1\n",
    );
    invalid(&env, "checks/c.sql:4:").stderr_has("duplicate key");
}

#[test]
fn a_check_file_that_is_not_utf8() {
    let env = env();
    env.write(
        "checks/latin1.sql",
        b"-- dqwatch\n-- description = \"caf\xe9\"\nSELECT 1\n",
    );
    invalid(&env, "checks/latin1.sql: error: cannot read check");
}

#[test]
fn hidden_files_and_other_extensions_are_not_checks() {
    let env = env();
    env.check("real", "-- dqwatch\nSELECT 1 WHERE 0\n");
    env.write("checks/.draft.sql", "not a check at all");
    env.write("checks/.wip/a.sql", "not a check either");
    env.write("checks/README.md", "# checks");
    env.write("checks/notes.txt", "SELECT 1");
    env.run(["validate"])
        .code(0)
        .stdout_has("✓ checks     1 check in checks");
    let report = env.run(["run", "--format", "json"]).code(0).json();
    assert_eq!(report["summary"]["checks"], 1);
}

#[test]
fn a_zero_statement_timeout_is_refused() {
    let env = env();
    env.config(
        "[connections.warehouse]\nurl = \"sqlite://warehouse.db\"\nstatement_timeout = \"0s\"\n",
    );
    invalid(
        &env,
        "dqwatch.toml:3:21: error: statement_timeout must be at least 1ms",
    );
}

#[test]
fn validate_success_says_what_it_read() {
    let env = env();
    env.check("a", "-- dqwatch\nSELECT 1\n");
    env.check("sub/b", "-- dqwatch\nSELECT 1\n");
    let out = env.run(["validate"]);
    out.code(0)
        .stdout_has("✓ config     dqwatch.toml (1 connection)")
        .stdout_has("✓ checks     2 checks in checks");
    assert_eq!(out.stderr, "");
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Copies `tests/fixtures/valid/encodings/*.sql` byte for byte.
fn encodings_env() -> TestEnv {
    let env = TestEnv::sqlite(SQLITE, "");
    for entry in std::fs::read_dir(fixtures().join("valid/encodings")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        env.write(&format!("checks/{name}"), std::fs::read(&path).unwrap());
    }
    env
}

#[test]
fn fixtures_keep_their_bytes() {
    let dir = fixtures().join("valid/encodings");
    let bom = std::fs::read(dir.join("bom.sql")).unwrap();
    assert!(bom.starts_with(b"\xEF\xBB\xBF-- dqwatch"));
    let crlf = std::fs::read(dir.join("crlf.sql")).unwrap();
    assert!(crlf.windows(2).filter(|w| w == b"\r\n").count() >= 5);
    let tabs = std::fs::read(dir.join("tabs.sql")).unwrap();
    assert!(tabs.windows(3).any(|w| w == b"--\t"));
}

#[test]
fn bom_crlf_and_tabs_parse_and_run() {
    let env = encodings_env();
    env.run(["validate"]).code(0).stdout_has("3 checks");
    let report = env
        .run(["run", "--format", "json", "--fail-on", "P0"])
        .code(0)
        .json();
    for id in ["bom", "crlf", "tabs"] {
        let doc = check_doc(&report, id);
        assert_eq!(doc["status"], "breach", "{id}: {doc:#}");
        assert_eq!(doc["severity"], "P2", "{id}: {doc:#}");
        assert_eq!(
            doc["observations"][0]["threshold"], "P2 > 1",
            "{id}: {doc:#}"
        );
    }
    let list = env.run(["list"]);
    list.code(0).stdout_has("*/5 * * * *");
    assert!(!list.stdout.contains('\r'), "{:?}", list.stdout);
}

#[test]
fn errors_in_crlf_and_bom_files_are_on_the_right_line() {
    let env = env();
    env.write(
        "checks/crlf.sql",
        "-- dqwatch\r\n-- description = \"d\"\r\n-- colour = \"red\"\r\nSELECT 1\r\n",
    );
    env.write(
        "checks/bom.sql",
        "\u{feff}-- dqwatch\n-- description = \"d\"\n-- colour = \"red\"\nSELECT 1\n",
    );
    env.write(
        "checks/tab.sql",
        "-- dqwatch\n--\tdescription = \"d\"\n--\tcolour = \"red\"\nSELECT 1\n",
    );
    let out = invalid(&env, "checks/bom.sql:3:4: error: unknown field `colour`");
    out.stderr_has("checks/crlf.sql:3:4: error: unknown field `colour`");
    out.stderr_has("checks/tab.sql:3:4: error: unknown field `colour`");
}

#[test]
fn invalid_fixture_folders_each_exit_2() {
    let root = fixtures().join("invalid");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 3);
    for case in cases {
        let env = TestEnv::new();
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        copy_tree(&case, env.path());
        crate::util::sqlite_exec(&env.path().join("warehouse.db"), SQLITE);
        let want = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        let out = env.run(["validate"]);
        assert_eq!(out.code, 2, "{name}: {out:?}");
        for line in want.lines().filter(|l| !l.is_empty()) {
            assert!(
                out.stderr.contains(line),
                "{name}: stderr lacks {line:?}\n{}",
                out.stderr
            );
        }
    }
}

// See: issues/8 item 10
#[test]
fn an_overflowing_duration_in_a_check_header_is_an_error_at_its_line() {
    let env = env();
    env.check_with(
        "a",
        &[
            "description = \"x\"",
            "reopen_within = \"99999999999999999999w\"",
        ],
        "SELECT n FROM t",
    );
    invalid(&env, "checks/a.sql:3:")
        .stderr_has("duration \"99999999999999999999w\" is too long: at most 100 years")
        .nowhere("panicked");
}

// See: issues/8 item 10
#[test]
fn an_overflowing_duration_in_a_threshold_is_an_error_at_its_line() {
    let env = env();
    env.check_with(
        "a",
        &[
            "metric = \"n\"",
            "[thresholds]",
            "P1 = \"> 99999999999999999999w\"",
        ],
        "SELECT n FROM t",
    );
    invalid(&env, "checks/a.sql:4:")
        .stderr_has("the duration is too long (at most 100 years")
        .nowhere("panicked");
    // A limit that is not a finite number never breaches: refused too.
    for limit in ["> 1e400%", "> nan%", "< inf%"] {
        env.check_with(
            "a",
            &[
                "metric = \"n\"",
                "[thresholds]",
                &format!("P1 = \"{limit}\""),
            ],
            "SELECT n FROM t",
        );
        invalid(&env, "checks/a.sql:4:").stderr_has("invalid threshold");
    }
}

// See: issues/8 item 10
#[test]
fn an_overflowing_duration_in_a_rule_parameter_is_an_error() {
    let env = env();
    env.write(
        "checks/events.toml",
        indoc! {r#"
            rule = "missing_partition"
            [params]
            table = "t"
            partition_column = "n"
            lookback = "99999999999999999999w"
        "#},
    );
    invalid(&env, "checks/events.toml:5:")
        .stderr_has("is too long")
        .nowhere("panicked");
}

// See: issues/8 item 10
#[test]
fn every_duration_in_the_config_is_range_checked() {
    let env = env();
    env.config(indoc! {r#"
        [connections.warehouse]
        url = "sqlite://warehouse.db"
        statement_timeout = "99999999999999999999w"
        [connections.other]
        url = "sqlite://warehouse.db"
        statement_timeout = "25d"
        [mail]
        from = "dq@example.com"
        transport = "smtp"
        host = "127.0.0.1"
        timeout = "1e400s"
        [severity.P0]
        respond_within = "99999999999999999999w"
        renotify_every = "36501d"
        escalation = [{ after = "99999999999999999999w", email = ["a@example.com"] }]
        [incidents]
        reopen_within = "99999999999999999999w"
    "#});
    let out = invalid(
        &env,
        "dqwatch.toml:3:21: error: duration \"99999999999999999999w\" is too long",
    );
    out.stderr_has("dqwatch.toml:6:21: error: statement_timeout must be at most 24d")
        .stderr_has("dqwatch.toml:11:11: error: invalid duration \"1e400s\"")
        .stderr_has("dqwatch.toml:13:18: error: duration")
        .stderr_has("dqwatch.toml:14:18: error: duration \"36501d\" is too long")
        .stderr_has("dqwatch.toml:15:25: error: duration")
        .stderr_has("dqwatch.toml:17:17: error: duration")
        .nowhere("panicked");
}

// See: issues/8 item 10
#[test]
fn a_reload_with_an_overflowing_duration_is_refused_and_reload_keeps_working() {
    use crate::redaction::{Daemon, get};
    let env = env();
    env.config(
        "state = \"sqlite://state.db\"\n[connections.warehouse]\nurl = \"sqlite://warehouse.db\"\n",
    );
    let quiet = "SELECT n FROM t WHERE 1 = 0";
    env.check_with("a", &["schedule = \"0 0 1 1 *\""], quiet);
    let mut d = Daemon::start(&env);
    env.check_with(
        "a",
        &[
            "schedule = \"0 0 1 1 *\"",
            "reopen_within = \"99999999999999999999w\"",
        ],
        quiet,
    );
    d.signal("HUP");
    d.wait_for("the refused reload", |d| {
        d.log().contains("Reload refused").then_some(())
    });
    assert!(d.log().contains("is too long"), "{}", d.log());
    // Fixed, plus a new check: the next SIGHUP loads both.
    env.check_with("a", &["schedule = \"0 0 1 1 *\""], quiet);
    env.check_with("b", &["schedule = \"0 0 1 1 *\""], quiet);
    d.signal("HUP");
    d.wait_for("check b after the fixed reload", |d| {
        get(d.port, "/api/checks").filter(|r| r.contains("\"b\""))
    });
    assert!(!d.log().contains("panicked"), "{}", d.log());
}
