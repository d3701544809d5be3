//! Warehouse connections behind one interface ([`Warehouse`], an enum over the drivers):
//! connect with the warehouse's own auth, run one read-only query per check with a
//! server-side timeout, cancel it on the server when the client's deadline passes, read at
//! most `max_rows` rows into [`crate::model::Value`]s, describe a query without running it,
//! answer a readiness ping, and name the SQL dialect rule templates are picked by. Drivers:
//! sqlx pools for PostgreSQL, MariaDB/MySQL and SQLite (`pool.rs`), Snowflake and BigQuery
//! over HTTP.

mod bigquery;
mod decode;
mod driver;
mod error;
mod http;
mod pool;
mod relay;
mod screen;
mod snowflake;
#[cfg(feature = "snowflake-arrow")]
mod snowflake_arrow;

pub use driver::{Fetched, Job, Warehouse, Warehouses};
pub use error::WarehouseError;
