//! The one integration-test binary: the real `dqwatch` binary against real databases.
//! PostgreSQL and MariaDB tests need `DQWATCH_TEST_POSTGRES_URL` / `DQWATCH_TEST_MARIADB_URL`
//! and print a `SKIP` line without them.

// Helpers outside `#[test]` functions are test code too: a failed setup step should panic
// with its error.
#![expect(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod db;
mod util;

mod bigquery;
mod channels;
mod cli;
mod config_errors;
mod daemon;
mod faults;
mod fuse;
mod fuzz;
mod hostile;
mod incidents;
mod inhibit;
mod layers;
mod lifecycle;
mod oncall;
mod page;
mod pipe;
mod redaction;
mod replay;
mod replicas;
mod report;
mod roundtrips;
mod rules;
mod rules_history;
mod smtp;
mod snowflake;
mod sqlite;
mod state_load;
mod surfaces;
mod warehouses;
