//! The clock of a command: the wall clock, or the fixed time `DQWATCH_NOW` names (an RFC 3339
//! time) — to replay a history or test time-driven behaviour (a snooze running out, a
//! maintenance window closing) through the real binary.

use crate::clock::{Clock, ManualClock, SystemClock};
use chrono::{DateTime, Utc};

/// The variable that fixes a command's clock.
pub const NOW_ENV: &str = "DQWATCH_NOW";

/// The command's clock; an unreadable `DQWATCH_NOW` is an error that says what to write.
pub fn clock() -> Result<Box<dyn Clock>, String> {
    match std::env::var(NOW_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            parse(&v).map(|t| Box::new(ManualClock::new(t)) as Box<dyn Clock>)
        }
        _ => Ok(Box::new(SystemClock)),
    }
}

fn parse(v: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(v.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{NOW_ENV}=\"{v}\" is not an RFC 3339 time ({e})\n  hint: e.g. {NOW_ENV}=2026-11-30T09:00:00Z, or unset it for the wall clock")
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_rfc3339_with_offset() {
        let t = super::parse("2026-11-30T10:00:00+01:00").unwrap();
        assert_eq!(crate::model::format_time(t), "2026-11-30T09:00:00.000Z");
        assert!(super::parse("tomorrow").is_err());
    }
}
