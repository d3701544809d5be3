//! One small pool per connection. sqlx's `Pool` retries a refused connection until its
//! acquire timeout and then reports only "timed out", so this pool connects on demand and
//! hands each check the server's own refusal.

use super::decode;
use super::error::{WarehouseError, describe, is_timeout};
use crate::config::{Config, Connection, Dialect};
use crate::model::ResultSet;
use futures_util::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection as _, Executor, Row, SqlSafeStr, Statement,
};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Bounds on the time to open a connection (the statement timeout, within these).
const CONNECT_MIN: Duration = Duration::from_secs(5);
const CONNECT_MAX: Duration = Duration::from_secs(30);

/// Extra time the client waits past the server-side timeout before giving up itself.
const CLIENT_GRACE: Duration = Duration::from_secs(5);

enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
    Lite(SqliteConnection, Arc<Deadline>),
}

/// The statement deadline of one SQLite connection, read by its progress handler.
struct Deadline {
    base: Instant,
    /// Milliseconds after `base`; `u64::MAX` when no check is running.
    millis: AtomicU64,
}

impl Deadline {
    fn arm(&self, timeout: Duration) {
        let at = (self.base.elapsed() + timeout).as_millis();
        self.millis
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.millis.store(u64::MAX, Ordering::Relaxed);
    }

    /// True while the statement may go on.
    fn open(&self) -> bool {
        (self.base.elapsed().as_millis() as u64) < self.millis.load(Ordering::Relaxed)
    }
}

/// The pools of every configured connection. Nothing connects until a check needs it.
#[derive(Clone, Default)]
pub struct Warehouses(BTreeMap<String, Arc<Warehouse>>);

impl Warehouses {
    /// A pool per `[connections.NAME]`.
    pub fn new(config: &Config) -> Self {
        Self(
            config
                .connections
                .iter()
                .map(|(n, c)| (n.clone(), Arc::new(Warehouse::new(c.clone()))))
                .collect(),
        )
    }

    /// Closes every idle connection politely (the server logs no reset).
    pub async fn close(&self) {
        for w in self.0.values() {
            let idle: Vec<Conn> = std::mem::take(
                &mut *w
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for conn in idle {
                let _ = match conn {
                    Conn::Pg(c) => c.close().await,
                    Conn::My(c) => c.close().await,
                    Conn::Lite(c, _) => c.close().await,
                };
            }
        }
    }

    /// The sum of every connection's `max_concurrency`.
    pub fn total_concurrency(&self) -> usize {
        self.0.values().map(|w| w.conn.max_concurrency).sum()
    }

    /// The pool of a connection.
    pub fn get(&self, name: &str) -> Option<&Arc<Warehouse>> {
        self.0.get(name)
    }
}

/// A warehouse connection pool.
pub struct Warehouse {
    conn: Connection,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

impl Warehouse {
    /// A pool for `conn`, opening at most `max_concurrency` connections.
    pub fn new(conn: Connection) -> Self {
        let permits = Semaphore::new(conn.max_concurrency);
        Self {
            conn,
            idle: Mutex::new(Vec::new()),
            permits,
        }
    }

    /// The connection's config.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `sql` in a read-only transaction and reads at most `max_rows` rows.
    pub async fn fetch(&self, sql: &str) -> Result<ResultSet, WarehouseError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.query_error("pool closed"))?;
        let mut conn = self.checkout().await?;
        let limit = self.conn.statement_timeout + CLIENT_GRACE;
        match tokio::time::timeout(limit, run(&mut conn, sql, &self.conn)).await {
            Ok(Ok(rs)) => {
                // A capped result left rows unread on the wire; a fresh connection is
                // cheaper than draining millions of them.
                if !rs.capped {
                    self.checkin(conn);
                }
                Ok(rs)
            }
            Ok(Err(e)) => {
                if is_timeout(&e) {
                    return Err(self.timeout());
                }
                let reusable = e.as_database_error().is_some();
                let err = self.query_error(&describe(&e));
                if reusable && rollback(&mut conn).await.is_ok() {
                    self.checkin(conn);
                }
                Err(err)
            }
            Err(_) => Err(self.timeout()),
        }
    }

    /// Prepares `sql` without running it and returns its column names.
    pub async fn prepare(&self, sql: &str) -> Result<Vec<String>, WarehouseError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.query_error("pool closed"))?;
        let mut conn = self.checkout().await?;
        let sql = AssertSqlSafe(sql.to_string()).into_sql_str();
        let columns = match &mut conn {
            Conn::Pg(c) => c.prepare(sql).await.map(|s| names(s.columns())),
            Conn::My(c) => c.prepare(sql).await.map(|s| names(s.columns())),
            Conn::Lite(c, _) => c.prepare(sql).await.map(|s| names(s.columns())),
        };
        match columns {
            Ok(cols) => {
                self.checkin(conn);
                Ok(cols)
            }
            Err(e) => Err(self.query_error(&describe(&e))),
        }
    }

    fn query_error(&self, message: &str) -> WarehouseError {
        WarehouseError::Query {
            message: message.to_string(),
        }
    }

    fn timeout(&self) -> WarehouseError {
        WarehouseError::Timeout {
            connection: self.conn.name.clone(),
            after: self.conn.statement_timeout,
        }
    }

    fn checkin(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
    }

    async fn checkout(&self) -> Result<Conn, WarehouseError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        if let Some(c) = idle {
            return Ok(c);
        }
        // A server that accepts but never answers must not hang the run.
        let limit = self.conn.statement_timeout.clamp(CONNECT_MIN, CONNECT_MAX);
        match tokio::time::timeout(limit, connect(&self.conn)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(WarehouseError::Connect {
                url: self.conn.display_url.clone(),
                message: describe(&e),
            }),
            Err(_) => Err(WarehouseError::Connect {
                url: self.conn.display_url.clone(),
                message: format!("no answer from the server within {}s", limit.as_secs()),
            }),
        }
    }
}

