//! Channels (issue 11): Slack, PagerDuty, Teams and a signed webhook, end to end through the
//! real binary. No Slack or PagerDuty runs offline, so each test starts loopback HTTP
//! servers (axum) that enforce the services' documented contracts strictly — request
//! shape, auth header, limits — and answer as the services do (429 with Retry-After, 5xx,
//! 400 with an error body, Slack's `ok: false`). Webhook signatures are verified with the
//! PyPI `standardwebhooks` package (DQWATCH_TEST_STANDARDWEBHOOKS=1), not with our code.

use crate::util::{TestEnv, sqlite_exec};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

const SLACK_TOKEN: &str = "xoxb-1111-2222-SECRETslacktoken";
const ROUTING_KEY: &str = "R0UTINGKEYSECRET0123456789abcdef"; // 32 characters
const WEBHOOK_SECRET: &str = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw==";
const TEAMS_SIG: &str = "TEAMSSIGSECRET42";
/// The Slack channel id the fake workspace gives `#data-incidents`.
const SLACK_CHANNEL_ID: &str = "C0DATA";

/// One request a fake service received, and what it answered.
#[derive(Debug, Clone)]
struct Req {
    service: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
    status: u16,
    /// Slack's `ok: false` (an HTTP 200 that refused).
    refused: bool,
    at: std::time::Instant,
}

