//! Check definitions: `.sql` files under `checks_dir` with a `-- dqwatch` header and `.toml`
//! files that use a rule, validated against the config into [`Check`]s. Reads files; never
//! touches a warehouse.
//!
//! - `header.rs` cuts the `-- dqwatch` header out of a `.sql` file and maps its lines back;
//! - `sql_check.rs` turns a `.sql` file into a check, `rule_check.rs` a `.toml` rule check
//!   (binding a `rule.rs` template);
//! - `fields.rs` validates the keys both kinds share, `threshold.rs` parses `"> 24h"`;
//! - `fuse.rs` groups rule checks on one table into one shared scan and splits its rows;
//! - `catalog.rs` walks `checks_dir`, `schedule.rs` reads cron expressions, `check.rs` holds
//!   the validated types.

pub mod catalog;
mod check;
mod fields;
pub mod fuse;
pub mod header;
pub mod maintenance;
pub mod rule;
mod rule_check;
pub mod schedule;
mod sql_check;
mod threshold;

pub use catalog::{Catalog, load, select};
#[cfg(test)]
pub use check::tests_support;
pub use check::{Check, HistoryEngine, Judge, OnNoData, Reconcile, Side};
pub use rule_check::parse_rule_check;
pub use schedule::Schedule;
pub use sql_check::parse_check;
pub use threshold::parse_threshold;
