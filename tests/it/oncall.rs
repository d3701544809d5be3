//! On-call controls end to end (issue 10): status updates, assigning a commander, resolve
//! reasons and the stats they feed (false-positive rate, SLA compliance), snooze and mute,
//! and maintenance windows — through the real binary against a SQLite warehouse, mail as
//! `.eml` files, the state store on SQLite (and PostgreSQL with `DQWATCH_TEST_POSTGRES_URL`).
//! Time is the injected `DQWATCH_NOW`, never a sleep.

use crate::daemon::{Daemon, breaching, open_incident};
use crate::require_env;
use crate::util::{Output, PgSchema, TestEnv, output, sqlite_exec};
use std::path::PathBuf;

const WAREHOUSE: &str =
    "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', 500);";
const T0: &str = "2026-11-30T10:00:00Z";

/// `T0` plus `minutes`, as `DQWATCH_NOW` takes it.
fn t(minutes: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339(T0).unwrap();
    (t0 + chrono::Duration::minutes(minutes)).to_rfc3339()
}

/// The recon check (P2 above 100, P0 above 1000), mail to on-call as files, and `tail`.
fn env(state: &str, tail: &str) -> TestEnv {
    let env = TestEnv::sqlite(WAREHOUSE, "");
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "state = \"{state}\"\n{cfg}\n[mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"file\"\ndir = \"outbox\"\n\
         [[routes]]\nemail = [\"oncall@example.com\"]\n{tail}\n"
    ));
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P0 = \"> 1000\"",
            "P2 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    env
}

/// `dqwatch --config dqwatch.toml ARGS` with the clock at `now`.
fn at(env: &TestEnv, now: &str, args: &[&str]) -> Output {
    let mut cmd = env.command();
    cmd.env("DQWATCH_NOW", now)
        .env_remove("USER")
        .arg("--config")
        .arg("dqwatch.toml")
        .args(args);
    output(&mut cmd)
}

fn warehouse(env: &TestEnv, sql: &str) {
    sqlite_exec(&env.path().join("warehouse.db"), sql);
}

/// The `.eml` files, in outbox order.
fn mails(env: &TestEnv) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(env.path().join("outbox"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort_by_key(|p| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<i64>().ok())
    });
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// The text part of a mail, quoted-printable soft breaks joined.
fn text(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=E2=80=94", "—")
}

/// Asserts the mail replies into the thread whose root is `root`.
#[track_caller]
fn in_thread(mail: &str, root: &str) {
    assert_eq!(header(mail, "In-Reply-To"), Some(root), "{mail}");
    assert!(
        header(mail, "Subject").is_some_and(|s| s.starts_with("Re: ")),
        "{mail}"
    );
}

