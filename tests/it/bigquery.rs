//! `dqwatch` against BigQuery's documented REST contract. No BigQuery runs offline, so each
//! test starts a loopback server that answers as the API does and enforces its contract
//! strictly: the OAuth token exchange (a JWT bearer assertion whose RS256 signature it checks
//! with the service account's public key), `Authorization: Bearer`, dry runs through
//! `jobs.insert` (statistics with `statementType` and `totalBytesProcessed`), `jobs.query`
//! (`useLegacySql: false`, `maximumBytesBilled` as an int64 string, label rules,
//! `requestId`), `getQueryResults` pages with `pageToken`, `jobComplete: false` then true,
//! `jobs.cancel`, and errors with their reasons (`bytesBilledLimitExceeded`, `notFound`,
//! `accessDenied`, 401, 503). The service-account key is made by `openssl` for each test.

use crate::util::{Output, TestEnv, check_doc, output, skip};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "ya29.loopback-token";
const PROJECT: &str = "acme-analytics";

/// What the server saw and how it should misbehave.
#[derive(Default)]
struct Fake {
    /// The service account's public key (PKCS#1 DER) the token endpoint verifies with.
    public_key: Vec<u8>,
    /// `(method path, body)` of every request.
    log: Vec<(String, Value)>,
    /// Refuse the token exchange (HTTP 400 invalid_grant).
    refuse_grant: bool,
    /// `jobs.query` answers left to fail with 503 before one succeeds.
    fail_queries: u32,
    /// Pages read per job id.
    polls: HashMap<String, u32>,
    /// The query of each job id.
    jobs: HashMap<String, String>,
}

type Shared = Arc<Mutex<Fake>>;

