//! One `.sql` check file → [`Check`] or diagnostics at file lines (not lines of the
//! extracted TOML).

use super::header::{self, Header, MARKER};
use super::{Check, Judge, OnNoData, Schedule};
use crate::config::{Config, parse_duration};
use crate::diag::{Diagnostic, LineIndex};
use crate::model::{Category, CheckId, Op, Severity, Threshold};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

type Str = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    description: Option<Str>,
    connection: Option<Str>,
    schedule: Option<Str>,
    category: Option<Str>,
    #[serde(default)]
    owners: Vec<Str>,
    #[serde(default)]
    tags: Vec<Str>,
    #[serde(default)]
    impact: Vec<Str>,
    runbook: Option<Str>,
    #[serde(default)]
    keys: Vec<Str>,
    metric: Option<Str>,
    thresholds: Option<Spanned<BTreeMap<String, Str>>>,
    severity: Option<Str>,
    severity_column: Option<Str>,
    severity_map: Option<Spanned<BTreeMap<String, Str>>>,
    on_no_data: Option<Str>,
    open_after: Option<Spanned<i64>>,
    resolve_after: Option<Spanned<i64>>,
    error_after: Option<Spanned<i64>>,
    reopen_within: Option<Str>,
}

struct Ctx<'a> {
    path: &'a Path,
    header: &'a Header,
    index: LineIndex<'a>,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let (l, c) = self.index.line_col(span.start);
        let (line, column) = self.header.file_position(l, c);
        let mut d = Diagnostic::at(self.path, line, column, message);
        d.hint = hint;
        self.diags.push(d);
    }

    fn count(&mut self, n: Option<&Spanned<i64>>, what: &str, default: u32) -> u32 {
        match n {
            None => default,
            Some(v) if (1..=1000).contains(v.get_ref()) => *v.get_ref() as u32,
            Some(v) => {
                self.error(
                    v.span(),
                    format!("{what} must be between 1 and 1000, found {}", v.get_ref()),
                    None,
                );
                default
            }
        }
    }
}

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
    let limit = match rest.parse::<f64>() {
        Ok(n) if n.is_finite() => n,
        _ if rest.ends_with('%') => rest[..rest.len() - 1]
            .trim()
            .parse::<f64>()
            .map_err(|_| bad())?,
        _ => parse_duration(rest).map_err(|_| bad())?.as_secs_f64(),
    };
    Ok(Threshold {
        severity,
        op,
        limit,
        text: s.to_string(),
    })
}

/// Parses and validates one check file's text. `id` and `path` come from the catalog.
pub fn parse_check(
    id: CheckId,
    path: &Path,
    text: &str,
    config: &Config,
) -> Result<Check, Vec<Diagnostic>> {
    let Some(header) = header::split(text) else {
        return Err(vec![Diagnostic::at(path, 1, 1, format!("a check must start with the line `{MARKER}`"))
            .hint(format!("put `{MARKER}` on the first line, then the header as `-- key = value` lines, then the query"))]);
    };
    let mut ctx = Ctx {
        path,
        header: &header,
        index: LineIndex::new(&header.toml),
        diags: Vec::new(),
    };
    let raw: RawHeader = match toml::from_str(&header.toml) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().replace('\n', " ");
            let hint = message
                .starts_with("unknown field")
                .then(|| "remove the key or fix its spelling".to_string());
            ctx.error(span, message, hint);
            return Err(ctx.diags);
        }
    };

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
    let severity = raw.severity.as_ref().map(|s| {
        s.get_ref().parse::<Severity>().unwrap_or_else(|m| {
            ctx.error(s.span(), m, None);
            Severity::P2
        })
    });
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
    for owner in &raw.owners {
        if !crate::config::is_email(owner.get_ref()) {
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
    let mut lifecycle = crate::config::Lifecycle {
        open_after: ctx.count(raw.open_after.as_ref(), "open_after", defaults.open_after),
        resolve_after: ctx.count(
            raw.resolve_after.as_ref(),
            "resolve_after",
            defaults.resolve_after,
        ),
        error_after: ctx.count(
            raw.error_after.as_ref(),
            "error_after",
            defaults.error_after,
        ),
        reopen_within: defaults.reopen_within,
    };
    if let Some(r) = &raw.reopen_within {
        match parse_duration(r.get_ref()) {
            Ok(d) => lifecycle.reopen_within = d,
            Err(m) => ctx.error(r.span(), m, None),
        }
    }
    if header.query.trim().is_empty() {
        ctx.diags.push(
            Diagnostic::at(
                path,
                header.query_line,
                1,
                "the check has no query after its header",
            )
            .hint("write the SELECT after the `--` header lines"),
        );
    }

    if !ctx.diags.is_empty() {
        return Err(ctx.diags);
    }
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
        runbook,
        keys: strings(&raw.keys),
        judge,
        on_no_data,
        lifecycle,
        sql: header.query.clone(),
        sql_line: header.query_line,
    })
}

fn defined_connections(config: &Config) -> String {
    if config.connections.is_empty() {
        "the config defines no connections: add a [connections.NAME] table".into()
    } else {
        let names: Vec<&str> = config.connections.keys().map(String::as_str).collect();
        format!("defined connections: {}", names.join(", "))
    }
}

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
