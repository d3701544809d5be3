//! Built-in (and `rules_dir`) detection rules: `sql/rules/<rule>/rule.toml` declares the
//! parameters, and `postgres.sql`, `mysql.sql`, `sqlite.sql`, `snowflake.sql` and
//! `bigquery.sql` are handlebars templates (one per dialect) that
//! receive only validated values — identifiers quoted for the dialect, numbers, durations in
//! seconds, and string literals escaped — so that no parameter can inject SQL.

use crate::config::{Dialect, parse_duration};
use crate::model::{Category, Severity};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// A built-in rule: name, `rule.toml`, then the templates in [`DIALECTS`] order, then the
/// fused-scan templates in the same order (empty: the rule is not fused).
type Builtin = (
    &'static str,
    &'static str,
    [&'static str; 5],
    [&'static str; 5],
);

/// Every dialect, in the order of [`Rule`]'s templates.
pub const DIALECTS: [Dialect; 5] = [
    Dialect::Postgres,
    Dialect::Mysql,
    Dialect::Sqlite,
    Dialect::Snowflake,
    Dialect::Bigquery,
];

macro_rules! builtin {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../sql/rules/", $name, "/rule.toml")),
            [
                include_str!(concat!("../../sql/rules/", $name, "/postgres.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/mysql.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/sqlite.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/snowflake.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/bigquery.sql")),
            ],
            [""; 5],
        )
    };
    ($name:literal, fused) => {
        (
            $name,
            include_str!(concat!("../../sql/rules/", $name, "/rule.toml")),
            builtin!($name).2,
            [
                include_str!(concat!("../../sql/rules/", $name, "/postgres.fused.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/mysql.fused.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/sqlite.fused.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/snowflake.fused.sql")),
                include_str!(concat!("../../sql/rules/", $name, "/bigquery.fused.sql")),
            ],
        )
    };
}

/// The rules shipped in the binary.
pub const BUILTIN: &[Builtin] = &[
    builtin!("missing_partition"),
    builtin!("reconciliation_gap"),
    builtin!("freshness_lag", fused),
    builtin!("failure_rate_spike", fused),
    builtin!("trend_risk"),
    builtin!("duplicate_rows"),
    builtin!("volume_anomaly", fused),
    builtin!("schema_change"),
];

/// How a rule's rows are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// One query on the check's connection.
    Sql,
    /// Two queries (source, target), possibly on two connections, joined by key in dqwatch.
    Reconcile,
    /// A count per key, judged against its own stored history (robust z-score).
    Volume,
    /// Columns and types, judged against the previous stored snapshot.
    Schema,
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A table or column name, `schema.table` at most; quoted for the dialect.
    Identifier,
    /// A list of column names.
    Identifiers,
    /// A duration (`"48h"`), given to the template in seconds.
    Duration,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// Text, given to the template as an escaped SQL literal.
    String,
    /// A list of texts, as a comma-separated list of literals.
    Strings,
    /// One of `choices`, as written.
    Choice,
    /// A boolean condition written by the check's author (same trust as a `.sql` check), one
    /// expression: no `;` and no comments.
    Condition,
    /// A `{ connection, query }` or `{ table, key_column, value_expression }` side of a
    /// reconciliation.
    Side,
    /// Another check's id.
    Check,
}

/// A declared parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Must the check give it?
    #[serde(default)]
    pub required: bool,
    /// The value when the check does not give it.
    pub default: Option<toml::Value>,
    /// Allowed values of a `choice`.
    #[serde(default)]
    pub choices: Vec<String>,
    /// What it means.
    #[serde(default)]
    pub doc: String,
}

/// `rule.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// The ticket's default description.
    pub description: String,
    /// Default category.
    pub category: Category,
    /// Query engine.
    #[serde(default = "default_engine")]
    pub engine: Engine,
    /// Default key columns.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Default metric column.
    pub metric: Option<String>,
    /// Severity of a row when the rule returns failing rows without a metric.
    pub severity: Option<Severity>,
    /// Default thresholds.
    #[serde(default)]
    pub thresholds: BTreeMap<String, String>,
    /// Default severity column and map.
    pub severity_column: Option<String>,
    /// Label → severity or "pass".
    #[serde(default)]
    pub severity_map: BTreeMap<String, String>,
    /// What no data means, unless the check says.
    pub on_no_data: Option<String>,
    /// Declared parameters.
    #[serde(default)]
    pub params: BTreeMap<String, ParamDef>,
    /// Alternative parameter groups: a check gives every parameter of exactly one group.
    #[serde(default)]
    pub one_of: Vec<Vec<String>>,
}

