//! Rows → observations per key → [`Outcome`]. Pure: takes a check and its rows, returns a
//! value. A result that cannot be judged is an `Outcome::Error`, never a pass.

use crate::checks::{Check, Judge, OnNoData};
use crate::model::{ErrorKind, Key, Observation, Outcome, ResultSet, Status, Value};
use std::collections::HashMap;

/// Judges one check's rows.
pub fn evaluate(check: &Check, rs: &ResultSet) -> Outcome {
    match judge_rows(check, rs) {
        Ok(mut observations) => {
            // Breaches first, worst first; the sort is stable, so keys keep their row order.
            observations.sort_by_key(|o| match o.status {
                Status::Breach { severity } => severity as u8,
                Status::NoData => 10,
                Status::Pass => 11,
            });
            Outcome::Evaluated {
                columns: rs.columns.clone(),
                observations,
                rows: rs.rows.len() as u64,
                capped: rs.capped,
            }
        }
        Err((kind, message)) => Outcome::Error { kind, message },
    }
}

/// Joins the two sides of a reconciliation by key: rows `key, source, target, gap, gap_pct`
/// for every key outside the tolerance or present on one side only. Each side returns
/// `key, value` (by those names, else its first two columns).
pub fn join_sides(
    source: &ResultSet,
    target: &ResultSet,
    spec: &crate::checks::Reconcile,
) -> Result<ResultSet, (ErrorKind, String)> {
    fn side(rs: &ResultSet, name: &str) -> Result<Vec<(String, f64)>, (ErrorKind, String)> {
        let find = |col: &str, fallback: usize| {
            rs.columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(col))
                .or((rs.columns.len() > fallback).then_some(fallback))
        };
        let (Some(k), Some(v)) = (find("key", 0), find("value", 1)) else {
            return Err((
                ErrorKind::Result,
                format!("the {name} query must return two columns, key and value"),
            ));
        };
        let mut seen = std::collections::HashSet::new();
        rs.rows
            .iter()
            .map(|row| {
                let key = row[k].to_string();
                if !seen.insert(key.clone()) {
                    return Err((
                        ErrorKind::Result,
                        format!("the {name} query returns key {key} twice; group by the key"),
                    ));
                }
                let value = match &row[v] {
                    Value::Null => 0.0,
                    other => other.as_f64().ok_or_else(|| {
                        (
                            ErrorKind::Result,
                            format!("the {name} value for key {key} is not a number ({other})"),
                        )
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

type Judged = Result<Vec<Observation>, (ErrorKind, String)>;

fn column(rs: &ResultSet, name: &str, role: &str) -> Result<usize, (ErrorKind, String)> {
    rs.columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            (
                ErrorKind::Result,
                format!(
                    "the result has no column \"{name}\" ({role}); its columns are: {}",
                    rs.columns.join(", ")
                ),
            )
        })
}

fn judge_rows(check: &Check, rs: &ResultSet) -> Judged {
    let key_cols = check
        .keys
        .iter()
        .map(|k| column(rs, k, "a key"))
        .collect::<Result<Vec<_>, _>>()?;
    let metric_col = check
        .metric()
        .map(|m| column(rs, m, "the metric"))
        .transpose()?;
    let label_col = match &check.judge {
        Judge::SeverityMap { column: c, .. } => Some(column(rs, c, "the severity_column")?),
        _ => None,
    };

    if rs.rows.is_empty() {
        return Ok(match (&check.judge, check.keys.is_empty()) {
            (Judge::RowsFail { .. }, true) => {
                let mut o = observation(Key::default(), Status::Pass, Some(0.0), Vec::new());
                o.sample.clear();
                vec![o]
            }
            (Judge::RowsFail { .. }, false) => Vec::new(),
            _ => vec![no_data(
                check,
                Key::default(),
                Vec::new(),
                "the query returned no rows",
            )?],
        });
    }

    let mut by_key: HashMap<Key, usize> = HashMap::new();
    let mut out: Vec<Observation> = Vec::new();
    for (n, row) in rs.rows.iter().enumerate() {
        let mut key = Vec::with_capacity(key_cols.len());
        for (&i, name) in key_cols.iter().zip(&check.keys) {
            if let Value::Unsupported(ty) = &row[i] {
                // Every such value would print alike and merge distinct subjects into one.
                return Err((
                    ErrorKind::Result,
                    format!(
                        "key \"{name}\" has type {ty}, which dqwatch does not read; cast it to text in the SQL (e.g. {name}::text or CAST({name} AS CHAR))"
                    ),
                ));
            }
            key.push((name.clone(), row[i].to_string()));
        }
        let key = Key(key);
        let obs = match &check.judge {
            Judge::RowsFail { severity } => observation(
                key,
                Status::Breach {
                    severity: *severity,
                },
                Some(1.0),
                row.clone(),
            ),
            Judge::Thresholds { metric, levels } => {
                let i = metric_col.unwrap_or_default();
                match number(&row[i], metric, n)? {
                    None => no_data(
                        check,
                        key,
                        row.clone(),
                        &format!("metric \"{metric}\" is NULL"),
                    )?,
                    Some(value) => {
                        let hit = levels.iter().find(|l| l.op.holds(value, l.limit));
                        let status = hit.map_or(Status::Pass, |l| Status::Breach {
                            severity: l.severity,
                        });
                        let mut o = observation(key, status, Some(value), row.clone());
                        o.threshold = hit.or(levels.last()).cloned();
                        o
                    }
                }
            }
            Judge::SeverityMap {
                column: col,
                metric,
                map,
            } => {
                let label = &row[label_col.unwrap_or_default()];
                let value = match (metric_col, metric) {
                    (Some(i), Some(m)) => number(&row[i], m, n)?,
                    _ => None,
                };
                if *label == Value::Null {
                    no_data(
                        check,
                        key,
                        row.clone(),
                        &format!("severity_column \"{col}\" is NULL"),
                    )?
                } else {
                    let text = label.to_string();
                    let Some((_, sev)) = map.iter().find(|(l, _)| l.eq_ignore_ascii_case(&text))
                    else {
                        let known: Vec<&str> = map.iter().map(|(l, _)| l.as_str()).collect();
                        return Err((
                            ErrorKind::Result,
                            format!(
                                "label \"{text}\" in column \"{col}\" (row {}) is not in [severity_map] (mapped: {}); map it to a severity or \"pass\"",
                                n + 1,
                                known.join(", ")
                            ),
                        ));
                    };
                    let status = sev.map_or(Status::Pass, |severity| Status::Breach { severity });
                    let mut o = observation(key, status, value, row.clone());
                    o.label = Some(text);
                    o
                }
            }
        };
        merge(
            &mut by_key,
            &mut out,
            obs,
            matches!(check.judge, Judge::RowsFail { .. }),
        );
    }
    Ok(out)
}

fn observation(key: Key, status: Status, metric: Option<f64>, row: Vec<Value>) -> Observation {
    Observation {
        key,
        status,
        metric,
        value: metric,
        threshold: None,
        label: None,
        sample: vec![row],
    }
}

/// Applies `on_no_data` to a key without a metric.
fn no_data(
    check: &Check,
    key: Key,
    row: Vec<Value>,
    why: &str,
) -> Result<Observation, (ErrorKind, String)> {
    match check.on_no_data {
        OnNoData::Error => {
            let at = if key.is_empty() {
                String::new()
            } else {
                format!(" for {key}")
            };
            Err((
                ErrorKind::NoData,
                format!(
                    "{why}{at}; a metric was expected (set on_no_data = \"pass\" or a severity if that is expected)"
                ),
            ))
        }
        OnNoData::Pass => Ok(observation(key, Status::NoData, None, row)),
        OnNoData::Breach(severity) => Ok(observation(key, Status::Breach { severity }, None, row)),
    }
}

/// A metric cell as a number; NULL is `None`; text, booleans and NaN are errors.
fn number(v: &Value, metric: &str, row: usize) -> Result<Option<f64>, (ErrorKind, String)> {
    let err = |what: String| {
        Err((
            ErrorKind::Result,
            format!("metric \"{metric}\" in row {} {what}", row + 1),
        ))
    };
    match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(*i as f64)),
        Value::Float(f) if f.is_nan() => err("is NaN, which no threshold can judge".into()),
        Value::Float(f) => Ok(Some(*f)),
        Value::Text(t) => err(format!(
            "is text (\"{}\"), not a number; cast it in the SQL",
            truncate(t)
        )),
        Value::Bool(b) => err(format!(
            "is a boolean ({b}), not a number; use CASE WHEN … THEN 1 ELSE 0 END"
        )),
        Value::Unsupported(t) => err(format!(
            "has type {t}, which dqwatch does not read; cast it to a number in the SQL"
        )),
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

fn rank(s: &Status) -> u8 {
    match s {
        Status::Breach { severity } => *severity as u8,
        Status::NoData => 10,
        Status::Pass => 11,
    }
}

/// Keeps one observation per key: the worst. Rows-fail checks count their rows instead.
fn merge(
    by_key: &mut HashMap<Key, usize>,
    out: &mut Vec<Observation>,
    obs: Observation,
    count_rows: bool,
) {
    match by_key.get(&obs.key) {
        None => {
            by_key.insert(obs.key.clone(), out.len());
            out.push(obs);
        }
        Some(&i) => {
            let prev = &mut out[i];
            if count_rows {
                prev.metric = Some(prev.metric.unwrap_or(0.0) + 1.0);
                if prev.sample.len() < crate::model::SAMPLE_ROWS {
                    prev.sample.extend(obs.sample);
                }
            } else if rank(&obs.status) < rank(&prev.status)
                || (rank(&obs.status) == rank(&prev.status)
                    && obs.metric > prev.metric
                    && matches!(obs.status, Status::Pass))
            {
                *prev = obs;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::parse_threshold;
    use crate::config::Lifecycle;
    use crate::model::Severity::{self, *};
    use crate::model::{Category, CheckId};

    fn check(keys: &[&str], judge: Judge, on_no_data: OnNoData) -> Check {
        Check {
            id: CheckId("t".into()),
            path: "checks/t.sql".into(),
            description: None,
            connection: "wh".into(),
            schedule: None,
            category: Category::QualityDegradation,
            owners: vec![],
            tags: vec![],
            impact: vec![],
            runbook: None,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            judge,
            on_no_data,
            lifecycle: Lifecycle::default(),
            sql: "SELECT 1".into(),
            sql_line: 2,
            rule: None,
            reconcile: None,
            history: None,
        }
    }

    fn thresholds(levels: &[(Severity, &str)]) -> Judge {
        Judge::Thresholds {
            metric: "gap".into(),
            levels: levels
                .iter()
                .map(|(s, t)| parse_threshold(*s, t).unwrap())
                .collect(),
        }
    }

    fn rs(columns: &[&str], rows: Vec<Vec<Value>>) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            capped: false,
        }
    }

    fn statuses(o: &Outcome) -> Vec<(String, Status)> {
        let Outcome::Evaluated { observations, .. } = o else {
            panic!("{o:?}")
        };
        observations
            .iter()
            .map(|o| (o.key.to_string(), o.status.clone()))
            .collect()
    }

    fn error(o: &Outcome) -> (ErrorKind, &str) {
        let Outcome::Error { kind, message } = o else {
            panic!("{o:?}")
        };
        (*kind, message)
    }

    #[test]
    fn worst_matching_level_wins_per_key() {
        let c = check(
            &["day"],
            thresholds(&[(P0, "> 10000"), (P2, "> 100")]),
            OnNoData::Error,
        );
        let out = evaluate(
            &c,
            &rs(
                &["day", "GAP"],
                vec![
                    vec![Value::Text("d1".into()), Value::Int(50)],
                    vec![Value::Text("d2".into()), Value::Float(500.5)],
                    vec![Value::Text("d3".into()), Value::Int(20_000)],
                ],
            ),
        );
        assert_eq!(
            statuses(&out),
            vec![
                ("day=d3".into(), Status::Breach { severity: P0 }),
                ("day=d2".into(), Status::Breach { severity: P2 }),
                ("day=d1".into(), Status::Pass),
            ]
        );
        assert_eq!(out.worst(), Some(P0));
    }

    #[test]
    fn each_operator() {
        for (t, v, breach) in [
            ("> 1", 2, true),
            ("> 1", 1, false),
            (">= 1", 1, true),
            ("< 1", 0, true),
            ("<= 1", 2, false),
            ("== 3", 3, true),
            ("!= 3", 3, false),
            ("!= 3", 4, true),
        ] {
            let c = check(&[], thresholds(&[(P1, t)]), OnNoData::Error);
            let out = evaluate(&c, &rs(&["gap"], vec![vec![Value::Int(v)]]));
            assert_eq!(out.worst().is_some(), breach, "{t} with {v}");
        }
    }

    #[test]
    fn rows_returned_are_failures() {
        let c = check(&["id"], Judge::RowsFail { severity: P1 }, OnNoData::Error);
        let out = evaluate(
            &c,
            &rs(
                &["id"],
                vec![
                    vec![Value::Int(1)],
                    vec![Value::Int(1)],
                    vec![Value::Int(2)],
                ],
            ),
        );
        let Outcome::Evaluated {
            observations, rows, ..
        } = &out
        else {
            panic!()
        };
        assert_eq!(*rows, 3);
        assert_eq!(observations.len(), 2);
        assert_eq!(observations[0].metric, Some(2.0));
        assert_eq!(observations[0].sample.len(), 2);
        assert_eq!(out.worst(), Some(P1));
        let none = evaluate(
            &check(&[], Judge::RowsFail { severity: P1 }, OnNoData::Error),
            &rs(&["id"], vec![]),
        );
        assert_eq!(statuses(&none), vec![(String::new(), Status::Pass)]);
    }

    #[test]
    fn no_data_is_never_a_silent_pass() {
        let c = check(&[], thresholds(&[(P1, "> 1")]), OnNoData::Error);
        assert_eq!(
            error(&evaluate(&c, &rs(&["gap"], vec![]))).0,
            ErrorKind::NoData
        );
        assert_eq!(
            error(&evaluate(&c, &rs(&["gap"], vec![vec![Value::Null]]))).0,
            ErrorKind::NoData
        );
        let c = check(&[], thresholds(&[(P1, "> 1")]), OnNoData::Pass);
        assert_eq!(
            statuses(&evaluate(&c, &rs(&["gap"], vec![]))),
            vec![(String::new(), Status::NoData)]
        );
        let c = check(&[], thresholds(&[(P1, "> 1")]), OnNoData::Breach(P3));
        assert_eq!(
            evaluate(&c, &rs(&["gap"], vec![vec![Value::Null]])).worst(),
            Some(P3)
        );
    }

    #[test]
    fn bad_metrics_are_errors() {
        let c = check(&[], thresholds(&[(P1, "> 1")]), OnNoData::Pass);
        for v in [
            Value::Text("12".into()),
            Value::Bool(true),
            Value::Float(f64::NAN),
            Value::Unsupported("INTERVAL".into()),
        ] {
            let out = evaluate(&c, &rs(&["gap"], vec![vec![v.clone()]]));
            assert_eq!(error(&out).0, ErrorKind::Result, "{v:?}");
        }
        let out = evaluate(&c, &rs(&["other"], vec![vec![Value::Int(1)]]));
        assert_eq!(
            error(&out),
            (
                ErrorKind::Result,
                "the result has no column \"gap\" (the metric); its columns are: other"
            )
        );
    }

    #[test]
    fn severity_map() {
        let judge = Judge::SeverityMap {
            column: "risk".into(),
            metric: None,
            map: vec![("HIGH".into(), Some(P1)), ("LOW".into(), None)],
        };
        let c = check(&["ds"], judge, OnNoData::Error);
        let out = evaluate(
            &c,
            &rs(
                &["ds", "risk"],
                vec![
                    vec![Value::Text("a".into()), Value::Text("low".into())],
                    vec![Value::Text("b".into()), Value::Text("HIGH".into())],
                ],
            ),
        );
        assert_eq!(
            statuses(&out),
            vec![
                ("ds=b".into(), Status::Breach { severity: P1 }),
                ("ds=a".into(), Status::Pass)
            ]
        );
        let out = evaluate(
            &c,
            &rs(
                &["ds", "risk"],
                vec![vec![Value::Text("a".into()), Value::Text("HIHG".into())]],
            ),
        );
        assert!(error(&out).1.contains("label \"HIHG\""));
    }

    #[test]
    fn keys_of_any_type_are_stable_strings() {
        let c = check(
            &["d", "n", "x"],
            thresholds(&[(P1, "> 1")]),
            OnNoData::Error,
        );
        let out = evaluate(
            &c,
            &rs(
                &["d", "n", "x", "gap"],
                vec![vec![
                    Value::Text("2026-11-20".into()),
                    Value::Int(7),
                    Value::Float(1.5),
                    Value::Int(5),
                ]],
            ),
        );
        assert_eq!(statuses(&out)[0].0, "d=2026-11-20, n=7, x=1.5");
    }

    #[test]
    fn unreadable_keys_are_errors_not_merged() {
        let c = check(&["id"], thresholds(&[(P1, "> 1")]), OnNoData::Error);
        let out = evaluate(
            &c,
            &rs(
                &["id", "gap"],
                vec![vec![Value::Unsupported("UUID".into()), Value::Int(5)]],
            ),
        );
        assert!(error(&out).1.contains("key \"id\" has type UUID"));
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
        assert!(join_sides(&dup, &b, &spec).unwrap_err().1.contains("twice"));
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

    #[test]
    fn capped_results_say_so() {
        let c = check(&[], Judge::RowsFail { severity: P2 }, OnNoData::Error);
        let mut r = rs(&["id"], vec![vec![Value::Int(1)]]);
        r.capped = true;
        let Outcome::Evaluated { capped, .. } = evaluate(&c, &r) else {
            panic!()
        };
        assert!(capped);
    }
}