fn commands_end_to_end(state: &str) {
    let env = env(state, "");
    at(&env, &t(0), &["run"]).code(0).stdout_has("1 opened");
    let m = mails(&env);
    assert_eq!(m.len(), 1);
    let root = header(&m[0], "Message-ID").unwrap().to_string();

    // A status update with every field: one mail in the thread, fields as written.
    at(
        &env,
        &t(5),
        &[
            "incidents",
            "update",
            "1",
            "--status",
            "investigating",
            "--impact",
            "finance dashboards",
            "--next",
            "reload the ledger",
            "--eta",
            "14:00 UTC",
            "--workaround",
            "use the export",
            "--by",
            "ann",
        ],
    )
    .code(0)
    .stdout_has("incident #1 status_update; 1 mail queued");
    let m = mails(&env);
    assert_eq!(m.len(), 2);
    in_thread(&m[1], &root);
    let body = text(&m[1]);
    for want in [
        "status investigating",
        "Status:     investigating",
        "Impact:     finance dashboards",
        "Next:       reload the ledger",
        "ETA:        14:00 UTC",
        "Workaround: use the export",
        "By:         ann",
    ] {
        assert!(body.contains(want), "{want:?} missing:\n{body}");
    }
    // Refused: an unknown status (clap), an empty field, a missing incident.
    at(
        &env,
        &t(6),
        &["incidents", "update", "1", "--status", "fixed"],
    )
    .code(2);
    at(
        &env,
        &t(6),
        &[
            "incidents",
            "update",
            "1",
            "--status",
            "mitigating",
            "--eta",
            " ",
        ],
    )
    .code(2)
    .stderr_has("--eta is empty");
    at(
        &env,
        &t(6),
        &["incidents", "update", "99", "--status", "mitigating"],
    )
    .code(2);
    assert_eq!(mails(&env).len(), 2, "a refused update mails nothing");

    // Stored structured: the timeline's event carries the fields.
    let shown = at(&env, &t(7), &["incidents", "show", "1", "--format", "json"]).json();
    let update = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "status_update")
        .cloned()
        .unwrap();
    assert_eq!(update["fields"]["status"], "investigating", "{update}");
    assert_eq!(update["fields"]["eta"], "14:00 UTC", "{update}");
    assert_eq!(update["actor"], "ann");

    // The commander: a short update in the thread; shown in list, show and JSON.
    at(
        &env,
        &t(8),
        &["incidents", "assign", "1", "--to", "bob", "--by", "ann"],
    )
    .code(0)
    .stdout_has("1 mail queued");
    let m = mails(&env);
    assert_eq!(m.len(), 3);
    in_thread(&m[2], &root);
    assert!(text(&m[2]).contains("incident commander: bob"), "{}", m[2]);
    at(&env, &t(9), &["incidents", "assign", "1", "--to", "bob"]).code(2);
    let list = at(&env, &t(9), &["incidents", "list"])
        .code(0)
        .stdout
        .clone();
    assert!(list.lines().next().unwrap().contains("ASSIGNEE"), "{list}");
    assert!(list.contains("bob"), "{list}");
    let json = at(&env, &t(9), &["incidents", "list", "--format", "json"]).json();
    assert_eq!(json[0]["assignee"], "bob", "{json}");
    assert!(json[0]["hold"].is_null(), "{json}");
    at(&env, &t(9), &["incidents", "show", "1"]).stdout_has("commander    bob");

    // Resolve with a reason: the reason is in the mail, on the event, and in stats.
    at(
        &env,
        &t(10),
        &[
            "incidents",
            "resolve",
            "1",
            "--by",
            "ann",
            "--note",
            "x",
            "--reason",
            "passed",
        ],
    )
    .code(2);
    at(
        &env,
        &t(10),
        &[
            "incidents",
            "resolve",
            "1",
            "--by",
            "ann",
            "--note",
            "x",
            "--reason",
            "bogus",
        ],
    )
    .code(2);
    at(
        &env,
        &t(10),
        &[
            "incidents",
            "resolve",
            "1",
            "--by",
            "ann",
            "--note",
            "threshold too tight",
            "--reason",
            "false_positive",
        ],
    )
    .code(0);
    let m = mails(&env);
    assert_eq!(m.len(), 4);
    in_thread(&m[3], &root);
    assert!(text(&m[3]).contains("Reason: false_positive"), "{}", m[3]);
    let stats = at(&env, &t(11), &["incidents", "stats", "--format", "json"]).json();
    let r = &stats["resolutions"][0];
    assert_eq!(r["check"], "recon", "{stats}");
    assert_eq!(r["resolved"], 1, "{stats}");
    assert_eq!(r["by_reason"]["false_positive"], 1, "{stats}");
    assert_eq!(r["false_positive_rate"], 1.0, "{stats}");
}

#[test]
fn update_assign_and_resolve_reasons_on_sqlite() {
    commands_end_to_end("sqlite://state.db");
}

#[test]
fn update_assign_and_resolve_reasons_on_postgres() {
    let url = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&url, "oncall_commands");
    commands_end_to_end(&schema.url);
}