fn default_engine() -> Engine {
    Engine::Sql
}

/// A loaded rule: its definition and templates.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name.
    pub name: String,
    /// `rule.toml`.
    pub def: RuleDef,
    /// In [`DIALECTS`] order; empty when a `rules_dir` rule has no template for a dialect.
    templates: [String; 5],
    /// The fused-scan templates (`<dialect>.fused.sql`), in the same order; empty: none.
    fused: [String; 5],
}

impl Rule {
    /// The template for a dialect (empty: the rule has none for it).
    pub fn template(&self, dialect: Dialect) -> &str {
        let i = DIALECTS.iter().position(|d| *d == dialect).unwrap_or(0);
        &self.templates[i]
    }

    /// The fused-scan template for a dialect (empty: checks of the rule run alone there).
    pub fn fused_template(&self, dialect: Dialect) -> &str {
        let i = DIALECTS.iter().position(|d| *d == dialect).unwrap_or(0);
        &self.fused[i]
    }
}

/// Every rule: built-in ones, then those of `rules_dir` (which may replace a built-in one).
pub fn load_rules(
    rules_dir: Option<&Path>,
) -> Result<BTreeMap<String, Rule>, Vec<crate::diag::Diagnostic>> {
    let mut rules = BTreeMap::new();
    let mut diags = Vec::new();
    for (name, toml_text, templates, fused) in BUILTIN {
        match toml::from_str::<RuleDef>(toml_text) {
            Ok(def) => {
                rules.insert(
                    name.to_string(),
                    Rule {
                        name: name.to_string(),
                        def,
                        templates: templates.map(str::to_string),
                        fused: fused.map(str::to_string),
                    },
                );
            }
            Err(e) => diags.push(crate::diag::Diagnostic::file(
                Path::new(&format!("sql/rules/{name}/rule.toml")),
                e.message().to_string(),
            )),
        }
    }
    if let Some(dir) = rules_dir {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                return Err(vec![crate::diag::Diagnostic::file(
                    dir,
                    format!("cannot read rules_dir: {e}"),
                )]);
            }
        };
        let mut dirs: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("rule.toml").is_file())
            .collect();
        dirs.sort();
        for d in dirs {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let read = |f: &str| std::fs::read_to_string(d.join(f));
            let def_path = d.join("rule.toml");
            let def = match read("rule.toml").map_err(|e| e.to_string()).and_then(|t| {
                toml::from_str::<RuleDef>(&t).map_err(|e| {
                    let (l, c) = e.span().map_or((1, 1), |s| {
                        crate::diag::LineIndex::new(&t).line_col(s.start)
                    });
                    format!("{l}:{c}: {}", e.message().trim())
                })
            }) {
                Ok(def) => def,
                Err(m) => {
                    diags.push(crate::diag::Diagnostic::file(&def_path, m));
                    continue;
                }
            };
            let mut templates: [String; 5] = Default::default();
            let mut fused: [String; 5] = Default::default();
            for (i, dialect) in DIALECTS.iter().enumerate() {
                // Optional: without it, checks of the rule run alone on that dialect.
                if let Ok(t) = read(&format!("{}.fused.sql", dialect.as_str())) {
                    fused[i] = t;
                }
                let file = format!("{}.sql", dialect.as_str());
                match read(&file) {
                    Ok(t) => templates[i] = t,
                    // Snowflake and BigQuery templates are optional in a rules_dir: a check of
                    // the rule on such a connection says the template is missing.
                    Err(_) if i >= 3 => {}
                    Err(_) => diags.push(
                        crate::diag::Diagnostic::file(&d.join(&file), "missing rule template")
                            .hint("a rule has postgres.sql, mysql.sql and sqlite.sql"),
                    ),
                }
            }
            rules.insert(
                name.clone(),
                Rule {
                    name,
                    def,
                    templates,
                    fused,
                },
            );
        }
    }
    if diags.is_empty() {
        Ok(rules)
    } else {
        Err(diags)
    }
}

/// True for `name` or `schema.name`, letters, digits and underscores, not starting with a
/// digit.
pub fn is_identifier(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !p.starts_with(|c: char| c.is_ascii_digit())
    };
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| part(p))
}

