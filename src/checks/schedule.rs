//! Unix cron for check schedules: 5 fields (or 6 with seconds first), weekdays 0–7 with
//! 0 and 7 = Sunday, and day-of-month OR day-of-week as Vixie cron does. Translated onto
//! the `cron` crate, which wants seconds, numbers Sunday as 1 and ANDs the day fields.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    /// One schedule, or two when both day fields are restricted (their union).
    parts: Vec<cron::Schedule>,
}

/// Why a schedule is invalid: the message and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: String,
}

const FIELD_NAMES: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const HINT: &str = "5 fields: minute hour day-of-month month day-of-week, e.g. \"*/15 * * * *\" runs every 15 minutes";

impl Schedule {
    /// Parses a Unix cron expression.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let err = |message: String| ScheduleError {
            message,
            hint: HINT.to_string(),
        };
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(err(format!(
                    "invalid cron \"{text}\": unknown shorthand {other}"
                )));
            }
            other => other,
        };
        let mut fields: Vec<&str> = expanded.split_whitespace().collect();
        match fields.len() {
            5 => fields.insert(0, "0"),
            6 => {}
            n => {
                return Err(err(format!(
                    "invalid cron \"{text}\": expected 5 or 6 fields, found {n}"
                )));
            }
        }
        let dow = unix_weekdays(fields[5]).map_err(|m| {
            err(format!(
                "invalid cron \"{text}\": day-of-week field \"{}\": {m}",
                fields[5]
            ))
        })?;
        // Check each field alone so that the message can name the bad one.
        for (i, field) in fields.iter().enumerate().take(5) {
            let mut probe = ["0", "*", "*", "*", "*", "*"];
            probe[i] = field;
            if cron::Schedule::from_str(&probe.join(" ")).is_err() {
                return Err(err(format!(
                    "invalid cron \"{text}\": {} field \"{field}\" is not valid",
                    FIELD_NAMES[i]
                )));
            }
        }
        let build = |dom: &str, dow: &str| {
            let expr = format!(
                "{} {} {} {} {} {}",
                fields[0], fields[1], fields[2], dom, fields[4], dow
            );
            cron::Schedule::from_str(&expr).map_err(|_| err(format!("invalid cron \"{text}\"")))
        };
        // Vixie cron: when both day fields are restricted (neither starts with `*`), a day
        // matching either one fires.
        let parts = if !fields[3].starts_with('*') && !fields[5].starts_with('*') {
            vec![build(fields[3], "*")?, build("*", &dow)?]
        } else {
            vec![build(fields[3], &dow)?]
        };
        // A valid expression can still name no date at all (`0 0 31 2 *`): the daemon would
        // silently never run the check. Any fire time from 2000 on proves it fires (a fixed
        // start keeps parsing free of the clock; the cron crate stops at its last year).
        let start = DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default();
        if parts.iter().all(|p| p.after(&start).next().is_none()) {
            return Err(ScheduleError {
                message: format!(
                    "cron \"{text}\" never fires: no date has day-of-month \"{}\" in month \"{}\"",
                    fields[3], fields[4]
                ),
                hint: HINT.to_string(),
            });
        }
        Ok(Schedule {
            text: text.trim().to_string(),
            parts,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `after`, read in `tz`. When a fall-back DST change
    /// repeats a local time, the repeat is skipped: a slot fires once.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz);
        self.parts
            .iter()
            .filter_map(|p| {
                p.after(&local)
                    .find(|t| t.naive_local() != local.naive_local())
            })
            .min()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Translates a Unix day-of-week field into the `cron` crate's names.
fn unix_weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".into());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or("a step must be a positive number")?,
            ),
            None => (item, 1),
        };
        let (lo, hi) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (weekday(a)?, weekday(b)?),
                None if step > 1 => (weekday(r)?, 6),
                None => (weekday(r)?, weekday(r)?),
            },
        };
        if lo > hi {
            return Err(format!("range {range} runs backwards"));
        }
        for d in (lo..=hi).step_by(step) {
            days[d % 7] = true;
        }
    }
    let names: Vec<&str> = (0..7).filter(|&d| days[d]).map(|d| DAYS[d]).collect();
    Ok(names.join(","))
}

