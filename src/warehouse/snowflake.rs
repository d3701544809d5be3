//! Snowflake over the HTTP protocol its own connectors speak: `login-request` (key-pair JWT
//! or password) opens a session, `query-request` runs one statement (`describeOnly` first,
//! to learn its statement type without running it), a statement still running is polled at
//! its `getResultUrl`, large results arrive in chunks, and `abort-request` stops a statement
//! the client gave up on. Every statement carries `QUERY_TAG = 'dqwatch:<check id>'` and
//! `STATEMENT_TIMEOUT_IN_SECONDS`; results are asked for as JSON rowsets, and Arrow IPC
//! rowsets are read too with the `snowflake-arrow` feature.

use super::WarehouseError;
use super::driver::{Fetched, Job, admit};
use super::http::{self, Failure, RsaKey};
use super::screen::{NOT_A_QUERY, screen};
use crate::config::{self, Connection, SnowflakeAuth};
use crate::model::{QueryStats, ResultSet, Value};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// Snowflake's statement type id of a query (`SELECT`, `WITH … SELECT`).
const SELECT_TYPE: i64 = 0x1000;
/// "Query execution in progress" (the answer to poll at `getResultUrl`).
const IN_PROGRESS: [&str; 2] = ["333333", "333334"];
/// The session token expired or is unknown: log in again.
const LOGIN_AGAIN: [&str; 3] = ["390112", "390104", "390114"];
/// A statement stopped by its timeout (000630) or cancelled (000604).
const TIMED_OUT: [&str; 2] = ["000630", "000604"];
/// Extra time the client waits past the server-side timeout before aborting itself.
const CLIENT_GRACE: Duration = Duration::from_secs(2);
/// Bound on a login.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A Snowflake connection: up to `max_concurrency` sessions, one statement at a time each.
pub struct Snowflake {
    conn: Connection,
    cfg: config::Snowflake,
    http: reqwest::Client,
    /// Idle sessions' tokens.
    idle: Mutex<Vec<Arc<String>>>,
    permits: Semaphore,
    seq: AtomicU64,
    /// Query texts Snowflake already described as a query: a statement's type is fixed by its
    /// text, so the daemon's later runs of a check skip the describe-only round trip.
    described: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Why a request failed, before it becomes a [`WarehouseError`].
enum Fail {
    Login(String),
    /// The session token expired: log in again (once), not a refused login.
    Expired,
    Transport(String),
    Deadline,
    Timeout,
    Sql(String),
}

/// One column of a result, as `rowtype` describes it.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub name: String,
    /// `fixed`, `real`, `text`, `boolean`, `date`, `timestamp_ntz`, … (lower case).
    pub kind: String,
    pub scale: i64,
}

