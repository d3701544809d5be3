//! `WarehouseError`: what can go wrong talking to a warehouse, with messages that carry the
//! database's own words and never a password.

use crate::model::ErrorKind;
use std::fmt::Write as _;

/// A failure to connect to or query a warehouse.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The connection could not be opened.
    #[error("failed to connect to {url}: {message}")]
    Connect {
        /// The URL with its password redacted.
        url: String,
        /// The driver's or server's message.
        message: String,
    },
    /// The warehouse refused the login (or its credentials could not be read).
    #[error("connection \"{connection}\": authentication failed: {message}")]
    Auth {
        /// The connection's name.
        connection: String,
        /// Why, in the warehouse's words (never the secret).
        message: String,
    },
    /// The database rejected or failed the query.
    #[error("{message}")]
    Query {
        /// The database's message (code, position, detail and hint included).
        message: String,
    },
    /// The statement timeout fired.
    #[error(
        "statement timed out after {after:?} (statement_timeout of connection \"{connection}\")"
    )]
    Timeout {
        /// The connection's name.
        connection: String,
        /// The timeout.
        after: std::time::Duration,
    },
}

impl WarehouseError {
    /// The outcome class this error is reported as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WarehouseError::Connect { .. } | WarehouseError::Auth { .. } => ErrorKind::Connection,
            WarehouseError::Query { .. } => ErrorKind::Query,
            WarehouseError::Timeout { .. } => ErrorKind::Timeout,
        }
    }
}

/// The message of a sqlx error, built from the server's fields rather than sqlx's
/// `Display`, which for Postgres appends the server's C source line as "at line N".
pub(super) fn describe(err: &sqlx::Error) -> String {
    let Some(db) = err.as_database_error() else {
        return match err {
            sqlx::Error::Io(e) => e.to_string(),
            sqlx::Error::Tls(e) => format!("tls: {e}"),
            sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
            other => other.to_string(),
        };
    };
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let mut m = format!("{} (SQLSTATE {})", pg.message(), pg.code());
        if let Some(sqlx::postgres::PgErrorPosition::Original(pos)) = pg.position() {
            let _ = write!(m, " at character {pos}");
        }
        if let Some(detail) = pg.detail() {
            let _ = write!(m, "; detail: {detail}");
        }
        if let Some(hint) = pg.hint() {
            let _ = write!(m, "; hint: {hint}");
        }
        return m;
    }
    match db.code() {
        Some(code) => format!("{} (code {code})", db.message()),
        None => db.message().to_string(),
    }
}

/// True when a database error is a statement timeout.
pub(super) fn is_timeout(err: &sqlx::Error) -> bool {
    let Some(db) = err.as_database_error() else {
        return false;
    };
    let code = db.code().unwrap_or_default();
    let msg = db.message();
    // Postgres query_canceled; MariaDB 1969 (max_statement_time); MySQL 3024 (max_execution_time);
    // SQLite SQLITE_INTERRUPT from our progress handler.
    code == "57014"
        || code == "70100"
        || msg.contains("max_statement_time")
        || msg.contains("maximum statement execution time")
        || msg == "interrupted"
}
