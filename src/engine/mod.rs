//! The one orchestration every entry point calls (`cli` and `daemon` only call it): load
//! (config, checks, templates with their self-test, transports), run (plan → fetch →
//! evaluate), the history rules, apply (reconcile → compose → record) and deliver (outbox →
//! transports).

pub mod apply;
pub mod deliver;
pub mod history;
pub mod load;
pub mod run;
pub mod told;

pub use load::{Engine, LoadError};
