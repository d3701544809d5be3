//! Incidents: the values (incident, event, change) and the pure stages that move them —
//! [`reconcile`](reconcile::reconcile) turns an outcome into changes, [`policy`] classifies.
//! No I/O and no clock: `now` is an argument.

pub mod escalate;
mod fields;
pub mod hold;
pub mod inhibit;
pub mod noise;
pub mod policy;
pub mod quiet;
pub mod reconcile;
pub mod respond;
pub mod sla;
pub mod stats;
mod types;

pub use hold::{Controls, Hold};
pub use policy::Policy;
pub use reconcile::{Change, reconcile};
pub use types::{
    Event, EventFields, EventKind, Incident, ResolveReason, ResponseStatus, Step, fingerprint,
};
