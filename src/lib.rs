//! dqwatch runs data quality checks written as SQL against warehouse connections, turns
//! threshold breaches into classified, deduplicated incidents, and tells people by mail — with
//! one exit code for CI.
//!
//! ```text
//! config + checks/ + templates ──engine::load──▶ Engine (checks, composer, transports)
//!         │
//!  schedule (daemon) or plan (run, CI)
//!         │
//!  engine::run: one read-only query per check, server-side timeout, row cap
//!         │                                        (warehouse: one pool per connection)
//!  evaluate: rows ──▶ observations per key ──▶ outcome (pass / breach Pn / error)   [pure]
//!         │
//!  engine::apply: reconcile (incidents, pure) ──▶ compose (mails, pure)
//!                 ──▶ store: runs, observations, incidents, events, outbox — one transaction
//!         │
//!  engine::deliver: outbox ──▶ notify (SMTP / .eml) — leased, retried, in thread order
//!         │
//!  report: text, JSON, JUnit, GitHub annotations; exit code for CI  (cli, daemon: entry points)
//! ```
//!
//! Modules in layer order; each uses only the layers above it (`tests/it/layers.rs` checks).

// 0 foundation
pub mod clock;
pub mod diag;
pub mod model;
// 1 input
pub mod checks;
pub mod config;
// 2 pure core
pub mod compose;
pub mod evaluate;
pub mod incidents;
// 3 edges
pub mod notify;
pub mod store;
pub mod warehouse;
// 4 engine
pub mod engine;
pub mod report;
// 5 entry points
pub mod cli;
pub mod daemon;
