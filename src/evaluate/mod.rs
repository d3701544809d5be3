//! Rows → observations per key → [`Outcome`](crate::model::Outcome). Pure: takes a check
//! and its rows (or a rule's sides and history), returns a value; what cannot be judged is an
//! [`EvalError`], which becomes `Outcome::Error` at the boundary.

mod error;
mod judge;
mod rules;

pub use error::{EvalError, MetricProblem, NoDataWhy};
pub use judge::{apply_policy, drop_unread_samples, evaluate};
pub use rules::{join_sides, robust_z, schema_diff, schema_judge, trend};
