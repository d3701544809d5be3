//! One small pool per connection. sqlx's `Pool` retries a refused connection until its
//! acquire timeout and then reports only "timed out", so this pool connects on demand and
//! hands each check the server's own refusal.

use super::decode;
use super::error::{WarehouseError, describe, is_timeout};
use super::relay::{self, Relay};
use super::screen::{NOT_A_QUERY, batchable, screen};
use crate::config::{Connection, Dialect};
use crate::model::ResultSet;
use futures_util::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection as _, Executor, Row, SqlSafeStr, Statement,
};
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
    /// With the backend's process id, which `pg_cancel_backend` names, and the relay that
    /// carries it (see `relay.rs`).
    Pg(PgConnection, i32, Relay),
    My(MySqlConnection, MyServer, Relay),
    Lite(SqliteConnection, Arc<Deadline>),
}

/// What a MariaDB/MySQL connection knows about its server.
#[derive(Clone, Copy)]
struct MyServer {
    /// The connection's id, which `KILL QUERY` names.
    id: u64,
    /// MariaDB (`SET STATEMENT`, `max_statement_time`) rather than MySQL.
    mariadb: bool,
}

/// Where a statement runs, for cancelling it from another connection.
#[derive(Clone, Copy)]
enum Running {
    /// A PostgreSQL backend's process id.
    Pg(i32),
    /// A MariaDB/MySQL connection id.
    My(u64),
    /// SQLite: in this process.
    InProcess,
}

impl Running {
    fn of(conn: &Conn) -> Self {
        match conn {
            Conn::Pg(_, pid, _) => Running::Pg(*pid),
            Conn::My(_, server, _) => Running::My(server.id),
            Conn::Lite(..) => Running::InProcess,
        }
    }
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

/// A pool of connections to a PostgreSQL, MariaDB/MySQL or SQLite warehouse.
pub struct SqlPool {
    conn: Connection,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

impl SqlPool {
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

    /// Closes every idle connection politely (the server logs no reset).
    pub async fn close(&self) {
        let idle: Vec<Conn> = std::mem::take(
            &mut *self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for conn in idle {
            let _ = match conn {
                Conn::Pg(c, _, relay) => {
                    let closed = c.close().await;
                    relay.finish().await;
                    closed
                }
                Conn::My(c, _, relay) => {
                    let closed = c.close().await;
                    relay.finish().await;
                    closed
                }
                Conn::Lite(c, _) => c.close().await,
            };
        }
    }

    /// Runs `sql` read-only and reads at most `max_rows` rows. What is not one query is
    /// refused, and nothing a check does to its session reaches the next check. Also says
    /// how long the check waited for a free connection slot (`max_concurrency`) before its
    /// query started: that wait is not the query's time.
    pub async fn fetch_timed(&self, sql: &str) -> (Result<ResultSet, WarehouseError>, Duration) {
        let start = Instant::now();
        let mut queued = Duration::ZERO;
        let result = async {
            screen(sql, self.conn.dialect).map_err(|m| self.query_error(&m))?;
            let permit = self.permits.acquire().await;
            queued = start.elapsed();
            let _permit = permit.map_err(|_| self.query_error("pool closed"))?;
            self.fetch_held(sql).await
        }
        .await;
        (result, queued)
    }

    /// Runs `sql` on a connection once the caller holds a slot.
    async fn fetch_held(&self, sql: &str) -> Result<ResultSet, WarehouseError> {
        let mut conn = self.checkout().await?;
        let limit = self.conn.statement_timeout + CLIENT_GRACE;
        match tokio::time::timeout(limit, run(&mut conn, sql, &self.conn)).await {
            // No columns: not a query. MariaDB/MySQL refused it unrun; PostgreSQL ran it in
            // a transaction that was rolled back. The connection goes all the same.
            Ok(Ok(rs)) if rs.columns.is_empty() => Err(self.query_error(NOT_A_QUERY)),
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
            Err(_) => {
                // The server did not stop the statement: stop it from another connection,
                // so that it does not outlive the check.
                self.cancel(Running::of(&conn)).await;
                Err(self.timeout())
            }
        }
    }

    /// Prepares `sql` without running it and returns its column names; refuses what
    /// [`SqlPool::fetch_timed`] refuses.
    pub async fn prepare(&self, sql: &str) -> Result<Vec<String>, WarehouseError> {
        screen(sql, self.conn.dialect).map_err(|m| self.query_error(&m))?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.query_error("pool closed"))?;
        let mut conn = self.checkout().await?;
        let columns = match &mut conn {
            Conn::Pg(c, ..) => c
                .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
                .await
                .map(|s| names(s.columns())),
            Conn::My(c, server, _) => c
                .prepare(AssertSqlSafe(mysql_sql(sql, *server, &self.conn)).into_sql_str())
                .await
                .map(|s| names(s.columns())),
            Conn::Lite(c, _) => c
                .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
                .await
                .map(|s| names(s.columns())),
        };
        match columns {
            Ok(cols) => {
                self.checkin(conn);
                if cols.is_empty() {
                    return Err(self.query_error(NOT_A_QUERY));
                }
                Ok(cols)
            }
            Err(e) => Err(self.query_error(&describe(&e))),
        }
    }