fn names<C: Column>(cols: &[C]) -> Vec<String> {
    cols.iter().map(|c| c.name().to_string()).collect()
}

/// Opens a connection with the statement timeout and read-only guard set for its lifetime.
async fn connect(conn: &Connection) -> Result<Conn, sqlx::Error> {
    let url = conn.url.expose();
    let ms = conn.statement_timeout.as_millis().max(1);
    match conn.dialect {
        Dialect::Postgres => {
            let opts = PgConnectOptions::from_str(url)?
                .application_name("dqwatch")
                .options([
                    ("statement_timeout", format!("{ms}")),
                    ("default_transaction_read_only", "on".into()),
                ])
                .disable_statement_logging();
            Ok(Conn::Pg(opts.connect().await?))
        }
        Dialect::Mysql => {
            let opts = MySqlConnectOptions::from_str(url)?.disable_statement_logging();
            let mut c = opts.connect().await?;
            // MariaDB counts seconds in max_statement_time; MySQL counts milliseconds in
            // max_execution_time (SELECT only).
            let secs = ms as f64 / 1000.0;
            if c.execute(AssertSqlSafe(format!(
                "SET SESSION max_statement_time = {secs}"
            )))
            .await
            .is_err()
            {
                c.execute(AssertSqlSafe(format!(
                    "SET SESSION max_execution_time = {ms}"
                )))
                .await?;
            }
            // MariaDB and MySQL commit implicitly before DDL, which ends the per-check
            // read-only transaction; a read-only session refuses DDL and writes outright.
            c.execute("SET SESSION TRANSACTION READ ONLY").await?;
            Ok(Conn::My(c))
        }
        Dialect::Sqlite => {
            let opts = SqliteConnectOptions::from_str(url)?
                .read_only(true)
                .pragma("query_only", "ON")
                .disable_statement_logging();
            let mut c = opts.connect().await?;
            // SQLite has no server to enforce a timeout: a progress handler, set once per
            // connection, interrupts the statement once the current check's deadline passes.
            let deadline = Arc::new(Deadline {
                base: Instant::now(),
                millis: AtomicU64::new(u64::MAX),
            });
            let d = Arc::clone(&deadline);
            c.lock_handle()
                .await?
                .set_progress_handler(10_000, move || d.open());
            Ok(Conn::Lite(c, deadline))
        }
    }
}

async fn rollback(conn: &mut Conn) -> Result<(), sqlx::Error> {
    match conn {
        Conn::Pg(c) => c.execute("ROLLBACK").await.map(drop),
        Conn::My(c) => c.execute("ROLLBACK").await.map(drop),
        // No transaction was opened: the connection is read-only and query_only.
        Conn::Lite(..) => Ok(()),
    }
}

/// Streams rows into a `ResultSet`, stopping at `max_rows`.
macro_rules! stream_rows {
    ($c:expr, $sql:expr, $max:expr, $decode:path) => {{
        let mut rs = ResultSet::default();
        {
            let mut stream = sqlx::query(AssertSqlSafe($sql.to_string()))
                .persistent(false)
                .fetch(&mut *$c);
            while let Some(row) = stream.try_next().await? {
                if rs.columns.is_empty() {
                    rs.columns = names(row.columns());
                }
                if rs.rows.len() as u64 >= $max {
                    rs.capped = true;
                    break;
                }
                rs.rows.push($decode(&row));
            }
        }
        if rs.rows.is_empty() {
            // No row tells the columns; the prepared statement does.
            rs.columns = names(
                $c.prepare(AssertSqlSafe($sql.to_string()).into_sql_str())
                    .await?
                    .columns(),
            );
        }
        rs
    }};
}

async fn run(conn: &mut Conn, sql: &str, cfg: &Connection) -> Result<ResultSet, sqlx::Error> {
    let max = cfg.max_rows;
    match conn {
        Conn::Pg(c) => {
            c.execute("BEGIN READ ONLY").await?;
            let rs = stream_rows!(c, sql, max, decode::pg);
            if !rs.capped {
                c.execute("ROLLBACK").await?;
            }
            Ok(rs)
        }
        Conn::My(c) => {
            c.execute("START TRANSACTION READ ONLY").await?;
            let rs = stream_rows!(c, sql, max, decode::mysql);
            if !rs.capped {
                c.execute("ROLLBACK").await?;
            }
            Ok(rs)
        }
        Conn::Lite(c, deadline) => {
            // One round trip per check: a single SELECT on a read-only connection is its own
            // read transaction, and the deadline is a store, not a call into the driver.
            deadline.arm(cfg.statement_timeout);
            let rs = stream_rows!(c, sql, max, decode::sqlite);
            deadline.disarm();
            Ok(rs)
        }
    }
}