impl Req {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// What the fakes should do next (failure injection).
#[derive(Default)]
struct Ctl {
    /// Slack answers this many requests with 429 + Retry-After.
    slack_429: u32,
    /// PagerDuty answers this many events with 429.
    pd_429: u32,
    /// PagerDuty answers this many events with 500.
    pd_500: u32,
    /// PagerDuty refuses this many events with 400 and an error body.
    pd_400: u32,
    /// The webhook receiver answers this many deliveries with 500.
    hook_500: u32,
}

#[derive(Default)]
struct Fake {
    log: Mutex<Vec<Req>>,
    ctl: Mutex<Ctl>,
    /// Slack messages by ts: (channel id, text, thread_ts).
    slack: Mutex<Vec<(String, String, Option<String>)>>,
}

/// Loopback servers for every service, on one port; stops when dropped.
struct Services {
    port: u16,
    fake: Arc<Fake>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Services {
    fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> Self {
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let fake = Arc::new(Fake::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&fake);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Services {
            port,
            fake,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn ctl(&self, f: impl FnOnce(&mut Ctl)) {
        f(&mut self.fake.ctl.lock().unwrap());
    }

    /// Requests to `service` that it accepted.
    fn accepted(&self, service: &str) -> Vec<Req> {
        self.fake
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.service == service && (200..300).contains(&r.status))
            .filter(|r| !r.refused)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Req> {
        self.fake.log.lock().unwrap().clone()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn headers_of(h: &HeaderMap) -> HashMap<String, String> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let text = String::from_utf8_lossy(&body).into_owned();
    let (service, status, answer, extra): (&str, u16, Value, Option<(&str, String)>) =
        if let Some(method) = path.strip_prefix("/slack/api/") {
            let (s, v, h) = slack(&fake, method, &headers, &text);
            ("slack", s, v, h)
        } else if path == "/pd/v2/enqueue" {
            let (s, v) = pagerduty(&fake, &headers, &body);
            ("pagerduty", s, v, None)
        } else if path == "/teams" {
            ("teams", teams(&uri, &headers, &text), Value::Null, None)
        } else if path == "/hook" {
            let mut ctl = fake.ctl.lock().unwrap();
            let s = if ctl.hook_500 > 0 {
                ctl.hook_500 -= 1;
                500
            } else {
                204
            };
            ("webhook", s, Value::Null, None)
        } else {
            ("unknown", 404, Value::Null, None)
        };
    fake.log.lock().unwrap().push(Req {
        service: service.into(),
        path,
        headers: headers_of(&headers),
        body: text,
        status,
        refused: answer["ok"] == false,
        at: std::time::Instant::now(),
    });
    let mut resp = if answer.is_null() {
        StatusCode::from_u16(status).unwrap().into_response()
    } else {
        (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response()
    };
    if let Some((name, value)) = extra {
        resp.headers_mut().insert(name, value.parse().unwrap());
    }
    resp
}

/// Slack's Web API as documented: bearer token, JSON body, `ok: false` with an error code
/// (HTTP 200) for what it refuses, 429 with Retry-After when rate-limited.
fn slack(
    fake: &Fake,
    method: &str,
    headers: &HeaderMap,
    body: &str,
) -> (u16, Value, Option<(&'static str, String)>) {
    {
        let mut ctl = fake.ctl.lock().unwrap();
        if ctl.slack_429 > 0 {
            ctl.slack_429 -= 1;
            return (
                429,
                json!({ "ok": false, "error": "ratelimited" }),
                Some(("retry-after", "1".into())),
            );
        }
    }
    let fail = |e: &str| (200, json!({ "ok": false, "error": e }), None);
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => return fail("not_authed"),
        Some(a) if a != format!("Bearer {SLACK_TOKEN}") => return fail("invalid_auth"),
        _ => {}
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return fail("invalid_arguments");
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return fail("invalid_json");
    };
    let text = v["text"].as_str().unwrap_or("");
    let blocks = v["blocks"].as_array();
    if text.is_empty() && blocks.is_none_or(Vec::is_empty) {
        return fail("no_text");
    }
    if text.chars().count() > 40_000 {
        return fail("msg_too_long");
    }
    if let Some(b) = blocks {
        if b.len() > 50 {
            return fail("invalid_blocks");
        }
        for block in b {
            let t = &block["type"];
            let ok = match t.as_str() {
                Some("header") => {
                    block["text"]["type"] == "plain_text"
                        && block["text"]["text"]
                            .as_str()
                            .is_some_and(|s| s.chars().count() <= 150)
                }
                Some("section") => {
                    block["text"]["text"]
                        .as_str()
                        .is_none_or(|s| s.chars().count() <= 3000)
                        && block["fields"].as_array().is_none_or(|f| {
                            f.len() <= 10
                                && f.iter().all(|x| {
                                    x["text"]
                                        .as_str()
                                        .is_some_and(|s| s.chars().count() <= 2000)
                                })
                        })
                }
                Some("context") => block["elements"].as_array().is_some_and(|e| e.len() <= 10),
                _ => false,
            };
            if !ok {
                return fail("invalid_blocks");
            }
        }
    }
    let channel = v["channel"].as_str().unwrap_or("");
    let mut msgs = fake.slack.lock().unwrap();
    match method {
        "chat.postMessage" => {
            if channel != "#data-incidents" && channel != SLACK_CHANNEL_ID {
                return fail("channel_not_found");
            }
            let thread = v["thread_ts"].as_str().map(str::to_string);
            if let Some(t) = &thread
                && !msgs.iter().enumerate().any(|(i, _)| ts(i) == *t)
            {
                return fail("thread_not_found");
            }
            msgs.push((SLACK_CHANNEL_ID.into(), text.into(), thread));
            let ts = ts(msgs.len() - 1);
            (
                200,
                json!({ "ok": true, "channel": SLACK_CHANNEL_ID, "ts": ts, "message": { "text": text } }),
                None,
            )
        }
        "chat.update" => {
            // chat.update takes the channel's id, never its name.
            if channel != SLACK_CHANNEL_ID {
                return fail("channel_not_found");
            }
            let at = v["ts"].as_str().unwrap_or("");
            let Some(i) = (0..msgs.len()).find(|i| ts(*i) == at) else {
                return fail("message_not_found");
            };
            msgs[i].1 = text.into();
            (
                200,
                json!({ "ok": true, "channel": SLACK_CHANNEL_ID, "ts": at, "text": text }),
                None,
            )
        }
        _ => fail("unknown_method"),
    }
}

fn ts(i: usize) -> String {
    format!("1700000000.{:06}", i + 100)
}

/// PagerDuty Events API v2 as documented: 202 for a valid event; 400 with an error body for
/// an invalid one (routing key of 32 characters, an action, a dedup key of at most 255, a
/// trigger's summary of at most 1024, source and severity, a body of at most 512 KB).
fn pagerduty(fake: &Fake, headers: &HeaderMap, body: &[u8]) -> (u16, Value) {
    {
        let mut ctl = fake.ctl.lock().unwrap();
        if ctl.pd_429 > 0 {
            ctl.pd_429 -= 1;
            return (
                429,
                json!({ "status": "throttle event", "message": "Requests for this service are arriving too quickly." }),
            );
        }
        if ctl.pd_500 > 0 {
            ctl.pd_500 -= 1;
            return (500, json!({ "status": "error" }));
        }
        if ctl.pd_400 > 0 {
            ctl.pd_400 -= 1;
            return (
                400,
                json!({ "status": "invalid event", "message": "Event object is invalid", "errors": ["'payload.custom_details' is refused by this test"] }),
            );
        }
    }
    let invalid = |errors: Vec<String>| {
        (
            400,
            json!({ "status": "invalid event", "message": "Event object is invalid", "errors": errors }),
        )
    };
    if body.len() > 512 * 1024 {
        return invalid(vec!["Event body exceeds 512 KB".into()]);
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return invalid(vec!["Content-Type must be application/json".into()]);
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return invalid(vec!["Invalid JSON".into()]);
    };
    let mut errors = Vec::new();
    if v["routing_key"].as_str().is_none_or(|k| k.len() != 32) {
        errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".into());
    }
    let action = v["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push("'event_action' is invalid".into());
    }
    match v["dedup_key"].as_str() {
        Some(k) if k.len() > 255 => errors.push("'dedup_key' is too long".into()),
        None if action != "trigger" => errors.push("'dedup_key' is required".into()),
        _ => {}
    }
    if action == "trigger" {
        let p = &v["payload"];
        if p["summary"]
            .as_str()
            .is_none_or(|s| s.is_empty() || s.chars().count() > 1024)
        {
            errors.push("'payload.summary' is missing or longer than 1024".into());
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            errors.push("'payload.source' is missing".into());
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or(""))
        {
            errors.push("'payload.severity' is invalid".into());
        }
    }
    if !errors.is_empty() {
        return invalid(errors);
    }
    (
        202,
        json!({ "status": "success", "message": "Event processed", "dedup_key": v["dedup_key"] }),
    )
}

/// A Teams Workflows webhook answers 202 to anything it accepts; the signature is in the
/// URL. (The fake records whether the card is well formed; the test asserts it.)
fn teams(uri: &Uri, _headers: &HeaderMap, _body: &str) -> u16 {
    if uri.query() != Some(&format!("sig={TEAMS_SIG}")) {
        return 401;
    }
    202
}

/// A SQLite warehouse with one reconciliation check (P1 when the gap is over 100), a state
/// store, file mail, and every channel kind on a route for every severity, served by
/// `svc` (the webhook at `hook`, so that it can be down while the rest is up).
fn env(svc_base: &str, hook_base: &str, rate_limit: &str) -> TestEnv {
    env_on("sqlite://state.db", svc_base, hook_base, rate_limit)
}

/// [`env`] with the state store at `state`.
fn env_on(state: &str, svc_base: &str, hook_base: &str, rate_limit: &str) -> TestEnv {
    let env = TestEnv::sqlite(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', 500);",
        "",
    );
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "state = \"{state}\"\n{cfg}\n\
         [mail]\nfrom = \"dq <dq@example.com>\"\ntransport = \"file\"\ndir = \"outbox\"\n\
         [channels.incidents]\ntype = \"slack\"\ntoken = \"${{SLACK_BOT_TOKEN}}\"\nchannel = \"#data-incidents\"\n\
         api_base = \"{svc_base}/slack/api\"\nworkspace_url = \"https://acme.slack.com\"\nrate_limit = \"{rate_limit}\"\n\
         [channels.primary]\ntype = \"pagerduty\"\nrouting_key = \"${{PAGERDUTY_ROUTING_KEY}}\"\napi_base = \"{svc_base}/pd\"\n\
         [channels.team]\ntype = \"teams\"\nurl = \"${{TEAMS_WEBHOOK_URL}}\"\n\
         [channels.audit]\ntype = \"webhook\"\nurl = \"{hook_base}/hook\"\nsecret = \"${{DQWATCH_WEBHOOK_SECRET}}\"\n\
         [[routes]]\nseverity = [\"P0\", \"P1\", \"P2\", \"P3\"]\nemail = [\"oncall@example.com\"]\n\
         slack = [\"#data-incidents\"]\npagerduty = \"primary\"\nteams = [\"team\"]\nwebhook = \"audit\"\n"
    ));
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "runbook = \"https://wiki.example.com/recon\"",
            "[thresholds]",
            "P1 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    env.write(".env-teams", format!("{svc_base}/teams?sig={TEAMS_SIG}"));
    env
}

/// Runs dqwatch with the channels' secrets in its environment.
fn run(env: &TestEnv, args: &[&str]) -> crate::util::Output {
    let mut cmd = env.command();
    cmd.arg("--config")
        .arg("dqwatch.toml")
        .args(args)
        .env("SLACK_BOT_TOKEN", SLACK_TOKEN)
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .env("TEAMS_WEBHOOK_URL", env.read(".env-teams"))
        .env("DQWATCH_WEBHOOK_SECRET", WEBHOOK_SECRET);
    crate::util::output(&mut cmd)
}

fn warehouse(env: &TestEnv, sql: &str) {
    sqlite_exec(&env.path().join("warehouse.db"), sql);
}

/// Every secret of the config, and where none may appear.
fn assert_no_secret(env: &TestEnv, outputs: &[&crate::util::Output]) {
    let secrets = [
        SLACK_TOKEN,
        ROUTING_KEY,
        WEBHOOK_SECRET,
        WEBHOOK_SECRET.trim_start_matches("whsec_"),
        TEAMS_SIG,
    ];
    let store = std::fs::read(env.path().join("state.db")).unwrap();
    let store = String::from_utf8_lossy(&store);
    let mut mails = String::new();
    for e in std::fs::read_dir(env.path().join("outbox"))
        .into_iter()
        .flatten()
        .flatten()
    {
        mails.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    for s in secrets {
        assert!(!store.contains(s), "a secret is in the store");
        assert!(!mails.contains(s), "a secret is in a mail");
        for o in outputs {
            o.nowhere(s);
        }
    }
}

/// `webhook-*` headers and raw bodies, as the verifier reads them.
fn verify_webhooks(deliveries: &[Req]) {
    for d in deliveries {
        let sig = &d.headers["webhook-signature"];
        assert!(sig.starts_with("v1,"), "{sig}");
        assert!(d.headers["webhook-timestamp"].parse::<i64>().is_ok());
    }
    if std::env::var("DQWATCH_TEST_STANDARDWEBHOOKS").as_deref() != Ok("1") {
        crate::util::skip(
            "channels::verify_webhooks",
            "DQWATCH_TEST_STANDARDWEBHOOKS not set (pip install standardwebhooks==1.1.0)",
        );
        return;
    }
    let list: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!({
                "headers": {
                    "webhook-id": d.headers["webhook-id"],
                    "webhook-timestamp": d.headers["webhook-timestamp"],
                    "webhook-signature": d.headers["webhook-signature"],
                },
                "body": d.body,
            })
        })
        .collect();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/verify_webhooks.py"
    );
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(WEBHOOK_SECRET)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&list).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("verified {}", list.len())),
        "standardwebhooks refused a signature:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn counts(svc: &Services) -> (usize, usize, usize, usize) {
    (
        svc.accepted("slack").len(),
        svc.accepted("pagerduty").len(),
        svc.accepted("teams").len(),
        svc.accepted("webhook").len(),
    )
}

