//! One `.sql` check file → [`Check`] or diagnostics at file lines (not lines of the
//! extracted TOML).

use super::header::{self, Header, MARKER};
use super::rule::{self, Engine, Rule};
use super::{Check, Judge, OnNoData, Schedule};
use crate::config::{Config, DurationError, parse_duration, try_parse_duration};
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
    rule: Option<Str>,
    params: Option<Spanned<toml::Table>>,
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
    // See: issues/8 item 10 (an infinite or NaN limit never breaches; a huge duration
    // panicked).
    let (limit, unit) = match rest.parse::<f64>() {
        Ok(n) if n.is_finite() => (n, crate::model::Unit::Number),
        _ if rest.ends_with('%') => (
            rest[..rest.len() - 1]
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(bad)?,
            crate::model::Unit::Percent,
        ),
        _ => match try_parse_duration(rest) {
            Ok(d) => (d.as_secs_f64(), crate::model::Unit::Seconds),
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
        text: s.to_string(),
    })
}

/// What a rule contributes to a check: its name, SQL and the reconciliation sides.
struct FromRule {
    name: String,
    sql: String,
    reconcile: Option<super::Reconcile>,
    history: Option<super::HistoryEngine>,
}

fn toml_error(ctx: &mut Ctx<'_>, e: &toml::de::Error) {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim().replace('\n', " ");
    let hint = message
        .starts_with("unknown field")
        .then(|| "remove the key or fix its spelling".to_string());
    ctx.error(span, message, hint);
}

/// Parses and validates one `.sql` check file's text. `id` and `path` come from the catalog.
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
            toml_error(&mut ctx, &e);
            return Err(ctx.diags);
        }
    };
    if let Some(r) = &raw.rule {
        ctx.error(
            r.span(),
            "`rule` belongs in a .toml check",
            Some("move the rule check to a .toml file (rule = \"…\", [params]); a .sql check is its own query".into()),
        );
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
    build(ctx, id, raw, config, None)
}

/// Parses and validates a `.toml` check that uses a rule.
pub fn parse_rule_check(
    id: CheckId,
    path: &Path,
    text: &str,
    config: &Config,
    rules: &BTreeMap<String, Rule>,
) -> Result<Check, Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header = Header {
        toml: text.to_string(),
        first_line: 1,
        strip: vec![0; text.lines().count() + 1],
        query: String::new(),
        query_line: 1,
    };
    let mut ctx = Ctx {
        path,
        header: &header,
        index: LineIndex::new(&header.toml),
        diags: Vec::new(),
    };
    let mut raw: RawHeader = match toml::from_str(&header.toml) {
        Ok(r) => r,
        Err(e) => {
            toml_error(&mut ctx, &e);
            return Err(ctx.diags);
        }
    };
    let Some(rule_name) = raw.rule.clone() else {
        ctx.diags.push(
            Diagnostic::at(path, 1, 1, "a .toml check needs `rule = \"NAME\"`")
                .hint(known_rules(rules)),
        );
        return Err(ctx.diags);
    };
    let Some(rule) = rules.get(rule_name.get_ref()) else {
        ctx.error(
            rule_name.span(),
            format!("unknown rule \"{}\"", rule_name.get_ref()),
            Some(known_rules(rules)),
        );
        return Err(ctx.diags);
    };
    // The rule's defaults, where the check says nothing.
    let d = &rule.def;
    let at = |v: String| Spanned::new(rule_name.span(), v);
    if raw.metric.is_none() && raw.severity_column.is_none() {
        raw.metric = d.metric.clone().map(at);
    }
    if raw.thresholds.is_none() && raw.severity_column.is_none() && !d.thresholds.is_empty() {
        raw.thresholds = Some(Spanned::new(
            rule_name.span(),
            d.thresholds
                .iter()
                .map(|(k, v)| (k.clone(), at(v.clone())))
                .collect(),
        ));
    }
    if raw.severity_column.is_none() && raw.thresholds.is_none() {
        raw.severity_column = d.severity_column.clone().map(at);
        if !d.severity_map.is_empty() {
            raw.severity_map = Some(Spanned::new(
                rule_name.span(),
                d.severity_map
                    .iter()
                    .map(|(k, v)| (k.clone(), at(v.clone())))
                    .collect(),
            ));
        }
    }
    if raw.keys.is_empty() {
        raw.keys = d.keys.iter().cloned().map(at).collect();
    }
    raw.category = raw
        .category
        .or_else(|| Some(at(d.category.as_str().to_string())));
    raw.description = raw.description.or_else(|| Some(at(d.description.clone())));
    raw.severity = raw
        .severity
        .or_else(|| d.severity.map(|s| at(s.to_string())));
    raw.on_no_data = raw.on_no_data.or_else(|| d.on_no_data.clone().map(at));

    let dialect = raw
        .connection
        .as_ref()
        .and_then(|c| config.connections.get(c.get_ref()))
        .or_else(|| {
            (config.connections.len() == 1)
                .then(|| config.connections.values().next())
                .flatten()
        })
        .map(|c| c.dialect);
    let params = raw
        .params
        .clone()
        .unwrap_or_else(|| Spanned::new(0..0, toml::Table::new()));
    let from_rule = match dialect.map(|dl| rule::bind(rule, params.get_ref(), dl).map(|p| (dl, p)))
    {
        Some(Ok((dl, bound))) => {
            let reconcile = (rule.def.engine == Engine::Reconcile)
                .then(|| reconcile_spec(&bound, dl, config, &mut ctx, params.span()));
            let sql = match &reconcile {
                Some(Some(r)) => r.source.sql.clone(),
                Some(None) => String::new(),
                None => rule::render(rule, dl, &bound).unwrap_or_else(|m| {
                    ctx.error(rule_name.span(), m, None);
                    String::new()
                }),
            };
            Some(FromRule {
                name: rule.name.clone(),
                sql,
                reconcile: reconcile.flatten(),
                history: history_engine(rule, &bound),
            })
        }
        Some(Err(errs)) => {
            for (name, message) in errs {
                // Point at the parameter when the check gives it, else at [params].
                let span = params
                    .get_ref()
                    .get(&name)
                    .and_then(|_| find_key(text, &name))
                    .unwrap_or_else(|| params.span());
                let doc = rule
                    .def
                    .params
                    .get(&name)
                    .map(|p| p.doc.clone())
                    .filter(|d| !d.is_empty());
                ctx.error(span, message, doc);
            }
            None
        }
        None => None, // the connection error is reported by `build`
    };
    build(ctx, id, raw, config, from_rule)
}

