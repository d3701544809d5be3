//! Fused scans: rule checks on the same table, key column and connection that run together
//! share one query. A rule that can be fused has a `<dialect>.fused.sql` template beside its
//! query template; rendered for a check, it names the table, the key column, the rows the
//! check reads and the check's columns as aggregates limited to those rows ([`Fusable`]).
//! [`scans`] groups the checks of a pass, [`sql`] writes one query for a group, and [`split`]
//! cuts its result back into the rows each check's own query would have returned, so every
//! check is judged exactly as if it had run alone.

use super::Check;
use crate::model::{ResultSet, Value};
use std::borrow::Borrow;
use std::collections::BTreeMap;

/// The most checks one scan serves: keeps the select list well inside every warehouse's
/// column limit (PostgreSQL 1,664, MySQL 4,096).
pub const MAX_MEMBERS: usize = 64;

/// A rule check's part in a shared scan, rendered for its connection's dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct Fusable {
    /// The table scanned, quoted for the dialect.
    pub table: String,
    /// The key column grouped by (quoted); `None`: the whole table is one subject.
    pub group: Option<String>,
    /// The rows the check reads; `None`: every row.
    pub rows: Option<String>,
    /// The check's columns in its own query's order: name, and the expression that computes
    /// it in the shared scan.
    pub columns: Vec<(String, String)>,
}

impl Fusable {
    /// Reads a rendered `.fused.sql` template: `table:`, `group:` and `rows:` lines, then one
    /// `name: expression` line per column (blank lines are skipped).
    pub fn parse(rendered: &str) -> Result<Self, String> {
        let (mut table, mut group, mut rows, mut columns) = (None, None, None, Vec::new());
        for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some((name, expr)) = line.split_once(':') else {
                return Err(format!("`{line}` is not `name: expression`"));
            };
            let (name, expr) = (name.trim(), expr.trim());
            let some = |e: &str| (!e.is_empty()).then(|| e.to_string());
            match name {
                "table" => table = some(expr),
                "group" => group = some(expr),
                "rows" => rows = some(expr),
                _ if super::rule::is_identifier(name) && !name.contains('.') => {
                    if expr.is_empty() {
                        return Err(format!("column {name} has no expression"));
                    }
                    columns.push((name.to_string(), expr.to_string()));
                }
                _ => return Err(format!("`{name}` is not a column name")),
            }
        }
        // MySQL reads a backslash in a string as an escape: a condition whose quotes close
        // differently there could reach outside its part of a shared query.
        if rendered.contains('\\') {
            return Err("a backslash: this check runs alone".into());
        }
        match table {
            Some(table) if !columns.is_empty() => Ok(Self {
                table,
                group,
                rows,
                columns,
            }),
            Some(_) => Err("a fused template names no column".into()),
            None => Err("a fused template needs a `table:` line".into()),
        }
    }
}

/// What checks sharing a scan have in common: connection, table, key column, and their own
/// byte limit (BigQuery; the shared query runs under one).
type ScanKey<'a> = (&'a str, &'a str, Option<&'a str>, Option<u64>);

