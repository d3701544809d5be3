//! The header keys `.sql` and `.toml` checks share (`connection`, `schedule`, `metric`,
//! `[thresholds]`, `on_no_data`, lifecycle counts, …): their raw form and their validation
//! into a [`Check`]. Knows nothing of where the keys were written.

use super::header::Header;
use super::{Check, HistoryEngine, Judge, OnNoData, Reconcile, Schedule, parse_threshold};
use crate::config::{Config, Ctx, Lifecycle, Noise, is_email, parse_duration};
use crate::diag::Diagnostic;
use crate::model::{Category, CheckId, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub(super) type Str = Spanned<String>;

/// Every key a check may set: a `.sql` header's TOML, or a `.toml` rule check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    pub(super) description: Option<Str>,
    pub(super) connection: Option<Str>,
    pub(super) schedule: Option<Str>,
    pub(super) category: Option<Str>,
    #[serde(default)]
    pub(super) owners: Vec<Str>,
    #[serde(default)]
    pub(super) tags: Vec<Str>,
    #[serde(default)]
    pub(super) impact: Vec<Str>,
    pub(super) runbook: Option<Str>,
    #[serde(default)]
    pub(super) keys: Vec<Str>,
    pub(super) metric: Option<Str>,
    pub(super) thresholds: Option<Spanned<BTreeMap<String, Str>>>,
    pub(super) severity: Option<Str>,
    pub(super) severity_column: Option<Str>,
    pub(super) severity_map: Option<Spanned<BTreeMap<String, Str>>>,
    pub(super) on_no_data: Option<Str>,
    pub(super) open_after: Option<Spanned<i64>>,
    pub(super) resolve_after: Option<Spanned<i64>>,
    pub(super) error_after: Option<Spanned<i64>>,
    pub(super) reopen_within: Option<Str>,
    pub(super) open_window: Option<Str>,
    pub(super) flap: Option<Str>,
    pub(super) due: Option<Str>,
    pub(super) group_keys: Option<Spanned<i64>>,
    pub(super) max_bytes_billed: Option<Str>,
    pub(super) rule: Option<Str>,
    pub(super) fuse: Option<Spanned<bool>>,
    pub(super) params: Option<Spanned<toml::Table>>,
}

/// What a rule contributes to a check: its name, SQL, reconciliation and history engine.
pub(super) struct FromRule {
    pub(super) name: String,
    pub(super) sql: String,
    pub(super) reconcile: Option<Reconcile>,
    pub(super) history: Option<HistoryEngine>,
    pub(super) fuse: Option<super::fuse::Fusable>,
}

/// Parses the check's TOML; a syntax, type or unknown-key error is reported through `ctx`.
pub(super) fn parse_raw(ctx: &mut Ctx<'_>, toml_text: &str) -> Option<RawHeader> {
    toml::from_str(toml_text)
        .map_err(|e| ctx.toml_error(&e))
        .ok()
}

/// A lifecycle count (`open_after`, …): 1 to 1000, else reported and the config's default.
fn count(ctx: &mut Ctx<'_>, n: Option<&Spanned<i64>>, what: &str, default: u32) -> u32 {
    n.map_or(Some(default), |v| {
        ctx.positive(v, what, 1000).map(|v| v as u32)
    })
    .unwrap_or(default)
}

