//! Incidents: the values (incident, event, change) and the pure stages that move them —
//! [`reconcile`](reconcile::reconcile) turns an outcome into changes, [`policy`] classifies.
//! No I/O and no clock: `now` is an argument.

pub mod escalate;
pub mod inhibit;
pub mod noise;
pub mod policy;
pub mod reconcile;
pub mod stats;
mod types;

pub use policy::Policy;
pub use reconcile::{Change, reconcile};
pub use types::{Event, EventKind, Incident, Step, fingerprint};
