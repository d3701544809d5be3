//! BigQuery over its REST API.

use super::WarehouseError;
use super::driver::{Fetched, Job};
use crate::config::{self, Connection};
use crate::model::QueryStats;
use std::time::Duration;

/// A BigQuery connection.
pub struct BigQuery {
    conn: Connection,
    #[allow(dead_code)]
    cfg: config::Bigquery,
}

impl BigQuery {
    pub fn new(conn: Connection, cfg: config::Bigquery) -> Self {
        Self { conn, cfg }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn unsupported(&self) -> WarehouseError {
        WarehouseError::Query {
            message: format!(
                "connection \"{}\": BigQuery is not implemented yet",
                self.conn.name
            ),
        }
    }

    pub async fn fetch_timed(&self, _sql: &str, _job: Job<'_>) -> Fetched {
        Fetched {
            rows: Err(self.unsupported()),
            queued: Duration::ZERO,
            stats: QueryStats::default(),
        }
    }

    pub async fn describe(&self, _sql: &str, _job: Job<'_>) -> Result<Vec<String>, WarehouseError> {
        Err(self.unsupported())
    }

    pub async fn ping(&self) -> Result<(), WarehouseError> {
        Err(self.unsupported())
    }
}
