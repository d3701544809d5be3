//! The incidents page as an on-call console (issue 14): the real daemon over real HTTP, the
//! HTML read back; with `DQWATCH_TEST_CHROMIUM`, screenshots at desktop and phone widths.

use crate::daemon::{Daemon, Response, SOON, config};
use crate::require_env;
use crate::util::{TestEnv, output_within};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "page-s3cret";
/// A key value and a description that are markup: the page must show them as text.
const KEY: &str = "<script>k()</script>";
const KEY_ESCAPED: &str = "&lt;script&gt;k()&lt;/script&gt;";
const DESCRIPTION: &str = "<script>alert(1)</script> lag of the orders feed";

/// A temp dir whose `freshness` check breaches every second (93600 s against `> 24h`, one
/// key), with a runbook, an owner and a tag, and a `broken` check that fails every second.
fn console_env(daemon: &str) -> TestEnv {
    let env = TestEnv::sqlite(
        &format!("CREATE TABLE t (k TEXT, lag REAL); INSERT INTO t VALUES ('{KEY}', 93600);"),
        "",
    );
    env.config(&config("sqlite://state.db", daemon, ""));
    env.check_with(
        "freshness",
        &[
            &format!("description = \"{DESCRIPTION}\""),
            "schedule = \"* * * * * *\"",
            "keys = [\"k\"]",
            "metric = \"lag\"",
            "runbook = \"https://wiki.example.com/runbooks/freshness\"",
            "owners = [\"data-team@example.com\"]",
            "tags = [\"pipeline\"]",
            "[thresholds]",
            "P2 = \"> 24h\"",
        ],
        "SELECT k, lag FROM t",
    );
    env.check_with(
        "broken",
        &["schedule = \"* * * * * *\""],
        "SELECT n FROM no_such_table",
    );
    env
}

/// The open incident of `check`, once there is one.
fn incident_of(d: &Daemon, check: &str) -> serde_json::Value {
    d.wait_for(&format!("an open incident of {check}"), SOON, || {
        d.get("/api/incidents")
            .json()
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|i| i["check_id"] == check && i["state"] == "open")
            })
            .cloned()
    })
}

