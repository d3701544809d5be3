//! Warehouse connections: a small pool per `[connections.NAME]`, one query per check, run
//! read-only with the statement timeout enforced by the database (and the statement
//! cancelled from another connection if the server misses it), rows streamed up to
//! `max_rows` and decoded into [`crate::model::Value`]s.

mod decode;
mod error;
mod pool;
mod screen;

pub use error::WarehouseError;
pub use pool::{Warehouse, Warehouses};