/// Validates the shared keys into a [`Check`]; `header` gives the query and its line, and
/// `from_rule` what a rule contributes.
pub(super) fn build(
    mut ctx: Ctx<'_>,
    header: &Header,
    id: CheckId,
    raw: RawHeader,
    config: &Config,
    from_rule: Option<FromRule>,
) -> Result<Check, Vec<Diagnostic>> {
    let path = ctx.path;
    let connection = match &raw.connection {
        Some(c) if config.connections.contains_key(c.get_ref()) => c.get_ref().clone(),
        Some(c) => {
            ctx.error(
                c.span(),
                format!("unknown connection \"{}\"", c.get_ref()),
                Some(defined_connections(config)),
            );
            String::new()
        }
        None if config.connections.len() == 1 => config
            .connections
            .keys()
            .next()
            .cloned()
            .unwrap_or_default(),
        None => {
            ctx.diags.push(
                Diagnostic::at(path, 1, 1, "the header names no connection").hint(format!(
                    "add `-- connection = \"NAME\"`; {}",
                    defined_connections(config)
                )),
            );
            String::new()
        }
    };

    let schedule = raw.schedule.as_ref().and_then(|s| {
        Schedule::parse(s.get_ref())
            .map_err(|e| ctx.error(s.span(), e.message, Some(e.hint)))
            .ok()
    });
    let category = match &raw.category {
        None => Category::QualityDegradation,
        Some(c) => c.get_ref().parse().unwrap_or_else(|m| {
            ctx.error(c.span(), m, None);
            Category::QualityDegradation
        }),
    };
    let severity = raw
        .severity
        .as_ref()
        .map(|s| ctx.severity(s).unwrap_or(Severity::P2));
    let runbook = raw.runbook.as_ref().map(|r| {
        if !(r.get_ref().starts_with("https://") || r.get_ref().starts_with("http://")) {
            ctx.error(
                r.span(),
                format!("runbook \"{}\" is not an http(s) link", r.get_ref()),
                Some("e.g. \"https://wiki.example.com/runbooks/x\"".into()),
            );
        }
        r.get_ref().clone()
    });
    let max_bytes_billed = raw.max_bytes_billed.as_ref().and_then(|b| {
        crate::config::parse_bytes(b.get_ref())
            .map_err(|m| ctx.error(b.span(), m, Some("e.g. \"500MB\" or \"2GiB\"".into())))
            .ok()
    });
    for owner in &raw.owners {
        if !is_email(owner.get_ref()) {
            ctx.error(
                owner.span(),
                format!("owner \"{}\" is not an email address", owner.get_ref()),
                None,
            );
        }
    }
    let judge = judge(&mut ctx, &raw, severity);
    let on_no_data = match raw
        .on_no_data
        .as_ref()
        .map(|s| (s.span(), s.get_ref().as_str()))
    {
        None | Some((_, "error")) => OnNoData::Error,
        Some((_, "pass")) => OnNoData::Pass,
        Some((span, other)) => other
            .parse::<Severity>()
            .map(OnNoData::Breach)
            .unwrap_or_else(|_| {
                ctx.error(
                    span,
                    format!("invalid on_no_data \"{other}\""),
                    Some("use \"error\" (default), \"pass\", or a severity such as \"P2\"".into()),
                );
                OnNoData::Error
            }),
    };
    let defaults = config.incidents;
    let mut lifecycle = Lifecycle {
        open_after: count(
            &mut ctx,
            raw.open_after.as_ref(),
            "open_after",
            defaults.open_after,
        ),
        resolve_after: count(
            &mut ctx,
            raw.resolve_after.as_ref(),
            "resolve_after",
            defaults.resolve_after,
        ),
        error_after: count(
            &mut ctx,
            raw.error_after.as_ref(),
            "error_after",
            defaults.error_after,
        ),
        ..defaults
    };
    if let Some(r) = &raw.reopen_within {
        match parse_duration(r.get_ref()) {
            Ok(d) => lifecycle.reopen_within = d,
            Err(m) => ctx.error(r.span(), m, None),
        }
    }
    ctx.noise(
        &mut lifecycle,
        Noise {
            open_window: raw.open_window.as_ref(),
            flap: raw.flap.as_ref(),
            due: raw.due.as_ref(),
            group_keys: raw.group_keys.as_ref(),
        },
    );
    if let (Some(f), None) = (&raw.fuse, &from_rule) {
        ctx.error(
            f.span(),
            "`fuse` applies to rule checks only: a .sql check always runs its own query",
            Some("remove the line".into()),
        );
    }
    if !ctx.diags.is_empty() {
        return Err(ctx.diags);
    }
    let fuse = from_rule
        .as_ref()
        .and_then(|r| r.fuse.clone())
        .filter(|_| raw.fuse.as_ref().is_none_or(|f| *f.get_ref()));
    let strings = |v: &[Str]| v.iter().map(|s| s.get_ref().clone()).collect::<Vec<_>>();
    Ok(Check {
        id,
        path: path.to_path_buf(),
        description: raw.description.map(Spanned::into_inner),
        connection,
        schedule,
        category,
        owners: strings(&raw.owners),
        tags: strings(&raw.tags),
        impact: strings(&raw.impact),
        min_severity: raw
            .impact
            .iter()
            .filter_map(|i| config.impacts.get(i.get_ref())?.min_severity)
            .min(),
        runbook,
        max_bytes_billed,
        keys: strings(&raw.keys),
        judge,
        on_no_data,
        lifecycle,
        sql: from_rule
            .as_ref()
            .map_or_else(|| header.query.clone(), |r| r.sql.clone()),
        sql_line: header.query_line,
        rule: from_rule.as_ref().map(|r| r.name.clone()),
        history: from_rule.as_ref().and_then(|r| r.history.clone()),
        reconcile: from_rule.and_then(|r| r.reconcile),
        fuse,
    })
}

/// The hint for a connection problem: the names the config defines.
pub(super) fn defined_connections(config: &Config) -> String {
    if config.connections.is_empty() {
        "the config defines no connections: add a [connections.NAME] table".into()
    } else {
        let names: Vec<&str> = config.connections.keys().map(String::as_str).collect();
        format!("defined connections: {}", names.join(", "))
    }
}