impl Snowflake {
    /// A connection that logs in when first used.
    pub fn new(conn: Connection, cfg: config::Snowflake) -> Self {
        let permits = Semaphore::new(conn.max_concurrency);
        Self {
            conn,
            cfg,
            http: http::client(),
            idle: Mutex::new(Vec::new()),
            permits,
            seq: AtomicU64::new(1),
            described: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn timeout_secs(&self) -> u64 {
        self.conn.statement_timeout.as_secs_f64().ceil().max(1.0) as u64
    }

    fn error(&self, fail: Fail) -> WarehouseError {
        match fail {
            Fail::Login(message) => WarehouseError::Auth {
                connection: self.conn.name.clone(),
                message,
            },
            Fail::Expired => WarehouseError::Auth {
                connection: self.conn.name.clone(),
                message: "the session expired again right after a new login".into(),
            },
            Fail::Transport(message) => WarehouseError::Connect {
                url: self.conn.display_url.clone(),
                message,
            },
            Fail::Deadline | Fail::Timeout => WarehouseError::Timeout {
                connection: self.conn.name.clone(),
                after: self.conn.statement_timeout,
            },
            Fail::Sql(message) => WarehouseError::Query { message },
        }
    }

    /// Runs one screened, describe-checked query.
    pub async fn fetch_timed(&self, sql: &str, job: Job<'_>) -> Fetched {
        let (_permit, queued) = match admit(sql, self.conn.dialect, &self.permits).await {
            Ok(admitted) => admitted,
            Err(refused) => return refused,
        };
        let mut stats = QueryStats::default();
        let deadline = Instant::now() + self.conn.statement_timeout + CLIENT_GRACE;
        let rows = self.run(sql, job, deadline, &mut stats).await;
        Fetched {
            rows: rows.map_err(|f| self.error(f)),
            queued,
            stats,
        }
    }

    async fn run(
        &self,
        sql: &str,
        job: Job<'_>,
        deadline: Instant,
        stats: &mut QueryStats,
    ) -> Result<ResultSet, Fail> {
        let t = Instant::now();
        let described = !self.known_query(sql);
        if described {
            let described = self.statement(sql, job, true, deadline).await?;
            check_statement_type(&described)?;
            self.described
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(sql.to_string());
        }
        let describe = t.elapsed();
        let t = Instant::now();
        let data = self.statement(sql, job, false, deadline).await?;
        let execute = t.elapsed();
        let t = Instant::now();
        if let Some(id) = data["queryId"].as_str() {
            stats.query_ids.push(id.to_string());
        }
        let columns = columns(&data);
        if columns.is_empty() {
            return Err(Fail::Sql(NOT_A_QUERY.into()));
        }
        let mut rs = ResultSet {
            columns: columns.iter().map(|c| c.name.clone()).collect(),
            ..ResultSet::default()
        };
        let max = self.conn.max_rows;
        rs.capped = read_rowset(&data, &columns, &mut rs.rows, max)?;
        if !rs.capped {
            rs.capped = self
                .read_chunks(&data, &columns, &mut rs.rows, deadline)
                .await?;
        }
        // Where a check's time went (benches/warehouses.py reads these).
        tracing::debug!(
            connection = %self.conn.name,
            check = job.check,
            described,
            describe_ms = describe.as_secs_f64() * 1000.0,
            execute_ms = execute.as_secs_f64() * 1000.0,
            read_ms = t.elapsed().as_secs_f64() * 1000.0,
            rows = rs.rows.len(),
            "snowflake statement"
        );
        Ok(rs)
    }

    fn known_query(&self, sql: &str) -> bool {
        self.described
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(sql)
    }

    /// Describes `sql` without running it and returns its columns.
    pub async fn describe(&self, sql: &str, job: Job<'_>) -> Result<Vec<String>, WarehouseError> {
        screen(sql, self.conn.dialect).map_err(|m| WarehouseError::Query { message: m })?;
        let deadline = Instant::now() + self.conn.statement_timeout + CLIENT_GRACE;
        let data = self
            .statement(sql, job, true, deadline)
            .await
            .map_err(|f| self.error(f))?;
        check_statement_type(&data).map_err(|f| self.error(f))?;
        let cols: Vec<String> = columns(&data).into_iter().map(|c| c.name).collect();
        if cols.is_empty() {
            return Err(WarehouseError::Query {
                message: NOT_A_QUERY.into(),
            });
        }
        Ok(cols)
    }

    /// Logs in if needed and keeps the session alive (`/session/heartbeat`): no statement,
    /// no warehouse resumed.
    pub async fn ping(&self) -> Result<(), WarehouseError> {
        let deadline = Instant::now() + LOGIN_TIMEOUT;
        let token = self.token(deadline).await.map_err(|f| self.error(f))?;
        let result = self.heartbeat(&token, deadline).await;
        if result.is_ok() {
            self.idle.lock().await.push(token);
        }
        result
    }

    async fn heartbeat(&self, token: &str, deadline: Instant) -> Result<(), WarehouseError> {
        let url = format!("{}/session/heartbeat", self.cfg.api_base);
        let make = || {
            self.http
                .post(&url)
                .header("Authorization", format!("Snowflake Token=\"{token}\""))
                .header("Accept", "application/json")
                .json(&json!({}))
        };
        match http::send(make, deadline).await {
            Ok((200, body)) => match serde_json::from_str::<Json>(&body) {
                Ok(v) if v["success"].as_bool() == Some(true) => Ok(()),
                Ok(v) if is_login_again(&v) => {
                    Err(self.error(Fail::Login("the session expired".into())))
                }
                _ => Err(self.error(Fail::Transport(format!(
                    "heartbeat refused: {}",
                    http::excerpt(&body)
                )))),
            },
            Ok((code, body)) => Err(self.error(Fail::Transport(format!(
                "heartbeat: HTTP {code}: {}",
                http::excerpt(&body)
            )))),
            Err(f) => Err(self.error(Fail::Transport(f.describe()))),
        }
    }

    /// Ends the idle sessions.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().await);
        for token in idle {
            self.end(&token).await;
        }
    }

    async fn end(&self, token: &str) {
        let url = format!("{}/session?delete=true", self.cfg.api_base);
        let _ = self
            .http
            .post(&url)
            .header("Authorization", format!("Snowflake Token=\"{token}\""))
            .header("Accept", "application/json")
            .json(&json!({}))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
    }

    /// An idle session's token, or a new session's.
    async fn token(&self, deadline: Instant) -> Result<Arc<String>, Fail> {
        if let Some(t) = self.idle.lock().await.pop() {
            return Ok(t);
        }
        Ok(Arc::new(
            self.login(deadline.min(Instant::now() + LOGIN_TIMEOUT))
                .await?,
        ))
    }

    /// `login-request` with the session parameters every check runs under.
    async fn login(&self, deadline: Instant) -> Result<String, Fail> {
        let cfg = &self.cfg;
        let account = account_name(&cfg.account);
        let mut data = json!({
            "CLIENT_APP_ID": "dqwatch",
            "CLIENT_APP_VERSION": env!("CARGO_PKG_VERSION"),
            "ACCOUNT_NAME": account,
            "LOGIN_NAME": cfg.user,
            "CLIENT_ENVIRONMENT": { "APPLICATION": "dqwatch", "OS": std::env::consts::OS },
            "SESSION_PARAMETERS": self.session_parameters(""),
        });
        match &cfg.auth {
            SnowflakeAuth::Password(p) => {
                data["PASSWORD"] = json!(p.expose());
            }
            SnowflakeAuth::KeyPair(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Fail::Login(format!(
                        "cannot read private_key_file {}: {e}",
                        path.display()
                    ))
                })?;
                let key = RsaKey::from_pem(&pem)
                    .map_err(|m| Fail::Login(format!("{}: {m}", path.display())))?;
                data["AUTHENTICATOR"] = json!("SNOWFLAKE_JWT");
                data["TOKEN"] = json!(login_jwt(&key, &account, &cfg.user).map_err(Fail::Login)?);
            }
        }
        let mut query = vec![("request_id", http::uuid4())];
        for (k, v) in [
            ("databaseName", &cfg.database),
            ("schemaName", &cfg.schema),
            ("warehouse", &cfg.warehouse),
            ("roleName", &cfg.role),
        ] {
            if let Some(v) = v {
                query.push((k, v.clone()));
            }
        }
        let url = format!("{}/session/v1/login-request", cfg.api_base);
        let body = json!({ "data": data });
        let make = || {
            self.http
                .post(&url)
                .query(&query)
                .header("Accept", "application/json")
                .json(&body)
        };
        let (status, text) = http::send(make, deadline).await.map_err(|f| match f {
            Failure::Status(401 | 403, b) => Fail::Login(http::excerpt(&b)),
            Failure::Deadline => Fail::Transport("the login got no answer in time".into()),
            f => Fail::Transport(f.describe()),
        })?;
        let v: Json = serde_json::from_str(&text).map_err(|_| {
            Fail::Transport(format!(
                "login: HTTP {status}, not JSON: {}",
                http::excerpt(&text)
            ))
        })?;
        if v["success"].as_bool() != Some(true) {
            return Err(Fail::Login(sf_message(&v)));
        }
        v["data"]["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Fail::Login("the login answer holds no session token".into()))
    }