/// Resolve reasons in stats: per check, episodes by reason and the false-positive rate
/// (false_positive / resolved episodes); a resolution by passing runs is `passed`.
#[test]
fn false_positive_rate_counts_resolved_episodes_per_check() {
    let env = env("sqlite://state.db", "[incidents]\nreopen_within = \"0s\"");
    warehouse(&env, "INSERT INTO recon VALUES ('d2', 500), ('d3', 500)");
    at(&env, &t(0), &["run"]).code(0).stdout_has("3 opened");
    at(
        &env,
        &t(1),
        &[
            "incidents",
            "resolve",
            "1",
            "--by",
            "a",
            "--note",
            "n",
            "--reason",
            "false_positive",
        ],
    )
    .code(0);
    at(
        &env,
        &t(1),
        &["incidents", "resolve", "2", "--by", "a", "--note", "n"],
    )
    .code(0);
    // d3 passes: resolved by dqwatch, reason `passed`.
    warehouse(&env, "DELETE FROM recon WHERE day = 'd3'");
    at(&env, &t(2), &["run"]).code(0);
    let stats = at(&env, &t(3), &["incidents", "stats", "--format", "json"]).json();
    let r = &stats["resolutions"][0];
    assert_eq!(r["resolved"], 3, "{stats}");
    assert_eq!(r["by_reason"]["false_positive"], 1, "{stats}");
    assert_eq!(
        r["by_reason"]["fixed"], 1,
        "the CLI's default reason: {stats}"
    );
    assert_eq!(r["by_reason"]["passed"], 1, "{stats}");
    let rate = r["false_positive_rate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{stats}");
    let out = at(&env, &t(3), &["incidents", "stats"])
        .code(0)
        .stdout
        .clone();
    assert!(out.contains("FALSE POSITIVE RATE"), "{out}");
    assert!(out.contains("33%"), "{out}");
}

/// SLA compliance: the share of due episodes acknowledged within their severity's
/// `respond_within`; the text table's columns line up.
#[test]
fn sla_compliance_is_acknowledged_within_respond_within() {
    let env = env(
        "sqlite://state.db",
        "[severity.P2]\nrespond_within = \"30m\"",
    );
    warehouse(&env, "INSERT INTO recon VALUES ('d2', 500), ('d3', 500)");
    at(&env, &t(0), &["run"]).code(0).stdout_has("3 opened");
    at(&env, &t(10), &["incidents", "ack", "1", "--by", "ann"]).code(0);
    at(&env, &t(45), &["incidents", "ack", "2", "--by", "ann"]).code(0);
    // d3: never acknowledged; at 60 min its 30 min ran out while open: due and late.
    let stats = at(&env, &t(60), &["incidents", "stats", "--format", "json"]).json();
    let p2 = stats["sla"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["severity"] == "P2")
        .cloned()
        .unwrap();
    assert_eq!(p2["respond_within"], 1800.0, "{p2}");
    assert_eq!(
        (p2["due"].as_i64(), p2["in_time"].as_i64()),
        (Some(3), Some(1)),
        "{p2}"
    );
    let c = p2["compliance"].as_f64().unwrap();
    assert!((c - 1.0 / 3.0).abs() < 1e-9, "{p2}");
    // Before d3's deadline it is not due yet: the two acknowledged ones only.
    let early = at(&env, &t(20), &["incidents", "stats", "--format", "json"]).json();
    let p2 = early["sla"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["severity"] == "P2")
        .cloned()
        .unwrap();
    assert_eq!(
        (p2["due"].as_i64(), p2["in_time"].as_i64()),
        (Some(2), Some(1)),
        "{p2}"
    );

    let out = at(&env, &t(60), &["incidents", "stats"])
        .code(0)
        .stdout
        .clone();
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("SEVERITY"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 5, "{out}");
    let width = table[0].chars().count();
    assert!(
        table.iter().all(|l| l.chars().count() == width),
        "not aligned:\n{out}"
    );
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("P2") && l.ends_with("33%")),
        "{out}"
    );
}

/// A snooze that runs out while the incident still breaches: nothing is mailed during it
/// (a severity raise is held), and exactly one update at its end, in the thread.
#[test]
fn a_snooze_ending_while_still_breaching_tells_once() {
    snooze_ends_while_breaching("sqlite://state.db");
}

#[test]
fn a_snooze_ending_while_still_breaching_tells_once_on_postgres() {
    let url = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&url, "oncall_snooze");
    snooze_ends_while_breaching(&schema.url);
}