/// The history engine of a rule check, from its bound parameters.
fn history_engine(rule: &Rule, p: &serde_json::Value) -> Option<super::HistoryEngine> {
    let sev = |name: &str, default: Severity| {
        p[name]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let num = |name: &str| p[name].as_f64().unwrap_or(0.0);
    match rule.def.engine {
        Engine::Volume => Some(super::HistoryEngine::Volume {
            min_history: p["min_history"].as_i64().unwrap_or(7).max(1) as usize,
            sensitivity: num("sensitivity"),
            day_of_week: p["seasonality"].as_str() == Some("day_of_week"),
            severity: sev("severity", Severity::P2),
        }),
        Engine::Schema => Some(super::HistoryEngine::Schema {
            severity: sev("severity", Severity::P1),
            added: p["added_severity"].as_str().and_then(|s| s.parse().ok()),
        }),
        _ => p["of"].as_str().map(|of| super::HistoryEngine::TrendOf {
            of: CheckId(of.to_string()),
            high: (
                num("drop_high_pct_day"),
                num("drop_high_pct_week"),
                sev("high_severity", Severity::P1),
            ),
            medium: (
                num("drop_medium_pct_day"),
                num("drop_medium_pct_week"),
                sev("medium_severity", Severity::P2),
            ),
        }),
    }
}

fn known_rules(rules: &BTreeMap<String, Rule>) -> String {
    format!(
        "rules: {}",
        rules
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The byte offset of `name = …` in a TOML text (for parameter diagnostics).
fn find_key(text: &str, name: &str) -> Option<Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(name) && t[name.len()..].trim_start().starts_with('=') {
            let start = offset + (line.len() - t.len());
            return Some(start..start + name.len());
        }
        offset += line.len();
    }
    None
}

fn reconcile_spec(
    bound: &serde_json::Value,
    dialect: crate::config::Dialect,
    config: &Config,
    ctx: &mut Ctx<'_>,
    span: Range<usize>,
) -> Option<super::Reconcile> {
    let side = |v: &serde_json::Value| -> (Option<String>, String) {
        let conn = v["connection"].as_str().map(str::to_string);
        let d = conn
            .as_ref()
            .and_then(|c| config.connections.get(c))
            .map_or(dialect, |c| c.dialect);
        (conn, rule::side_query(v, d))
    };
    let (sc, sq) = side(&bound["source"]);
    let (tc, tq) = side(&bound["target"]);
    for c in [&sc, &tc].into_iter().flatten() {
        if !config.connections.contains_key(c) {
            ctx.error(
                span,
                format!("unknown connection \"{c}\" in a reconciliation side"),
                Some(defined_connections(config)),
            );
            return None;
        }
    }
    Some(super::Reconcile {
        source: super::Side {
            connection: sc,
            sql: sq,
        },
        target: super::Side {
            connection: tc,
            sql: tq,
        },
        tolerance_abs: bound["tolerance_abs"].as_f64().unwrap_or(0.0),
        tolerance_pct: bound["tolerance_pct"].as_f64().unwrap_or(0.0),
    })
}

fn build(
    mut ctx: Ctx<'_>,
    id: CheckId,
    raw: RawHeader,
    config: &Config,
    from_rule: Option<FromRule>,
) -> Result<Check, Vec<Diagnostic>> {
    let path = ctx.path;
    let header = ctx.header;
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
        sql: from_rule
            .as_ref()
            .map_or_else(|| header.query.clone(), |r| r.sql.clone()),
        sql_line: header.query_line,
        rule: from_rule.as_ref().map(|r| r.name.clone()),
        history: from_rule.as_ref().and_then(|r| r.history.clone()),
        reconcile: from_rule.and_then(|r| r.reconcile),
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