    /// Session (and statement) parameters: the timeout, the result format, and the tag.
    fn session_parameters(&self, check: &str) -> Json {
        let mut p = json!({
            "STATEMENT_TIMEOUT_IN_SECONDS": self.timeout_secs(),
            "QUERY_RESULT_FORMAT": if cfg!(feature = "snowflake-arrow") { "ARROW" } else { "JSON" },
            "TIMEZONE": "UTC",
        });
        if !check.is_empty() {
            p["QUERY_TAG"] = json!(format!("dqwatch:{check}"));
        }
        p
    }

    /// Sends one statement (`describe`: describe only) and waits for its result, polling
    /// while it runs, logging in again once if the session expired. At the deadline the
    /// statement is aborted on the server.
    async fn statement(
        &self,
        sql: &str,
        job: Job<'_>,
        describe: bool,
        deadline: Instant,
    ) -> Result<Json, Fail> {
        let mut relogged = false;
        loop {
            let token = self.token(deadline).await?;
            let outcome = self
                .statement_on(&token, sql, job, describe, deadline)
                .await;
            match outcome {
                Err(Fail::Expired) if !relogged => {
                    relogged = true;
                    continue;
                }
                // A statement aborted at its deadline may still hold its session.
                Err(
                    Fail::Deadline
                    | Fail::Timeout
                    | Fail::Transport(_)
                    | Fail::Login(_)
                    | Fail::Expired,
                ) => {}
                Ok(_) | Err(Fail::Sql(_)) => self.idle.lock().await.push(token),
            }
            return outcome;
        }
    }