/// Quotes a validated identifier for the dialect.
pub fn quote(dialect: Dialect, ident: &str) -> String {
    ident
        .split('.')
        .map(|p| match dialect {
            // BigQuery's partition pseudo-columns are never quoted.
            Dialect::Bigquery if p.starts_with("_PARTITION") => p.to_string(),
            Dialect::Mysql | Dialect::Bigquery => format!("`{p}`"),
            // Snowflake stores an unquoted name in upper case: "ORDERS" is what `orders`
            // written in a query means, and stays safe for names that are keywords.
            Dialect::Snowflake => format!("\"{}\"", p.to_ascii_uppercase()),
            _ => format!("\"{p}\""),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// An SQL string literal, or an error for text that no dialect escapes the same way.
pub fn literal(s: &str) -> Result<String, String> {
    literal_in(Dialect::Postgres, s)
}

/// An SQL string literal of `dialect` (BigQuery escapes a quote with a backslash, the others
/// by doubling it); text with a backslash or NUL is refused everywhere.
pub fn literal_in(dialect: Dialect, s: &str) -> Result<String, String> {
    if s.contains(['\\', '\0']) {
        return Err("text parameters may not contain backslashes or NUL characters".into());
    }
    match dialect {
        Dialect::Bigquery => Ok(format!("'{}'", s.replace('\'', "\\'"))),
        _ => Ok(format!("'{}'", s.replace('\'', "''"))),
    }
}

/// Checks a condition: one expression, no statement separator or comment, its quotes closed
/// and its parentheses balanced (so that, wrapped in its own, it cannot reach outside them).
pub fn condition(s: &str) -> Result<String, String> {
    if s.contains(';') || s.contains("--") || s.contains("/*") {
        return Err("a condition may not contain `;`, `--` or `/*`".into());
    }
    let (mut depth, mut quote) = (0usize, None::<char>);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => {
                return Err("a condition's `)` closes a parenthesis it did not open".into());
            }
            (None, ')') => depth -= 1,
            _ => {}
        }
    }
    match (quote, depth) {
        (Some(q), _) => Err(format!("a condition's {q} is not closed")),
        (None, 0) => Ok(format!("({s})")),
        (None, _) => Err("a condition's `(` is not closed".into()),
    }
}

/// Validates a check's `[params]` against the rule and turns them into the template context.
/// Each problem is `(param name, message)`.
pub fn bind(
    rule: &Rule,
    given: &toml::Table,
    dialect: Dialect,
) -> Result<Value, Vec<(String, String)>> {
    let mut errs = Vec::new();
    let mut ctx = serde_json::Map::new();
    for name in given.keys() {
        if !rule.def.params.contains_key(name) {
            let known: Vec<&str> = rule.def.params.keys().map(String::as_str).collect();
            errs.push((
                name.clone(),
                format!(
                    "unknown parameter \"{name}\" for rule {} (parameters: {})",
                    rule.name,
                    known.join(", ")
                ),
            ));
        }
    }
    if !rule.def.one_of.is_empty() {
        let complete: Vec<&Vec<String>> = rule
            .def
            .one_of
            .iter()
            .filter(|g| g.iter().all(|p| given.contains_key(p)))
            .collect();
        let touched = rule
            .def
            .one_of
            .iter()
            .filter(|g| g.iter().any(|p| given.contains_key(p)))
            .count();
        if complete.len() != 1 || touched != 1 {
            let groups: Vec<String> = rule.def.one_of.iter().map(|g| g.join(", ")).collect();
            let first = rule.def.one_of[0].first().cloned().unwrap_or_default();
            errs.push((
                first,
                format!(
                    "rule {} needs exactly one of these parameter groups: {}",
                    rule.name,
                    groups.join(" | ")
                ),
            ));
        }
    }
    for (name, def) in &rule.def.params {
        if def.kind == ParamType::Identifier {
            // The name as data too (information_schema lookups), as validated literals.
            let raw = given
                .get(name)
                .and_then(toml::Value::as_str)
                .filter(|v| is_identifier(v));
            let (schema, table) = match raw.map(|v| v.split_once('.')) {
                Some(Some((s, t))) => (literal_in(dialect, s).ok(), literal_in(dialect, t).ok()),
                Some(None) => (None, raw.and_then(|v| literal_in(dialect, v).ok())),
                None => (None, None),
            };
            ctx.insert(
                format!("{name}_literal"),
                table.map_or(Value::Null, Value::String),
            );
            ctx.insert(
                format!("{name}_schema_literal"),
                Value::String(schema.unwrap_or_else(|| "NULL".into())),
            );
        }
        let value = match given.get(name).or(def.default.as_ref()) {
            Some(v) => v,
            None if def.required => {
                errs.push((
                    name.clone(),
                    format!("rule {} needs parameter \"{name}\": {}", rule.name, def.doc),
                ));
                continue;
            }
            None => {
                ctx.insert(name.clone(), Value::Null);
                continue;
            }
        };
        match convert(def, value, dialect) {
            Ok(v) => {
                ctx.insert(name.clone(), v);
            }
            Err(m) => errs.push((name.clone(), format!("parameter \"{name}\": {m}"))),
        }
    }
    if errs.is_empty() {
        Ok(Value::Object(ctx))
    } else {
        Err(errs)
    }
}

fn as_str<'a>(v: &'a toml::Value, what: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected {what}, found {}", v.type_str()))
}