/// `POST path` with an HTML form body (`application/x-www-form-urlencoded`).
fn post_form(d: &Daemon, path: &str, fields: &[(&str, &str)]) -> Response {
    let body: String = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    Response {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Each incident on `/` says what an on-call engineer needs, everything user-provided is
/// text, and the page is built for a phone (viewport, `lang`, `<main>`).
#[test]
fn the_incidents_page_shows_metric_runbook_age_and_escapes_everything() {
    let env = console_env("");
    let d = Daemon::start(&env, &[]);
    let inc = incident_of(&d, "freshness");
    let failed = incident_of(&d, "broken");
    let id = inc["id"].as_i64().unwrap();
    let opened_at = inc["opened_at"].as_str().unwrap().to_string();

    let page = d.get("/");
    assert_eq!(page.status, 200);
    let html = &page.body;
    for want in [
        "<html lang=\"en\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<main>",
        // The metric in its unit against the threshold, from the one formatter.
        "1d 2h (threshold P2 &gt; 24h)",
        "<a href=\"https://wiki.example.com/runbooks/freshness\">",
        "data-team@example.com",
        "&lt;script&gt;alert(1)&lt;/script&gt; lag of the orders feed",
        KEY_ESCAPED,
        &format!("href=\"/incidents/{id}\""),
        "no_such_table",
    ] {
        assert!(html.contains(want), "missing {want:?} in\n{html}");
    }
    // The relative age with the exact time on hover.
    assert!(
        html.contains(&format!("title=\"{opened_at}\"")),
        "no exact time {opened_at} in\n{html}"
    );
    assert!(
        html.contains(" s ago</time>") || html.contains(" m ago</time>"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "markup from the data:\n{html}");
    // Headings in order: one h1, then h2s, h3s within them.
    assert_eq!(html.matches("<h1>").count(), 1);
    assert!(html.find("<h1>") < html.find("<h2>"));

    // Filters: by severity, state, connection, tag and owner.
    let only = |q: &str| d.get(&format!("/?{q}")).body;
    assert!(only("severity=P2").contains(&format!("/incidents/{id}\"")));
    assert!(!only("severity=P0").contains(&format!("/incidents/{id}\"")));
    assert!(only("tag=pipeline").contains(&format!("/incidents/{id}\"")));
    let by_tag = only("tag=pipeline");
    assert!(
        !by_tag.contains(&format!("/incidents/{}\"", failed["id"])),
        "{by_tag}"
    );
    assert!(only("owner=data-team%40example.com").contains(&format!("/incidents/{id}\"")));
    assert!(only("connection=warehouse").contains(&format!("/incidents/{id}\"")));
    assert!(!only("state=acknowledged").contains(&format!("/incidents/{id}\"")));

    // The incident's own page: timeline and chart, no forms without a token.
    let own = d.get(&format!("/incidents/{id}"));
    assert_eq!(own.status, 200);
    assert!(own.body.contains("Timeline"), "{}", own.body);
    assert!(own.body.contains("<svg"), "{}", own.body);
    assert!(own.body.contains("threshold 1d"), "{}", own.body);
    // The breaching rows the ticket was opened with, escaped like everything else.
    assert!(own.body.contains("Breaching rows (sample)"), "{}", own.body);
    assert!(own.body.contains("<td>93600</td>"), "{}", own.body);
    assert!(
        !own.body.contains(KEY),
        "the key is escaped in the sample too"
    );
    // Who was told (the opened mail, once it is queued).
    d.wait_for("the opened mail on the incident page", SOON, || {
        d.get(&format!("/incidents/{id}"))
            .body
            .contains("oncall@example.com")
            .then_some(())
    });
    assert!(!own.body.contains("<form class=\"act\""), "{}", own.body);
    assert!(!own.body.contains("<script>"), "{}", own.body);
    assert_eq!(d.get("/incidents/999999").status, 404);

    // A form POST to a read-only daemon is refused and changes nothing.
    let r = post_form(
        &d,
        &format!("/incidents/{id}/ack"),
        &[("token", ""), ("by", "ann")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let now = d.get(&format!("/api/incidents/{id}")).json();
    assert_eq!(now["incident"]["state"], "open");

    // The check page: runs with durations and the per-key history.
    let check = d.get("/checks/freshness");
    assert_eq!(check.status, 200);
    assert!(check.body.contains(" ms</td>"), "{}", check.body);
    assert!(check.body.contains(KEY_ESCAPED), "{}", check.body);
    assert!(!check.body.contains("<script>"), "{}", check.body);
    assert_eq!(d.get("/checks/nope").status, 404);

    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
}

/// With `api_token`, the incident page has the forms; a POST with a wrong token is refused
/// and changes nothing, the right one acknowledges, and resolve needs a note.
#[test]
fn the_page_forms_change_an_incident_only_with_the_token() {
    let env = console_env("api_token = \"${DQWATCH_API_TOKEN}\"");
    let d = Daemon::start(&env, &[("DQWATCH_API_TOKEN", TOKEN)]);
    let id = incident_of(&d, "freshness")["id"].as_i64().unwrap();
    let own = d.get(&format!("/incidents/{id}")).body;
    for want in [
        &format!("action=\"/incidents/{id}/ack\""),
        &format!("action=\"/incidents/{id}/resolve\""),
        &format!("action=\"/incidents/{id}/note\""),
        "type=\"password\" name=\"token\"",
    ] {
        assert!(own.contains(want), "missing {want:?} in\n{own}");
    }
    assert!(!own.contains(TOKEN), "the token leaked into the page");

    let state = || d.get(&format!("/api/incidents/{id}")).json()["incident"].clone();
    for wrong in ["", "page-s3cre", "page-s3cret ", "Bearer page-s3cret"] {
        let r = post_form(
            &d,
            &format!("/incidents/{id}/ack"),
            &[("token", wrong), ("by", "mallory")],
        );
        assert_eq!(r.status, 401, "token {wrong:?}: {}", r.body);
        assert_eq!(state()["state"], "open", "token {wrong:?}");
    }
    let r = post_form(
        &d,
        &format!("/incidents/{id}/resolve"),
        &[("token", TOKEN), ("by", "ann"), ("note", " ")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(state()["state"], "open");

    let r = post_form(
        &d,
        &format!("/incidents/{id}/ack"),
        &[("token", TOKEN), ("by", "ann"), ("note", "looking")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.head.contains(&format!("location: /incidents/{id}")),
        "{}",
        r.head
    );
    let now = state();
    assert_eq!(now["state"], "acknowledged");
    assert_eq!(now["acknowledged_by"], "ann");

    let r = post_form(
        &d,
        &format!("/incidents/{id}/note"),
        &[
            ("token", TOKEN),
            ("by", "ann"),
            ("note", "<i>upstream</i> late"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let own = d.get(&format!("/incidents/{id}")).body;
    assert!(own.contains("&lt;i&gt;upstream&lt;/i&gt; late"), "{own}");
    let front = d.get("/").body;
    assert!(front.contains("by ann"), "{front}");

    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
}

/// Screenshots of `/` and an incident page in headless Chromium at 1400 px and 390 px. With
/// `DQWATCH_PAGE_SCREENSHOTS` (a folder), they are copied there (how docs/ was made).
#[test]
fn the_page_renders_at_desktop_and_phone_widths_in_chromium() {
    let chromium = require_env!("DQWATCH_TEST_CHROMIUM");
    let env = console_env("api_token = \"${DQWATCH_API_TOKEN}\"");
    let d = Daemon::start(&env, &[("DQWATCH_API_TOKEN", TOKEN)]);
    let id = incident_of(&d, "freshness")["id"].as_i64().unwrap();
    incident_of(&d, "broken");
    d.wait_for("a few runs to chart", SOON, || {
        (d.metric("dqwatch_runs_total", &[("check", "freshness")]) >= 4.0).then_some(())
    });
    let shots = [
        ("page-desktop.png", "/", (1400, 1000)),
        ("page-phone.png", "/", (390, 844)),
        (
            "incident-desktop.png",
            &*format!("/incidents/{id}"),
            (1400, 1000),
        ),
        (
            "incident-phone.png",
            &*format!("/incidents/{id}"),
            (390, 844),
        ),
    ];
    let out = std::env::var("DQWATCH_PAGE_SCREENSHOTS").ok();
    for (name, path, (w, h)) in shots {
        let png = env.path().join(name);
        let mut cmd = Command::new(&chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={w},{h}"))
        .arg(format!(
            "--user-data-dir={}",
            env.path().join(format!("chromium-{name}")).display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("http://127.0.0.1:{}{path}", d.port));
        let r = output_within(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|o| panic!("chromium hung: {o:?}"));
        assert_eq!(r.code, 0, "chromium failed: {}", r.stderr);
        let bytes = std::fs::read(&png).expect("the screenshot");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        assert_eq!(width, w, "{name}");
        assert!(
            bytes.len() > 10_000,
            "{name}: a near-empty screenshot of {} bytes",
            bytes.len()
        );
        if let Some(dir) = &out {
            std::fs::copy(&png, std::path::Path::new(dir).join(name)).unwrap();
        }
    }

    // axe-core on both pages at both widths: no serious or critical violation.
    match std::env::var("DQWATCH_TEST_AXE") {
        Ok(node_path) if !node_path.is_empty() => {
            let script =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/page/axe.cjs");
            let mut cmd = Command::new("node");
            cmd.arg(script)
                .arg(format!("http://127.0.0.1:{}/", d.port))
                .arg(format!("http://127.0.0.1:{}/incidents/{id}", d.port))
                .arg(format!("http://127.0.0.1:{}/checks/freshness", d.port))
                .env("NODE_PATH", node_path)
                .env("CHROMIUM", &chromium);
            let r = output_within(&mut cmd, Duration::from_secs(120))
                .unwrap_or_else(|o| panic!("axe hung: {o:?}"));
            assert_eq!(r.code, 0, "axe-core:\n{}\n{}", r.stdout, r.stderr);
        }
        _ => crate::util::skip(
            "page::the_page_renders_at_desktop_and_phone_widths_in_chromium (axe-core)",
            "DQWATCH_TEST_AXE (a node_modules folder with axe-core and puppeteer-core) not set",
        ),
    }
    let (code, _) = d.stop();
    assert_eq!(code, 0, "{}", d.log_text());
}
