//! The state store: runs, observations, incidents, their timelines and the mail outbox, in
//! SQLite (default) or PostgreSQL. One method per transaction; migrations from
//! `sql/state/<backend>/` are applied on open.

pub(crate) mod daemon;
mod error;
mod oncall;
mod outbox;
mod queries;
mod rows;
mod tx;

pub use daemon::{ExpiredSlot, RecentRun, SlotClaim};
pub use error::StoreError;
pub use outbox::{ChatThread, OutboxMail, OutboxState, Told, Waiting};
pub use queries::{Recorded, RunRow, Stats};
pub use rows::{format_time, parse_time};
pub use tx::Tx;

use crate::model::Secret;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// The state store: one of two backends with the same tables.
#[derive(Debug, Clone)]
pub enum Store {
    /// A SQLite file.
    Sqlite(SqlitePool),
    /// A PostgreSQL database (shared by several daemons).
    Postgres(PgPool),
}

/// Runs the same body against whichever pool the store holds.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Store {
    /// Opens (creating a SQLite file and its folder if needed) and migrates the store.
    pub async fn open(url: &Secret) -> Result<Store, StoreError> {
        Self::open_within(url, None).await
    }

    /// [`Store::open`], giving up on a server that does not accept a connection within
    /// `connect` (a refused port is retried until then).
    pub async fn open_within(url: &Secret, connect: Option<Duration>) -> Result<Store, StoreError> {
        let shown = url.to_string();
        let open_err = |source: sqlx::Error| StoreError::Open {
            url: shown.clone(),
            source,
        };
        let store = if url.expose().starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url.expose())
                .map_err(open_err)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            if let Some(dir) = opts
                .get_filename()
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| open_err(sqlx::Error::Io(e)))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await
                .map_err(open_err)?;
            sqlx::migrate!("sql/state/sqlite")
                .run(&pool)
                .await
                .map_err(|source| StoreError::Migrate {
                    url: shown.clone(),
                    source,
                })?;
            Store::Sqlite(pool)
        } else {
            let opts = PgConnectOptions::from_str(url.expose())
                .map_err(open_err)?
                .application_name("dqwatch-state");
            let connecting = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts);
            let pool = match connect {
                Some(limit) => tokio::time::timeout(limit, connecting).await.map_err(|_| {
                    open_err(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {}s", limit.as_secs_f64()),
                    )))
                })?,
                None => connecting.await,
            }
            .map_err(open_err)?;
            sqlx::migrate!("sql/state/postgres")
                .run(&pool)
                .await
                .map_err(|source| StoreError::Migrate {
                    url: shown.clone(),
                    source,
                })?;
            Store::Postgres(pool)
        };
        Ok(store)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await);
    }
}
