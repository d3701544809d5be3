//! BigQuery over its REST API (v2), standard SQL. A service-account key signs a JWT that the
//! key's `token_uri` exchanges for an OAuth access token. A query text is first a dry run
//! (`jobs.insert` with `dryRun`): only a `SELECT` statement runs, and one whose dry run
//! would process more than `max_bytes_billed` is an error before it costs anything; a text
//! that passed is not dry-run again by the same process (every job still carries the byte
//! limit, which BigQuery enforces). The
//! query then runs with `jobs.query` (`maximumBytesBilled`, `jobTimeoutMs`, labels naming the
//! check), its pages are read with `getQueryResults` up to `max_rows`, and a job still
//! running at the deadline is cancelled (`jobs.cancel`).

use super::WarehouseError;
use super::driver::{Fetched, Job, admit};
use super::http::{self, Failure, RsaKey};
use super::screen::{NOT_A_QUERY, screen};
use super::snowflake::timestamp_text;
use crate::config::{self, Connection};
use crate::model::{QueryStats, ResultSet, Value};
use serde_json::{Value as Json, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// The OAuth scope of running query jobs.
const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
/// Google's token endpoint, when the key file names none.
const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Extra time the client waits past the job timeout before cancelling the job itself.
const CLIENT_GRACE: Duration = Duration::from_secs(2);
/// The longest single wait asked of the server (`timeoutMs`) while a job runs.
const POLL: Duration = Duration::from_secs(10);
/// Rows per page asked for.
const PAGE_ROWS: u64 = 10_000;

/// A BigQuery connection.
pub struct BigQuery {
    conn: Connection,
    cfg: config::Bigquery,
    http: reqwest::Client,
    /// The access token and when to fetch a new one.
    token: Mutex<Option<(String, Instant)>>,
    permits: Semaphore,
    /// Query texts (with the byte limit they ran under) whose dry run passed: a statement's
    /// type is fixed by its text, and every job carries `maximumBytesBilled`, which BigQuery
    /// enforces without billing, so a text that passed is not dry-run again by this process.
    passed: std::sync::Mutex<std::collections::HashSet<(String, u64)>>,
}

/// Why a request failed, before it becomes a [`WarehouseError`].
enum Fail {
    Auth(String),
    Transport(String),
    Deadline,
    Sql(String),
}

impl BigQuery {
    /// A connection that fetches a token when first used.
    pub fn new(conn: Connection, cfg: config::Bigquery) -> Self {
        let permits = Semaphore::new(conn.max_concurrency);
        Self {
            conn,
            cfg,
            http: http::client(),
            token: Mutex::new(None),
            permits,
            passed: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn error(&self, fail: Fail) -> WarehouseError {
        match fail {
            Fail::Auth(message) => WarehouseError::Auth {
                connection: self.conn.name.clone(),
                message,
            },
            Fail::Transport(message) => WarehouseError::Connect {
                url: self.conn.display_url.clone(),
                message,
            },
            Fail::Deadline => WarehouseError::Timeout {
                connection: self.conn.name.clone(),
                after: self.conn.statement_timeout,
            },
            Fail::Sql(message) => WarehouseError::Query { message },
        }
    }

    /// Dry-runs (the first time this process runs the text under this byte limit), then runs
    /// one screened query.
    pub async fn fetch_timed(&self, sql: &str, job: Job<'_>) -> Fetched {
        let (_permit, queued) = match admit(sql, self.conn.dialect, &self.permits).await {
            Ok(admitted) => admitted,
            Err(refused) => return refused,
        };
        let mut stats = QueryStats::default();
        let deadline = Instant::now() + self.conn.statement_timeout + CLIENT_GRACE;
        let seen = (sql.to_string(), self.limit(job));
        let rows = async {
            if !self.passed().contains(&seen) {
                self.dry_run(sql, job, deadline).await?;
                self.passed().insert(seen);
            }
            self.run(sql, job, deadline, &mut stats).await
        }
        .await;
        Fetched {
            rows: rows.map_err(|f| self.error(f)),
            queued,
            stats,
        }
    }

    /// The dry run's column names; refuses what would not run.
    pub async fn describe(&self, sql: &str, job: Job<'_>) -> Result<Vec<String>, WarehouseError> {
        screen(sql, self.conn.dialect).map_err(|m| WarehouseError::Query { message: m })?;
        let deadline = Instant::now() + self.conn.statement_timeout + CLIENT_GRACE;
        let stats = self
            .dry_run(sql, job, deadline)
            .await
            .map_err(|f| self.error(f))?;
        let cols: Vec<String> = stats["query"]["schema"]["fields"]
            .as_array()
            .map(|f| {
                f.iter()
                    .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if cols.is_empty() {
            return Err(WarehouseError::Query {
                message: NOT_A_QUERY.into(),
            });
        }
        Ok(cols)
    }

    /// Gets a token and reads the dataset's (or the project's datasets') metadata: no job.
    pub async fn ping(&self) -> Result<(), WarehouseError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = match &self.cfg.dataset {
            Some(d) => format!(
                "{}/projects/{}/datasets/{}",
                self.cfg.api_base,
                enc(&self.cfg.project),
                enc(d)
            ),
            None => format!(
                "{}/projects/{}/datasets?maxResults=1",
                self.cfg.api_base,
                enc(&self.cfg.project)
            ),
        };
        self.call(deadline, |http, token| http.get(&url).bearer_auth(token))
            .await
            .map(drop)
            .map_err(|f| self.error(f))
    }

    /// The limit of a job: the check's own, else the connection's.
    fn passed(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<(String, u64)>> {
        self.passed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn limit(&self, job: Job<'_>) -> u64 {
        job.max_bytes_billed.unwrap_or(self.cfg.max_bytes_billed)
    }

    fn default_dataset(&self) -> Json {
        match &self.cfg.dataset {
            Some(d) => json!({ "projectId": self.cfg.project, "datasetId": d }),
            None => Json::Null,
        }
    }

    /// `jobs.insert` with `dryRun`: the job's statistics, once the statement type and the
    /// bytes it would process are found acceptable.
    async fn dry_run(&self, sql: &str, job: Job<'_>, deadline: Instant) -> Result<Json, Fail> {
        let limit = self.limit(job);
        let mut query = json!({
            "query": sql,
            "useLegacySql": false,
            "maximumBytesBilled": limit.to_string(),
        });
        if self.cfg.dataset.is_some() {
            query["defaultDataset"] = self.default_dataset();
        }
        let mut reference = json!({ "projectId": self.cfg.project });
        if let Some(loc) = &self.cfg.location {
            reference["location"] = json!(loc);
        }
        let body = json!({
            "configuration": { "dryRun": true, "query": query, "labels": labels(job.check) },
            "jobReference": reference,
        });
        let url = format!(
            "{}/projects/{}/jobs",
            self.cfg.api_base,
            enc(&self.cfg.project)
        );
        let v = self
            .call(deadline, |http, token| {
                http.post(&url).bearer_auth(token).json(&body)
            })
            .await?;
        let stats = v["statistics"].clone();
        let kind = stats["query"]["statementType"].as_str().unwrap_or_default();
        if kind != "SELECT" {
            let kind = if kind.is_empty() { "unknown" } else { kind };
            return Err(Fail::Sql(format!(
                "refused: the dry run says the statement is {kind}, not SELECT; it was not run"
            )));
        }
        let bytes = number(&stats["totalBytesProcessed"])
            .or_else(|| number(&stats["query"]["totalBytesProcessed"]))
            .unwrap_or(0);
        if bytes > limit {
            return Err(Fail::Sql(format!(
                "refused: the dry run says the query would process {} ({bytes} bytes), over max_bytes_billed {} ({limit} bytes) of connection \"{}\"; it was not run",
                human_bytes(bytes),
                human_bytes(limit),
                self.conn.name
            )));
        }
        Ok(stats)
    }

    /// `jobs.query`, then `getQueryResults` pages until the job is done and `max_rows` rows
    /// are read (or there are no more); cancels the job at the deadline.
    async fn run(
        &self,
        sql: &str,
        job: Job<'_>,
        deadline: Instant,
        stats: &mut QueryStats,
    ) -> Result<ResultSet, Fail> {
        let max = self.conn.max_rows;
        let page = max.saturating_add(1).min(PAGE_ROWS);
        let mut body = json!({
            "query": sql,
            "useLegacySql": false,
            "maximumBytesBilled": self.limit(job).to_string(),
            "jobTimeoutMs": self.conn.statement_timeout.as_millis().max(1).to_string(),
            "timeoutMs": wait_ms(deadline),
            "maxResults": page,
            "labels": labels(job.check),
            "requestId": http::uuid4(),
            "formatOptions": { "useInt64Timestamp": false },
        });
        if self.cfg.dataset.is_some() {
            body["defaultDataset"] = self.default_dataset();
        }
        if let Some(loc) = &self.cfg.location {
            body["location"] = json!(loc);
        }
        let url = format!(
            "{}/projects/{}/queries",
            self.cfg.api_base,
            enc(&self.cfg.project)
        );
        let mut called = Instant::now();
        let mut v = self
            .call(deadline, |http, token| {
                http.post(&url).bearer_auth(token).json(&body)
            })
            .await?;
        let job_id = v["jobReference"]["jobId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let location = v["jobReference"]["location"]
            .as_str()
            .map(str::to_string)
            .or_else(|| self.cfg.location.clone());
        if !job_id.is_empty() {
            stats.query_ids.push(job_id.clone());
        }
        let mut rs = ResultSet::default();
        let mut columns: Vec<(String, String)> = Vec::new();
        // Between polls of an unfinished job that the server answered before its timeoutMs.
        let mut pause = Duration::from_millis(100);
        loop {
            if let Some(b) = number(&v["totalBytesProcessed"]) {
                stats.bytes_processed = Some(b);
            }
            let complete = v["jobComplete"].as_bool().unwrap_or(false);
            if complete {
                if columns.is_empty() {
                    columns = schema(&v);
                    rs.columns = columns.iter().map(|(n, _)| n.clone()).collect();
                }
                for row in v["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    if rs.rows.len() as u64 >= max {
                        rs.capped = true;
                        return Ok(rs);
                    }
                    rs.rows.push(decode_row(row, &columns));
                }
            }
            let token = v["pageToken"].as_str().map(str::to_string);
            if complete && token.is_none() {
                break;
            }
            if job_id.is_empty() {
                return Err(Fail::Sql(
                    "the answer names no job to read results of".into(),
                ));
            }
            // BigQuery holds a poll until the job ends or timeoutMs passes; a server that
            // answers "not complete" at once is polled with a growing pause instead.
            if !complete && called.elapsed() < Duration::from_millis(500) {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            if Instant::now() >= deadline {
                self.cancel(&job_id, location.as_deref()).await;
                return Err(Fail::Deadline);
            }
            let mut query: Vec<(&str, String)> = vec![
                ("maxResults", page.to_string()),
                ("timeoutMs", wait_ms(deadline).to_string()),
                ("formatOptions.useInt64Timestamp", "false".into()),
            ];
            if let Some(t) = token.filter(|_| complete) {
                query.push(("pageToken", t));
            }
            if let Some(loc) = &location {
                query.push(("location", loc.clone()));
            }
            let url = format!(
                "{}/projects/{}/queries/{}",
                self.cfg.api_base,
                enc(&self.cfg.project),
                enc(&job_id)
            );
            called = Instant::now();
            v = match self
                .call(deadline, |http, token| {
                    http.get(&url).bearer_auth(token).query(&query)
                })
                .await
            {
                Err(Fail::Deadline) => {
                    self.cancel(&job_id, location.as_deref()).await;
                    return Err(Fail::Deadline);
                }
                other => other?,
            };
        }
        if rs.columns.is_empty() {
            return Err(Fail::Sql(NOT_A_QUERY.into()));
        }
        Ok(rs)
    }

    /// `jobs.cancel`; a failure is only logged (the check is a timeout either way).
    async fn cancel(&self, job_id: &str, location: Option<&str>) {
        let url = format!(
            "{}/projects/{}/jobs/{}/cancel",
            self.cfg.api_base,
            enc(&self.cfg.project),
            enc(job_id)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let sent = self
            .call(deadline, |http, token| {
                let r = http.post(&url).bearer_auth(token);
                match location {
                    Some(l) => r.query(&[("location", l)]),
                    None => r,
                }
            })
            .await;
        if sent.is_err() {
            tracing::warn!(connection = %self.conn.name, job_id, "could not cancel a job past its deadline");
        }
    }

    /// Sends an authorised request (retried on 429/5xx), once more with a fresh token on
    /// 401; the body as JSON, or the API's error.
    async fn call(
        &self,
        deadline: Instant,
        make: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Json, Fail> {
        for attempt in 0..2 {
            let token = self.token(deadline).await?;
            let (status, body) = match http::send(|| make(&self.http, &token), deadline).await {
                Ok(a) => a,
                Err(Failure::Deadline) => return Err(Fail::Deadline),
                Err(Failure::Status(code, body)) => {
                    return Err(Fail::Transport(format!(
                        "HTTP {code} after {} attempts: {}",
                        http::ATTEMPTS,
                        api_message(&body)
                    )));
                }
                Err(f) => return Err(Fail::Transport(f.describe())),
            };
            match status {
                200..=299 => {
                    return serde_json::from_str(&body).map_err(|_| {
                        Fail::Transport(format!(
                            "HTTP {status}, not JSON: {}",
                            http::excerpt(&body)
                        ))
                    });
                }
                401 if attempt == 0 => {
                    *self.token.lock().await = None;
                }
                401 | 403 => return Err(Fail::Auth(api_message(&body))),
                _ => return Err(Fail::Sql(api_message(&body))),
            }
        }
        Err(Fail::Auth("the access token was refused twice".into()))
    }

    /// A valid access token, fetched with a signed JWT when there is none or it expires
    /// within a minute.
    async fn token(&self, deadline: Instant) -> Result<String, Fail> {
        let mut held = self.token.lock().await;
        if let Some((t, until)) = &*held
            && Instant::now() + Duration::from_secs(60) < *until
        {
            return Ok(t.clone());
        }
        let path = match &self.cfg.credentials_file {
            Some(p) => p.clone(),
            None => match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => {
                    return Err(Fail::Auth(
                        "no credentials_file and GOOGLE_APPLICATION_CREDENTIALS is not set".into(),
                    ));
                }
            },
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Fail::Auth(format!("cannot read the key file {}: {e}", path.display())))?;
        let key: Json = serde_json::from_str(&text).map_err(|_| {
            Fail::Auth(format!(
                "the key file {} is not a JSON service-account key",
                path.display()
            ))
        })?;
        let (Some(email), Some(pem)) = (key["client_email"].as_str(), key["private_key"].as_str())
        else {
            return Err(Fail::Auth(format!(
                "the key file {} has no client_email and private_key (is it a service-account key?)",
                path.display()
            )));
        };
        let token_uri = self
            .cfg
            .token_uri
            .clone()
            .or_else(|| key["token_uri"].as_str().map(str::to_string))
            .unwrap_or_else(|| TOKEN_URI.to_string());
        let rsa = RsaKey::from_pem(pem.as_bytes())
            .map_err(|m| Fail::Auth(format!("{}: {m}", path.display())))?;
        let now = http::unix_now();
        let assertion = rsa
            .jwt(&json!({
                "iss": email, "scope": SCOPE, "aud": token_uri, "iat": now, "exp": now + 3600,
            }))
            .map_err(Fail::Auth)?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let (status, body) = http::send(|| self.http.post(&token_uri).form(&form), deadline)
            .await
            .map_err(|f| match f {
                Failure::Deadline => Fail::Deadline,
                f => Fail::Transport(format!("token endpoint: {}", f.describe())),
            })?;
        let v: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
        let Some(access) = v["access_token"].as_str().filter(|_| status == 200) else {
            let why = v["error_description"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .map_or_else(|| http::excerpt(&body), str::to_string);
            return Err(Fail::Auth(format!(
                "the token endpoint refused the service account {email}: HTTP {status}: {why}"
            )));
        };
        let ttl = v["expires_in"].as_u64().unwrap_or(3600);
        *held = Some((
            access.to_string(),
            Instant::now() + Duration::from_secs(ttl),
        ));
        Ok(access.to_string())
    }
}

/// How long the server may hold one call while the job runs.
fn wait_ms(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    left.min(POLL).as_millis().max(1) as u64
}

/// A path segment, percent-encoded.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The job's labels: `dqwatch_check` = the check id within BigQuery's label rules (lower
/// case letters, digits, `_` and `-`, at most 63 characters).
pub(super) fn labels(check: &str) -> Json {
    let value: String = check
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '_',
        })
        .take(63)
        .collect();
    json!({ "dqwatch": "check", "dqwatch_check": value })
}

/// A count BigQuery sends as a string (int64 in JSON) or a number.
fn number(v: &Json) -> Option<u64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The API's error: its message and reasons (`bytesBilledLimitExceeded`, `notFound`, …).
fn api_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Json>(body) else {
        return http::excerpt(body);
    };
    let e = &v["error"];
    let message = e["message"]
        .as_str()
        .or_else(|| e.as_str())
        .unwrap_or("no message");
    let reasons: Vec<&str> = e["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["reason"].as_str()).collect())
        .unwrap_or_default();
    if reasons.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", reasons.join(", "))
    }
}

/// Column names and types from a response's `schema`.
fn schema(v: &Json) -> Vec<(String, String)> {
    v["schema"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|c| {
                    let kind = if c["mode"].as_str() == Some("REPEATED") {
                        "REPEATED".to_string()
                    } else {
                        c["type"].as_str().unwrap_or_default().to_string()
                    };
                    (c["name"].as_str().unwrap_or_default().to_string(), kind)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn decode_row(row: &Json, columns: &[(String, String)]) -> Vec<Value> {
    let cells = row["f"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| cell(cells.get(i).map_or(&Json::Null, |c| &c["v"]), kind))
        .collect()
}

/// One cell as BigQuery encodes it in JSON: every scalar a string (INT64 and NUMERIC too,
/// TIMESTAMP as float seconds since the epoch), NULL as null.
pub(super) fn cell(v: &Json, kind: &str) -> Value {
    let s = match v {
        Json::Null => return Value::Null,
        Json::String(s) => s.as_str(),
        other => {
            return Value::Unsupported(format!("{kind} ({})", http::excerpt(&other.to_string())));
        }
    };
    let bad = || Value::Unsupported(format!("{kind} ({s:?})"));
    match kind {
        "INTEGER" | "INT64" => s.parse().map(Value::Int).unwrap_or_else(|_| bad()),
        "FLOAT" | "FLOAT64" | "NUMERIC" | "BIGNUMERIC" | "DECIMAL" | "BIGDECIMAL" => match s {
            "Infinity" => Value::Float(f64::INFINITY),
            "-Infinity" => Value::Float(f64::NEG_INFINITY),
            _ => s.parse().map(Value::Float).unwrap_or_else(|_| bad()),
        },
        "BOOLEAN" | "BOOL" => match s {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => bad(),
        },
        "STRING" | "DATE" | "DATETIME" | "TIME" | "JSON" | "GEOGRAPHY" => {
            Value::Text(s.to_string())
        }
        "TIMESTAMP" => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(|f| {
                let micros = (f * 1e6).round() as i64;
                timestamp_text(
                    micros.div_euclid(1_000_000),
                    (micros.rem_euclid(1_000_000) * 1000) as u32,
                    true,
                )
            })
            .map_or_else(bad, Value::Text),
        _ => bad(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_decode_as_bigquery_encodes_them() {
        assert_eq!(
            cell(&json!("9007199254740993"), "INTEGER"),
            Value::Int(9_007_199_254_740_993)
        );
        assert_eq!(cell(&json!("10000.5"), "NUMERIC"), Value::Float(10000.5));
        assert_eq!(cell(&json!("1.5e3"), "BIGNUMERIC"), Value::Float(1500.0));
        assert_eq!(cell(&json!("0.25"), "FLOAT"), Value::Float(0.25));
        assert_eq!(
            cell(&json!("NaN"), "FLOAT").as_f64().map(f64::is_nan),
            Some(true)
        );
        assert_eq!(cell(&json!("true"), "BOOLEAN"), Value::Bool(true));
        assert_eq!(
            cell(&json!("2026-11-30"), "DATE"),
            Value::Text("2026-11-30".into())
        );
        assert_eq!(
            cell(&json!("1.7000000002E9"), "TIMESTAMP"),
            Value::Text("2023-11-14T22:13:20.200Z".into())
        );
        assert_eq!(cell(&json!("eu"), "STRING"), Value::Text("eu".into()));
        assert_eq!(cell(&Json::Null, "INTEGER"), Value::Null);
        assert!(matches!(
            cell(&json!("x"), "INTEGER"),
            Value::Unsupported(_)
        ));
        assert!(matches!(
            cell(&json!([{"v": "1"}]), "REPEATED"),
            Value::Unsupported(_)
        ));
    }

    #[test]
    fn labels_follow_bigquery_label_rules() {
        let l = labels("Finance/Revenue Daily.sql");
        assert_eq!(l["dqwatch_check"], json!("finance_revenue_daily_sql"));
        let long = "x".repeat(100);
        assert_eq!(
            labels(&long)["dqwatch_check"].as_str().map(str::len),
            Some(63)
        );
    }

    #[test]
    fn api_errors_carry_their_reasons() {
        let body = r#"{"error":{"code":400,"message":"Query exceeded limit for bytes billed: 1000.","errors":[{"reason":"bytesBilledLimitExceeded","message":"x"}]}}"#;
        assert_eq!(
            api_message(body),
            "Query exceeded limit for bytes billed: 1000. (bytesBilledLimitExceeded)"
        );
    }
}