fn ident(v: &str, dialect: Dialect) -> Result<String, String> {
    if is_identifier(v) {
        Ok(quote(dialect, v))
    } else {
        Err(format!(
            "\"{v}\" is not a valid identifier: use letters, digits and _ (schema.table at most)"
        ))
    }
}

fn convert(def: &ParamDef, v: &toml::Value, dialect: Dialect) -> Result<Value, String> {
    match def.kind {
        ParamType::Identifier => Ok(json!(ident(as_str(v, "a name")?, dialect)?)),
        ParamType::Identifiers => {
            let list = v
                .as_array()
                .ok_or("expected a list of names, e.g. [\"order_id\"]")?;
            if list.is_empty() {
                return Err("expected at least one name".into());
            }
            let names = list
                .iter()
                .map(|x| ident(as_str(x, "a name")?, dialect))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "list": names, "csv": names.join(", ") }))
        }
        ParamType::Duration => {
            let d = parse_duration(as_str(v, "a duration such as \"48h\"")?)?;
            Ok(json!(d.as_secs()))
        }
        ParamType::Integer => v
            .as_integer()
            .map(|i| json!(i))
            .ok_or_else(|| format!("expected a whole number, found {}", v.type_str())),
        ParamType::Number => v
            .as_float()
            .or_else(|| v.as_integer().map(|i| i as f64))
            .filter(|f| f.is_finite())
            .map(|f| json!(f))
            .ok_or_else(|| format!("expected a number, found {}", v.type_str())),
        ParamType::String => Ok(json!(literal_in(dialect, as_str(v, "text")?)?)),
        ParamType::Strings => {
            let list = v.as_array().ok_or("expected a list of texts")?;
            if list.is_empty() {
                return Err("expected at least one value".into());
            }
            let lits = list
                .iter()
                .map(|x| literal_in(dialect, as_str(x, "text")?))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!(lits.join(", ")))
        }
        ParamType::Choice => {
            let s = as_str(v, "a choice")?;
            if def.choices.iter().any(|c| c == s) {
                Ok(json!(s))
            } else {
                Err(format!("\"{s}\" is not one of {}", def.choices.join(", ")))
            }
        }
        ParamType::Condition => Ok(json!(condition(as_str(v, "a condition")?)?)),
        ParamType::Side => side(v, dialect),
        ParamType::Check => {
            let id = as_str(v, "a check id")?;
            let ok = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
            if ok {
                Ok(json!(id))
            } else {
                Err(format!("\"{id}\" is not a check id"))
            }
        }
    }
}

/// A reconciliation side: `{ connection?, query }` or `{ connection?, table, key_column,
/// value_expression }`.
fn side(v: &toml::Value, dialect: Dialect) -> Result<Value, String> {
    let t = v
        .as_table()
        .ok_or("expected a table: { connection = \"…\", query = \"SELECT key, value …\" }")?;
    for k in t.keys() {
        if ![
            "connection",
            "query",
            "table",
            "key_column",
            "value_expression",
        ]
        .contains(&k.as_str())
        {
            return Err(format!(
                "unknown key \"{k}\" (use connection, query, or table, key_column, value_expression)"
            ));
        }
    }
    let connection = t
        .get("connection")
        .map(|c| as_str(c, "a connection name").map(str::to_string))
        .transpose()?;
    match (t.get("query"), t.get("table")) {
        (Some(q), None) => Ok(json!({ "connection": connection, "query": as_str(q, "a query")? })),
        (None, Some(table)) => {
            let table = as_str(table, "a table")?;
            ident(table, dialect)?;
            let key = as_str(t.get("key_column").ok_or("needs key_column")?, "a column")?;
            ident(key, dialect)?;
            let value = condition(as_str(
                t.get("value_expression")
                    .ok_or("needs value_expression, e.g. \"SUM(amount)\"")?,
                "an expression",
            )?)?;
            Ok(
                json!({ "connection": connection, "table": table, "key_column": key, "value": value }),
            )
        }
        _ => Err("give either query, or table with key_column and value_expression".into()),
    }
}

