//! Maintenance windows evaluated: which window, if any, holds a check's notifications at
//! `now`. The config validated the windows; their cron expressions are read here with the
//! schedule parser (a bad one is a [`Diagnostic`] at its line and column).

use super::catalog::glob;
use super::schedule::Schedule;
use crate::config::{Config, Maintenance, MaintenanceTime};
use crate::diag::Diagnostic;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A window ready to evaluate.
#[derive(Debug, Clone)]
pub struct Window {
    /// The window as configured.
    pub config: Maintenance,
    /// Its schedule, for a cron window.
    schedule: Option<Schedule>,
}

/// What a window is matched against: a check (or a connection's incident).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The check id (`connection/NAME` for a connection's incident).
    pub id: &'a str,
    /// Its connection.
    pub connection: &'a str,
    /// Its tags.
    pub tags: &'a [String],
}

/// The config's windows, or every bad cron expression as a diagnostic.
pub fn windows(config: &Config) -> Result<Vec<Window>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for m in &config.maintenance {
        let schedule = match &m.when {
            MaintenanceTime::Cron {
                cron, line, column, ..
            } => match Schedule::parse(cron) {
                Ok(s) => Some(s),
                Err(e) => {
                    diags.push(
                        Diagnostic::at(
                            &config.path,
                            *line,
                            *column,
                            format!("maintenance window \"{}\": {}", m.name, e.message),
                        )
                        .hint(e.hint),
                    );
                    continue;
                }
            },
            MaintenanceTime::Fixed { .. } => None,
        };
        out.push(Window {
            config: m.clone(),
            schedule,
        });
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

impl Window {
    /// The window's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// When the occurrence holding `now` ends, if the window is on at `now` (start
    /// inclusive, end exclusive); cron times are read in `tz`.
    pub fn active_until(&self, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.config.when {
            MaintenanceTime::Fixed { start, end } => (*start <= now && now < *end).then_some(*end),
            MaintenanceTime::Cron { duration, .. } => {
                let length = chrono::Duration::from_std(*duration).ok()?;
                let schedule = self.schedule.as_ref()?;
                // The first fire after `now - length` (strictly): if it is not after `now`,
                // its window covers `now`. A fire exactly `length` ago has just ended. The
                // fire at `now` itself is found from one instant before.
                let from = now - length;
                let fire = schedule.next_after(tz, from)?;
                let fire = if fire > now { return None } else { fire };
                // Overlapping occurrences: the window lasts to the end of the latest one.
                let mut end = fire + length;
                let mut at = fire;
                while let Some(next) = schedule.next_after(tz, at).filter(|n| *n <= now) {
                    end = next + length;
                    at = next;
                }
                (end > now).then_some(end)
            }
        }
    }

    /// True when the window covers `subject`: every selector given matches (a connection,
    /// one of the check globs, one of the tags); a window without selectors covers all.
    pub fn covers(&self, s: Subject<'_>) -> bool {
        let m = &self.config;
        m.connection.as_ref().is_none_or(|c| c == s.connection)
            && (m.checks.is_empty() || m.checks.iter().any(|g| glob(g.as_bytes(), s.id.as_bytes())))
            && (m.tags.is_empty() || m.tags.iter().any(|t| s.tags.contains(t)))
    }
}

/// The first window that holds `subject` at `now`, with the end of its occurrence.
pub fn holding<'a>(
    windows: &'a [Window],
    tz: Tz,
    now: DateTime<Utc>,
    subject: Subject<'_>,
) -> Option<(&'a Window, DateTime<Utc>)> {
    windows
        .iter()
        .filter(|w| w.covers(subject))
        .find_map(|w| w.active_until(tz, now).map(|end| (w, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config(text: &str) -> Result<Config, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dqwatch.toml");
        std::fs::write(
            &path,
            format!("[connections.wh]\nurl = \"sqlite://w.db\"\n{text}"),
        )
        .unwrap();
        crate::config::load(&path, &|_| None)
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
    }

    #[test]
    fn a_cron_window_covers_each_occurrence_end_exclusive() {
        let cfg = config(
            "[[maintenance]]\nname = \"nightly\"\ncron = \"0 2 * * *\"\nduration = \"90m\"\nconnection = \"wh\"\n",
        )
        .unwrap();
        let w = windows(&cfg).unwrap();
        let tz = chrono_tz::UTC;
        assert_eq!(w[0].active_until(tz, at(23, 1, 59)), None);
        assert_eq!(w[0].active_until(tz, at(23, 2, 0)), Some(at(23, 3, 30)));
        assert_eq!(w[0].active_until(tz, at(23, 3, 29)), Some(at(23, 3, 30)));
        assert_eq!(w[0].active_until(tz, at(23, 3, 30)), None);
        let s = Subject {
            id: "shop/orders",
            connection: "wh",
            tags: &[],
        };
        assert!(holding(&w, tz, at(24, 2, 10), s).is_some());
        let other = Subject {
            connection: "other",
            ..s
        };
        assert!(holding(&w, tz, at(24, 2, 10), other).is_none());
    }

    #[test]
    fn a_fixed_window_and_selectors() {
        let cfg = config(
            "[[maintenance]]\nname = \"migration\"\nstart = \"2026-11-23T10:00:00Z\"\nend = \"2026-11-23T12:00:00+01:00\"\n\
             checks = [\"shop/*\"]\ntags = [\"orders\"]\nreason = \"schema migration\"\n",
        )
        .unwrap();
        let w = windows(&cfg).unwrap();
        let tags = ["orders".to_string()];
        let s = Subject {
            id: "shop/orders",
            connection: "wh",
            tags: &tags,
        };
        let tz = chrono_tz::UTC;
        assert_eq!(w[0].active_until(tz, at(23, 10, 30)), Some(at(23, 11, 0)));
        assert_eq!(w[0].active_until(tz, at(23, 11, 0)), None);
        assert!(w[0].covers(s));
        assert!(!w[0].covers(Subject { tags: &[], ..s }), "tags AND checks");
        assert!(!w[0].covers(Subject { id: "fin/x", ..s }));
    }

    #[test]
    fn bad_windows_are_diagnostics_with_their_line() {
        let e = config("\n[[maintenance]]\nname = \"x\"\ncron = \"0 2 * *\"\n").unwrap_err();
        assert!(
            e.iter()
                .any(|d| d.line == 6 && d.message.contains("needs a duration")),
            "{e:?}"
        );
        let e = config(
            "[[maintenance]]\nname = \"x\"\nstart = \"2026-11-23T10:00:00Z\"\nend = \"2026-11-23T09:00:00Z\"\n\
             [[maintenance]]\nname = \"x\"\nstart = \"yesterday\"\nend = \"2026-11-23T09:00:00Z\"\nconnection = \"nope\"\n\
             [[maintenance]]\nreason = \"no name, no time\"\n",
        )
        .unwrap_err();
        let lines: Vec<(usize, &str)> = e.iter().map(|d| (d.line, d.message.as_str())).collect();
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 6 && m.contains("end after it starts")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 8 && m.contains("defined twice")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 9 && m.contains("invalid start")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 11 && m.contains("unknown connection")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|(_, m)| m.contains("has no name")),
            "{lines:?}"
        );
        // The cron's syntax is the schedule parser's, at the cron's own line.
        let cfg =
            config("[[maintenance]]\nname = \"x\"\ncron = \"61 2 * * *\"\nduration = \"1h\"\n")
                .unwrap();
        let e = windows(&cfg).unwrap_err();
        assert_eq!((e[0].line, e[0].column), (5, 8), "{e:?}");
        assert!(e[0].message.contains("maintenance window \"x\""), "{e:?}");
    }
}