    /// What the connection's login may do beyond reading, in a few words (`None`: nothing
    /// found). One query each: PostgreSQL superuser, INSERT/UPDATE/DELETE/TRUNCATE on a
    /// table or CREATE in a schema of the search path, CREATE in the database; MariaDB/MySQL
    /// any privilege but SELECT, SHOW VIEW, SHOW DATABASES and USAGE. SQLite files are
    /// opened read-only.
    pub async fn privileges(&self) -> Result<Option<String>, WarehouseError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.query_error("pool closed"))?;
        let mut conn = self.checkout().await?;
        let found = match &mut conn {
            Conn::Pg(c, ..) => pg_privileges(c).await,
            Conn::My(c, ..) => my_privileges(c).await,
            Conn::Lite(..) => Ok(None),
        };
        match found {
            Ok(found) => {
                self.checkin(conn);
                Ok(found)
            }
            Err(e) => Err(self.query_error(&describe(&e))),
        }
    }

    /// Cancels the statement `running` from a connection of its own, within the connect
    /// timeout. A failure is logged: the check is a timeout either way.
    async fn cancel(&self, running: Running) {
        let limit = self.conn.statement_timeout.clamp(CONNECT_MIN, CONNECT_MAX);
        let url = self.conn.url.expose();
        let cancel = async {
            match running {
                Running::Pg(pid) => {
                    let opts = PgConnectOptions::from_str(url)?
                        .application_name("dqwatch")
                        .disable_statement_logging();
                    let (mut k, relay) = relay::connect_pg(opts).await?;
                    sqlx::raw_sql(AssertSqlSafe(format!("SELECT pg_cancel_backend({pid})")))
                        .execute(&mut k)
                        .await?;
                    k.close().await?;
                    relay.finish().await;
                    Ok(())
                }
                Running::My(id) => {
                    let opts = MySqlConnectOptions::from_str(url)?.disable_statement_logging();
                    let (mut k, relay) = relay::connect_my(opts).await?;
                    k.execute(AssertSqlSafe(format!("KILL QUERY {id}"))).await?;
                    k.close().await?;
                    relay.finish().await;
                    Ok(())
                }
                // The progress handler stops the statement; nothing runs elsewhere.
                Running::InProcess => Ok(()),
            }
        };
        match tokio::time::timeout(limit, cancel).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                connection = %self.conn.name,
                error = %describe(&e),
                "Failed to cancel a timed-out statement."
            ),
            Err(_) => tracing::warn!(
                connection = %self.conn.name,
                "Failed to cancel a timed-out statement: no answer."
            ),
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
            let (mut c, relay) = relay::connect_pg(opts).await?;
            let pid: i32 = sqlx::raw_sql("SELECT pg_backend_pid()")
                .fetch_one(&mut c)
                .await?
                .try_get(0)?;
            Ok(Conn::Pg(c, pid, relay))
        }
        Dialect::Mysql => {
            let opts = MySqlConnectOptions::from_str(url)?.disable_statement_logging();
            let (mut c, relay) = relay::connect_my(opts).await?;
            // One round trip: a read-only session with the statement timeout, and the id that
            // KILL QUERY names. MariaDB counts seconds in max_statement_time; MySQL counts
            // milliseconds in max_execution_time (SELECT only).
            let secs = ms as f64 / 1000.0;
            let mariadb = sqlx::raw_sql(AssertSqlSafe(format!(
                "SET SESSION max_statement_time = {secs}, SESSION tx_read_only = 1; \
                 SELECT CONNECTION_ID()"
            )))
            .fetch_one(&mut c)
            .await;
            let (row, mariadb) = match mariadb {
                Ok(row) => (row, true),
                Err(_) => (
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "SET SESSION max_execution_time = {ms}, \
                         SESSION transaction_read_only = 1; SELECT CONNECTION_ID()"
                    )))
                    .fetch_one(&mut c)
                    .await?,
                    false,
                ),
            };
            let id: u64 = row.try_get(0)?;
            Ok(Conn::My(c, MyServer { id, mariadb }, relay))
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
        // Reached over HTTP by their own drivers, never through this pool.
        Dialect::Snowflake | Dialect::Bigquery => Err(sqlx::Error::Configuration(
            "not a PostgreSQL, MariaDB/MySQL or SQLite connection".into(),
        )),
    }
}