fn snooze_ends_while_breaching(state: &str) {
    let env = env(state, "");
    at(&env, &t(0), &["run"]).code(0);
    let root = header(&mails(&env)[0], "Message-ID").unwrap().to_string();
    at(
        &env,
        &t(1),
        &[
            "incidents",
            "snooze",
            "1",
            "--for",
            "2h",
            "--reason",
            "deploy",
            "--by",
            "ann",
        ],
    )
    .code(0)
    .stdout_has("incident #1 snoozed; 1 mail queued");
    assert_eq!(mails(&env).len(), 2, "the snooze itself is told");
    assert!(text(&mails(&env)[1]).contains("snoozed by ann until 2026-11-30T12:01:00.000Z"));
    at(
        &env,
        &t(2),
        &["incidents", "snooze", "1", "--for", "soon", "--reason", "x"],
    )
    .code(2);
    let list = at(&env, &t(2), &["incidents", "list"]).stdout;
    assert!(list.contains("open, snoozed"), "{list}");
    assert!(
        list.contains("#1 snoozed until 2026-11-30T12:01:00.000Z by ann: deploy"),
        "{list}"
    );
    let json = at(&env, &t(2), &["incidents", "list", "--format", "json"]).json();
    assert_eq!(json[0]["hold"]["kind"], "snoozed", "{json}");
    assert_eq!(json[0]["hold"]["reason"], "deploy", "{json}");

    // Worse while snoozed: reconciled (severity P0) but not mailed.
    warehouse(&env, "UPDATE recon SET gap = 5000");
    at(&env, &t(30), &["run"])
        .code(1)
        .stdout_has("1 raised")
        .stdout_has("1 held");
    at(&env, &t(60), &["run"]).code(1);
    assert_eq!(mails(&env).len(), 2, "nothing told while snoozed");
    let shown = at(
        &env,
        &t(61),
        &["incidents", "show", "1", "--format", "json"],
    )
    .json();
    assert_eq!(
        shown["incident"]["severity"], "P0",
        "history is kept: {shown}"
    );

    // The first run after the end: exactly one update, in the thread.
    at(&env, &t(150), &["run"]).code(1);
    let m = mails(&env);
    assert_eq!(m.len(), 3, "one mail at the end");
    in_thread(&m[2], &root);
    assert!(
        text(&m[2]).contains("snooze ended, still breaching"),
        "{}",
        m[2]
    );
    at(&env, &t(160), &["run"]).code(1);
    at(&env, &t(170), &["run"]).code(1);
    assert_eq!(mails(&env).len(), 3, "told once");
    let list = at(&env, &t(171), &["incidents", "list"]).stdout;
    assert!(!list.contains("snoozed"), "{list}");
}

/// A snooze during which the incident resolved: at its end the resolution is told (the
/// thread gets its resolution mail), and nothing else.
#[test]
fn a_snooze_ending_after_the_resolution_tells_the_resolution_only() {
    let env = env("sqlite://state.db", "");
    at(&env, &t(0), &["run"]).code(0);
    let root = header(&mails(&env)[0], "Message-ID").unwrap().to_string();
    at(
        &env,
        &t(1),
        &[
            "incidents",
            "snooze",
            "1",
            "--for",
            "2h",
            "--reason",
            "deploy",
        ],
    )
    .code(0);
    assert_eq!(mails(&env).len(), 2);
    warehouse(&env, "UPDATE recon SET gap = 5");
    at(&env, &t(30), &["run"])
        .code(0)
        .stdout_has("1 resolved")
        .stdout_has("1 held");
    assert_eq!(mails(&env).len(), 2, "the resolution is held while snoozed");
    at(&env, &t(60), &["run"]).code(0);
    assert_eq!(mails(&env).len(), 2);
    at(&env, &t(150), &["run"]).code(0);
    let m = mails(&env);
    assert_eq!(m.len(), 3, "the resolution, and nothing else");
    in_thread(&m[2], &root);
    assert!(text(&m[2]).contains("Resolved: [P2] recon"), "{}", m[2]);
    assert!(!text(&m[2]).contains("still breaching"), "{}", m[2]);
    at(&env, &t(160), &["run"]).code(0);
    assert_eq!(mails(&env).len(), 3);
}

