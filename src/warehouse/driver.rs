//! The one interface every warehouse implements. [`Warehouse`] is an enum over the drivers
//! (STYLE.md: one crate, one enum, no trait objects): the sqlx pool (PostgreSQL,
//! MariaDB/MySQL, SQLite), Snowflake and BigQuery. Each driver connects with its own auth,
//! runs one screened read-only query with a server-side timeout and a row cap, cancels it on
//! the server when the client's deadline passes, describes a query without running it
//! (`validate --connect`), answers a readiness ping and names its SQL dialect, by which rule
//! templates are looked up (`sql/rules/<rule>/<dialect>.sql`). A new warehouse is one module
//! and one arm here.

use super::WarehouseError;
use super::bigquery::BigQuery;
use super::pool::SqlPool;
use super::snowflake::Snowflake;
use crate::config::{Config, Connection, Dialect, Remote};
use crate::model::{QueryStats, ResultSet};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The check a query runs for: its id tags the query on the warehouse (Snowflake
/// `QUERY_TAG`, BigQuery job label) and it may lower the connection's cost limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Job<'a> {
    /// The check's id (`""`: no check, e.g. a readiness probe).
    pub check: &'a str,
    /// The check's own `max_bytes_billed` (BigQuery), over the connection's.
    pub max_bytes_billed: Option<u64>,
}

/// What one query gave: rows or an error, the wait for a free connection slot, and what the
/// warehouse told about the query.
#[derive(Debug)]
pub struct Fetched {
    /// The rows, up to `max_rows`.
    pub rows: Result<ResultSet, WarehouseError>,
    /// How long the query waited for a free slot (`max_concurrency`) before it started.
    pub queued: Duration,
    /// Query ids and bytes processed.
    pub stats: QueryStats,
}

/// What an HTTP driver does before it sends a check: screen it (one read-only statement),
/// then wait for one of `permits` (`max_concurrency`). `Ok((permit, queued))`, or the
/// [`Fetched`] that reports why it is not sent.
pub(super) async fn admit<'p>(
    sql: &str,
    dialect: crate::config::Dialect,
    permits: &'p tokio::sync::Semaphore,
) -> Result<(tokio::sync::SemaphorePermit<'p>, Duration), Fetched> {
    let start = std::time::Instant::now();
    let refused = |message: String, queued: Duration| Fetched {
        rows: Err(WarehouseError::Query { message }),
        queued,
        stats: QueryStats::default(),
    };
    super::screen::screen(sql, dialect).map_err(|m| refused(m, Duration::ZERO))?;
    let permit = permits
        .acquire()
        .await
        .map_err(|_| refused("pool closed".into(), start.elapsed()))?;
    Ok((permit, start.elapsed()))
}

/// A warehouse connection: one driver.
pub struct Warehouse {
    driver: Driver,
}

enum Driver {
    Sql(SqlPool),
    Snowflake(Snowflake),
    BigQuery(BigQuery),
}

impl Warehouse {
    /// The driver for `conn` (nothing connects yet).
    pub fn new(conn: Connection) -> Self {
        let driver = match conn.remote.clone() {
            Some(Remote::Snowflake(sf)) => Driver::Snowflake(Snowflake::new(conn, sf)),
            Some(Remote::Bigquery(bq)) => Driver::BigQuery(BigQuery::new(conn, bq)),
            None => Driver::Sql(SqlPool::new(conn)),
        };
        Self { driver }
    }

    /// The connection's config.
    pub fn connection(&self) -> &Connection {
        match &self.driver {
            Driver::Sql(d) => d.connection(),
            Driver::Snowflake(d) => d.connection(),
            Driver::BigQuery(d) => d.connection(),
        }
    }

    /// The SQL dialect, which picks rule templates.
    pub fn dialect(&self) -> Dialect {
        self.connection().dialect
    }

    /// Runs `sql` read-only and reads at most `max_rows` rows (see [`Warehouse::fetch_timed`]).
    pub async fn fetch(&self, sql: &str, job: Job<'_>) -> Result<ResultSet, WarehouseError> {
        self.fetch_timed(sql, job).await.rows
    }

    /// Runs `sql` as one read-only query with the connection's server-side timeout, reading
    /// at most `max_rows` rows; what is not one query is refused before it runs, and a query
    /// still running at the deadline is cancelled on the server.
    pub async fn fetch_timed(&self, sql: &str, job: Job<'_>) -> Fetched {
        match &self.driver {
            Driver::Sql(d) => {
                let (rows, queued) = d.fetch_timed(sql).await;
                Fetched {
                    rows,
                    queued,
                    stats: QueryStats::default(),
                }
            }
            Driver::Snowflake(d) => d.fetch_timed(sql, job).await,
            Driver::BigQuery(d) => d.fetch_timed(sql, job).await,
        }
    }

    /// Describes `sql` without running it (prepare, describe-only request, dry run) and
    /// returns its column names; refuses what [`Warehouse::fetch`] refuses.
    pub async fn prepare(&self, sql: &str, job: Job<'_>) -> Result<Vec<String>, WarehouseError> {
        match &self.driver {
            Driver::Sql(d) => d.prepare(sql).await,
            Driver::Snowflake(d) => d.describe(sql, job).await,
            Driver::BigQuery(d) => d.describe(sql, job).await,
        }
    }

    /// Answers when the warehouse can take a query: the sqlx drivers prepare `SELECT 1`,
    /// Snowflake logs in (once) and heartbeats its session, BigQuery gets a token and reads
    /// the dataset's metadata. None of them runs a query or bills anything.
    pub async fn ping(&self) -> Result<(), WarehouseError> {
        match &self.driver {
            Driver::Sql(d) => d.prepare("SELECT 1").await.map(drop),
            Driver::Snowflake(d) => d.ping().await,
            Driver::BigQuery(d) => d.ping().await,
        }
    }

    /// What the login may do beyond reading, in a few words (`None`: nothing found or not
    /// checked on this warehouse).
    pub async fn privileges(&self) -> Result<Option<String>, WarehouseError> {
        match &self.driver {
            Driver::Sql(d) => d.privileges().await,
            Driver::Snowflake(_) | Driver::BigQuery(_) => Ok(None),
        }
    }

    /// Closes idle connections and sessions.
    pub async fn close(&self) {
        match &self.driver {
            Driver::Sql(d) => d.close().await,
            Driver::Snowflake(d) => d.close().await,
            Driver::BigQuery(_) => {}
        }
    }
}

/// The warehouse of every configured connection. Nothing connects until a check needs it.
#[derive(Clone, Default)]
pub struct Warehouses(BTreeMap<String, Arc<Warehouse>>);

impl Warehouses {
    /// A driver per `[connections.NAME]`.
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
            w.close().await;
        }
    }

    /// The sum of every connection's `max_concurrency`.
    pub fn total_concurrency(&self) -> usize {
        self.0
            .values()
            .map(|w| w.connection().max_concurrency)
            .sum()
    }

    /// The warehouse of a connection.
    pub fn get(&self, name: &str) -> Option<&Arc<Warehouse>> {
        self.0.get(name)
    }
}
