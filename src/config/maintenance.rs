//! `[[maintenance]]`: windows during which checks keep running and history is kept, but
//! notifications are held. Validated here except the cron expression's syntax, which the
//! `checks` layer's cron parser checks (it keeps the expression's line and column for that).

use super::raw::Str;
use super::validate::Ctx;
use super::{Connection, Duration};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use toml::Spanned;

/// `[[maintenance]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    pub name: Option<Str>,
    pub cron: Option<Str>,
    pub duration: Option<Str>,
    pub start: Option<Str>,
    pub end: Option<Str>,
    pub connection: Option<Str>,
    #[serde(default)]
    pub checks: Vec<Str>,
    #[serde(default)]
    pub tags: Vec<Str>,
    pub reason: Option<Str>,
}

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// Its name (unique).
    pub name: String,
    /// When it is.
    pub when: MaintenanceTime,
    /// Only checks of this connection (and its connection incident).
    pub connection: Option<String>,
    /// Only checks whose id matches one of these globs (`*` any text, `?` one character).
    pub checks: Vec<String>,
    /// Only checks with one of these tags.
    pub tags: Vec<String>,
    /// Why (shown with the window).
    pub reason: Option<String>,
    /// The 1-based line of its `[[maintenance]]` table.
    pub line: usize,
}

/// When a window is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceTime {
    /// Every time the cron fires (in `[daemon] timezone`), for `duration`.
    Cron {
        /// The cron expression as written.
        cron: String,
        /// Where it is written (1-based line and column), for its diagnostics.
        line: usize,
        /// Column.
        column: usize,
        /// How long each window lasts.
        duration: Duration,
    },
    /// Once, from `start` (inclusive) to `end` (exclusive).
    Fixed {
        /// Start.
        start: DateTime<Utc>,
        /// End.
        end: DateTime<Utc>,
    },
}

const WHEN_HINT: &str = "give either cron = \"0 2 * * 0\" with duration = \"2h\", or start and end as RFC 3339 times (\"2026-12-01T02:00:00Z\")";

fn time(ctx: &mut Ctx<'_>, s: &Str, what: &str) -> Option<DateTime<Utc>> {
    let v = ctx.string(s)?;
    match DateTime::parse_from_rfc3339(v.trim()) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(e) => {
            ctx.error(
                s.span(),
                format!("invalid {what} time \"{v}\": {e}"),
                Some("an RFC 3339 time with its offset, e.g. \"2026-12-01T02:00:00Z\"".into()),
            );
            None
        }
    }
}

/// Validates every `[[maintenance]]` table; problems go to `ctx`.
pub(super) fn validate(
    ctx: &mut Ctx<'_>,
    raw: &[Spanned<RawMaintenance>],
    connections: &BTreeMap<String, Connection>,
) -> Vec<Maintenance> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let m = table.get_ref();
        let span = table.span();
        let line = ctx.index.line_col(span.start).0;
        let line = (ctx.at)(line, 1).0;
        let before = ctx.diags.len();
        let name = match &m.name {
            Some(n) => ctx.string(n).map(|v| (n.span(), v)),
            None => {
                ctx.error(
                    span.clone(),
                    format!("[[maintenance]] number {} has no name", i + 1),
                    Some("add name = \"…\": it is how the window is shown and told".into()),
                );
                None
            }
        };
        let name = name.and_then(|(at, v)| {
            if v.trim().is_empty() {
                ctx.error(at, "a maintenance window's name is empty", None);
                None
            } else if !seen.insert(v.clone()) {
                ctx.error(
                    at,
                    format!("maintenance window \"{v}\" is defined twice"),
                    Some("give each [[maintenance]] its own name".into()),
                );
                None
            } else {
                Some(v)
            }
        });
        let when = match (&m.cron, &m.duration, &m.start, &m.end) {
            (Some(cron), Some(d), None, None) => {
                let duration = ctx.duration(d);
                let text = ctx.string(cron);
                let (l, c) = ctx.index.line_col(cron.span().start);
                let (line, column) = (ctx.at)(l, c);
                match (text, duration) {
                    (Some(cron), Some(duration)) if !duration.is_zero() => {
                        Some(MaintenanceTime::Cron {
                            cron,
                            line,
                            column,
                            duration,
                        })
                    }
                    (_, Some(_)) => {
                        ctx.error(
                            d.span(),
                            "a maintenance window's duration must be more than 0",
                            None,
                        );
                        None
                    }
                    _ => None,
                }
            }
            (None, None, Some(s), Some(e)) => {
                let start = time(ctx, s, "start");
                let end = time(ctx, e, "end");
                match (start, end) {
                    (Some(start), Some(end)) if end > start => {
                        Some(MaintenanceTime::Fixed { start, end })
                    }
                    (Some(_), Some(_)) => {
                        ctx.error(
                            e.span(),
                            "a maintenance window must end after it starts",
                            Some(WHEN_HINT.into()),
                        );
                        None
                    }
                    _ => None,
                }
            }
            (Some(cron), None, _, _) => {
                ctx.error(
                    cron.span(),
                    "a cron maintenance window needs a duration",
                    Some(WHEN_HINT.into()),
                );
                None
            }
            _ => {
                ctx.error(
                    span.clone(),
                    "a maintenance window needs either cron + duration or start + end",
                    Some(WHEN_HINT.into()),
                );
                None
            }
        };
        let connection = m.connection.as_ref().and_then(|c| {
            let v = ctx.string(c)?;
            if connections.contains_key(&v) {
                Some(v)
            } else {
                let known: Vec<&str> = connections.keys().map(String::as_str).collect();
                ctx.error(
                    c.span(),
                    format!("unknown connection \"{v}\""),
                    Some(format!("connections: {}", known.join(", "))),
                );
                None
            }
        });
        let checks: Vec<String> = m.checks.iter().filter_map(|s| ctx.string(s)).collect();
        let tags: Vec<String> = m.tags.iter().filter_map(|s| ctx.string(s)).collect();
        let reason = m.reason.as_ref().and_then(|s| ctx.string(s));
        if ctx.diags.len() != before {
            continue;
        }
        if let (Some(name), Some(when)) = (name, when) {
            out.push(Maintenance {
                name,
                when,
                connection,
                checks,
                tags,
                reason,
                line,
            });
        }
    }
    out
}
