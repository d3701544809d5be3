//! One `.toml` check that uses a rule → [`Check`]: the rule's defaults merged under the
//! check's own keys, its `[params]` bound to the rule's templates (`rule.rs`), and the
//! reconciliation sides or history engine the rule asks for.

use super::fields::{FromRule, RawHeader, build, defined_connections, parse_raw};
use super::header::Header;
use super::rule::{self, Engine, Rule};
use super::{Check, HistoryEngine, Reconcile, Side};
use crate::config::{Config, Ctx, Dialect};
use crate::diag::Diagnostic;
use crate::model::{CheckId, Severity};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

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
    let position = |line, column| header.file_position(line, column);
    let mut ctx = Ctx::embedded(path, &header.toml, &position);
    let Some(mut raw) = parse_raw(&mut ctx, &header.toml) else {
        return Err(ctx.diags);
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
    merge_defaults(&mut raw, rule, &rule_name);

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
    build(ctx, &header, id, raw, config, from_rule)
}

/// Fills in the rule's defaults where the check says nothing; a default is reported at the
/// check's `rule = …`.
fn merge_defaults(raw: &mut RawHeader, rule: &Rule, rule_name: &Spanned<String>) {
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
        .take()
        .or_else(|| Some(at(d.category.as_str().to_string())));
    raw.description = raw
        .description
        .take()
        .or_else(|| Some(at(d.description.clone())));
    raw.severity = raw
        .severity
        .take()
        .or_else(|| d.severity.map(|s| at(s.to_string())));
    raw.on_no_data = raw
        .on_no_data
        .take()
        .or_else(|| d.on_no_data.clone().map(at));
}

/// The history engine of a rule check, from its bound parameters.
fn history_engine(rule: &Rule, p: &serde_json::Value) -> Option<HistoryEngine> {
    let sev = |name: &str, default: Severity| {
        p[name]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let num = |name: &str| p[name].as_f64().unwrap_or(0.0);
    match rule.def.engine {
        Engine::Volume => Some(HistoryEngine::Volume {
            min_history: p["min_history"].as_i64().unwrap_or(7).max(1) as usize,
            sensitivity: num("sensitivity"),
            day_of_week: p["seasonality"].as_str() == Some("day_of_week"),
            severity: sev("severity", Severity::P2),
        }),
        Engine::Schema => Some(HistoryEngine::Schema {
            severity: sev("severity", Severity::P1),
            added: p["added_severity"].as_str().and_then(|s| s.parse().ok()),
        }),
        _ => p["of"].as_str().map(|of| HistoryEngine::TrendOf {
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
    dialect: Dialect,
    config: &Config,
    ctx: &mut Ctx<'_>,
    span: Range<usize>,
) -> Option<Reconcile> {
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
    Some(Reconcile {
        source: Side {
            connection: sc,
            sql: sq,
        },
        target: Side {
            connection: tc,
            sql: tq,
        },
        tolerance_abs: bound["tolerance_abs"].as_f64().unwrap_or(0.0),
        tolerance_pct: bound["tolerance_pct"].as_f64().unwrap_or(0.0),
    })
}
