//! Connection incidents and inhibition. When a pass cannot reach a connection, that is one
//! problem, not one per check: the connection gets one incident (a pseudo-check
//! `connection/NAME`), and its checks' connection errors are held — they open no
//! `check_failure` incident, resolve nothing and re-tell nothing — until a check reaches the
//! connection again, which resolves the connection's incident. A pass that runs no check of a
//! connection says nothing about it.

use crate::model::{CheckId, ErrorKind, Key, Observation, Outcome, Severity, Status};
use std::collections::BTreeMap;

/// The pseudo-check that carries a connection's incident.
pub fn connection_check(name: &str) -> CheckId {
    CheckId(format!("connection/{name}"))
}

/// For each connection a pass ran checks on: `Some(error)` when none of them reached it and
/// at least one failed to connect (that error), `None` when one reached it.
pub fn reachability<'a>(
    runs: impl IntoIterator<Item = (&'a str, &'a Outcome)>,
) -> BTreeMap<&'a str, Option<&'a str>> {
    let mut out: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for (connection, outcome) in runs {
        let failed = match outcome {
            Outcome::Error {
                kind: ErrorKind::Connection,
                message,
            } => Some(message.as_str()),
            _ => None,
        };
        match (out.get(connection), failed) {
            // Reached once in the pass: reached.
            (Some(None), _) => {}
            (_, None) => {
                out.insert(connection, None);
            }
            (None, Some(m)) => {
                out.insert(connection, Some(m));
            }
            (Some(Some(_)), Some(_)) => {}
        }
    }
    out
}

/// True when this outcome is held: a connection error on a connection the pass did not reach.
pub fn is_held(outcome: &Outcome, reach: Option<&Option<&str>>) -> bool {
    matches!(
        outcome,
        Outcome::Error {
            kind: ErrorKind::Connection,
            ..
        }
    ) && matches!(reach, Some(Some(_)))
}

/// The connection's pseudo-check outcome: a breach at `severity` when unreachable, a pass
/// when reached. Either way the result names the connection error (as a label), or nothing.
pub fn connection_outcome(unreachable: Option<&str>, severity: Severity) -> Outcome {
    let status = match unreachable {
        Some(_) => Status::Breach { severity },
        None => Status::Pass,
    };
    Outcome::Evaluated {
        columns: vec!["error".into()],
        observations: vec![Observation {
            key: Key::default(),
            status,
            metric: None,
            value: None,
            threshold: None,
            label: unreachable.map(str::to_string),
            sample: unreachable
                .map(|m| vec![vec![crate::model::Value::Text(m.to_string())]])
                .unwrap_or_default(),
        }],
        rows: 1,
        capped: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> Outcome {
        Outcome::Error {
            kind,
            message: "connection refused".into(),
        }
    }

    fn ok() -> Outcome {
        Outcome::Evaluated {
            columns: vec![],
            observations: vec![],
            rows: 0,
            capped: false,
        }
    }

    #[test]
    fn a_connection_is_down_only_when_no_check_reached_it() {
        let (refused, query, fine) = (err(ErrorKind::Connection), err(ErrorKind::Query), ok());
        let reach = reachability([
            ("a", &refused),
            ("a", &refused),
            ("b", &refused),
            ("b", &fine),
            ("c", &query),
        ]);
        assert_eq!(reach.get("a"), Some(&Some("connection refused")));
        assert_eq!(reach.get("b"), Some(&None), "one check reached b");
        assert_eq!(reach.get("c"), Some(&None), "a query error reached c");
        assert_eq!(reach.get("d"), None, "no check ran on d: nothing is said");
        assert!(is_held(&refused, reach.get("a")));
        assert!(
            !is_held(&refused, reach.get("b")),
            "b is up: its error is the check's"
        );
        assert!(!is_held(&query, reach.get("c")));
    }

    #[test]
    fn the_connection_outcome_breaches_while_down_and_passes_when_back() {
        assert_eq!(
            connection_outcome(Some("refused"), Severity::P0).worst(),
            Some(Severity::P0)
        );
        assert_eq!(connection_outcome(None, Severity::P0).worst(), None);
    }
}