/// The query of a `{ table, key_column, value_expression }` side, in the dialect of the
/// connection it runs on.
pub fn side_query(side: &Value, dialect: Dialect) -> String {
    if let Some(q) = side["query"].as_str() {
        return q.to_string();
    }
    let table = quote(dialect, side["table"].as_str().unwrap_or_default());
    let key = quote(dialect, side["key_column"].as_str().unwrap_or_default());
    let value = side["value"].as_str().unwrap_or_default();
    format!(
        "SELECT {key} AS {k}, {value} AS {v} FROM {table} GROUP BY {key}",
        k = quote(dialect, "key"),
        v = quote(dialect, "value")
    )
}

/// Renders a rule's template for `dialect` with bound parameters.
pub fn render(rule: &Rule, dialect: Dialect, params: &Value) -> Result<String, String> {
    render_text(rule, rule.template(dialect), dialect, "sql", params)
}

/// A check's part in a shared scan, from the rule's `<dialect>.fused.sql`; `None` when the
/// rule has no such template for the dialect, or when this check's parameters do not fit its
/// one-line-per-column form (a `where` written over several lines): the check runs alone.
/// A template that does not render is an error.
pub fn render_fused(
    rule: &Rule,
    dialect: Dialect,
    params: &Value,
) -> Option<Result<super::fuse::Fusable, String>> {
    let template = rule.fused_template(dialect);
    if template.trim().is_empty() {
        return None;
    }
    match render_text(rule, template, dialect, "fused.sql", params) {
        Ok(text) => super::fuse::Fusable::parse(&text).ok().map(Ok),
        Err(m) => Some(Err(m)),
    }
}