/// Groups the checks of one pass into shared scans: indices of checks with the same
/// connection, table, key column and byte limit, at most [`MAX_MEMBERS`] each, in the order given. A check
/// that cannot be fused (or is the only one on its table) is a group of one.
pub fn scans<C: Borrow<Check>>(checks: &[C]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut open: BTreeMap<ScanKey<'_>, usize> = BTreeMap::new();
    for (i, check) in checks.iter().enumerate() {
        let check: &Check = check.borrow();
        let Some(f) = &check.fuse else {
            groups.push(vec![i]);
            continue;
        };
        let key = (
            check.connection.as_str(),
            f.table.as_str(),
            f.group.as_deref(),
            check.max_bytes_billed,
        );
        match open.get(&key) {
            Some(&g) if groups[g].len() < MAX_MEMBERS => groups[g].push(i),
            _ => {
                open.insert(key, groups.len());
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// The parts of checks that share a scan: `None` unless there are two or more and every one
/// can be fused.
pub fn shared<C: Borrow<Check>>(members: &[C]) -> Option<Vec<&Fusable>> {
    if members.len() < 2 {
        return None;
    }
    members.iter().map(|c| c.borrow().fuse.as_ref()).collect()
}

/// Does member `m` of a scan get a count of its rows? Only where a key could come out of
/// the scan with none of them: grouped, and limited to some rows.
fn counted(scan: &[&Fusable], m: &Fusable) -> bool {
    scan.first().is_some_and(|f| f.group.is_some()) && m.rows.is_some()
}

/// Where each member's values are in a scan's select list.
struct Layout {
    /// The select list: expression and alias, each expression once (the key column, a count
    /// that two checks share, a member's own count of its rows and its `COUNT` column).
    items: Vec<(String, String)>,
    /// Per member: the alias of each of its columns, and of its count of its rows (if any).
    members: Vec<(Vec<String>, Option<String>)>,
}

fn layout(scan: &[&Fusable]) -> Layout {
    let mut items: Vec<(String, String)> = Vec::new();
    let alias_of = |expr: String, items: &mut Vec<(String, String)>| {
        if let Some((_, a)) = items.iter().find(|(e, _)| *e == expr) {
            return a.clone();
        }
        let a = format!("dq{}", items.len());
        items.push((expr, a.clone()));
        a
    };
    let mut members = Vec::with_capacity(scan.len());
    for m in scan {
        let cols = m
            .columns
            .iter()
            .map(|(_, expr)| alias_of(expr.clone(), &mut items))
            .collect();
        let count = match (&m.rows, counted(scan, m)) {
            (Some(rows), true) => Some(alias_of(
                format!("COUNT(CASE WHEN {rows} THEN 1 END)"),
                &mut items,
            )),
            _ => None,
        };
        members.push((cols, count));
    }
    Layout { items, members }
}

/// The one query of a scan whose members share table and key column: every member's columns
/// (each aggregate limited to its rows), and per member limited to some rows the count of
/// them, so that [`split`] can leave out keys it did not read; an expression two members
/// share is computed once. When every member reads only some rows, the scan reads only rows
/// that some member reads.
pub fn sql(scan: &[&Fusable]) -> String {
    let Some(first) = scan.first() else {
        return String::new();
    };
    let items: Vec<String> = layout(scan)
        .items
        .into_iter()
        .map(|(expr, alias)| format!("{expr} AS {alias}"))
        .collect();
    let mut q = format!(
        "-- dqwatch: one scan for {} checks\nSELECT {}\nFROM {}",
        scan.len(),
        items.join(",\n       "),
        first.table
    );
    let rows: Option<Vec<&str>> = scan.iter().map(|m| m.rows.as_deref()).collect();
    if let Some(rows) = rows {
        let any: Vec<String> = rows.iter().map(|r| format!("({r})")).collect();
        q = format!("{q}\nWHERE {}", any.join(" OR "));
    }
    if let Some(g) = &first.group {
        q = format!("{q}\nGROUP BY {g}");
    }
    q
}

/// Cuts a scan's result into each member's rows, as its own query would have returned them:
/// its columns under its names, and, when grouped, only the keys that had rows it reads.
/// `None` when the result does not have the shape [`sql`] asked for.
pub fn split(rs: &ResultSet, scan: &[&Fusable]) -> Option<Vec<ResultSet>> {
    let at = |name: &str| rs.columns.iter().position(|c| c.eq_ignore_ascii_case(name));
    let mut out = Vec::with_capacity(scan.len());
    for (m, (aliases, count)) in scan.iter().zip(layout(scan).members) {
        let cols: Vec<usize> = aliases.iter().map(|a| at(a)).collect::<Option<_>>()?;
        let count = match count {
            Some(a) => Some(at(&a)?),
            None => None,
        };
        let rows = rs
            .rows
            .iter()
            .filter(|row| {
                count.is_none_or(|c| row.get(c).and_then(Value::as_f64).is_some_and(|n| n > 0.0))
            })
            .map(|row| {
                cols.iter()
                    .map(|&c| row.get(c).cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .collect();
        out.push(ResultSet {
            columns: m.columns.iter().map(|(n, _)| n.clone()).collect(),
            rows,
            capped: rs.capped,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn part(group: Option<&str>, rows: Option<&str>, col: &str) -> Fusable {
        Fusable {
            table: "\"orders\"".into(),
            group: group.map(Into::into),
            rows: rows.map(Into::into),
            columns: vec![
                ("dataset".into(), group.unwrap_or("'all'").into()),
                (col.into(), format!("MAX({col})")),
            ],
        }
    }

    #[test]
    fn parse_reads_directives_and_columns_in_order() {
        let f = Fusable::parse(
            "\ntable: \"orders\"\ngroup: \nrows: (\"x\" > 1)\ndataset: 'all'\nlag_seconds: MAX(CASE WHEN a THEN b END)\n",
        );
        assert_eq!(
            f,
            Ok(Fusable {
                table: "\"orders\"".into(),
                group: None,
                rows: Some("(\"x\" > 1)".into()),
                columns: vec![
                    ("dataset".into(), "'all'".into()),
                    ("lag_seconds".into(), "MAX(CASE WHEN a THEN b END)".into()),
                ],
            })
        );
    }

    #[test]
    fn parse_refuses_what_it_cannot_fuse() {
        assert!(Fusable::parse("group: x\nv: COUNT(*)").is_err(), "no table");
        assert!(Fusable::parse("table: t\n").is_err(), "no column");
        assert!(Fusable::parse("table: t\nnot a name: 1").is_err());
        assert!(Fusable::parse("table: t\njust text").is_err());
        assert!(Fusable::parse("table: t\nrows: a = 'x\\'\nv: COUNT(*)").is_err());
    }

    #[test]
    fn every_member_limited_to_some_rows_limits_the_scan() {
        let (a, b) = (
            part(Some("k"), Some("(a)"), "x"),
            part(Some("k"), Some("(b)"), "y"),
        );
        let q = sql(&[&a, &b]);
        assert!(q.contains("WHERE ((a)) OR ((b))"), "{q}");
        assert!(q.contains("COUNT(CASE WHEN (a) THEN 1 END) AS dq2"), "{q}");
        assert_eq!(q.matches("k AS").count(), 1, "the key column once: {q}");
        assert!(q.ends_with("GROUP BY k"), "{q}");
        let c = part(Some("k"), None, "z");
        let q = sql(&[&a, &c]);
        assert!(!q.contains("WHERE"), "a member reads every row: {q}");
        assert_eq!(q.matches("COUNT(").count(), 1, "{q}");
    }

    #[test]
    fn split_gives_each_member_its_own_columns_and_keys() {
        let (a, b) = (
            part(Some("k"), Some("(a)"), "x"),
            part(Some("k"), None, "y"),
        );
        // k AS dq0, MAX(x) AS dq1, COUNT(… (a) …) AS dq2, MAX(y) AS dq3
        let rs = ResultSet {
            columns: ["DQ0", "dq1", "dq2", "dq3"].map(String::from).to_vec(),
            rows: vec![
                vec![
                    Value::Text("k1".into()),
                    Value::Int(5),
                    Value::Int(2),
                    Value::Int(7),
                ],
                vec![
                    Value::Text("k2".into()),
                    Value::Null,
                    Value::Int(0),
                    Value::Int(8),
                ],
            ],
            capped: false,
        };
        let parts = split(&rs, &[&a, &b]).expect("shape");
        assert_eq!(parts[0].columns, ["dataset", "x"]);
        assert_eq!(
            parts[0].rows,
            vec![vec![Value::Text("k1".into()), Value::Int(5)]]
        );
        assert_eq!(parts[1].columns, ["dataset", "y"]);
        assert_eq!(
            parts[1].rows.len(),
            2,
            "a member without a row limit keeps every key"
        );
        let short = ResultSet {
            columns: vec!["dq0".into()],
            rows: vec![],
            capped: false,
        };
        assert_eq!(split(&short, &[&a, &b]), None);
    }

    #[test]
    fn scans_group_by_connection_table_and_key() {
        use crate::checks::tests_support::check;
        let mk = |conn: &str, f: Option<Fusable>| {
            let mut c = check("c");
            c.connection = conn.into();
            c.fuse = f;
            Arc::new(c)
        };
        let checks = vec![
            mk("w", Some(part(Some("k"), None, "x"))),
            mk("w", None),
            mk("w", Some(part(Some("k"), Some("(a)"), "y"))),
            mk("v", Some(part(Some("k"), None, "x"))),
            mk("w", Some(part(None, None, "x"))),
            {
                let mut c = (*mk("w", Some(part(Some("k"), None, "z")))).clone();
                c.max_bytes_billed = Some(1);
                Arc::new(c)
            },
        ];
        assert_eq!(
            scans(&checks),
            vec![vec![0, 2], vec![1], vec![3], vec![4], vec![5]]
        );
        let many: Vec<_> = (0..MAX_MEMBERS + 1)
            .map(|_| mk("w", Some(part(None, None, "x"))))
            .collect();
        assert_eq!(
            scans(&many).iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_MEMBERS, 1]
        );
    }
}