/// Mute until unmute: held however long; `unmute` tells what still breaches, once.
#[test]
fn mute_holds_until_unmute() {
    let env = env("sqlite://state.db", "");
    at(&env, &t(0), &["run"]).code(0);
    at(
        &env,
        &t(1),
        &[
            "incidents",
            "mute",
            "1",
            "--reason",
            "known upstream",
            "--by",
            "ann",
        ],
    )
    .code(0);
    at(
        &env,
        &t(1),
        &["incidents", "mute", "1", "--reason", "again"],
    )
    .code(2);
    assert_eq!(mails(&env).len(), 2);
    warehouse(&env, "UPDATE recon SET gap = 5000");
    at(&env, &t(600), &["run"]).code(1).stdout_has("1 held");
    at(&env, &t(6000), &["run"]).code(1);
    assert_eq!(mails(&env).len(), 2, "a mute does not run out");
    assert!(
        at(&env, &t(6001), &["incidents", "list"])
            .stdout
            .contains("open, muted")
    );
    at(&env, &t(6002), &["incidents", "unmute", "1", "--by", "bob"])
        .code(0)
        .stdout_has("hold ended; 1 mail queued");
    let m = mails(&env);
    assert_eq!(m.len(), 3);
    assert!(
        text(&m[2]).contains("unmuted by bob, still breaching"),
        "{}",
        m[2]
    );
    at(&env, &t(6003), &["incidents", "unmute", "1"]).code(2);
    at(&env, &t(6004), &["run"]).code(1);
    assert_eq!(mails(&env).len(), 3);
    // `unsnooze` ends a snooze early, told the same way.
    at(
        &env,
        &t(6005),
        &["incidents", "snooze", "1", "--for", "1d", "--reason", "r"],
    )
    .code(0);
    at(
        &env,
        &t(6006),
        &["incidents", "unsnooze", "1", "--by", "bob"],
    )
    .code(0)
    .stdout_has("hold ended; 1 mail queued");
    let m = mails(&env);
    assert_eq!(m.len(), 5, "the snooze and its end");
    assert!(
        text(&m[4]).contains("unsnoozed by bob, still breaching"),
        "{}",
        m[4]
    );
    at(&env, &t(6007), &["incidents", "unsnooze", "1"]).code(2);
}

const WINDOW: &str = "[[maintenance]]\nname = \"ledger reload\"\nstart = \"2026-11-30T09:30:00Z\"\n\
                      end = \"2026-11-30T11:00:00Z\"\nconnection = \"warehouse\"\nreason = \"monthly reload\"\n";

/// A breach that starts and ends inside a maintenance window: history kept, zero mails.
#[test]
fn a_breach_inside_a_maintenance_window_sends_nothing() {
    let env = env("sqlite://state.db", WINDOW);
    at(&env, &t(0), &["run"]).code(0).stdout_has("0 opened");
    let list = at(&env, &t(1), &["incidents", "list"]).stdout;
    assert!(list.contains("pending, in maintenance"), "{list}");
    assert!(list.contains("maintenance windows now:"), "{list}");
    assert!(
        list.contains(
            "ledger reload until 2026-11-30T11:00:00.000Z (connection warehouse): monthly reload"
        ),
        "{list}"
    );
    assert!(
        at(&env, &t(1), &["list"])
            .stdout
            .contains("ledger reload until")
    );
    at(&env, &t(20), &["run"]).code(0);
    warehouse(&env, "UPDATE recon SET gap = 5");
    at(&env, &t(40), &["run"]).code(0);
    at(&env, &t(70), &["run"]).code(0);
    at(&env, &t(90), &["run"]).code(0);
    assert!(mails(&env).is_empty(), "{:?}", mails(&env));
    let shown = at(
        &env,
        &t(91),
        &["incidents", "show", "1", "--format", "json"],
    )
    .json();
    let kinds: Vec<&str> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["detected", "cleared"], "{shown}");
    assert_eq!(shown["incident"]["state"], "resolved");
}

