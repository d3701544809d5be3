//! The maths of the built-in rules that compare sides or histories: the reconciliation join,
//! the robust z-score of `volume_anomaly`, schema snapshot differences, and trend drops.

use super::error::EvalError;
use crate::model::{ResultSet, Value};
use std::collections::HashMap;

/// Joins the two sides of a reconciliation by key: rows `key, source, target, gap, gap_pct`
/// for every key outside the tolerance or present on one side only. Each side returns
/// `key, value` (by those names, else its first two columns).
pub fn join_sides(
    source: &ResultSet,
    target: &ResultSet,
    spec: &crate::checks::Reconcile,
) -> Result<ResultSet, EvalError> {
    fn side(rs: &ResultSet, name: &'static str) -> Result<Vec<(String, f64)>, EvalError> {
        let find = |col: &str, fallback: usize| {
            rs.columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(col))
                .or((rs.columns.len() > fallback).then_some(fallback))
        };
        let (Some(k), Some(v)) = (find("key", 0), find("value", 1)) else {
            return Err(EvalError::SideShape { side: name });
        };
        let mut seen = std::collections::HashSet::new();
        rs.rows
            .iter()
            .map(|row| {
                let key = row[k].to_string();
                if !seen.insert(key.clone()) {
                    return Err(EvalError::DuplicateKey { side: name, key });
                }
                let value = match &row[v] {
                    Value::Null => 0.0,
                    other => other.as_f64().ok_or_else(|| EvalError::SideNotANumber {
                        side: name,
                        key: key.clone(),
                        value: other.to_string(),
                    })?,
                };
                Ok((key, value))
            })
            .collect()
    }
    let src = side(source, "source")?;
    let tgt: HashMap<String, f64> = side(target, "target")?.into_iter().collect();
    let mut rows = Vec::new();
    let mut push = |key: &str, s: Option<f64>, t: Option<f64>| {
        let gap = (s.unwrap_or(0.0) - t.unwrap_or(0.0)).abs();
        let base = s.unwrap_or(0.0).abs();
        let pct = if s.is_none() || t.is_none() {
            100.0
        } else if base > 0.0 {
            100.0 * gap / base
        } else if gap > 0.0 {
            100.0
        } else {
            0.0
        };
        let tolerated = s.is_some()
            && t.is_some()
            && (gap <= spec.tolerance_abs
                || (spec.tolerance_pct > 0.0 && pct <= spec.tolerance_pct));
        if !tolerated {
            let num = |x: Option<f64>| x.map_or(Value::Null, Value::Float);
            rows.push(vec![
                Value::Text(key.to_string()),
                num(s),
                num(t),
                Value::Float(gap),
                Value::Float(pct),
            ]);
        }
    };
    let mut src_keys = std::collections::HashSet::new();
    for (key, value) in &src {
        src_keys.insert(key.clone());
        push(key, Some(*value), tgt.get(key).copied());
    }
    let mut only_target: Vec<(&String, &f64)> =
        tgt.iter().filter(|(k, _)| !src_keys.contains(*k)).collect();
    only_target.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in only_target {
        push(key, None, Some(*value));
    }
    Ok(ResultSet {
        columns: ["key", "source", "target", "gap", "gap_pct"]
            .map(String::from)
            .to_vec(),
        rows,
        capped: source.capped || target.capped,
    })
}

/// The robust z-score of `x` against `history`: (x − median) / spread, the spread being
/// 1.4826 · MAD, or 1.2533 · the mean absolute deviation when MAD is 0, and never less than
/// 1 % of the median: a flat history does not make every small change an anomaly.
pub fn robust_z(history: &[f64], x: f64) -> f64 {
    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            0.0
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
    let mut h = history.to_vec();
    let med = median(&mut h);
    let mut dev: Vec<f64> = history.iter().map(|v| (v - med).abs()).collect();
    let mean_dev = dev.iter().sum::<f64>() / dev.len().max(1) as f64;
    let mad = 1.4826 * median(&mut dev);
    let spread = if mad > 0.0 { mad } else { 1.2533 * mean_dev }.max(0.01 * med.abs());
    if spread > 0.0 {
        ((x - med) / spread).clamp(-1e6, 1e6)
    } else if x == med {
        0.0
    } else {
        1e6_f64.copysign(x - med)
    }
}

