//! A threshold level's text (`"> 100"`, `"<= 0.95"`, `"> 2h"`, `"> 5%"`) → [`Threshold`],
//! with the unit it was written in (number, percent, seconds).
//! Shared by check headers, rule defaults and the evaluator's tests.

use crate::config::{DurationError, try_parse_duration};
use crate::model::{Op, Severity, Threshold, Unit};

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
    let (limit, unit) = match rest.parse::<f64>() {
        Ok(n) if n.is_finite() => (n, Unit::Number),
        _ if rest.ends_with('%') => (
            rest[..rest.len() - 1]
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(bad)?,
            Unit::Percent,
        ),
        _ => match try_parse_duration(rest) {
            Ok(d) => (d.as_secs_f64(), Unit::Seconds),
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
        unit,
        text: s.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("> 100", Op::Gt, 100.0 ; "greater")]
    #[test_case(">= 100", Op::Ge, 100.0 ; "greater or equal")]
    #[test_case("< 0.95", Op::Lt, 0.95 ; "less")]
    #[test_case("<= -3", Op::Le, -3.0 ; "less or equal")]
    #[test_case("== 0", Op::Eq, 0.0 ; "equal")]
    #[test_case("!= 1e3", Op::Ne, 1000.0 ; "not equal")]
    #[test_case(">100", Op::Gt, 100.0 ; "no space")]
    #[test_case("  >   7  ", Op::Gt, 7.0 ; "padded")]
    #[test_case("> 24h", Op::Gt, 86_400.0 ; "hours")]
    #[test_case("> 15m", Op::Gt, 900.0 ; "minutes")]
    #[test_case("> 2d", Op::Gt, 172_800.0 ; "days")]
    #[test_case("> 1h30m", Op::Gt, 5400.0 ; "a sequence")]
    #[test_case("> 2 h", Op::Gt, 7200.0 ; "a spaced unit")]
    #[test_case("> 5%", Op::Gt, 5.0 ; "percent")]
    #[test_case(">= 12.5 %", Op::Ge, 12.5 ; "percent with a space")]
    fn parses(text: &str, op: Op, limit: f64) {
        let t = parse_threshold(Severity::P1, text).unwrap();
        assert_eq!((t.severity, t.op, t.limit), (Severity::P1, op, limit));
        assert_eq!(&*t.text, text.trim());
    }

    // See: issues/9 (a threshold lost its unit when parsed; reports guessed it back).
    #[test_case("> 100", Unit::Number ; "a number")]
    #[test_case("> 5%", Unit::Percent ; "a percent")]
    #[test_case("> 24h", Unit::Seconds ; "a duration")]
    #[test_case("> 90s", Unit::Seconds ; "seconds")]
    fn keeps_the_unit_it_was_written_in(text: &str, unit: Unit) {
        assert_eq!(parse_threshold(Severity::P1, text).unwrap().unit, unit);
    }

    const SYNTAX: &str =
        "expected an operator (>, >=, <, <=, ==, !=) and a number, e.g. \"> 100\" or \"> 2h\"";

    #[test_case("100" ; "no operator")]
    #[test_case("=> 1" ; "reversed operator")]
    #[test_case(">" ; "no number")]
    #[test_case("> lots" ; "a word")]
    #[test_case("> inf" ; "infinite")]
    #[test_case("> NaN" ; "not a number")]
    #[test_case("> inf%" ; "infinite percent")]
    #[test_case("> %" ; "bare percent")]
    #[test_case("> 1e999" ; "overflowing number")]
    #[test_case("" ; "empty")]
    fn refuses(text: &str) {
        assert_eq!(
            parse_threshold(Severity::P2, text),
            Err(format!("invalid threshold \"{text}\": {SYNTAX}"))
        );
    }

    // See: issues/8 item 10
    #[test]
    fn refuses_a_duration_over_a_hundred_years() {
        assert_eq!(
            parse_threshold(Severity::P2, "> 36501d"),
            Err("invalid threshold \"> 36501d\": the duration is too long (at most 100 years, \"36500d\")".into())
        );
    }
}