/// A breach that starts inside a window and outlasts it: exactly one opened mail, at the
/// first run after the window, starting its thread.
#[test]
fn a_breach_outlasting_a_maintenance_window_opens_once_after_it() {
    let env = env("sqlite://state.db", WINDOW);
    at(&env, &t(0), &["run"]).code(0).stdout_has("0 opened");
    at(&env, &t(30), &["run"]).code(0).stdout_has("0 opened");
    assert!(mails(&env).is_empty());
    at(&env, &t(60), &["run"]).code(0).stdout_has("1 opened");
    let m = mails(&env);
    assert_eq!(m.len(), 1);
    assert!(
        header(&m[0], "In-Reply-To").is_none(),
        "the thread's root: {}",
        m[0]
    );
    assert!(header(&m[0], "Subject").is_some_and(|s| !s.starts_with("Re:")));
    at(&env, &t(90), &["run"]).code(0);
    assert_eq!(mails(&env).len(), 1);
}

/// An open incident whose severity rises inside a nightly (cron) window: the raise is held,
/// and the first run after the window tells once that it still breaches.
#[test]
fn an_open_incident_in_a_cron_window_is_told_once_after_it() {
    let env = env(
        "sqlite://state.db",
        "[[maintenance]]\nname = \"nightly\"\ncron = \"0 2 * * *\"\nduration = \"1h\"\nchecks = [\"rec*\"]\n",
    );
    at(&env, "2026-11-30T01:00:00Z", &["run"])
        .code(0)
        .stdout_has("1 opened");
    let root = header(&mails(&env)[0], "Message-ID").unwrap().to_string();
    warehouse(&env, "UPDATE recon SET gap = 5000");
    at(&env, "2026-11-30T02:10:00Z", &["run"])
        .code(1)
        .stdout_has("1 held");
    at(&env, "2026-11-30T02:50:00Z", &["run"]).code(1);
    assert_eq!(mails(&env).len(), 1);
    assert!(
        at(&env, "2026-11-30T02:55:00Z", &["incidents", "list"])
            .stdout
            .contains("open, in maintenance")
    );
    at(&env, "2026-11-30T03:10:00Z", &["run"]).code(1);
    let m = mails(&env);
    assert_eq!(m.len(), 2);
    in_thread(&m[1], &root);
    assert!(
        text(&m[1]).contains("maintenance window ended, still breaching"),
        "{}",
        m[1]
    );
    at(&env, "2026-11-30T03:20:00Z", &["run"]).code(1);
    assert_eq!(mails(&env).len(), 2);
}

/// Bad windows are diagnostics with file and line, from `validate` and every command.
#[test]
fn a_bad_maintenance_window_is_a_diagnostic_with_its_line() {
    let env = env(
        "sqlite://state.db",
        "[[maintenance]]\nname = \"a\"\ncron = \"0 2 * * *\"\n\
         [[maintenance]]\nname = \"b\"\nstart = \"2026-11-30T10:00:00Z\"\nend = \"2026-11-30T09:00:00Z\"\n",
    );
    let cfg = env.read("dqwatch.toml");
    let line_of = |needle: &str| cfg.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let out = at(&env, &t(0), &["validate"]);
    out.code(2)
        .stderr_has(&format!("dqwatch.toml:{}:", line_of("cron")))
        .stderr_has("a cron maintenance window needs a duration")
        .stderr_has(&format!("dqwatch.toml:{}:", line_of("end =")))
        .stderr_has("must end after it starts");
    at(&env, &t(0), &["run"]).code(2);

    // A cron the schedule parser refuses: at the cron's own line and column.
    let env = env_with_cron("61 2 * * *");
    let cfg = env.read("dqwatch.toml");
    let line = cfg.lines().position(|l| l.starts_with("cron")).unwrap() + 1;
    at(&env, &t(0), &["validate"])
        .code(2)
        .stderr_has(&format!(
            "dqwatch.toml:{line}:8: error: maintenance window \"nightly\""
        ))
        .stdout_has("✗ maintenance");
    at(&env, &t(0), &["incidents", "list"]).code(2);
}

