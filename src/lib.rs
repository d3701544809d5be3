//! dqwatch runs data quality checks written as SQL against warehouse connections and turns
//! threshold breaches into classified outcomes (and, later, incidents).
//!
//! ```text
//! config + checks/ ──load/validate──▶ Check definitions
//!         │
//!  plan (run, CI)
//!         │
//!  execute: one read-only transaction per check, statement timeout, row cap
//!         │                                        (warehouse connection pool)
//!  evaluate: rows ──▶ observations per key ──▶ outcome (pass / breach Pn / error)   [pure]
//!         │
//!  report: text, JSON, JUnit, GitHub annotations; exit code for CI
//! ```

pub mod checks;
pub mod cli;
pub mod clock;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod diag;
pub mod engine;
pub mod evaluate;
pub mod incidents;
pub mod model;
pub mod notify;
pub mod report;

pub mod store;
pub mod warehouse;
