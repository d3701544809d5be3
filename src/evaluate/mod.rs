//! Rows → observations per key → [`Outcome`](crate::model::Outcome). Pure: takes a check and its rows (or a rule's
//! sides and history), returns a value.

mod judge;
mod rules;

pub use judge::evaluate;
pub use rules::{join_sides, robust_z, schema_diff, trend};