    /// [`Snowflake::statement`] on one session; `Fail::Login` when it must log in again.
    async fn statement_on(
        &self,
        token: &str,
        sql: &str,
        job: Job<'_>,
        describe: bool,
        deadline: Instant,
    ) -> Result<Json, Fail> {
        {
            let request_id = http::uuid4();
            let body = json!({
                "sqlText": sql,
                "asyncExec": false,
                "sequenceId": self.seq.fetch_add(1, Ordering::Relaxed),
                "querySubmissionTime": http::unix_now() * 1000,
                "describeOnly": describe,
                "isInternal": false,
                "parameters": self.session_parameters(job.check),
            });
            let url = format!("{}/queries/v1/query-request", self.cfg.api_base);
            let auth = format!("Snowflake Token=\"{token}\"");
            let make = || {
                self.http
                    .post(&url)
                    .query(&[("requestId", request_id.as_str())])
                    .header("Authorization", &auth)
                    .header("Accept", "application/snowflake")
                    .json(&body)
            };
            let answer = match http::send(make, deadline).await {
                Ok(a) => a,
                Err(Failure::Deadline) => {
                    self.abort(sql, &request_id, &auth).await;
                    return Err(Fail::Deadline);
                }
                Err(Failure::Status(401, b)) if is_login_again_text(&b) => {
                    return Err(Fail::Expired);
                }
                Err(f) => return Err(Fail::Transport(f.describe())),
            };
            let mut v = parse(answer)?;
            if is_login_again(&v) {
                return Err(Fail::Expired);
            }
            // Still running: poll the result URL. Snowflake holds each poll a while; a server
            // that answers "in progress" at once is polled with a growing pause instead.
            let mut pause = Duration::from_millis(100);
            let mut asked = Instant::now();
            while v["success"].as_bool() == Some(true) || is_in_progress(&v) {
                if !is_in_progress(&v) {
                    return Ok(v["data"].take());
                }
                if asked.elapsed() < Duration::from_millis(500) {
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                if Instant::now() >= deadline {
                    self.abort(sql, &request_id, &auth).await;
                    return Err(Fail::Deadline);
                }
                asked = Instant::now();
                let Some(path) = v["data"]["getResultUrl"].as_str().map(str::to_string) else {
                    return Err(Fail::Sql("in progress, but no result URL to poll".into()));
                };
                let poll = format!("{}{path}", self.cfg.api_base);
                let make = || {
                    self.http
                        .get(&poll)
                        .header("Authorization", &auth)
                        .header("Accept", "application/snowflake")
                };
                v = match http::send(make, deadline).await {
                    Ok(a) => parse(a)?,
                    Err(Failure::Deadline) => {
                        self.abort(sql, &request_id, &auth).await;
                        return Err(Fail::Deadline);
                    }
                    Err(f) => return Err(Fail::Transport(f.describe())),
                };
            }
            let code = v["code"].as_str().unwrap_or_default();
            if TIMED_OUT.contains(&code) {
                return Err(Fail::Timeout);
            }
            Err(Fail::Sql(sf_message(&v)))
        }
    }

    /// `abort-request` for a statement the client gave up on; a failure is only logged.
    async fn abort(&self, sql: &str, request_id: &str, auth: &str) {
        let url = format!("{}/queries/v1/abort-request", self.cfg.api_base);
        let sent = self
            .http
            .post(&url)
            .query(&[("requestId", http::uuid4())])
            .header("Authorization", auth)
            .header("Accept", "application/snowflake")
            .json(&json!({ "sqlText": sql, "requestId": request_id }))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(
                connection = %self.conn.name,
                "could not abort a statement past its deadline: {}",
                e.without_url()
            );
        }
    }