/// Differences between two schema snapshots (`table.column` → type): rows of
/// `(column, change, old type, new type)`, change being dropped, retyped or added.
pub fn schema_diff(
    previous: &std::collections::BTreeMap<String, String>,
    current: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, &'static str, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for (col, old) in previous {
        match current.get(col) {
            None => out.push((col.clone(), "dropped", Some(old.clone()), None)),
            Some(new) if !new.eq_ignore_ascii_case(old) => {
                out.push((col.clone(), "retyped", Some(old.clone()), Some(new.clone())))
            }
            Some(_) => {}
        }
    }
    for (col, new) in current {
        if !previous.contains_key(col) {
            out.push((col.clone(), "added", None, Some(new.clone())));
        }
    }
    out
}

/// One schema difference: column, `dropped` / `retyped` / `added`, old type, new type.
pub type SchemaDiff = (String, &'static str, Option<String>, Option<String>);

/// `schema_change` against its baseline: the differences to judge and the baseline to keep.
/// A breaking difference (`breaks(change)`: a dropped or retyped column, an added one when
/// added columns have a severity) stays in the baseline until the schema is back or someone
/// accepted it (`accepted(column)`: resolved its incident by hand since the last run), so it
/// stays open; any other difference moves the baseline to what the table now is.
pub fn schema_judge(
    baseline: &std::collections::BTreeMap<String, String>,
    current: &std::collections::BTreeMap<String, String>,
    breaks: impl Fn(&str) -> bool,
    accepted: impl Fn(&str) -> bool,
) -> (Vec<SchemaDiff>, std::collections::BTreeMap<String, String>) {
    let mut next = current.clone();
    let mut diffs = Vec::new();
    for d in schema_diff(baseline, current) {
        if accepted(&d.0) {
            continue;
        }
        if breaks(d.1) {
            match &d.2 {
                Some(old) => next.insert(d.0.clone(), old.clone()),
                None => next.remove(&d.0),
            };
        }
        diffs.push(d);
    }
    (diffs, next)
}

/// A key's latest value with its drop (percent, positive = down) against the value before it
/// and against the value closest to a week before (within a day). Values oldest first.
pub fn trend(
    values: &[(chrono::DateTime<chrono::Utc>, f64)],
) -> Option<(f64, Option<f64>, Option<f64>)> {
    let (at, latest) = *values.last()?;
    let drop = |base: f64| (base != 0.0).then(|| 100.0 * (base - latest) / base);
    let day = values
        .len()
        .checked_sub(2)
        .map(|i| values[i].1)
        .and_then(drop);
    let target = at - chrono::Duration::days(7);
    let week = values
        .iter()
        .filter(|(t, _)| (*t - target).num_seconds().abs() <= 86_400)
        .min_by_key(|(t, _)| (*t - target).num_seconds().abs())
        .and_then(|(_, v)| drop(*v));
    Some((latest, day, week))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(columns: &[&str], rows: Vec<Vec<Value>>) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            capped: false,
        }
    }

    #[test]
    fn reconciliation_joins_by_key_with_tolerance() {
        let spec = crate::checks::Reconcile {
            source: crate::checks::Side {
                connection: None,
                sql: String::new(),
            },
            target: crate::checks::Side {
                connection: None,
                sql: String::new(),
            },
            tolerance_abs: 1.0,
            tolerance_pct: 0.0,
        };
        let a = rs(
            &["key", "value"],
            vec![
                vec![Value::Text("d1".into()), Value::Float(100.0)],
                vec![Value::Text("d2".into()), Value::Int(100)],
                vec![Value::Text("d3".into()), Value::Int(7)],
            ],
        );
        let b = rs(
            &["k", "v"],
            vec![
                vec![Value::Text("d1".into()), Value::Float(100.5)],
                vec![Value::Text("d2".into()), Value::Int(90)],
                vec![Value::Text("d4".into()), Value::Int(3)],
            ],
        );
        let joined = join_sides(&a, &b, &spec).unwrap();
        let keys: Vec<String> = joined.rows.iter().map(|r| r[0].to_string()).collect();
        assert_eq!(keys, ["d2", "d3", "d4"], "d1 is within tolerance");
        assert_eq!(joined.rows[0][3], Value::Float(10.0));
        assert_eq!(joined.rows[1][2], Value::Null, "one-sided");
        let dup = rs(
            &["key", "value"],
            vec![
                vec![Value::Int(1), Value::Int(1)],
                vec![Value::Int(1), Value::Int(2)],
            ],
        );
        let err = join_sides(&dup, &b, &spec).unwrap_err();
        assert_eq!(
            err,
            EvalError::DuplicateKey {
                side: "source",
                key: "1".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "the source query returns key 1 twice; group by the key"
        );
    }

    #[test]
    fn robust_z_scores() {
        let h = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0, 103.0];
        assert!(robust_z(&h, 100.0).abs() < 0.01);
        assert!(robust_z(&h, 40.0) < -20.0);
        assert!(robust_z(&h, 104.0) < 3.5);
        assert_eq!(robust_z(&[5.0, 5.0, 5.0], 5.0), 0.0);
        // A flat history: the spread floor is 1 % of the median.
        assert!((robust_z(&[100.0, 100.0, 100.0], 101.0) - 1.0).abs() < 1e-9);
        assert!(robust_z(&[100.0, 100.0, 100.0], 50.0) < -40.0);
        assert_eq!(robust_z(&[0.0, 0.0, 0.0], 1.0), 1e6);
        // One outlier in the history does not move the baseline.
        let with_outlier = [100.0, 101.0, 99.0, 100.0, 5000.0];
        assert!(robust_z(&with_outlier, 100.0).abs() < 1.0);
    }

    #[test]
    fn a_schema_break_stays_in_the_baseline_until_back_or_accepted() {
        // See: issues/10 item 3
        let m = |cols: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            cols.iter()
                .map(|(c, t)| (c.to_string(), t.to_string()))
                .collect()
        };
        let base = m(&[("t.a", "INT"), ("t.c", "REAL")]);
        let now = m(&[("t.a", "INT"), ("t.d", "TEXT")]);
        let breaks = |change: &str| change != "added";
        let (diffs, next) = schema_judge(&base, &now, breaks, |_| false);
        assert_eq!(
            diffs
                .iter()
                .map(|d| (d.0.as_str(), d.1))
                .collect::<Vec<_>>(),
            [("t.c", "dropped"), ("t.d", "added")]
        );
        // The dropped column stays in the baseline; the passing addition moves it on.
        assert_eq!(next, m(&[("t.a", "INT"), ("t.c", "REAL"), ("t.d", "TEXT")]));
        let (diffs, _) = schema_judge(&next, &now, breaks, |_| false);
        assert_eq!(diffs.len(), 1, "still dropped on the next run");
        // Accepted: the baseline is the table as it is now.
        let (diffs, next) = schema_judge(&next, &now, breaks, |c| c == "t.c");
        assert_eq!((diffs.len(), next), (0, now));
    }

    #[test]
    fn schema_differences() {
        let m = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let d = schema_diff(
            &m(&[("t.a", "int"), ("t.b", "text"), ("t.c", "int")]),
            &m(&[("t.a", "INT"), ("t.b", "bigint"), ("t.d", "int")]),
        );
        let changes: Vec<(&str, &str)> = d.iter().map(|(c, k, _, _)| (c.as_str(), *k)).collect();
        assert_eq!(
            changes,
            [("t.b", "retyped"), ("t.c", "dropped"), ("t.d", "added")]
        );
    }

    #[test]
    fn trend_against_day_and_week() {
        use chrono::TimeZone;
        let t = |d: u32| chrono::Utc.with_ymd_and_hms(2026, 11, d, 6, 0, 0).unwrap();
        let v = vec![(t(10), 0.92), (t(16), 0.92), (t(22), 0.88), (t(23), 0.81)];
        let (latest, day, week) = trend(&v).unwrap();
        assert_eq!(latest, 0.81);
        assert!((day.unwrap() - 7.954).abs() < 0.01);
        assert!((week.unwrap() - 11.956).abs() < 0.01);
        assert_eq!(trend(&v[..1]).unwrap().1, None);
    }
}
