//! A threshold level's text (`"> 100"`, `"<= 0.95"`, `"> 2h"`, `"> 5%"`) → [`Threshold`].
//! Shared by check headers, rule defaults and the evaluator's tests.

use crate::config::{DurationError, try_parse_duration};
use crate::model::{Op, Severity, Threshold};

/// Parses a threshold such as `"> 100"`, `"<= 0.95"` or `"> 2h"` (durations become seconds).
pub fn parse_threshold(severity: Severity, text: &str) -> Result<Threshold, String> {
    let s = text.trim();
    let ops = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];
    let bad = || {
        format!(
            "invalid threshold \"{text}\": expected an operator (>, >=, <, <=, ==, !=) and a number, e.g. \"> 100\" or \"> 2h\""
        )
    };
    let (op, rest) = ops
        .iter()
        .find_map(|(p, op)| s.strip_prefix(p).map(|r| (*op, r.trim())))
        .ok_or_else(bad)?;
    // See: issues/8 item 10 (an infinite or NaN limit never breaches; a huge duration
    // panicked).
    let limit = match rest.parse::<f64>() {
        Ok(n) if n.is_finite() => n,
        _ if rest.ends_with('%') => rest[..rest.len() - 1]
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(bad)?,
        _ => match try_parse_duration(rest) {
            Ok(d) => d.as_secs_f64(),
            Err(DurationError::TooLong) => {
                return Err(format!(
                    "invalid threshold \"{text}\": the duration is too long (at most 100 years, \"36500d\")"
                ));
            }
            Err(DurationError::Syntax) => return Err(bad()),
        },
    };
    Ok(Threshold {
        severity,
        op,
        limit,
        text: s.to_string(),
    })
}