fn api_error(code: u16, reason: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap();
    (
        status,
        Json(json!({"error": {"code": code, "message": message,
            "errors": [{"reason": reason, "message": message, "domain": "global"}],
            "status": status.canonical_reason().unwrap_or_default().to_uppercase()}})),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

fn unauthenticated() -> Response {
    api_error(
        401,
        "authError",
        "Request is missing required authentication credential.",
    )
}

/// The token endpoint: a JWT bearer grant whose signature, issuer, audience and scope hold.
async fn token(State(s): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let fake = s.lock().unwrap();
    let bad = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if fake.refuse_grant {
        return bad("Invalid JWT Signature.");
    }
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return bad("unsupported grant_type");
    }
    let Some(jwt) = form.get("assertion") else {
        return bad("no assertion");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return bad("malformed assertion");
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sig = b64.decode(parts[2]).unwrap_or_default();
    let signed = format!("{}.{}", parts[0], parts[1]);
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &fake.public_key,
    );
    if key.verify(signed.as_bytes(), &sig).is_err() {
        return bad("Invalid JWT Signature.");
    }
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    if header["alg"] != json!("RS256")
        || claims["iss"] != json!("dq-reader@acme-analytics.iam.gserviceaccount.com")
        || !claims["aud"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/token")
        || claims["scope"] != json!("https://www.googleapis.com/auth/bigquery")
        || claims["exp"].as_u64() <= claims["iat"].as_u64()
    {
        return bad("Invalid JWT: claims");
    }
    Json(json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

/// What the fake warehouse knows about a query: bytes, statement type, columns (name,
/// type), rows.
type Table = (
    u64,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<Vec<Value>>,
);

/// The [`Table`] of a query, by a word in it.
fn table(sql: &str) -> Table {
    if sql.contains("big_scan") {
        return (
            50_000_000_000,
            "SELECT",
            vec![("gap", "INTEGER")],
            vec![vec![json!("1")]],
        );
    }
    if sql.contains("pages") {
        let rows = (1..=25)
            .map(|i| vec![json!(format!("k{i:02}")), json!(i.to_string())])
            .collect();
        return (
            2_000_000,
            "SELECT",
            vec![("region", "STRING"), ("gap", "INTEGER")],
            rows,
        );
    }
    if sql.contains("types") {
        return (
            1_000,
            "SELECT",
            vec![
                ("region", "STRING"),
                ("gap", "NUMERIC"),
                ("big", "BIGNUMERIC"),
                ("n", "INTEGER"),
                ("f", "FLOAT"),
                ("d", "DATE"),
                ("ts", "TIMESTAMP"),
                ("ok", "BOOLEAN"),
            ],
            vec![vec![
                json!("EU"),
                json!("10000.50"),
                json!("1.5E3"),
                json!("9007199254740993"),
                json!("0.25"),
                json!("2026-11-30"),
                json!("1.7000000002E9"),
                json!("true"),
            ]],
        );
    }
    (
        10,
        "SELECT",
        vec![("gap", "INTEGER")],
        vec![vec![json!("1")]],
    )
}

fn fields(cols: &[(&str, &str)]) -> Value {
    json!({"fields": cols.iter().map(|(n, t)| json!({"name": n, "type": t, "mode": "NULLABLE"})).collect::<Vec<_>>()})
}

fn rows_json(rows: &[Vec<Value>]) -> Value {
    json!(
        rows.iter()
            .map(|r| json!({"f": r.iter().map(|v| json!({"v": v})).collect::<Vec<_>>()}))
            .collect::<Vec<_>>()
    )
}

/// `jobs.insert`: only dry runs are expected.
async fn insert_job(
    State(s): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.lock()
        .unwrap()
        .log
        .push((format!("insert {project}"), body.clone()));
    if !authorised(&headers) {
        return unauthenticated();
    }
    let config = &body["configuration"];
    if config["dryRun"] != json!(true) || config["query"]["useLegacySql"] != json!(false) {
        return api_error(400, "invalid", "dqwatch runs jobs through jobs.query");
    }
    let sql = config["query"]["query"].as_str().unwrap_or_default();
    if sql.contains("missing_table") {
        return api_error(
            404,
            "notFound",
            "Not found: Table acme-analytics:sales.missing_table was not found in location EU",
        );
    }
    if sql.contains("denied") {
        return api_error(
            403,
            "accessDenied",
            "Access Denied: Table acme-analytics:hr.salaries: User does not have permission to query table",
        );
    }
    let (bytes, kind, cols, _) = table(sql);
    let kind = if sql.contains("create_table_as") {
        "CREATE_TABLE_AS_SELECT"
    } else {
        kind
    };
    Json(json!({
        "kind": "bigquery#job",
        "status": {"state": "DONE"},
        "configuration": config,
        "jobReference": {"projectId": project, "location": "EU"},
        "statistics": {
            "creationTime": "1700000000000",
            "totalBytesProcessed": bytes.to_string(),
            "query": {"totalBytesProcessed": bytes.to_string(), "statementType": kind,
                      "totalBytesBilled": "0", "schema": fields(&cols)}
        }
    }))
    .into_response()
}

/// The first page of `rows` from `start`, at most `max` rows, with a pageToken when more.
fn page(rows: &[Vec<Value>], start: usize, max: usize) -> (Value, Option<String>) {
    let end = (start + max).min(rows.len());
    let token = (end < rows.len()).then(|| format!("page-{end}"));
    (rows_json(&rows[start..end]), token)
}

/// `jobs.query`.
async fn query(
    State(s): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = s.lock().unwrap();
    fake.log.push((format!("query {project}"), body.clone()));
    if !authorised(&headers) {
        return unauthenticated();
    }
    if fake.fail_queries > 0 {
        fake.fail_queries -= 1;
        return api_error(503, "backendError", "Backend error. Please try again.");
    }
    let limit_ok = body["maximumBytesBilled"]
        .as_str()
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    let labels_ok = body["labels"].as_object().is_some_and(|l| {
        l.iter().all(|(k, v)| {
            k.len() <= 63
                && k.starts_with(|c: char| c.is_ascii_lowercase())
                && v.as_str().is_some_and(|v| {
                    v.len() <= 63
                        && v.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                        })
                })
        })
    });
    if body["useLegacySql"] != json!(false)
        || !limit_ok
        || !labels_ok
        || body["requestId"].as_str().is_none()
        || !body["timeoutMs"].is_u64()
    {
        return api_error(400, "invalid", &format!("Invalid request: {body}"));
    }
    let sql = body["query"].as_str().unwrap_or_default();
    let (bytes, _, cols, rows) = table(sql);
    let limit: u64 = body["maximumBytesBilled"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    if sql.contains("limit_exceeded") || bytes > limit {
        return api_error(
            400,
            "bytesBilledLimitExceeded",
            &format!(
                "Query exceeded limit for bytes billed: {limit}. 20971520 or higher required."
            ),
        );
    }
    let job_id = format!("job_{}", fake.log.len());
    fake.jobs.insert(job_id.clone(), sql.to_string());
    let reference = json!({"projectId": project, "jobId": job_id, "location": "EU"});
    // Slow and paged jobs are not complete in the first answer.
    if sql.contains("slow") || sql.contains("pages") {
        return Json(json!({"kind": "bigquery#queryResponse", "jobReference": reference, "jobComplete": false})).into_response();
    }
    let max = body["maxResults"].as_u64().unwrap_or(u64::MAX) as usize;
    let (rows, token) = page(&rows, 0, max);
    let mut answer = json!({
        "kind": "bigquery#queryResponse", "schema": fields(&cols), "jobReference": reference,
        "totalRows": table(sql).3.len().to_string(), "rows": rows,
        "totalBytesProcessed": bytes.to_string(), "jobComplete": true, "cacheHit": false
    });
    if let Some(t) = token {
        answer["pageToken"] = json!(t);
    }
    Json(answer).into_response()
}

/// `jobs.getQueryResults`.
async fn results(
    State(s): State<Shared>,
    Path((project, job_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut fake = s.lock().unwrap();
    fake.log
        .push((format!("results {project} {job_id}"), json!(q)));
    if !authorised(&headers) {
        return unauthenticated();
    }
    let Some(sql) = fake.jobs.get(&job_id).cloned() else {
        return api_error(
            404,
            "notFound",
            &format!("Not found: Job {project}:EU.{job_id}"),
        );
    };
    let polls = fake.polls.entry(job_id.clone()).or_default();
    *polls += 1;
    let reference = json!({"projectId": project, "jobId": job_id, "location": "EU"});
    if sql.contains("slow") || (sql.contains("pages") && *polls == 1) {
        return Json(json!({"kind": "bigquery#getQueryResultsResponse", "jobReference": reference, "jobComplete": false})).into_response();
    }
    let (bytes, _, cols, rows) = table(&sql);
    let start = q
        .get("pageToken")
        .and_then(|t| t.strip_prefix("page-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let max = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(usize::MAX)
        .min(10);
    let (page_rows, token) = page(&rows, start, max);
    let mut answer = json!({
        "kind": "bigquery#getQueryResultsResponse", "schema": fields(&cols), "jobReference": reference,
        "totalRows": rows.len().to_string(), "rows": page_rows,
        "totalBytesProcessed": bytes.to_string(), "jobComplete": true, "cacheHit": false
    });
    if let Some(t) = token {
        answer["pageToken"] = json!(t);
    }
    Json(answer).into_response()
}

/// `jobs.cancel`.
async fn cancel(
    State(s): State<Shared>,
    Path((project, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    s.lock()
        .unwrap()
        .log
        .push((format!("cancel {project} {job_id}"), Value::Null));
    if !authorised(&headers) {
        return unauthenticated();
    }
    Json(json!({"kind": "bigquery#jobCancelResponse", "job": {"jobReference": {"projectId": project, "jobId": job_id}, "status": {"state": "RUNNING"}}})).into_response()
}

async fn dataset(headers: HeaderMap, Path((project, ds)): Path<(String, String)>) -> Response {
    if !authorised(&headers) {
        return unauthenticated();
    }
    Json(json!({"kind": "bigquery#dataset", "id": format!("{project}:{ds}"), "location": "EU"}))
        .into_response()
}

/// A running loopback BigQuery and a temp dir whose connection `bq` points at it with a
/// fresh service-account key.
struct Loopback {
    env: TestEnv,
    fake: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl Loopback {
    fn start(test: &str, extra: &str) -> Option<Self> {
        let env = TestEnv::new();
        let key = env.path().join("sa.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&key)
            .output();
        if !made.is_ok_and(|o| o.status.success()) {
            skip(
                test,
                "openssl is not installed (it makes the service-account key)",
            );
            return None;
        }
        let public = std::process::Command::new("openssl")
            .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
            .arg(&key)
            .output()
            .unwrap()
            .stdout;
        let pem = std::fs::read_to_string(&key).unwrap();
        env.write(
            "sa.json",
            json!({"type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
                   "private_key": pem, "client_email": "dq-reader@acme-analytics.iam.gserviceaccount.com",
                   "token_uri": "https://oauth2.googleapis.com/token"})
            .to_string(),
        );
        std::fs::remove_file(&key).unwrap();
        let fake: Shared = Arc::new(Mutex::new(Fake {
            public_key: public,
            ..Fake::default()
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/token", post(token))
            .route("/bigquery/v2/projects/{project}/jobs", post(insert_job))
            .route("/bigquery/v2/projects/{project}/queries", post(query))
            .route(
                "/bigquery/v2/projects/{project}/queries/{job}",
                get(results),
            )
            .route(
                "/bigquery/v2/projects/{project}/jobs/{job}/cancel",
                post(cancel),
            )
            .route(
                "/bigquery/v2/projects/{project}/datasets/{ds}",
                get(dataset),
            )
            .with_state(Arc::clone(&fake));
        runtime.spawn(async move { axum::serve(listener, app).await });
        env.config(&format!(
            "[connections.bq]\n\
             url = \"bigquery://{PROJECT}/sales?location=EU\"\n\
             credentials_file = \"sa.json\"\n\
             api_base = \"http://127.0.0.1:{port}/bigquery/v2\"\n\
             token_uri = \"http://127.0.0.1:{port}/token\"\n{extra}\n"
        ));
        std::fs::create_dir_all(env.path().join("checks")).unwrap();
        Some(Self {
            env,
            fake,
            _runtime: runtime,
        })
    }

    fn check(&self, id: &str, header: &[&str], sql: &str) {
        let mut h = vec!["connection = \"bq\""];
        h.extend_from_slice(header);
        self.env.check_with(id, &h, sql);
    }

    fn run(&self) -> Output {
        let mut cmd = self.env.command();
        cmd.args([
            "--config",
            "dqwatch.toml",
            "run",
            "--no-incidents",
            "--format",
            "json",
        ]);
        output(&mut cmd)
    }

    /// The requests whose name starts with `what`, with their bodies.
    fn seen(&self, what: &str) -> Vec<Value> {
        self.fake
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(k, _)| k.starts_with(what))
            .map(|(_, b)| b.clone())
            .collect()
    }
}

const METRIC: [&str; 3] = ["metric = \"gap\"", "[thresholds]", "P1 = \">= 10000\""];

/// Values decode as BigQuery encodes them (NUMERIC, BIGNUMERIC and INT64 strings, FLOAT64,
/// DATE, TIMESTAMP float seconds, BOOL, STRING); results arrive after `jobComplete: false`
/// across `pageToken` pages; every job is dry-run first, capped, labelled, and its job id and
/// bytes land in the JSON report.
#[test]
fn types_pages_labels_and_bytes() {
    let Some(lb) = Loopback::start("bigquery::types_pages_labels_and_bytes", "max_rows = 20")
    else {
        return;
    };
    lb.check("recon/types", &METRIC, "SELECT * FROM types");
    lb.check(
        "recon/pages",
        &[
            "metric = \"gap\"",
            "keys = [\"region\"]",
            "[thresholds]",
            "P1 = \">= 100\"",
        ],
        "SELECT region, gap FROM pages",
    );
    let out = lb.run();
    let report = out.json();
    let types = check_doc(&report, "recon/types");
    assert_eq!(types["status"], json!("breach"), "{types}");
    assert_eq!(
        types["observations"][0]["metric"],
        json!(10000.5),
        "{types}"
    );
    assert_eq!(types["bytes_processed"], json!(1000), "{types}");
    assert_eq!(
        types["query_ids"].as_array().map(Vec::len),
        Some(1),
        "{types}"
    );
    let pages = check_doc(&report, "recon/pages");
    assert_eq!(pages["status"], json!("pass"), "{pages}");
    assert_eq!(
        pages["rows"],
        json!(20),
        "max_rows caps the 25 rows: {pages}"
    );
    assert_eq!(pages["capped"], json!(true), "{pages}");
    assert_eq!(pages["bytes_processed"], json!(2_000_000), "{pages}");
    // Dry run first, for each; then the job, labelled with the check.
    let dry = lb.seen("insert");
    assert_eq!(dry.len(), 2, "{dry:?}");
    let jobs = lb.seen("query");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let labels: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j["labels"]["dqwatch_check"].as_str())
        .collect();
    assert!(
        labels.contains(&"recon_types") && labels.contains(&"recon_pages"),
        "{labels:?}"
    );
    assert!(
        jobs.iter()
            .all(|j| j["maximumBytesBilled"] == json!("10000000000")),
        "{jobs:?}"
    );
    // The pages were read with their tokens.
    let reads = lb.seen("results");
    assert!(
        reads.iter().any(|q| q["pageToken"] == json!("page-10")),
        "{reads:?}"
    );
}

/// A text that passed its dry run is not dry-run again by the same process (issue 13: no
/// request per check that can be avoided): two checks with one text cost one dry run and two
/// jobs; under another byte limit the text is dry-run again, and every job carries its limit.
#[test]
fn a_text_is_dry_run_once_per_byte_limit() {
    // One at a time, so that the second check starts after the first one's dry run passed.
    let Some(lb) = Loopback::start(
        "bigquery::a_text_is_dry_run_once_per_byte_limit",
        "max_concurrency = 1",
    ) else {
        return;
    };
    lb.check("a", &METRIC, "SELECT * FROM types");
    lb.check("b", &METRIC, "SELECT * FROM types");
    let mut limited = METRIC.to_vec();
    limited.insert(0, "max_bytes_billed = \"5GB\"");
    lb.check("c", &limited, "SELECT * FROM types");
    let report = lb.run().json();
    for id in ["a", "b", "c"] {
        assert_eq!(check_doc(&report, id)["status"], json!("breach"), "{id}");
    }
    assert_eq!(
        lb.seen("insert").len(),
        2,
        "one dry run per text and byte limit"
    );
    let jobs = lb.seen("query");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let mut limits: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j["maximumBytesBilled"].as_str())
        .collect();
    limits.sort_unstable();
    assert_eq!(limits, ["10000000000", "10000000000", "5000000000"]);
}

/// A dry run over `max_bytes_billed` is an error before any job runs; a connection (or
/// limit) that allows it runs it; a job the server stops at its byte limit is an error
/// carrying `bytesBilledLimitExceeded`.
#[test]
fn the_cost_guard_stops_expensive_checks_before_they_run() {
    let Some(lb) = Loopback::start(
        "bigquery::the_cost_guard_stops_expensive_checks_before_they_run",
        "",
    ) else {
        return;
    };
    lb.check("big", &METRIC, "SELECT COUNT(*) AS gap FROM big_scan");
    lb.check("exceeded", &METRIC, "SELECT 1 AS gap FROM limit_exceeded");
    // A check may allow itself more than its connection.
    lb.check(
        "big_allowed",
        &[
            "max_bytes_billed = \"100GB\"",
            "metric = \"gap\"",
            "[thresholds]",
            "P1 = \">= 10000\"",
        ],
        "SELECT COUNT(*) AS gap FROM big_scan",
    );
    let out = lb.run();
    let report = out.json();
    let big = check_doc(&report, "big");
    assert_eq!(big["status"], json!("error"), "{big}");
    let msg = big["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("max_bytes_billed") && msg.contains("50.0 GB") && msg.contains("not run"),
        "{msg}"
    );
    let exceeded = check_doc(&report, "exceeded");
    assert!(
        exceeded["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bytesBilledLimitExceeded"),
        "{exceeded}"
    );
    assert_eq!(
        check_doc(&report, "big_allowed")["status"],
        json!("pass"),
        "{report}"
    );
    let jobs = lb.seen("query");
    assert!(
        jobs.iter()
            .all(|j| j["labels"]["dqwatch_check"] != json!("big")),
        "the expensive check ran: {jobs:?}"
    );
    let allowed: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["labels"]["dqwatch_check"] == json!("big_allowed"))
        .collect();
    assert_eq!(allowed.len(), 1, "{jobs:?}");
    assert_eq!(
        allowed[0]["maximumBytesBilled"],
        json!("100000000000"),
        "{jobs:?}"
    );
    // With a higher limit on the connection it runs.
    let text = lb.env.read("dqwatch.toml");
    lb.env
        .config(&format!("{text}max_bytes_billed = \"100GB\"\n"));
    let report = lb.run().json();
    assert_eq!(
        check_doc(&report, "big")["status"],
        json!("pass"),
        "{report}"
    );
}

/// A job still running at the deadline is cancelled with `jobs.cancel` and is a timeout;
/// a 503 is retried; a statement the dry run does not call SELECT never runs; 404 and 403
/// carry the API's message.
#[test]
fn timeouts_retries_refusals_and_errors() {
    let Some(lb) = Loopback::start(
        "bigquery::timeouts_retries_refusals_and_errors",
        "statement_timeout = \"1s\"",
    ) else {
        return;
    };
    lb.fake.lock().unwrap().fail_queries = 1;
    lb.check("slow", &METRIC, "SELECT 1 AS gap FROM slow");
    lb.check("ctas", &METRIC, "SELECT 1 AS gap FROM create_table_as");
    lb.check("missing", &METRIC, "SELECT 1 AS gap FROM missing_table");
    lb.check("denied", &METRIC, "SELECT 1 AS gap FROM denied");
    lb.check("fine", &METRIC, "SELECT 1 AS gap FROM fine");
    let report = lb.run().json();
    let slow = check_doc(&report, "slow");
    assert_eq!(slow["error"]["kind"], json!("timeout"), "{slow}");
    assert!(!lb.seen("cancel").is_empty(), "the job was not cancelled");
    let ctas = check_doc(&report, "ctas");
    assert!(
        ctas["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CREATE_TABLE_AS_SELECT"),
        "{ctas}"
    );
    assert!(
        lb.seen("query")
            .iter()
            .all(|j| !j["query"].as_str().unwrap().contains("create_table_as"))
    );
    let missing = check_doc(&report, "missing");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("notFound"),
        "{missing}"
    );
    let denied = check_doc(&report, "denied");
    assert_eq!(denied["error"]["kind"], json!("connection"), "{denied}");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connection \"bq\": authentication failed"),
        "{denied}"
    );
    assert_eq!(
        check_doc(&report, "fine")["status"],
        json!("pass"),
        "a 503 is retried: {report}"
    );
}

/// A refused token exchange is an error naming the connection; the private key is nowhere
/// in the output. `validate --connect` dry-runs and runs no job.
#[test]
fn auth_failures_name_the_connection_and_validate_only_dry_runs() {
    let Some(lb) = Loopback::start(
        "bigquery::auth_failures_name_the_connection_and_validate_only_dry_runs",
        "",
    ) else {
        return;
    };
    lb.check("one", &METRIC, "SELECT 1 AS gap");
    let mut cmd = lb.env.command();
    cmd.args(["--config", "dqwatch.toml", "validate", "--connect"]);
    output(&mut cmd).code(0).stdout_has("✓ warehouse");
    assert_eq!(lb.seen("insert").len(), 1);
    assert!(lb.seen("query").is_empty(), "validate ran a job");
    // Without credentials_file, GOOGLE_APPLICATION_CREDENTIALS names the key file.
    let with_file = lb.env.read("dqwatch.toml");
    lb.env
        .config(&with_file.replace("credentials_file = \"sa.json\"\n", ""));
    let key = lb.env.path().join("sa.json");
    let mut cmd = lb.env.command();
    cmd.args([
        "--config",
        "dqwatch.toml",
        "run",
        "--no-incidents",
        "--format",
        "json",
    ])
    .env("GOOGLE_APPLICATION_CREDENTIALS", &key);
    let report = output(&mut cmd).json();
    assert_eq!(
        check_doc(&report, "one")["status"],
        json!("pass"),
        "{report}"
    );
    let mut cmd = lb.env.command();
    cmd.args([
        "--config",
        "dqwatch.toml",
        "run",
        "--no-incidents",
        "--format",
        "json",
    ])
    .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
    let report = output(&mut cmd).json();
    let msg = check_doc(&report, "one")["error"]["message"].to_string();
    assert!(
        msg.contains("GOOGLE_APPLICATION_CREDENTIALS is not set"),
        "{msg}"
    );
    lb.env.config(&with_file);
    lb.fake.lock().unwrap().refuse_grant = true;
    // A fresh process has no token yet.
    let out = lb.run();
    let doc = check_doc(&out.json(), "one").clone();
    assert_eq!(doc["error"]["kind"], json!("connection"), "{doc}");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("connection \"bq\": authentication failed")
            && msg.contains("Invalid JWT Signature"),
        "{msg}"
    );
    out.nowhere("PRIVATE KEY");
}

/// Every built-in rule's BigQuery (and Snowflake) template, rendered with each shape of its
/// parameters, parses as exactly one statement in sqlglot's dialect of that warehouse
/// (PyPI, pinned in `.ci/run`): a parser not written here. `DQWATCH_TEST_SQLGLOT` names a
/// Python with sqlglot (`1`: `python3`).
#[test]
fn every_rendered_template_parses_in_sqlglot() {
    let python = match std::env::var("DQWATCH_TEST_SQLGLOT") {
        Ok(v) if v == "1" => "python3".to_string(),
        Ok(v) if !v.is_empty() => v,
        _ => {
            skip(
                "bigquery::every_rendered_template_parses_in_sqlglot",
                "DQWATCH_TEST_SQLGLOT not set",
            );
            return;
        }
    };
    let env = TestEnv::new();
    env.write("sa.json", "{}");
    env.config(
        "[connections.bigquery]\nurl = \"bigquery://acme/sales\"\ncredentials_file = \"sa.json\"\n\
         [connections.snowflake]\nurl = \"snowflake://u@acct/DB/PUBLIC\"\npassword = \"x\"\n",
    );
    let shapes: &[(&str, &str)] = &[
        (
            "missing_partition",
            "table = \"events\"\npartition_column = \"event_date\"\n",
        ),
        (
            "missing_partition",
            "table = \"sales.events\"\npartition_column = \"_PARTITIONDATE\"\nlookback = \"3d\"\nmin_rows = 10\n",
        ),
        (
            "missing_partition",
            "table = \"events\"\npartition_column = \"event_at\"\ngranularity = \"hour\"\nlookback = \"6h\"\n",
        ),
        (
            "freshness_lag",
            "table = \"loads\"\ntimestamp_column = \"loaded_at\"\n",
        ),
        (
            "freshness_lag",
            "table = \"loads\"\ntimestamp_column = \"loaded_at\"\nkey_column = \"dataset\"\nwhere = \"dataset <> 'backfill'\"\n",
        ),
        (
            "failure_rate_spike",
            "table = \"runs\"\nstatus_column = \"status\"\nfailure_values = [\"failed\", \"it's bad\"]\ntimestamp_column = \"run_at\"\n",
        ),
        (
            "failure_rate_spike",
            "table = \"runs\"\nstatus_column = \"status\"\nfailure_values = [\"failed\"]\ntimestamp_column = \"run_at\"\nkey_column = \"pipeline\"\n",
        ),
        (
            "trend_risk",
            "table = \"revenue\"\nkey_column = \"subject\"\ndate_column = \"day\"\nvalue_column = \"amount\"\n",
        ),
        (
            "duplicate_rows",
            "table = \"orders\"\nkey_columns = [\"id\", \"line\"]\nwhere = \"day > '2026-01-01'\"\n",
        ),
        (
            "reconciliation_gap",
            "source = { table = \"ledger\", key_column = \"region\", value_expression = \"SUM(amount)\" }\ntarget = { table = \"billing\", key_column = \"region\", value_expression = \"SUM(amount)\" }\n",
        ),
        ("schema_change", "table = \"orders\"\n"),
        ("schema_change", "table = \"sales.orders\"\n"),
        ("schema_change", "table_pattern = \"orders_%\"\n"),
        (
            "volume_anomaly",
            "table = \"orders\"\nkey_column = \"region\"\n",
        ),
        // Fused scans (issue 13): each of these shares a scan with a check above.
        (
            "failure_rate_spike",
            "table = \"loads\"\nstatus_column = \"status\"\nfailure_values = [\"failed\"]\ntimestamp_column = \"loaded_at\"\n",
        ),
        (
            "volume_anomaly",
            "table = \"loads\"\nkey_column = \"dataset\"\nwhere = \"dataset <> 'x'\"\n",
        ),
        (
            "volume_anomaly",
            "table = \"runs\"\nkey_column = \"pipeline\"\n",
        ),
    ];
    let mut ids = Vec::new();
    for (i, (rule, params)) in shapes.iter().enumerate() {
        for dialect in ["bigquery", "snowflake"] {
            let id = format!("{dialect}_{rule}_{i}");
            env.write(
                &format!("checks/{id}.toml"),
                format!("rule = \"{rule}\"\nconnection = \"{dialect}\"\n[params]\n{params}"),
            );
            ids.push((id, dialect));
        }
    }
    let mut cases = Vec::new();
    for (id, dialect) in &ids {
        let mut cmd = env.command();
        cmd.args(["--config", "dqwatch.toml", "render", id]);
        let out = output(&mut cmd).code(0).stdout.clone();
        // A reconciliation prints its two sides, each under a `-- source`/`-- target` line.
        for part in out.split("\n\n").filter(|p| !p.trim().is_empty()) {
            cases.push(json!([id, dialect, part]));
        }
    }
    let fused = cases
        .iter()
        .filter(|c| c[2].as_str().is_some_and(|s| s.contains("one scan for")))
        .count();
    assert!(fused >= 12, "shared scans rendered: {fused}");
    let script = r#"
import json, sys, sqlglot
failed = []
for id, dialect, sql in json.load(sys.stdin):
    try:
        stmts = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        if len(stmts) != 1:
            failed.append(f"{id}: {len(stmts)} statements")
    except Exception as e:
        failed.append(f"{id}: {e}\n{sql}")
print(json.dumps(failed))
"#;
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(json!(cases).to_string().as_bytes())
            .unwrap();
    }
    let done = child.wait_with_output().unwrap();
    let failed: Vec<String> = serde_json::from_slice(&done.stdout).unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} rendered queries do not parse:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n\n")
    );
    assert!(cases.len() >= 2 * shapes.len());
}
