//! `StoreError`: state-store failures, never carrying a password.

/// A state-store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened.
    #[error("failed to open the state store at {url}")]
    Open {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("failed to migrate the state store at {url}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("failed to {action} in the state store")]
    Query {
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// An incident changed since it was read (another writer was first); nothing was
    /// written, and the caller re-reads and tries again.
    #[error("incident {incident} changed while this change was being made")]
    Conflict {
        /// The incident.
        incident: i64,
    },
    /// Stored data could not be read back.
    #[error("failed to read {what} from the state store: {message}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// Why it is unreadable.
        message: String,
    },
    /// Runs were not recorded because their schedule slots are no longer this replica's
    /// (their lease ran out and another replica took them over and runs them itself).
    #[error("failed to record runs: {} schedule slot(s) were taken over by another replica", .0.len())]
    SlotsLost(Vec<(String, chrono::DateTime<chrono::Utc>)>),
}

impl StoreError {
    /// True when a write lost a race with another writer: re-read and try again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// Wraps a sqlx error with what was being done.
    pub(crate) fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { action, source }
    }

    /// The whole chain as one line: "failed to …: cause".
    pub fn chain(&self) -> String {
        crate::diag::error_chain(self)
    }
}