/// The statement a MariaDB check runs as. `SET STATEMENT` puts the timeout and read-only on
/// the statement itself and restores the session's values after it, even on error, so
/// nothing the query changes (a stored function may `SET SESSION`) reaches the next check.
/// The screen refuses a check that starts with a `SET STATEMENT` of its own.
fn mysql_sql(sql: &str, server: MyServer, cfg: &Connection) -> String {
    if server.mariadb {
        let secs = cfg.statement_timeout.as_millis().max(1) as f64 / 1000.0;
        format!("SET STATEMENT max_statement_time = {secs}, tx_read_only = 1 FOR {sql}")
    } else {
        sql.to_string()
    }
}

async fn rollback(conn: &mut Conn) -> Result<(), sqlx::Error> {
    match conn {
        Conn::Pg(c, ..) => c.execute("ROLLBACK").await.map(drop),
        Conn::My(c, server, _) if !server.mariadb => c.execute("ROLLBACK").await.map(drop),
        // No transaction was opened: a MariaDB check is one read-only statement, and a
        // SQLite connection is read-only and query_only.
        Conn::My(..) | Conn::Lite(..) => Ok(()),
    }
}

const PG_PRIVILEGES: &str = "SELECT r.rolsuper, \
     (SELECT string_agg(t, ', ') FROM (SELECT format('%I.%I', n.nspname, c.relname) AS t \
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE n.nspname = ANY (current_schemas(false)) AND c.relkind IN ('r', 'p') \
          AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') \
        ORDER BY 1 LIMIT 3) w), \
     (SELECT string_agg(quote_ident(s), ', ') FROM unnest(current_schemas(false)) s \
        WHERE has_schema_privilege(s, 'CREATE')), \
     has_database_privilege(current_database(), 'CREATE') \
   FROM pg_roles r WHERE r.rolname = current_user";

async fn pg_privileges(c: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    let (superuser, tables, schemas, database): (bool, Option<String>, Option<String>, bool) =
        sqlx::query_as(PG_PRIVILEGES).fetch_one(&mut *c).await?;
    if superuser {
        return Ok(Some("is a superuser".into()));
    }
    let mut can = Vec::new();
    if let Some(t) = tables {
        can.push(format!("write to tables ({t})"));
    }
    if let Some(s) = schemas {
        can.push(format!("create in schemas ({s})"));
    }
    if database {
        can.push("create schemas in the database".to_string());
    }
    Ok((!can.is_empty()).then(|| format!("can {}", can.join(", "))))
}

/// The privileges beyond reading of the current account and role, from information_schema
/// (which lists one's own grants).
const MY_PRIVILEGES: &str = "SELECT CAST(GROUP_CONCAT(DISTINCT PRIVILEGE_TYPE \
       ORDER BY PRIVILEGE_TYPE SEPARATOR ', ') AS CHAR) \
   FROM (SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES \
         UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES \
         UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES \
         UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.COLUMN_PRIVILEGES) p \
   WHERE PRIVILEGE_TYPE NOT IN ('SELECT', 'USAGE', 'SHOW VIEW', 'SHOW DATABASES') \
     AND GRANTEE IN ( \
       CONCAT('''', SUBSTRING(CURRENT_USER(), 1, CHAR_LENGTH(CURRENT_USER()) \
                - CHAR_LENGTH(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)) - 1), \
              '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), ''''), \
       CONCAT('''', CURRENT_ROLE(), ''''))";