fn env_with_cron(cron: &str) -> TestEnv {
    env(
        "sqlite://state.db",
        &format!("[[maintenance]]\nname = \"nightly\"\ncron = \"{cron}\"\nduration = \"1h\"\n"),
    )
}

/// An acknowledgement and a snooze at the same moment, each from its own process: the
/// revision check makes one of them decide again, and neither is lost.
fn ack_and_snooze_race(state: &str) {
    let env = env(state, "");
    warehouse(
        &env,
        "INSERT INTO recon VALUES ('d2', 500), ('d3', 500), ('d4', 500)",
    );
    at(&env, &t(0), &["run"]).code(0).stdout_has("4 opened");
    for id in 1..=4 {
        let id = id.to_string();
        let spawn = |args: &[&str]| {
            let mut cmd = env.command();
            cmd.env("DQWATCH_NOW", t(1))
                .arg("--config")
                .arg("dqwatch.toml")
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        };
        let ack = spawn(&["incidents", "ack", &id, "--by", "ann"]);
        let snooze = spawn(&[
            "incidents",
            "snooze",
            &id,
            "--for",
            "1h",
            "--reason",
            "r",
            "--by",
            "bob",
        ]);
        for child in [ack, snooze] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let shown = at(&env, &t(2), &["incidents", "show", &id, "--format", "json"]).json();
        assert_eq!(shown["incident"]["state"], "acknowledged", "{shown}");
        assert_eq!(shown["incident"]["acknowledged_by"], "ann", "{shown}");
        assert_eq!(shown["incident"]["hold"]["kind"], "snoozed", "{shown}");
        assert_eq!(shown["incident"]["hold"]["by"], "bob", "{shown}");
        let kinds: Vec<&str> = shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert!(
            kinds.contains(&"acknowledged") && kinds.contains(&"snoozed"),
            "{kinds:?}"
        );
    }
}

#[test]
fn concurrent_ack_and_snooze_lose_nothing_on_sqlite() {
    ack_and_snooze_race("sqlite://state.db");
}

#[test]
fn concurrent_ack_and_snooze_lose_nothing_on_postgres() {
    let url = require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = PgSchema::new(&url, "oncall_race");
    ack_and_snooze_race(&schema.url);
}

/// The API: update, assign and snooze with the token (401 without), the same rules as the
/// CLI (a resolve needs a note; its reason defaults to `fixed`); list/show carry the
/// assignee and the hold; the page shows them and offers the snooze form.
#[test]
fn the_api_updates_assigns_and_snoozes() {
    const TOKEN: &str = "oncall-token";
    let env = breaching(
        "oncall_api",
        "sqlite://state.db",
        "api_token = \"${DQWATCH_API_TOKEN}\"",
        "",
    );
    let d = Daemon::start(&env, &[("DQWATCH_API_TOKEN", TOKEN)]);
    let auth = format!("Bearer {TOKEN}");
    let id = open_incident(&d)["id"].as_i64().unwrap();
    let path = |what: &str| format!("/api/incidents/{id}/{what}");

    let body = r#"{"by": "ann", "status": "mitigating", "eta": "14:00 UTC", "workaround": "use the export"}"#;
    assert_eq!(d.post(&path("update"), None, body).status, 401);
    let r = d.post(
        &path("update"),
        Some(&auth),
        r#"{"by": "ann", "status": "done"}"#,
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = d.post(&path("update"), Some(&auth), body);
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post(
        &path("assign"),
        Some(&auth),
        r#"{"by": "ann", "to": "bob"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post(
        &path("snooze"),
        Some(&auth),
        r#"{"by": "ann", "reason": "deploy"}"#,
    );
    assert_eq!(r.status, 400, "a snooze says for how long: {r:?}");
    let r = d.post(
        &path("snooze"),
        Some(&auth),
        r#"{"by": "ann", "for": "2h", "reason": "deploy"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post(
        &path("resolve"),
        Some(&auth),
        r#"{"by": "ann", "reason": "fixed"}"#,
    );
    assert_eq!(r.status, 400, "a note is required, as on the CLI: {r:?}");
    let r = d.post(
        &path("resolve"),
        Some(&auth),
        r#"{"by": "ann", "note": "n", "reason": "bogus"}"#,
    );
    assert_eq!(r.status, 400, "{r:?}");

    let shown = d.get(&format!("/api/incidents/{id}")).json();
    assert_eq!(shown["incident"]["assignee"], "bob", "{shown}");
    assert_eq!(shown["incident"]["hold"]["kind"], "snoozed", "{shown}");
    let timeline = shown["timeline"].as_array().unwrap();
    assert!(
        timeline.iter().any(|e| e["kind"] == "status_update"
            && e["fields"]["status"] == "mitigating"
            && e["fields"]["workaround"] == "use the export"),
        "{shown}"
    );
    let list = d.get("/api/incidents").json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|i| i["assignee"] == "bob"),
        "{list}"
    );

    let page = d.get(&format!("/incidents/{id}"));
    assert!(
        page.body
            .contains("<span class=\"state held\">snoozed</span>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<dt>commander</dt><dd>bob</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("action=\"/incidents/{id}/unsnooze\"")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("name=\"reason\""),
        "the resolve form's reason: {}",
        page.body
    );
    let r = d.post(&path("unsnooze"), Some(&auth), r#"{"by": "ann"}"#);
    assert_eq!(r.status, 200, "{r:?}");
    let page = d.get(&format!("/incidents/{id}"));
    assert!(
        page.body
            .contains(&format!("action=\"/incidents/{id}/snooze\"")),
        "{}",
        page.body
    );
    d.stop();
}

