//! Warehouse connections: a small pool per `[connections.NAME]`, one read-only transaction
//! per check with the statement timeout enforced by the database, rows streamed up to
//! `max_rows` and decoded into [`crate::model::Value`]s.

mod decode;
mod error;
mod pool;

pub use error::WarehouseError;
pub use pool::{Warehouse, Warehouses};