#[test]
fn a_breach_opens_a_slack_thread_and_a_page_and_ack_and_resolve_reach_both() {
    let svc = Services::start();
    let env = env(&svc.base(), &svc.base(), "0s");
    let opened = run(&env, &["run"]);
    opened.code(1).stdout_has("1 opened");
    // Opened: the Slack root, a PagerDuty trigger, a Teams card, a webhook.
    assert_eq!(counts(&svc), (1, 1, 1, 1), "{:#?}", svc.all());
    let root = &svc.accepted("slack")[0];
    assert!(root.path.ends_with("chat.postMessage"));
    let root_body = root.json();
    assert_eq!(root_body["channel"], "#data-incidents");
    assert!(root_body.get("thread_ts").is_none());
    let blocks = root_body["blocks"].to_string();
    for want in [
        "P1",
        "recon",
        "day=d1",
        "500",
        "&gt; 100",
        "https://wiki.example.com/recon|Runbook",
    ] {
        assert!(blocks.contains(want), "{want} missing from {blocks}");
    }
    let trigger = svc.accepted("pagerduty")[0].json();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(
        trigger["links"][0]["href"],
        "https://wiki.example.com/recon"
    );
    let key = trigger["dedup_key"].as_str().unwrap().to_string();
    let card = svc.accepted("teams")[0].json();
    assert_eq!(card["type"], "message");
    assert_eq!(
        card["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["attachments"][0]["content"]["type"], "AdaptiveCard");

    let ack = run(&env, &["incidents", "ack", "1", "--by", "alice"]);
    ack.code(0);
    // Acknowledged: the root edited, a reply in its thread; PagerDuty acknowledges the key.
    let slack = svc.accepted("slack");
    assert_eq!(slack.len(), 3, "{slack:#?}");
    assert!(slack[1].path.ends_with("chat.update"));
    assert_eq!(slack[1].json()["ts"], ts(0));
    assert!(slack[1].json()["text"].as_str().unwrap().contains("alice"));
    assert!(slack[2].path.ends_with("chat.postMessage"));
    assert_eq!(slack[2].json()["thread_ts"], ts(0));
    assert_eq!(slack[2].json()["channel"], SLACK_CHANNEL_ID);
    let pd = svc.accepted("pagerduty");
    assert_eq!(pd[1].json()["event_action"], "acknowledge");
    assert_eq!(pd[1].json()["dedup_key"], key.as_str());

    warehouse(&env, "UPDATE recon SET gap = 1");
    let resolved = run(&env, &["run"]);
    resolved.code(0).stdout_has("1 resolved");
    let slack = svc.accepted("slack");
    assert_eq!(slack.len(), 5, "{slack:#?}");
    let root_now = &svc.fake.slack.lock().unwrap()[0].1.clone();
    assert!(
        root_now.contains('✅') && root_now.contains("Resolved"),
        "{root_now}"
    );
    assert_eq!(slack[4].json()["thread_ts"], ts(0));
    let pd = svc.accepted("pagerduty");
    assert_eq!(pd.len(), 3);
    assert_eq!(pd[2].json()["event_action"], "resolve");
    assert_eq!(pd[2].json()["dedup_key"], key.as_str());

    // A re-run sends nothing anywhere.
    let before = svc.all().len();
    let again = run(&env, &["run"]);
    again.code(0);
    run(&env, &["outbox", "deliver"]).code(0);
    assert_eq!(svc.all().len(), before, "a re-run sent something");

    // Messages per incident lifecycle (open, ack, resolve), per channel.
    let (s, p, t, w) = counts(&svc);
    eprintln!(
        "FIGURE messages per lifecycle: slack {s} requests (3 posts + 2 root edits), pagerduty {p}, teams {t}, webhook {w}, mail {}",
        std::fs::read_dir(env.path().join("outbox"))
            .unwrap()
            .count()
    );
    assert_eq!((s, p, t, w), (5, 3, 3, 3));

    // Where it was told: the mail thread, the Slack thread (a permalink), the dedup key.
    let show = run(&env, &["incidents", "show", "1"]);
    show.code(0)
        .stdout_has("told:")
        .stdout_has("thread <incident-1.")
        .stdout_has("https://acme.slack.com/archives/C0DATA/p1700000000000100")
        .stdout_has(&format!("dedup key {key}"));
    let list = run(&env, &["outbox", "list", "--channel", "slack"]);
    list.code(0).stdout_has("slack:incidents");
    assert!(!list.stdout.contains("pagerduty:"), "{}", list.stdout);

    let hooks = svc.accepted("webhook");
    let ids: std::collections::HashSet<_> = hooks
        .iter()
        .map(|h| h.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 3, "one webhook-id per event");
    for h in &hooks {
        let b = h.json();
        assert_eq!(b["schema_version"], 1);
        assert_eq!(b["incident"]["id"], 1);
    }
    assert_eq!(hooks[1].json()["type"], "incident.acknowledged");
    verify_webhooks(&hooks);
    assert_no_secret(&env, &[&opened, &ack, &resolved, &again, &show, &list]);
}

#[test]
fn a_receiver_down_then_up_loses_nothing_sends_nothing_twice_and_delays_only_itself() {
    let svc = Services::start();
    // The webhook receiver's port: reserved, then closed (connection refused).
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let env = env(&svc.base(), &format!("http://127.0.0.1:{hook_port}"), "0s");
    let opened = run(&env, &["run"]);
    opened.code(1).stdout_has("1 opened");
    // Every other channel went out; the webhook waits, no attempt used.
    assert_eq!(counts(&svc), (1, 1, 1, 0));
    run(&env, &["incidents", "ack", "1", "--by", "bob"]).code(0);
    assert_eq!(counts(&svc), (3, 2, 2, 0));
    let pending = run(
        &env,
        &[
            "outbox",
            "list",
            "--channel",
            "webhook",
            "--state",
            "pending",
        ],
    );
    pending
        .code(0)
        .stdout_has("webhook:audit")
        .stdout_has("cannot connect");
    assert!(
        pending.stdout.contains("       0  ") || pending.stdout.contains(" 0  "),
        "{}",
        pending.stdout
    );
    let dead = run(&env, &["outbox", "list", "--state", "dead"]);
    dead.code(0).stdout_has("outbox is empty");

    // The receiver comes up (failing the first delivery once): both messages arrive, in order.
    let hook = Services::on(TcpListener::bind(("127.0.0.1", hook_port)).unwrap());
    hook.ctl(|c| c.hook_500 = 1);
    let first = run(&env, &["outbox", "deliver"]);
    first
        .code(3)
        .stderr_has("the webhook receiver answered 500");
    // The 500 counted one attempt; the acknowledgement waits behind the opening (order).
    assert_eq!(hook.all().len(), 1);
    let list = run(
        &env,
        &[
            "outbox",
            "list",
            "--channel",
            "webhook:audit",
            "--state",
            "pending",
        ],
    );
    let id: String = list
        .stdout
        .lines()
        .rfind(|l| l.contains("webhook:audit"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    run(&env, &["outbox", "retry", &id]).code(0);
    run(&env, &["outbox", "deliver"]).code(0);
    let all = hook.all();
    assert_eq!(all.len(), 3, "{all:#?}");
    // The retry kept the webhook-id, so the receiver can deduplicate.
    assert_eq!(all[0].headers["webhook-id"], all[1].headers["webhook-id"]);
    assert_ne!(all[1].headers["webhook-id"], all[2].headers["webhook-id"]);
    assert_eq!(all[1].json()["type"], "incident.opened");
    assert_eq!(all[2].json()["type"], "incident.acknowledged");
    verify_webhooks(&all[1..]);
    // Nothing more, anywhere.
    let before = (svc.all().len(), hook.all().len());
    run(&env, &["outbox", "deliver"]).code(0);
    run(&env, &["run"]).code(1);
    assert_eq!((svc.all().len(), hook.all().len()), before);
    assert_no_secret(&env, &[&opened, &pending, &first, &list]);
}

#[test]
fn slack_429_waits_pagerduty_5xx_retries_and_400_is_a_dead_letter_with_its_error() {
    let svc = Services::start();
    svc.ctl(|c| {
        c.slack_429 = 1;
        c.pd_500 = 1;
    });
    let env = env(&svc.base(), &svc.base(), "0s");
    run(&env, &["run"]).code(1).stdout_has("1 opened");
    // Slack said 429: nothing posted, no attempt counted; PagerDuty's 500 counts one and
    // waits for its retry time; the other channels went out meanwhile.
    assert_eq!(counts(&svc), (0, 0, 1, 1));
    let slack = run(&env, &["outbox", "list", "--channel", "slack"]);
    slack
        .code(0)
        .stdout_has("rate-limited")
        .stdout_has("pending");
    let row = slack
        .stdout
        .lines()
        .find(|l| l.contains("slack:incidents"))
        .unwrap();
    assert_eq!(row.split_whitespace().nth(2), Some("0"), "{row}");
    let pd = run(&env, &["outbox", "list", "--channel", "pagerduty"]);
    pd.code(0)
        .stdout_has("answered 500")
        .stdout_has("next attempt at");
    let pd_id = pd
        .stdout
        .lines()
        .find(|l| l.contains("pagerduty:primary"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    // The next pass (Slack's wait is over): the root goes out once; PagerDuty still waits.
    run(&env, &["outbox", "deliver"]).code(0);
    assert_eq!(counts(&svc), (1, 0, 1, 1));
    run(&env, &["outbox", "retry", &pd_id]).code(0);
    assert_eq!(counts(&svc), (1, 1, 1, 1));

    // A 400 is the event's fault: dead at once, with PagerDuty's error; Slack carries on.
    svc.ctl(|c| c.pd_400 = 1);
    run(&env, &["incidents", "ack", "1", "--by", "carol"]).code(0);
    assert_eq!(counts(&svc), (3, 1, 2, 2));
    let dead = run(&env, &["outbox", "list", "--state", "dead"]);
    dead.code(0)
        .stdout_has("pagerduty:primary")
        .stdout_has("PagerDuty refused the event (400)")
        .stdout_has("Event object is invalid");
    // Retried per channel, it goes out.
    run(&env, &["outbox", "retry", "--channel", "pagerduty:primary"])
        .code(0)
        .stdout_has("1 dead message of pagerduty:primary back in line");
    let pd = svc.accepted("pagerduty");
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[1].json()["event_action"], "acknowledge");
}

#[test]
fn slack_posts_at_most_one_message_a_second_per_channel() {
    let svc = Services::start();
    let env = env(&svc.base(), &svc.base(), "1s");
    warehouse(&env, "INSERT INTO recon VALUES ('d2', 600), ('d3', 700)");
    run(&env, &["run"]).code(1).stdout_has("3 opened");
    let posts = svc.accepted("slack");
    assert_eq!(posts.len(), 3);
    // Measured where the posts arrive, so each gap may lose a little to the network's
    // jitter; the span of three posts is at least two intervals.
    for w in posts.windows(2) {
        let gap = w[1].at.duration_since(w[0].at);
        assert!(
            gap >= std::time::Duration::from_millis(900),
            "posted {gap:?} apart"
        );
    }
    let span = posts[2].at.duration_since(posts[0].at);
    assert!(
        span >= std::time::Duration::from_millis(1950),
        "3 posts in {span:?}"
    );
}

#[test]
fn hostile_text_stays_within_every_service_s_limits() {
    let svc = Services::start();
    let env = env(&svc.base(), &svc.base(), "0s");
    // A key of 60,000 characters with multi-byte ones and Slack markup in it.
    let key = format!("<!channel> {}", "é🔥".repeat(30_000));
    warehouse(
        &env,
        &format!("DELETE FROM recon; INSERT INTO recon VALUES ('{key}', 500)"),
    );
    run(&env, &["run"]).code(1).stdout_has("1 opened");
    // Every service took it: the fakes refuse anything over their limits.
    assert_eq!(
        counts(&svc),
        (1, 1, 1, 1),
        "{:#?}",
        svc.all()
            .iter()
            .map(|r| (
                &r.service,
                r.status,
                r.body.chars().take(300).collect::<String>()
            ))
            .collect::<Vec<_>>()
    );
    let root = svc.accepted("slack")[0].json();
    assert!(!root["text"].as_str().unwrap().contains("<!channel>"));
    let pd = svc.accepted("pagerduty")[0].json();
    assert!(pd["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
    assert!(pd["dedup_key"].as_str().unwrap().len() <= 255);
    let dead = run(&env, &["outbox", "list", "--state", "dead"]);
    dead.code(0).stdout_has("outbox is empty");
}

#[test]
fn a_route_naming_an_unknown_channel_is_a_diagnostic_with_its_line() {
    let env = TestEnv::with_connection("sqlite://w.db", "");
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "{cfg}\n[channels.primary]\ntype = \"pagerduty\"\nrouting_key = \"${{PD_KEY}}\"\n\
         [[routes]]\nslack = [\"#nowhere\"]\npagerduty = \"secondary\"\nteams = \"primary\"\n"
    ));
    let mut cmd = env.command();
    cmd.args(["--config", "dqwatch.toml", "validate"])
        .env("PD_KEY", "not-32-chars-SECRETVALUE");
    let out = crate::util::output(&mut cmd);
    out.code(2)
        .stderr_has("dqwatch.toml:9:9: error: unknown slack channel \"#nowhere\"")
        .stderr_has("dqwatch.toml:10:13: error: unknown pagerduty channel \"secondary\"")
        .stderr_has("known pagerduty channels: primary")
        .stderr_has("no slack channel posts to #nowhere")
        .stderr_has("[channels.primary] is of type \"pagerduty\"")
        .stderr_has("routing_key has 24 characters");
    out.nowhere("SECRETVALUE");
}

#[test]
fn a_slack_incoming_webhook_gets_one_message_per_event_without_threads() {
    let svc = Services::start();
    let env = TestEnv::sqlite(
        "CREATE TABLE recon (day TEXT, gap REAL); INSERT INTO recon VALUES ('d1', 500);",
        "",
    );
    let cfg = env.read("dqwatch.toml");
    env.config(&format!(
        "state = \"sqlite://state.db\"\n{cfg}\n\
         [channels.hook]\ntype = \"slack_webhook\"\nurl = \"${{SLACK_WEBHOOK_URL}}\"\nrate_limit = \"0s\"\n\
         [[routes]]\nslack = \"hook\"\n"
    ));
    env.check_with(
        "recon",
        &[
            "keys = [\"day\"]",
            "metric = \"gap\"",
            "[thresholds]",
            "P1 = \"> 100\"",
        ],
        "SELECT day, gap FROM recon",
    );
    // The webhook URL is the secret: the fake's path carries it.
    let url = format!("{}/teams?sig={TEAMS_SIG}", svc.base());
    let go = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.arg("--config")
            .arg("dqwatch.toml")
            .args(args)
            .env("SLACK_WEBHOOK_URL", &url);
        crate::util::output(&mut cmd)
    };
    go(&["run"]).code(1).stdout_has("1 opened");
    go(&["incidents", "ack", "1", "--by", "dana"]).code(0);
    let list = go(&["outbox", "list"]);
    list.code(0);
    let got = svc.accepted("teams");
    assert_eq!(got.len(), 2, "{:#?}", svc.all());
    for m in &got {
        let b = m.json();
        assert!(b.get("thread_ts").is_none() && b.get("channel").is_none());
        assert!(b["blocks"].as_array().unwrap().len() <= 50);
    }
    assert!(
        got[1].json()["text"]
            .as_str()
            .unwrap()
            .contains("acknowledged by dana")
    );
    list.nowhere(TEAMS_SIG);
}

#[test]
fn the_lifecycle_on_a_postgresql_store_tells_each_channel_once() {
    let admin = crate::require_env!("DQWATCH_TEST_POSTGRES_URL");
    let schema = crate::util::PgSchema::new(&admin, "channels_pg");
    let svc = Services::start();
    let env = env_on(&schema.url, &svc.base(), &svc.base(), "0s");
    run(&env, &["run"]).code(1).stdout_has("1 opened");
    run(&env, &["incidents", "ack", "1", "--by", "alice"]).code(0);
    warehouse(&env, "UPDATE recon SET gap = 1");
    run(&env, &["run"]).code(0).stdout_has("1 resolved");
    run(&env, &["run"]).code(0);
    assert_eq!(counts(&svc), (5, 3, 3, 3));
    let slack = svc.accepted("slack");
    assert!(
        slack[1..]
            .iter()
            .all(|r| r.json()["channel"] == SLACK_CHANNEL_ID)
    );
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM chat_threads"), 1);
    assert_eq!(
        schema.scalar("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'"),
        0
    );
    for secret in [SLACK_TOKEN, ROUTING_KEY, TEAMS_SIG, WEBHOOK_SECRET] {
        assert_eq!(
            schema.scalar(&format!(
                "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%{secret}%' OR recipients LIKE '%{secret}%' \
                 OR COALESCE(last_error, '') LIKE '%{secret}%'"
            )),
            0
        );
    }
    run(&env, &["incidents", "show", "1"])
        .code(0)
        .stdout_has("slack:incidents")
        .stdout_has("thread C0DATA/");
}

#[test]
fn a_revoked_slack_token_holds_slack_s_messages_and_no_other_channel_s() {
    let svc = Services::start();
    let env = env(&svc.base(), &svc.base(), "0s");
    let wrong = "xoxb-9999-REVOKEDtoken";
    let mut cmd = env.command();
    cmd.args(["--config", "dqwatch.toml", "run"])
        .env("SLACK_BOT_TOKEN", wrong)
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .env("TEAMS_WEBHOOK_URL", env.read(".env-teams"))
        .env("DQWATCH_WEBHOOK_SECRET", WEBHOOK_SECRET);
    let out = crate::util::output(&mut cmd);
    out.code(1).stdout_has(
        "slack:incidents is unreachable (Slack chat.postMessage refused the token: invalid_auth)",
    );
    out.nowhere(wrong);
    // Slack refused the token: its message waits (no attempt used); the rest went out.
    assert_eq!(counts(&svc), (0, 1, 1, 1));
    let list = run(&env, &["outbox", "list", "--channel", "slack"]);
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains("slack:incidents"))
        .unwrap();
    assert_eq!(row.split_whitespace().nth(1), Some("pending"), "{row}");
    assert_eq!(row.split_whitespace().nth(2), Some("0"), "{row}");
    // The token fixed: the message goes out, once.
    run(&env, &["outbox", "deliver"]).code(0);
    assert_eq!(counts(&svc), (1, 1, 1, 1));
}