async fn my_privileges(c: &mut MySqlConnection) -> Result<Option<String>, sqlx::Error> {
    let (found,): (Option<String>,) = sqlx::query_as(MY_PRIVILEGES).fetch_one(&mut *c).await?;
    Ok(found.map(|p| {
        let n = p.split(", ").count();
        if p.split(", ").any(|x| x == "SUPER") {
            format!("is a superuser (SUPER and {} more privileges)", n - 1)
        } else {
            format!("has {p}")
        }
    }))
}

/// Streams rows into a `ResultSet`, stopping at `max_rows`.
macro_rules! stream_rows {
    ($c:expr, $sql:expr, $max:expr, $decode:path, $persistent:expr) => {{
        let mut rs = ResultSet::default();
        let mut stream = sqlx::query(AssertSqlSafe($sql.to_string()))
            .persistent($persistent)
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
        rs
    }};
}

/// Streams the rows of a simple-query batch (text protocol; several statements, of which
/// only the check returns rows) into a `ResultSet`, stopping at `max_rows`.
macro_rules! batch_rows {
    ($c:expr, $batch:expr, $max:expr, $decode:path) => {{
        let mut rs = ResultSet::default();
        let mut stream = $c.fetch_many(AssertSqlSafe($batch).into_sql_str());
        while let Some(item) = stream.try_next().await? {
            let sqlx::Either::Right(row) = item else {
                continue;
            };
            if rs.columns.is_empty() {
                rs.columns = names(row.columns());
            }
            if rs.rows.len() as u64 >= $max {
                rs.capped = true;
                break;
            }
            rs.rows.push($decode(&row));
        }
        rs
    }};
}

/// When no row told the columns, the prepared statement does.
macro_rules! columns_if_empty {
    ($c:expr, $sql:expr, $rs:expr) => {{
        if $rs.rows.is_empty() {
            $rs.columns = names(
                $c.prepare(AssertSqlSafe($sql.to_string()).into_sql_str())
                    .await?
                    .columns(),
            );
        }
    }};
}