/// A weekday as 0–7 (7 = Sunday again) or a three-letter name.
fn weekday(s: &str) -> Result<usize, String> {
    if let Ok(n) = s.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("{n} is not a weekday (0-7, 0 and 7 = Sunday)"))
        };
    }
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("\"{s}\" is not a weekday (0-7 or Sun-Sat)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};
    use test_case::test_case;

    fn fires(expr: &str, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let s = Schedule::parse(expr).unwrap();
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = s.next_after(chrono_tz::UTC, t).unwrap();
            out.push(t);
        }
        out
    }

    fn monday() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() // a Monday
    }

    #[test]
    fn five_fields_fire_on_the_minute() {
        let t = fires("*/15 * * * *", monday(), 3);
        assert_eq!(
            t.iter()
                .map(|t| (t.minute(), t.second()))
                .collect::<Vec<_>>(),
            vec![(15, 0), (30, 0), (45, 0)]
        );
    }

    #[test]
    fn six_fields_take_seconds_first() {
        let t = fires("*/10 * * * * *", monday(), 2);
        assert_eq!(t[1] - t[0], chrono::Duration::seconds(10));
    }

    #[test_case("0 9 * * 1-5", &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri])]
    #[test_case("0 9 * * 0", &[Weekday::Sun])]
    #[test_case("0 9 * * 7", &[Weekday::Sun])]
    #[test_case("0 9 * * 5-7", &[Weekday::Fri, Weekday::Sat, Weekday::Sun])]
    #[test_case("0 9 * * */2", &[Weekday::Sun, Weekday::Tue, Weekday::Thu, Weekday::Sat])]
    #[test_case("0 9 * * sat,SUN", &[Weekday::Sat, Weekday::Sun])]
    #[test_case("0 9 * * Mon-Fri/2", &[Weekday::Mon, Weekday::Wed, Weekday::Fri])]
    fn unix_weekday_numbers(expr: &str, want: &[Weekday]) {
        let mut got: Vec<Weekday> = fires(expr, monday(), 7)
            .iter()
            .map(|t| t.weekday())
            .collect();
        got.sort_by_key(Weekday::num_days_from_monday);
        got.dedup();
        let mut want = want.to_vec();
        want.sort_by_key(Weekday::num_days_from_monday);
        assert_eq!(got, want);
    }

    #[test]
    fn day_fields_are_ored_when_both_restricted() {
        // The 1st of the month or any Monday (Vixie cron), not only Mondays that are the 1st.
        let t = fires("0 0 1 * 1", monday(), 3);
        let days: Vec<(u32, Weekday)> = t.iter().map(|t| (t.day(), t.weekday())).collect();
        assert_eq!(
            days,
            vec![(30, Weekday::Mon), (1, Weekday::Tue), (7, Weekday::Mon)]
        );
    }

    #[test]
    fn star_step_in_dom_still_ands() {
        let t = fires("0 0 */2 * 1", monday(), 2);
        assert!(
            t.iter()
                .all(|t| t.weekday() == Weekday::Mon && t.day() % 2 == 1)
        );
    }

    #[test]
    fn shorthands() {
        assert_eq!(
            fires("@hourly", monday(), 1)[0],
            monday() + chrono::Duration::hours(1)
        );
        assert_eq!(fires("@weekly", monday(), 1)[0].weekday(), Weekday::Sun);
    }

    #[test]
    fn fall_back_fires_once() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s = Schedule::parse("30 2 * * *").unwrap();
        let start = Utc.with_ymd_and_hms(2026, 10, 24, 12, 0, 0).unwrap();
        let first = s.next_after(tz, start).unwrap();
        let second = s.next_after(tz, first).unwrap();
        assert_eq!(first.with_timezone(&tz).day(), 25);
        assert_eq!(second.with_timezone(&tz).day(), 26);
    }

    #[test]
    fn spring_forward_skips_the_missing_time() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s = Schedule::parse("30 2 * * *").unwrap();
        let t = s
            .next_after(tz, Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap())
            .unwrap();
        assert_eq!(t.with_timezone(&tz).day(), 30);
    }

    #[test_case("*/15 * * *", "expected 5 or 6 fields, found 4")]
    #[test_case("* * * * * * * *", "expected 5 or 6 fields, found 8")]
    #[test_case("61 * * * *", "minute field \"61\" is not valid")]
    #[test_case("0 25 * * *", "hour field \"25\" is not valid")]
    #[test_case("0 0 * * 8", "8 is not a weekday")]
    #[test_case("0 0 * * Funday", "\"Funday\" is not a weekday")]
    #[test_case("0 0 * * 5-1", "range 5-1 runs backwards")]
    #[test_case("0 0 * 13 *", "month field \"13\" is not valid")]
    #[test_case("@often", "unknown shorthand @often")]
    #[test_case("0 0 31 2 *", "never fires")]
    #[test_case("0 0 30 2 *", "never fires")]
    #[test_case("0 0 31 4,6,9,11 *", "never fires")]
    fn bad_expressions(expr: &str, want: &str) {
        let e = Schedule::parse(expr).unwrap_err();
        assert!(e.message.contains(want), "{}", e.message);
        assert!(e.hint.contains("*/15 * * * *"));
    }

    // See: issues/14 command line
    #[test]
    fn a_leap_day_fires_and_a_thirty_first_of_february_never_does() {
        assert!(Schedule::parse("0 0 29 2 *").is_ok());
        // Either day field may fire under Vixie's OR: a Monday in February exists.
        assert!(Schedule::parse("0 0 31 2 1").is_ok());
        assert!(Schedule::parse("0 0 31 2 *").is_err());
    }
}