    /// Reads the result's further chunks until `max_rows`; true when rows were left unread.
    async fn read_chunks(
        &self,
        data: &Json,
        columns: &[Column],
        rows: &mut Vec<Vec<Value>>,
        deadline: Instant,
    ) -> Result<bool, Fail> {
        let Some(chunks) = data["chunks"].as_array() else {
            return Ok(false);
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(h) = data["chunkHeaders"].as_object() {
            for (k, v) in h {
                if let (Ok(k), Some(Ok(v))) = (
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                    v.as_str().map(reqwest::header::HeaderValue::from_str),
                ) {
                    headers.insert(k, v);
                }
            }
        } else if let Some(qrmk) = data["qrmk"].as_str()
            && let Ok(key) = reqwest::header::HeaderValue::from_str(qrmk)
        {
            headers.insert(
                "x-amz-server-side-encryption-customer-algorithm",
                reqwest::header::HeaderValue::from_static("AES256"),
            );
            headers.insert("x-amz-server-side-encryption-customer-key", key);
        }
        let arrow = is_arrow(data);
        let max = self.conn.max_rows;
        for chunk in chunks {
            if rows.len() as u64 >= max {
                return Ok(true);
            }
            let Some(url) = chunk["url"].as_str() else {
                continue;
            };
            let make = || self.http.get(url).headers(headers.clone());
            let (status, body) = send_bytes(make, deadline).await?;
            if status != 200 {
                return Err(Fail::Transport(format!("result chunk: HTTP {status}")));
            }
            let capped = if arrow {
                read_arrow(&body, columns, rows, max)?
            } else {
                let mut text = Vec::with_capacity(body.len() + 2);
                text.push(b'[');
                text.extend_from_slice(&body);
                text.push(b']');
                let set: Vec<Vec<Json>> = serde_json::from_slice(&text)
                    .map_err(|e| Fail::Transport(format!("result chunk is not JSON: {e}")))?;
                push_json_rows(set, columns, rows, max)
            };
            if capped {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Downloads a chunk (retried like every request).
async fn send_bytes(
    make: impl Fn() -> reqwest::RequestBuilder,
    deadline: Instant,
) -> Result<(u16, Vec<u8>), Fail> {
    for _ in 0..http::ATTEMPTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let resp = match tokio::time::timeout(left, make().send()).await {
            Err(_) => return Err(Fail::Deadline),
            Ok(Err(_)) => continue,
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        if status == 429 || status >= 500 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        return match tokio::time::timeout(left, resp.bytes()).await {
            Ok(Ok(b)) => Ok((status, b.to_vec())),
            Ok(Err(e)) => Err(Fail::Transport(e.without_url().to_string())),
            Err(_) => Err(Fail::Deadline),
        };
    }
    Err(Fail::Transport(
        "result chunk: no answer after retries".into(),
    ))
}

fn parse((status, body): (u16, String)) -> Result<Json, Fail> {
    serde_json::from_str(&body)
        .map_err(|_| Fail::Transport(format!("HTTP {status}, not JSON: {}", http::excerpt(&body))))
}

fn is_in_progress(v: &Json) -> bool {
    v["code"].as_str().is_some_and(|c| IN_PROGRESS.contains(&c))
}

fn is_login_again(v: &Json) -> bool {
    v["success"].as_bool() != Some(true)
        && v["code"].as_str().is_some_and(|c| LOGIN_AGAIN.contains(&c))
}

fn is_login_again_text(body: &str) -> bool {
    serde_json::from_str::<Json>(body).is_ok_and(|v| is_login_again(&v))
}

/// Snowflake's error message with its code and SQLSTATE.
fn sf_message(v: &Json) -> String {
    let message = v["message"].as_str().unwrap_or("no message").trim();
    let code = v["code"]
        .as_str()
        .or_else(|| v["data"]["errorCode"].as_str());
    let state = v["data"]["sqlState"].as_str();
    match (code, state) {
        (Some(c), Some(s)) => format!("{message} (code {c}, SQLSTATE {s})"),
        (Some(c), None) => format!("{message} (code {c})"),
        _ => message.to_string(),
    }
}

/// Refuses a statement whose describe-only answer says it is not a query.
fn check_statement_type(described: &Json) -> Result<(), Fail> {
    match described["statementTypeId"].as_i64() {
        Some(SELECT_TYPE) | None => Ok(()),
        Some(t) => Err(Fail::Sql(format!(
            "refused: Snowflake describes the statement as type {t:#06x}, not a query (SELECT, {SELECT_TYPE:#06x}); it was not run"
        ))),
    }
}

/// The account part of an account identifier, upper case, as login and JWT name it.
fn account_name(account: &str) -> String {
    account
        .split('.')
        .next()
        .unwrap_or(account)
        .to_ascii_uppercase()
}

/// The key-pair login JWT: issuer `ACCOUNT.USER.SHA256:<fingerprint>`, subject
/// `ACCOUNT.USER`, valid for an hour.
fn login_jwt(key: &RsaKey, account: &str, user: &str) -> Result<String, String> {
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.spki);
    let fp = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let who = format!("{account}.{}", user.to_ascii_uppercase());
    let now = http::unix_now();
    key.jwt(&json!({
        "iss": format!("{who}.SHA256:{fp}"),
        "sub": who,
        "iat": now,
        "exp": now + 3600,
    }))
}

/// The result's columns. Snowflake stores unquoted names in upper case; a name all in upper
/// case is read in lower case, as the check's SQL most likely wrote it.
fn columns(data: &Json) -> Vec<Column> {
    data["rowtype"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .map(|c| {
                    let name = c["name"].as_str().unwrap_or_default();
                    let name = if name.chars().any(|ch| ch.is_ascii_lowercase()) {
                        name.to_string()
                    } else {
                        name.to_ascii_lowercase()
                    };
                    Column {
                        name,
                        kind: c["type"].as_str().unwrap_or_default().to_ascii_lowercase(),
                        scale: c["scale"].as_i64().unwrap_or(0),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_arrow(data: &Json) -> bool {
    data["queryResultFormat"]
        .as_str()
        .is_some_and(|f| f.eq_ignore_ascii_case("arrow"))
}

/// The rows sent with the answer itself; true when `max` stopped the reading.
fn read_rowset(
    data: &Json,
    columns: &[Column],
    rows: &mut Vec<Vec<Value>>,
    max: u64,
) -> Result<bool, Fail> {
    if is_arrow(data) {
        let b64 = data["rowsetBase64"].as_str().unwrap_or_default();
        if b64.is_empty() {
            return Ok(false);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Fail::Transport(format!("rowsetBase64 is not base64: {e}")))?;
        return read_arrow(&bytes, columns, rows, max);
    }
    let set: Vec<Vec<Json>> = match &data["rowset"] {
        Json::Array(a) => a
            .iter()
            .map(|r| r.as_array().cloned().unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    };
    Ok(push_json_rows(set, columns, rows, max))
}

#[cfg(feature = "snowflake-arrow")]
fn read_arrow(
    bytes: &[u8],
    columns: &[Column],
    rows: &mut Vec<Vec<Value>>,
    max: u64,
) -> Result<bool, Fail> {
    super::snowflake_arrow::read(bytes, columns, rows, max).map_err(Fail::Transport)
}

#[cfg(not(feature = "snowflake-arrow"))]
fn read_arrow(_: &[u8], _: &[Column], _: &mut Vec<Vec<Value>>, _: u64) -> Result<bool, Fail> {
    Err(Fail::Transport(
        "the result came as Arrow, which this build does not read (it asks for JSON; \
         build dqwatch with --features snowflake-arrow)"
            .into(),
    ))
}

fn push_json_rows(
    set: Vec<Vec<Json>>,
    columns: &[Column],
    rows: &mut Vec<Vec<Value>>,
    max: u64,
) -> bool {
    for row in set {
        if rows.len() as u64 >= max {
            return true;
        }
        rows.push(
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| json_cell(row.get(i).unwrap_or(&Json::Null), c))
                .collect(),
        );
    }
    false
}

/// One JSON rowset cell: Snowflake sends every value as a string (or null).
pub(super) fn json_cell(v: &Json, col: &Column) -> Value {
    let s = match v {
        Json::Null => return Value::Null,
        Json::String(s) => s.as_str(),
        Json::Bool(b) => return Value::Bool(*b),
        Json::Number(n) => {
            return n
                .as_i64()
                .map_or(Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int);
        }
        other => return Value::Text(other.to_string()),
    };
    let bad = || Value::Unsupported(format!("{} ({s:?})", col.kind.to_ascii_uppercase()));
    match col.kind.as_str() {
        "fixed" if col.scale == 0 => s
            .parse::<i64>()
            .map(Value::Int)
            .or_else(|_| s.parse::<f64>().map(Value::Float))
            .unwrap_or_else(|_| bad()),
        "fixed" | "real" | "float" | "double" | "decfloat" => {
            s.parse::<f64>().map(Value::Float).unwrap_or_else(|_| bad())
        }
        "boolean" => match s {
            "1" | "true" | "TRUE" => Value::Bool(true),
            "0" | "false" | "FALSE" => Value::Bool(false),
            _ => bad(),
        },
        "date" => s
            .parse::<i64>()
            .ok()
            .and_then(date_text)
            .map_or_else(bad, Value::Text),
        "timestamp_ntz" | "timestamp_ltz" | "timestamp_tz" => {
            let (secs, offset) = match s.split_once(' ') {
                Some((t, o)) => (t, o.parse::<i64>().ok()),
                None => (s, None),
            };
            let _ = offset; // the instant is UTC whatever the offset it was written in
            split_seconds(secs)
                .and_then(|(sec, nanos)| timestamp_text(sec, nanos, col.kind != "timestamp_ntz"))
                .map_or_else(bad, Value::Text)
        }
        "time" => split_seconds(s)
            .and_then(|(sec, nanos)| {
                chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                    u32::try_from(sec).ok()?,
                    nanos,
                )
            })
            .map_or_else(bad, |t| Value::Text(t.to_string())),
        _ => Value::Text(s.to_string()),
    }
}

/// `"1700000000.123456789"` → seconds and nanoseconds.
fn split_seconds(s: &str) -> Option<(i64, u32)> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = whole.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    // A negative instant with a fraction counts the fraction forwards from the whole second.
    Some((sec, nanos))
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
pub(super) fn date_text(days: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(days.checked_mul(86_400)?, 0)
        .map(|d| d.date_naive().to_string())
}

/// An instant as the sqlx drivers render one: RFC 3339 UTC (`tz`) or a naive ISO 8601.
pub(super) fn timestamp_text(sec: i64, nanos: u32, tz: bool) -> Option<String> {
    let t = chrono::DateTime::from_timestamp(sec, nanos)?;
    Some(if tz {
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    } else {
        t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(kind: &str, scale: i64) -> Column {
        Column {
            name: "c".into(),
            kind: kind.into(),
            scale,
        }
    }

    #[test]
    fn json_cells_decode_as_snowflake_encodes_them() {
        assert_eq!(json_cell(&json!("42"), &col("fixed", 0)), Value::Int(42));
        assert_eq!(
            json_cell(&json!("10000.50"), &col("fixed", 2)),
            Value::Float(10000.5)
        );
        assert_eq!(
            json_cell(&json!("99999999999999999999"), &col("fixed", 0)),
            Value::Float(1e20)
        );
        assert_eq!(json_cell(&json!("1.5"), &col("real", 0)), Value::Float(1.5));
        assert_eq!(
            json_cell(&json!("1"), &col("boolean", 0)),
            Value::Bool(true)
        );
        assert_eq!(
            json_cell(&json!("19700"), &col("date", 0)),
            Value::Text("2023-12-09".into())
        );
        assert_eq!(
            json_cell(&json!("1700000000.250000000"), &col("timestamp_ntz", 9)),
            Value::Text("2023-11-14T22:13:20.250".into())
        );
        assert_eq!(
            json_cell(&json!("1700000000.000000000 1500"), &col("timestamp_tz", 9)),
            Value::Text("2023-11-14T22:13:20Z".into())
        );
        assert_eq!(json_cell(&Json::Null, &col("text", 0)), Value::Null);
        assert!(matches!(
            json_cell(&json!("x"), &col("fixed", 0)),
            Value::Unsupported(_)
        ));
    }

    #[test]
    fn upper_case_names_read_in_lower_case() {
        let data = json!({"rowtype": [
            {"name": "LAG_SECONDS", "type": "FIXED", "scale": 0},
            {"name": "MixedCase", "type": "TEXT"}
        ]});
        let names: Vec<String> = columns(&data).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["lag_seconds", "MixedCase"]);
    }

    #[test]
    fn only_queries_pass_the_statement_type_check() {
        assert!(check_statement_type(&json!({"statementTypeId": 4096})).is_ok());
        for t in [0x3100, 0x3200, 0x6000, 0x4000] {
            assert!(check_statement_type(&json!({ "statementTypeId": t })).is_err());
        }
    }

    #[test]
    fn the_jwt_names_account_user_and_key() {
        assert_eq!(account_name("xy12345.eu-central-1"), "XY12345");
        assert_eq!(account_name("myorg-acct"), "MYORG-ACCT");
    }

    fn openssl(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
        use std::io::Write as _;
        let mut child = std::process::Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(input).ok()?;
        let out = child.wait_with_output().ok()?;
        out.status.success().then_some(out.stdout)
    }

    /// The key-pair login token as Snowflake checks it, verified with openssl (not code
    /// written here): the issuer names the key by the SHA-256 of its public key's DER, as
    /// Snowflake's RSA_PUBLIC_KEY_FP does, and the RS256 signature verifies with the public
    /// key openssl derives.
    #[test]
    fn the_login_jwt_verifies_with_openssl_derived_keys() {
        let Some(pem) = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            b"",
        ) else {
            use std::io::Write as _;
            let _ = std::io::stderr().write_all(
                b"SKIP warehouse::snowflake::tests::the_login_jwt_verifies_with_openssl_derived_keys: no openssl\n",
            );
            return;
        };
        let spki = openssl(&["pkey", "-pubout", "-outform", "DER"], &pem).unwrap_or_default();
        let pkcs1 =
            openssl(&["rsa", "-RSAPublicKey_out", "-outform", "DER"], &pem).unwrap_or_default();
        let key = RsaKey::from_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.spki, spki, "the public key rustls gives is openssl's");
        let jwt = login_jwt(&key, "XY12345", "dq_svc").unwrap_or_default();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims: Json =
            serde_json::from_slice(&b64.decode(parts[1]).unwrap_or_default()).unwrap_or_default();
        let fp = base64::engine::general_purpose::STANDARD
            .encode(ring::digest::digest(&ring::digest::SHA256, &spki).as_ref());
        assert_eq!(claims["iss"], json!(format!("XY12345.DQ_SVC.SHA256:{fp}")));
        assert_eq!(claims["sub"], json!("XY12345.DQ_SVC"));
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = b64.decode(parts[2]).unwrap_or_default();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &pkcs1,
        )
        .verify(signed.as_bytes(), &sig)
        .unwrap_or_else(|_| panic!("the signature does not verify"));
    }
}