/// How the check's rows are judged: `[thresholds]`, `severity_column` + `[severity_map]`, or
/// every row a failure.
fn judge(ctx: &mut Ctx<'_>, raw: &RawHeader, severity: Option<Severity>) -> Judge {
    let metric = raw.metric.as_ref().map(|m| m.get_ref().clone());
    match (&raw.thresholds, &raw.severity_column, &raw.severity_map) {
        (Some(t), None, None) => {
            let mut levels = Vec::new();
            for (name, text) in t.get_ref() {
                let Ok(sev) = name.parse::<Severity>() else {
                    ctx.error(
                        text.span(),
                        format!("unknown severity {name} in [thresholds]"),
                        Some("levels are P0, P1, P2 and P3".into()),
                    );
                    continue;
                };
                match parse_threshold(sev, text.get_ref()) {
                    Ok(th) => levels.push(th),
                    Err(m) => ctx.error(text.span(), m, None),
                }
            }
            if levels.is_empty() && ctx.diags.is_empty() {
                ctx.error(
                    t.span(),
                    "[thresholds] is empty",
                    Some("add a level such as P2 = \"> 100\"".into()),
                );
            }
            levels.sort_by_key(|l| l.severity);
            if metric.is_none() {
                ctx.error(
                    t.span(),
                    "[thresholds] needs a metric column",
                    Some(
                        "add `-- metric = \"COLUMN\"` naming the numeric column to compare".into(),
                    ),
                );
            }
            Judge::Thresholds {
                metric: metric.unwrap_or_default(),
                levels,
            }
        }
        (None, Some(col), Some(map)) => {
            let mut entries = Vec::new();
            for (label, value) in map.get_ref() {
                match value.get_ref().as_str() {
                    "pass" => entries.push((label.clone(), None)),
                    v => match v.parse::<Severity>() {
                        Ok(s) => entries.push((label.clone(), Some(s))),
                        Err(_) => ctx.error(
                            value.span(),
                            format!("invalid severity \"{v}\" for label {label}"),
                            Some("map each label to P0, P1, P2, P3 or \"pass\"".into()),
                        ),
                    },
                }
            }
            Judge::SeverityMap {
                column: col.get_ref().clone(),
                metric,
                map: entries,
            }
        }
        (None, None, None) => match &raw.metric {
            Some(m) => {
                ctx.error(m.span(), format!("metric \"{}\" has no [thresholds]", m.get_ref()), Some("add a [thresholds] table, e.g. `-- [thresholds]` then `-- P2 = \"> 100\"`; or drop metric so that every returned row is a failure".into()));
                Judge::RowsFail {
                    severity: Severity::P2,
                }
            }
            None => Judge::RowsFail {
                severity: severity.unwrap_or(Severity::P2),
            },
        },
        (Some(t), _, _) => {
            ctx.error(
                t.span(),
                "use either [thresholds] or severity_column with [severity_map], not both",
                None,
            );
            Judge::RowsFail {
                severity: Severity::P2,
            }
        }
        (None, Some(col), None) => {
            ctx.error(
                col.span(),
                "severity_column needs a [severity_map]",
                Some(
                    "e.g. `-- [severity_map]` then `-- HIGH = \"P1\"` and `-- LOW = \"pass\"`"
                        .into(),
                ),
            );
            Judge::RowsFail {
                severity: Severity::P2,
            }
        }
        (None, None, Some(map)) => {
            ctx.error(
                map.span(),
                "[severity_map] needs a severity_column",
                Some("add `-- severity_column = \"COLUMN\"`".into()),
            );
            Judge::RowsFail {
                severity: Severity::P2,
            }
        }
    }
}

/// Helpers for the parsers' unit tests: a config and a one-line rendering of a diagnostic.
#[cfg(test)]
pub(super) mod test_support {
    use crate::config::Config;
    use crate::diag::Diagnostic;
    use std::path::Path;

    /// A config defining `connections` (SQLite files, which are not opened).
    pub(crate) fn config(connections: &[&str]) -> Config {
        let text: String = connections
            .iter()
            .map(|c| format!("[connections.{c}]\nurl = \"sqlite://{c}.db\"\n"))
            .collect();
        crate::config::parse(Path::new("dqwatch.toml"), &text, &|_| None).unwrap()
    }

    /// `path:line:column: message (hint: …)`, every field of the diagnostic.
    pub(crate) fn show(d: &Diagnostic) -> String {
        let hint = d
            .hint
            .as_ref()
            .map_or(String::new(), |h| format!(" (hint: {h})"));
        format!(
            "{}:{}:{}: {}{hint}",
            d.path.display(),
            d.line,
            d.column,
            d.message
        )
    }
}