/// An incident snoozed while pending that opens during the snooze: its opening is held, and
/// at the end the opening itself goes out — the thread's root, not a reply into a thread
/// that was never started.
#[test]
fn an_incident_that_opened_while_snoozed_starts_its_thread_at_the_end() {
    let env = env("sqlite://state.db", "[incidents]\nopen_after = 2");
    at(&env, &t(0), &["run"]).code(0).stdout_has("0 opened");
    at(
        &env,
        &t(1),
        &[
            "incidents",
            "snooze",
            "1",
            "--for",
            "2h",
            "--reason",
            "known",
        ],
    )
    .code(0)
    .stdout_has("(on the timeline; no mail)");
    at(&env, &t(10), &["run"])
        .code(0)
        .stdout_has("1 opened")
        .stdout_has("1 held");
    assert!(mails(&env).is_empty(), "the opening is held");
    at(&env, &t(150), &["run"]).code(0);
    let m = mails(&env);
    assert_eq!(m.len(), 1, "the held opening, and nothing else");
    assert!(header(&m[0], "In-Reply-To").is_none(), "{}", m[0]);
    assert!(
        !header(&m[0], "Subject").unwrap().starts_with("Re:"),
        "{}",
        m[0]
    );
    at(&env, &t(160), &["run"]).code(0);
    assert_eq!(mails(&env).len(), 1);
}

/// A mute has no end of its own, and a thread must get its resolution: an incident that
/// resolves while muted is told its resolution by the same run, and the mute is over.
#[test]
fn a_muted_incident_that_resolves_is_told_its_resolution() {
    let env = env("sqlite://state.db", "");
    at(&env, &t(0), &["run"]).code(0);
    let root = header(&mails(&env)[0], "Message-ID").unwrap().to_string();
    at(
        &env,
        &t(1),
        &["incidents", "mute", "1", "--reason", "known"],
    )
    .code(0);
    assert_eq!(mails(&env).len(), 2);
    warehouse(&env, "UPDATE recon SET gap = 5");
    at(&env, &t(30), &["run"]).code(0).stdout_has("1 resolved");
    let m = mails(&env);
    assert_eq!(m.len(), 3, "the resolution, at once");
    in_thread(&m[2], &root);
    assert!(text(&m[2]).contains("Resolved: [P2] recon"), "{}", m[2]);
    at(&env, &t(40), &["run"]).code(0);
    assert_eq!(mails(&env).len(), 3);
    let shown = at(
        &env,
        &t(41),
        &["incidents", "show", "1", "--format", "json"],
    )
    .json();
    assert!(shown["incident"]["hold"].is_null(), "{shown}");
}
