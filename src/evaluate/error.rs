//! Why rows could not be judged, as a typed error with its facts in fields. It becomes an
//! `Outcome::Error { kind, message }` at the boundary of `evaluate` (and of the runner for
//! a reconciliation join); it never leaves as a pass.

use crate::model::{ErrorKind, Key, Outcome};
use std::fmt;

/// A result that cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A column the header names is not in the result.
    #[error("the result has no column \"{name}\" ({role}); its columns are: {}", columns.join(", "))]
    MissingColumn {
        /// The column looked for.
        name: String,
        /// What it is for (`a key`, `the metric`, `the severity_column`).
        role: &'static str,
        /// The columns the result has.
        columns: Vec<String>,
    },
    /// A key column has a type dqwatch does not read.
    #[error(
        "key \"{name}\" has type {ty}, which dqwatch does not read; cast it to text in the SQL (e.g. {name}::text or CAST({name} AS CHAR))"
    )]
    UnreadableKey {
        /// The key column.
        name: String,
        /// The database's type name.
        ty: String,
    },
    /// A metric cell that is not a number.
    #[error("metric \"{metric}\" in row {row} {problem}")]
    BadMetric {
        /// The metric column.
        metric: String,
        /// 1-based row.
        row: usize,
        /// What is wrong with it.
        problem: MetricProblem,
    },
    /// A `severity_column` label missing from `[severity_map]`.
    #[error(
        "label \"{label}\" in column \"{column}\" (row {row}) is not in [severity_map] (mapped: {}); map it to a severity or \"pass\"",
        mapped.join(", ")
    )]
    UnmappedLabel {
        /// The label read.
        label: String,
        /// The severity column.
        column: String,
        /// 1-based row.
        row: usize,
        /// The labels the map knows.
        mapped: Vec<String>,
    },
    /// No metric where one was expected, and `on_no_data = "error"`.
    #[error(
        "{why}{}; a metric was expected (set on_no_data = \"pass\" or a severity if that is expected)",
        for_key(key)
    )]
    NoData {
        /// Why there is no metric.
        why: NoDataWhy,
        /// The subject (empty for a check without keys).
        key: Key,
    },
    /// A reconciliation side that does not return `key, value`.
    #[error("the {side} query must return two columns, key and value")]
    SideShape {
        /// `source` or `target`.
        side: &'static str,
    },
    /// A reconciliation side that returns a key twice.
    #[error("the {side} query returns key {key} twice; group by the key")]
    DuplicateKey {
        /// `source` or `target`.
        side: &'static str,
        /// The key.
        key: String,
    },
    /// A reconciliation side value that is not a number.
    #[error("the {side} value for key {key} is not a number ({value})")]
    SideNotANumber {
        /// `source` or `target`.
        side: &'static str,
        /// The key.
        key: String,
        /// The value as read.
        value: String,
    },
}

fn for_key(key: &Key) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" for {key}")
    }
}

impl EvalError {
    /// The class of failure reports and incidents show.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EvalError::NoData { .. } => ErrorKind::NoData,
            EvalError::MissingColumn { .. }
            | EvalError::UnreadableKey { .. }
            | EvalError::BadMetric { .. }
            | EvalError::UnmappedLabel { .. }
            | EvalError::SideShape { .. }
            | EvalError::DuplicateKey { .. }
            | EvalError::SideNotANumber { .. } => ErrorKind::Result,
        }
    }
}

impl From<EvalError> for Outcome {
    fn from(e: EvalError) -> Outcome {
        Outcome::Error {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// What is wrong with a metric cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricProblem {
    /// A float NaN.
    NaN,
    /// Text (truncated to 40 characters).
    Text(String),
    /// A boolean.
    Bool(bool),
    /// A type dqwatch does not read (its name).
    Unsupported(String),
}

impl fmt::Display for MetricProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricProblem::NaN => f.write_str("is NaN, which no threshold can judge"),
            MetricProblem::Text(t) => {
                write!(f, "is text (\"{t}\"), not a number; cast it in the SQL")
            }
            MetricProblem::Bool(b) => write!(
                f,
                "is a boolean ({b}), not a number; use CASE WHEN … THEN 1 ELSE 0 END"
            ),
            MetricProblem::Unsupported(t) => write!(
                f,
                "has type {t}, which dqwatch does not read; cast it to a number in the SQL"
            ),
        }
    }
}

/// Why a key has no metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDataWhy {
    /// The query returned no rows.
    NoRows,
    /// The metric column is NULL.
    NullMetric {
        /// The metric column.
        metric: String,
    },
    /// The severity column is NULL.
    NullLabel {
        /// The severity column.
        column: String,
    },
}

impl fmt::Display for NoDataWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoDataWhy::NoRows => f.write_str("the query returned no rows"),
            NoDataWhy::NullMetric { metric } => write!(f, "metric \"{metric}\" is NULL"),
            NoDataWhy::NullLabel { column } => write!(f, "severity_column \"{column}\" is NULL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issues/9 (errors were `(ErrorKind, String)` in the pure core): the facts stay
    // fields, and the boundary turns them into the outcome reports and incidents show.
    #[test]
    fn an_eval_error_becomes_an_error_outcome_with_its_kind() {
        let no_data = EvalError::NoData {
            why: NoDataWhy::NullMetric {
                metric: "gap".into(),
            },
            key: Key(vec![("day".into(), "d1".into())]),
        };
        assert_eq!(
            Outcome::from(no_data),
            Outcome::Error {
                kind: ErrorKind::NoData,
                message: "metric \"gap\" is NULL for day=d1; a metric was expected (set on_no_data = \"pass\" or a severity if that is expected)".into(),
            }
        );
        let bad = EvalError::BadMetric {
            metric: "gap".into(),
            row: 3,
            problem: MetricProblem::Bool(true),
        };
        assert_eq!(bad.kind(), ErrorKind::Result);
        assert_eq!(
            bad.to_string(),
            "metric \"gap\" in row 3 is a boolean (true), not a number; use CASE WHEN … THEN 1 ELSE 0 END"
        );
    }
}