fn render_text(
    rule: &Rule,
    template: &str,
    dialect: Dialect,
    ext: &str,
    params: &Value,
) -> Result<String, String> {
    if template.trim().is_empty() {
        return Err(format!(
            "rule {} has no {}.{ext} template",
            rule.name,
            dialect.as_str()
        ));
    }
    let mut hb = handlebars::Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.render_template(template, &json!({ "params": params }))
        .map_err(|e| format!("rule {} ({}.{ext}): {e}", rule.name, dialect.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("orders", true)]
    #[test_case("sales.orders", true)]
    #[test_case("_t1", true)]
    #[test_case("1t", false)]
    #[test_case("a.b.c", false)]
    #[test_case("orders; DROP TABLE x", false)]
    #[test_case("orders\"--", false)]
    #[test_case("o`x", false)]
    #[test_case("", false)]
    fn identifiers(s: &str, ok: bool) {
        assert_eq!(is_identifier(s), ok);
    }

    #[test]
    fn quoting_and_literals() {
        assert_eq!(quote(Dialect::Postgres, "s.t"), "\"s\".\"t\"");
        assert_eq!(quote(Dialect::Mysql, "t"), "`t`");
        assert_eq!(literal("it's").unwrap(), "'it''s'");
        assert!(literal("a\\'; DROP").is_err());
        assert!(condition("1=1; DROP TABLE t").is_err());
        assert!(condition("x > 1 -- hi").is_err());
        assert_eq!(condition("status = 'ok'").unwrap(), "(status = 'ok')");
        assert_eq!(
            condition("note = 'it''s (x'").unwrap(),
            "(note = 'it''s (x')"
        );
        assert_eq!(
            condition("f(a, (b)) > \")\"").unwrap(),
            "(f(a, (b)) > \")\")"
        );
        assert!(condition("a = 1) OR (1 = 1").is_err());
        assert!(condition("(a = 1").is_err());
        assert!(condition("a = 'open").is_err());
    }

    #[test]
    fn builtin_rules_parse_and_render_on_every_dialect() {
        let rules = load_rules(None).unwrap();
        assert_eq!(rules.len(), BUILTIN.len());
        for rule in rules.values() {
            let mut given = toml::Table::new();
            let first_group = rule.def.one_of.first().cloned().unwrap_or_default();
            for (name, def) in &rule.def.params {
                if def.required || first_group.contains(name) {
                    let v = match def.kind {
                        ParamType::Identifier => toml::Value::String("t".into()),
                        ParamType::Identifiers => {
                            toml::Value::Array(vec![toml::Value::String("k".into())])
                        }
                        ParamType::Duration => toml::Value::String("1h".into()),
                        ParamType::Integer => toml::Value::Integer(1),
                        ParamType::Number => toml::Value::Float(1.0),
                        ParamType::String | ParamType::Condition => toml::Value::String("x".into()),
                        ParamType::Strings => {
                            toml::Value::Array(vec![toml::Value::String("x".into())])
                        }
                        ParamType::Choice => toml::Value::String(def.choices[0].clone()),
                        ParamType::Side => toml::Value::Table(
                            toml::from_str("query = \"SELECT 1 AS key, 2 AS value\"").unwrap(),
                        ),
                        ParamType::Check => toml::Value::String("a/b".into()),
                    };
                    given.insert(name.clone(), v);
                }
            }
            for dialect in DIALECTS {
                let params =
                    bind(rule, &given, dialect).unwrap_or_else(|e| panic!("{}: {e:?}", rule.name));
                render(rule, dialect, &params).unwrap_or_else(|e| panic!("{e}"));
                // Every fused form renders and reads (a malformed one would never fuse).
                let fusable = ["freshness_lag", "volume_anomaly", "failure_rate_spike"];
                match render_fused(rule, dialect, &params) {
                    Some(Ok(f)) => assert!(f.columns.len() >= 2, "{}: {f:?}", rule.name),
                    Some(Err(e)) => panic!("{e}"),
                    None => assert!(!fusable.contains(&rule.name.as_str()), "{}", rule.name),
                }
            }
        }
    }

    /// A check's `where` over several lines does not fit the fused form: it runs alone
    /// instead of failing to load; on one line it is the rows its scan part reads.
    #[test]
    fn a_multi_line_condition_runs_alone() {
        let rules = load_rules(None).unwrap();
        let rule = &rules["freshness_lag"];
        let given = |cond: &str| -> toml::Table {
            toml::from_str(&format!(
                "table = \"t\"\ntimestamp_column = \"ts\"\nkey_column = \"k\"\nwhere = \"{cond}\""
            ))
            .unwrap()
        };
        let one = bind(rule, &given("a > 1 AND b < 2"), Dialect::Postgres).unwrap();
        let f = render_fused(rule, Dialect::Postgres, &one)
            .unwrap()
            .unwrap();
        assert_eq!(f.rows.as_deref(), Some("(a > 1 AND b < 2)"));
        assert_eq!(f.group.as_deref(), Some("\"k\""));
        assert_eq!(f.columns[0], ("dataset".to_string(), "\"k\"".to_string()));
        let two = bind(rule, &given("a > 1\\nAND b < 2"), Dialect::Postgres).unwrap();
        assert!(render_fused(rule, Dialect::Postgres, &two).is_none());
        assert!(render(rule, Dialect::Postgres, &two).is_ok());
    }

    #[test]
    fn injection_through_every_identifier_parameter_is_refused() {
        let rules = load_rules(None).unwrap();
        for rule in rules.values() {
            for (name, def) in &rule.def.params {
                let bad = match def.kind {
                    ParamType::Identifier => toml::Value::String("t; DROP TABLE x".into()),
                    ParamType::Identifiers => {
                        toml::Value::Array(vec![toml::Value::String("k) OR (1=1".into())])
                    }
                    ParamType::String => toml::Value::String("x\\' OR 1=1".into()),
                    ParamType::Strings => {
                        toml::Value::Array(vec![toml::Value::String("a\\'".into())])
                    }
                    ParamType::Condition => toml::Value::String("1=1; DROP TABLE t".into()),
                    ParamType::Duration => toml::Value::String("1h; DROP".into()),
                    ParamType::Choice => toml::Value::String("day; DROP".into()),
                    ParamType::Side => toml::Value::Table(
                        toml::from_str(
                            "table = \"t x\"\nkey_column = \"k\"\nvalue_expression = \"1\"",
                        )
                        .unwrap(),
                    ),
                    ParamType::Integer | ParamType::Number => toml::Value::String("1; DROP".into()),
                    ParamType::Check => toml::Value::String("x'; DROP".into()),
                };
                let mut given = toml::Table::new();
                given.insert(name.clone(), bad);
                let errs = bind(rule, &given, Dialect::Postgres).unwrap_err();
                assert!(
                    errs.iter().any(|(p, _)| p == name),
                    "{}.{name} accepted an injection",
                    rule.name
                );
            }
        }
    }
}
