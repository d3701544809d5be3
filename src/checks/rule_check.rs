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
                fuse: match rule::render_fused(rule, dl, &bound) {
                    Some(Ok(f)) => Some(f),
                    Some(Err(m)) => {
                        ctx.error(rule_name.span(), m, None);
                        None
                    }
                    None => None,
                },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Judge;
    use crate::checks::fields::test_support::{config, show};
    use crate::model::{Category, Op};
    use indoc::indoc;
    use test_case::test_case;

    fn parse_in(text: &str, connections: &[&str]) -> Result<Check, Vec<String>> {
        let config = config(connections);
        let rules = rule::load_rules(None).unwrap();
        parse_rule_check(
            CheckId("r".into()),
            Path::new("checks/r.toml"),
            text,
            &config,
            &rules,
        )
        .map_err(|ds| ds.iter().map(show).collect())
    }

    fn ok(text: &str) -> Check {
        parse_in(text, &["warehouse"]).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    fn errors(text: &str) -> Vec<String> {
        parse_in(text, &["warehouse"]).unwrap_err()
    }

    const RULES: &str = "rules: duplicate_rows, failure_rate_spike, freshness_lag, missing_partition, reconciliation_gap, schema_change, trend_risk, volume_anomaly";

    const FRESHNESS: &str = indoc! {r#"
        rule = "freshness_lag"
        [params]
        table = "public.orders"
        timestamp_column = "loaded_at"
    "#};

    #[test]
    fn a_rule_check_takes_the_rule_defaults() {
        let check = ok(FRESHNESS);
        assert_eq!(check.rule.as_deref(), Some("freshness_lag"));
        assert_eq!(check.category, Category::StaleData);
        assert_eq!(
            check.description.as_deref(),
            Some("Data is updated at least as often as the thresholds say")
        );
        assert_eq!(check.keys, ["dataset"]);
        assert_eq!(check.connection, "warehouse");
        let Judge::Thresholds { metric, levels } = &check.judge else {
            panic!("{:?}", check.judge)
        };
        assert_eq!(metric, "lag_seconds");
        assert_eq!(
            levels
                .iter()
                .map(|l| (l.severity, l.op, l.limit, &*l.text))
                .collect::<Vec<_>>(),
            [(Severity::P2, Op::Gt, 86_400.0, "> 24h")]
        );
        assert!(check.sql.contains("\"public\".\"orders\""), "{}", check.sql);
        assert!(check.sql.contains("\"loaded_at\""), "{}", check.sql);
        assert_eq!(check.sql_line, 1);
        assert_eq!((check.reconcile, check.history), (None, None));
    }

    #[test]
    fn the_checks_own_keys_win_over_the_rule_defaults() {
        let check = ok(indoc! {r#"
            rule = "freshness_lag"
            description = "Orders are fresh"
            category = "missing_data"
            keys = ["region"]
            on_no_data = "pass"
            [thresholds]
            P1 = "> 2d"
            [params]
            table = "orders"
            timestamp_column = "loaded_at"
        "#});
        assert_eq!(check.description.as_deref(), Some("Orders are fresh"));
        assert_eq!(check.category, Category::MissingData);
        assert_eq!(check.keys, ["region"]);
        assert_eq!(check.on_no_data, crate::checks::OnNoData::Pass);
        let Judge::Thresholds { metric, levels } = &check.judge else {
            panic!("{:?}", check.judge)
        };
        assert_eq!(metric, "lag_seconds");
        assert_eq!(
            levels.iter().map(|l| l.limit).collect::<Vec<_>>(),
            [172_800.0]
        );
    }

    #[test]
    fn a_severity_map_rule_and_its_history_engine() {
        let check = ok("rule = \"schema_change\"\n[params]\ntable = \"orders\"\n");
        let Judge::SeverityMap { column, map, .. } = &check.judge else {
            panic!("{:?}", check.judge)
        };
        assert_eq!(column, "status");
        assert_eq!(map.len(), 5);
        assert_eq!(
            check.history,
            Some(HistoryEngine::Schema {
                severity: Severity::P1,
                added: Some(Severity::P3),
            })
        );
    }

    #[test]
    fn a_reconciliation_has_two_sides() {
        let check = ok(indoc! {r#"
            rule = "reconciliation_gap"
            [params]
            source = { query = "SELECT k, v FROM a" }
            target = { connection = "warehouse", query = "SELECT k, v FROM b" }
            tolerance_abs = 2
        "#});
        let r = check.reconcile.unwrap();
        assert_eq!(r.source.connection, None);
        assert_eq!(r.target.connection.as_deref(), Some("warehouse"));
        assert_eq!(check.sql, r.source.sql);
        assert_eq!((r.tolerance_abs, r.tolerance_pct), (2.0, 0.0));
    }

    #[test_case("", &[&format!("checks/r.toml:1:1: a .toml check needs `rule = \"NAME\"` (hint: {RULES})")] ; "empty file")]
    #[test_case("[params]\ntable = \"t\"\n", &[&format!("checks/r.toml:1:1: a .toml check needs `rule = \"NAME\"` (hint: {RULES})")] ; "no rule")]
    #[test_case("rule = \"freshnes_lag\"\n", &[&format!("checks/r.toml:1:8: unknown rule \"freshnes_lag\" (hint: {RULES})")] ; "unknown rule")]
    #[test_case("\u{feff}description = \"d\"\r\nrule = \"nope\"\r\n", &[&format!("checks/r.toml:2:8: unknown rule \"nope\" (hint: {RULES})")] ; "unknown rule after a bom and crlf")]
    #[test_case("rule = freshness_lag\n", &["checks/r.toml:1:8: invalid boolean, expected `false`"] ; "an unquoted name")]
    #[test_case("rule = 1\n", &["checks/r.toml:1:8: invalid type: integer `1`, expected a string"] ; "rule not a string")]
    #[test_case("rule = \"freshness_lag\"\nparams = 1\n", &["checks/r.toml:2:10: invalid type: integer `1`, expected a map"] ; "params not a table")]
    #[test_case("rules = \"freshness_lag\"\n", &["checks/r.toml:1:1: unknown field `rules`, expected one of `description`, `connection`, `schedule`, `category`, `owners`, `tags`, `impact`, `runbook`, `keys`, `metric`, `thresholds`, `severity`, `severity_column`, `severity_map`, `on_no_data`, `open_after`, `resolve_after`, `error_after`, `reopen_within`, `open_window`, `flap`, `due`, `group_keys`, `max_bytes_billed`, `rule`, `fuse`, `params` (hint: remove the key or fix its spelling)"] ; "unknown key")]
    fn a_rule_check_names_a_known_rule(text: &str, want: &[&str]) {
        assert_eq!(errors(text), want);
    }

    #[test_case(indoc! {r#"
        rule = "freshness_lag"
        [params]
        table = "orders"
        timestamp_column = "loaded_at"
        column = "x"
    "#}, &["checks/r.toml:5:1: unknown parameter \"column\" for rule freshness_lag (parameters: key_column, table, timestamp_column, where)"] ; "unknown parameter")]
    #[test_case(indoc! {r#"
        rule = "freshness_lag"
        [params]
        table = "orders"
    "#}, &["checks/r.toml:2:1: rule freshness_lag needs parameter \"timestamp_column\": when a row was loaded or updated (hint: when a row was loaded or updated)"] ; "missing parameter")]
    #[test_case("rule = \"freshness_lag\"\n", &["checks/r.toml:1:1: rule freshness_lag needs parameter \"table\": the table (schema.table) (hint: the table (schema.table))", "checks/r.toml:1:1: rule freshness_lag needs parameter \"timestamp_column\": when a row was loaded or updated (hint: when a row was loaded or updated)"] ; "no params at all")]
    #[test_case(indoc! {r#"
        rule = "freshness_lag"
        [params]
        table = 5
        timestamp_column = "loaded_at"
    "#}, &["checks/r.toml:3:1: parameter \"table\": expected a name, found integer (hint: the table (schema.table))"] ; "ill-typed identifier")]
    #[test_case(indoc! {r#"
        rule = "freshness_lag"
        [params]
        table = "orders; DROP TABLE x"
        timestamp_column = "loaded_at"
    "#}, &["checks/r.toml:3:1: parameter \"table\": \"orders; DROP TABLE x\" is not a valid identifier: use letters, digits and _ (schema.table at most) (hint: the table (schema.table))"] ; "an identifier with a semicolon")]
    #[test_case(indoc! {r#"
        rule = "freshness_lag"
        [params]
        table = "orders"
        timestamp_column = "loaded_at"
        where = "1 = 1; DROP TABLE orders"
    "#}, &["checks/r.toml:5:1: parameter \"where\": a condition may not contain `;`, `--` or `/*` (hint: only rows matching this condition)"] ; "a where with a semicolon")]
    #[test_case(indoc! {r#"
        rule = "freshness_lag"
        [params]
          table = "orders"
          timestamp_column = "loaded_at"
          where = "x -- y"
    "#}, &["checks/r.toml:5:3: parameter \"where\": a condition may not contain `;`, `--` or `/*` (hint: only rows matching this condition)"] ; "an indented where with a comment")]
    #[test_case(indoc! {r#"
        rule = "missing_partition"
        [params]
        table = "orders"
        partition_column = "day"
        lookback = 7
        granularity = "week"
        min_rows = "one"
    "#}, &[
        "checks/r.toml:6:1: parameter \"granularity\": \"week\" is not one of day, hour (hint: partition size)",
        "checks/r.toml:5:1: parameter \"lookback\": expected a duration such as \"48h\", found integer (hint: how far back to look, e.g. \"7d\" or \"48h\"; the current, unfinished partition is not checked)",
        "checks/r.toml:7:1: parameter \"min_rows\": expected a whole number, found string (hint: fewer rows than this is an underfilled partition)",
    ] ; "ill-typed duration choice and integer")]
    #[test_case(indoc! {r#"
        rule = "schema_change"
        [params]
        table = "orders"
        table_pattern = "orders_%"
    "#}, &["checks/r.toml:3:1: rule schema_change needs exactly one of these parameter groups: table | table_pattern (hint: the table (schema.table))"] ; "two parameter groups")]
    #[test_case(indoc! {r#"
        rule = "reconciliation_gap"
        [params]
        source = { connection = "nope", query = "SELECT k, v FROM a" }
        target = { query = "SELECT k, v FROM b" }
    "#}, &["checks/r.toml:2:1: unknown connection \"nope\" in a reconciliation side (hint: defined connections: warehouse)"] ; "a side on an unknown connection")]
    fn bad_parameters_are_reported_at_their_key(text: &str, want: &[&str]) {
        assert_eq!(errors(text), want);
    }

    #[test]
    fn shared_keys_are_checked_as_in_a_sql_check() {
        let text = indoc! {r#"
            rule = "freshness_lag"
            connection = "nope"
            severity = "P9"
            [params]
            table = "orders"
            timestamp_column = "loaded_at"
        "#};
        assert_eq!(
            errors(text),
            [
                "checks/r.toml:2:14: unknown connection \"nope\" (hint: defined connections: warehouse)",
                "checks/r.toml:3:12: unknown severity \"P9\" (expected P0, P1, P2 or P3)",
            ]
        );
    }

    #[test]
    fn without_a_connection_among_several_the_parameters_are_not_bound() {
        assert_eq!(
            parse_in(FRESHNESS, &["a", "b"]).unwrap_err(),
            [
                "checks/r.toml:1:1: the header names no connection (hint: add `-- connection = \"NAME\"`; defined connections: a, b)"
            ]
        );
    }
}