async fn run(conn: &mut Conn, sql: &str, cfg: &Connection) -> Result<ResultSet, sqlx::Error> {
    let max = cfg.max_rows;
    match conn {
        Conn::Pg(c, ..) => {
            // One round trip: the check between a BEGIN READ ONLY and a ROLLBACK of ours, in
            // one simple-query message, when its text cannot hold a second statement (no
            // `;`: see `batchable`). The server parses the whole message before running any
            // of it, so a text that swallows our ROLLBACK (an unterminated string, comment
            // or dollar quote: our suffix has no quote, `$` or `*/` to end it) is a syntax
            // error and nothing runs. A SET in the check is undone by the ROLLBACK.
            if let Some(body) = batchable(sql, Dialect::Postgres) {
                let batch = format!("BEGIN READ ONLY;\n{body}\n;\nROLLBACK");
                let mut rs = batch_rows!(c, batch, max, decode::pg);
                columns_if_empty!(c, sql, rs);
                return Ok(rs);
            }
            // Otherwise the query is prepared (PostgreSQL refuses a second statement there),
            // in its own transaction. A SET in the check is undone by the ROLLBACK.
            c.execute("BEGIN READ ONLY").await?;
            let mut rs = stream_rows!(c, sql, max, decode::pg, false);
            columns_if_empty!(c, sql, rs);
            if !rs.capped {
                c.execute("ROLLBACK").await?;
            }
            Ok(rs)
        }
        Conn::My(c, server, _) => {
            // Prepared first, so that a statement with no result set (SET, DDL, CALL,
            // SELECT … INTO OUTFILE) is refused before it runs; the execution reuses the
            // prepared statement from sqlx's cache. On MariaDB that is the whole check: one
            // round trip once the statement is cached.
            // MariaDB, one round trip: a check that cannot hold a second statement nor an
            // INTO (see `batchable`) is sent as it is, in its SET STATEMENT … FOR, unprepared;
            // the columns of an empty result come from preparing it after.
            if let Some(body) = batchable(sql, Dialect::Mysql).filter(|_| server.mariadb) {
                let mut rs = batch_rows!(c, mysql_sql(body, *server, cfg), max, decode::mysql);
                columns_if_empty!(c, mysql_sql(sql, *server, cfg), rs);
                return Ok(rs);
            }
            let sql = mysql_sql(sql, *server, cfg);
            let columns = names(
                c.prepare(AssertSqlSafe(sql.clone()).into_sql_str())
                    .await?
                    .columns(),
            );
            if columns.is_empty() {
                return Ok(ResultSet::default());
            }
            if !server.mariadb {
                c.execute("START TRANSACTION READ ONLY").await?;
            }
            let mut rs = stream_rows!(c, sql, max, decode::mysql, true);
            if !server.mariadb && !rs.capped {
                c.execute("ROLLBACK").await?;
            }
            if rs.columns.is_empty() {
                rs.columns = columns;
            }
            Ok(rs)
        }
        Conn::Lite(c, deadline) => {
            // One round trip per check: a single SELECT on a read-only connection is its own
            // read transaction, and the deadline is a store, not a call into the driver.
            deadline.arm(cfg.statement_timeout);
            let mut rs = stream_rows!(c, sql, max, decode::sqlite, false);
            columns_if_empty!(c, sql, rs);
            deadline.disarm();
            Ok(rs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Secret;

    fn connection(url: &str, dialect: Dialect) -> Connection {
        Connection {
            name: "warehouse".into(),
            dialect,
            url: Secret::new(url.into()),
            display_url: String::new(),
            max_concurrency: 1,
            statement_timeout: Duration::from_secs(1),
            max_rows: 10,
            remote: None,
            down: crate::config::Down::default(),
        }
    }

    /// True once a statement containing `marker` runs on the server (asked on `probe`).
    async fn visible(probe: &mut Conn, marker: &str) -> bool {
        let sql = match probe {
            Conn::Pg(..) => format!(
                "SELECT count(*)::int8 FROM pg_stat_activity \
                 WHERE query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
            ),
            _ => format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
            ),
        };
        let n: Result<i64, sqlx::Error> = match probe {
            Conn::Pg(c, ..) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut *c)
                    .await
            }
            Conn::My(c, ..) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut *c)
                    .await
            }
            Conn::Lite(..) => Ok(0),
        };
        n.is_ok_and(|n| n > 0)
    }

    // See: issues/8 item 2
    /// The backstop behind the server's timeout: a statement the server does not stop (here
    /// one that lifted its own limit, which the screen refuses before it gets this far) is
    /// stopped from another connection.
    #[tokio::test]
    async fn cancel_stops_a_statement_the_server_does_not() {
        let cases = [
            (
                "DQWATCH_TEST_MARIADB_URL",
                Dialect::Mysql,
                "SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(60) AS dqwatch_cancel_me",
            ),
            (
                "DQWATCH_TEST_POSTGRES_URL",
                Dialect::Postgres,
                "SELECT pg_sleep(60) AS dqwatch_cancel_me",
            ),
        ];
        for (var, dialect, sql) in cases {
            let Some(url) = std::env::var(var).ok().filter(|u| !u.is_empty()) else {
                use std::io::Write as _;
                let line =
                    format!("SKIP cancel_stops_a_statement_the_server_does_not: {var} not set\n");
                let _ = std::io::stderr().write_all(line.as_bytes());
                continue;
            };
            let cfg = connection(&url, dialect);
            let w = SqlPool::new(cfg.clone());
            let mut conn = connect(&cfg).await.expect("connect");
            let mut probe = connect(&cfg).await.expect("connect");
            let running = Running::of(&conn);
            let sleeper = async {
                match &mut conn {
                    Conn::Pg(c, ..) => {
                        c.execute("SET statement_timeout = 0").await?;
                        c.execute(AssertSqlSafe(sql)).await.map(drop)
                    }
                    Conn::My(c, ..) => c.execute(AssertSqlSafe(sql)).await.map(drop),
                    Conn::Lite(..) => Ok(()),
                }
            };
            let canceller = async {
                // Poll until the statement runs, then cancel it.
                let deadline = Instant::now() + Duration::from_secs(20);
                while !visible(&mut probe, "AS dqwatch_cancel_me").await {
                    assert!(Instant::now() < deadline, "the statement never started");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                w.cancel(running).await;
            };
            let (slept, ()) = tokio::join!(sleeper, canceller);
            let err = slept.expect_err("the statement ran to its end: it was not cancelled");
            let code = err
                .as_database_error()
                .and_then(|e| e.code().map(|c| c.to_string()))
                .unwrap_or_default();
            // MariaDB 1317 ER_QUERY_INTERRUPTED (SQLSTATE 70100); PostgreSQL query_canceled.
            assert!(code == "70100" || code == "57014", "{dialect:?}: {err}");
        }
    }
}
