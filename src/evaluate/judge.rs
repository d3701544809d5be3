//! Judging: rows → observations per key → [`Outcome`]. A result that cannot be judged is
//! an `Outcome::Error`, never a pass.

use super::error::{EvalError, MetricProblem, NoDataWhy};
use crate::checks::{Check, Judge, OnNoData};
use crate::model::{Key, Observation, Outcome, ResultSet, Status, Value};
use std::collections::HashMap;

/// Judges one check's rows.
pub fn evaluate(check: &Check, rs: &ResultSet) -> Outcome {
    match judge_rows(check, rs) {
        Ok(mut observations) => {
            // Breaches first, worst first; the sort is stable, so keys keep their row order.
            observations.sort_by_key(|o| rank(&o.status));
            // A run holds every check's observations until it is recorded and reported.
            observations.shrink_to_fit();
            Outcome::Evaluated {
                columns: rs.columns.clone(),
                observations,
                rows: rs.rows.len() as u64,
                capped: rs.capped,
            }
        }
        Err(e) => e.into(),
    }
}

/// Applies the check's severity policy to an outcome: every breach below the floor its
/// `impact` tags give is raised to it. Called once per run, on every outcome (query, rule,
/// history), so the report, the exit code, JUnit, JSON and the incident see one severity.
/// The threshold that matched keeps its own level (`P2 > 100`).
pub fn apply_policy(check: &Check, mut outcome: Outcome) -> Outcome {
    let Some(floor) = check.min_severity else {
        return outcome;
    };
    if let Outcome::Evaluated { observations, .. } = &mut outcome {
        for o in observations.iter_mut() {
            if let Status::Breach { severity } = &mut o.status
                && floor.at_least(*severity)
            {
                *severity = floor;
            }
        }
        observations.sort_by_key(|o| rank(&o.status));
    }
    outcome
}

/// Drops the sample rows nothing will read, once the outcome is final (history rules read
/// their own rows first): a breaching key's rows go into its incident's mail and page, and a
/// passing key of a severity map without a metric prints its row as its metric; every other
/// key's row would only be held until the run is reported.
pub fn drop_unread_samples(check: &Check, mut outcome: Outcome) -> Outcome {
    if let Outcome::Evaluated { observations, .. } = &mut outcome {
        let printed = check.metric().is_none();
        for o in observations.iter_mut() {
            let read = match o.status {
                Status::Breach { .. } => true,
                Status::Pass => printed && o.label.is_some(),
                Status::NoData | Status::Error { .. } => false,
            };
            if !read {
                o.sample = Vec::new();
            }
        }
    }
    outcome
}

type Judged = Result<Vec<Observation>, EvalError>;

fn column(rs: &ResultSet, name: &str, role: &'static str) -> Result<usize, EvalError> {
    rs.columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .ok_or_else(|| EvalError::MissingColumn {
            name: name.to_string(),
            role,
            columns: rs.columns.clone(),
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
                NoDataWhy::NoRows,
            )?],
        });
    }

    let mut by_key: HashMap<Key, (usize, usize)> = HashMap::new();
    let mut out: Vec<Observation> = Vec::new();
    // One copy of each key column's name, shared by every key.
    let names: Vec<std::sync::Arc<str>> = check.keys.iter().map(|k| k.as_str().into()).collect();
    for (n, row) in rs.rows.iter().enumerate() {
        let mut key = Vec::with_capacity(key_cols.len());
        for (&i, name) in key_cols.iter().zip(&names) {
            if let Value::Unsupported(ty) = &row[i] {
                // Every such value would print alike and merge distinct subjects into one.
                return Err(EvalError::UnreadableKey {
                    name: name.to_string(),
                    ty: ty.clone(),
                });
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
                        NoDataWhy::NullMetric {
                            metric: metric.clone(),
                        },
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
                        NoDataWhy::NullLabel {
                            column: col.clone(),
                        },
                    )?
                } else {
                    let text = label.to_string();
                    let Some((_, sev)) = map.iter().find(|(l, _)| l.eq_ignore_ascii_case(&text))
                    else {
                        return Err(EvalError::UnmappedLabel {
                            label: text,
                            column: col.clone(),
                            row: n + 1,
                            mapped: map.iter().map(|(l, _)| l.clone()).collect(),
                        });
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

/// Applies `on_no_data` to a key without a metric. With `"error"`, a keyed check's NULL row
/// is that key's problem (the other keys are judged); without keys it is the check's.
fn no_data(
    check: &Check,
    key: Key,
    row: Vec<Value>,
    why: NoDataWhy,
) -> Result<Observation, EvalError> {
    match check.on_no_data {
        OnNoData::Error if !key.is_empty() => {
            let message = EvalError::NoData {
                why,
                key: key.clone(),
            }
            .to_string();
            Ok(observation(key, Status::Error { message }, None, row))
        }
        OnNoData::Error => Err(EvalError::NoData { why, key }),
        OnNoData::Pass => Ok(observation(key, Status::NoData, None, row)),
        OnNoData::Breach(severity) => Ok(observation(key, Status::Breach { severity }, None, row)),
    }
}

/// A metric cell as a number; NULL is `None`; text, booleans and NaN are errors.
fn number(v: &Value, metric: &str, row: usize) -> Result<Option<f64>, EvalError> {
    let err = |problem| {
        Err(EvalError::BadMetric {
            metric: metric.to_string(),
            row: row + 1,
            problem,
        })
    };
    match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(*i as f64)),
        Value::Float(f) if f.is_nan() => err(MetricProblem::NaN),
        Value::Float(f) => Ok(Some(*f)),
        Value::Text(t) => err(MetricProblem::Text(truncate(t))),
        Value::Bool(b) => err(MetricProblem::Bool(*b)),
        Value::Unsupported(t) => err(MetricProblem::Unsupported(t.clone())),
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
        Status::Error { .. } => 9,
        Status::NoData => 10,
        Status::Pass => 11,
    }
}

/// Keeps one observation per key. Rows-fail checks count their rows; a check without keys is
/// judged by its worst row; for the others a key is one row, and a key on several rows is
/// not a key: that key is an error saying so (not a silent merge that keeps one row).
fn merge(
    by_key: &mut HashMap<Key, (usize, usize)>,
    out: &mut Vec<Observation>,
    obs: Observation,
    count_rows: bool,
) {
    match by_key.get_mut(&obs.key) {
        None => {
            by_key.insert(obs.key.clone(), (out.len(), 1));
            out.push(obs);
        }
        Some((i, n)) => {
            *n += 1;
            let prev = &mut out[*i];
            if count_rows {
                prev.metric = Some(prev.metric.unwrap_or(0.0) + 1.0);
                if prev.sample.len() < crate::model::SAMPLE_ROWS {
                    prev.sample.extend(obs.sample);
                }
            } else if prev.key.is_empty() {
                // No keys: the check is one subject, judged by its worst row.
                if rank(&obs.status) < rank(&prev.status)
                    || (rank(&obs.status) == rank(&prev.status)
                        && obs.metric > prev.metric
                        && matches!(obs.status, Status::Pass))
                {
                    *prev = obs;
                }
            } else {
                prev.status = Status::Error {
                    message: format!(
                        "key {} is on {n} rows: a key must name one row (add the column that tells them apart to keys, or group by the key)",
                        obs.key
                    ),
                };
                prev.metric = None;
                prev.threshold = None;
                if prev.sample.len() < crate::model::SAMPLE_ROWS {
                    prev.sample.extend(obs.sample);
                }
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
            min_severity: None,
            runbook: None,
            max_bytes_billed: None,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            judge,
            on_no_data,
            lifecycle: Lifecycle::default(),
            sql: "SELECT 1".into(),
            sql_line: 2,
            rule: None,
            reconcile: None,
            history: None,
            fuse: None,
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

    use crate::model::ErrorKind;

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

    fn sample_sizes(o: &Outcome) -> Vec<(String, usize)> {
        let Outcome::Evaluated { observations, .. } = o else {
            panic!("{o:?}")
        };
        observations
            .iter()
            .map(|o| (o.key.to_string(), o.sample.len()))
            .collect()
    }

    // A finished run holds no row of a passing key that nothing prints (issue 13: 200 k
    // observations), but keeps a breaching key's rows for its incident and the row a severity
    // map without a metric prints for a passing key.
    #[test]
    fn samples_stay_only_where_read() {
        let c = check(&["day"], thresholds(&[(P2, "> 100")]), OnNoData::Pass);
        let out = evaluate(
            &c,
            &rs(
                &["day", "gap"],
                vec![
                    vec![Value::Text("d1".into()), Value::Int(50)],
                    vec![Value::Text("d2".into()), Value::Int(500)],
                    vec![Value::Text("d3".into()), Value::Null],
                ],
            ),
        );
        assert_eq!(
            sample_sizes(&out),
            [
                ("day=d2".into(), 1),
                ("day=d3".into(), 1),
                ("day=d1".into(), 1)
            ]
        );
        assert_eq!(
            sample_sizes(&drop_unread_samples(&c, out)),
            [
                ("day=d2".into(), 1),
                ("day=d3".into(), 0),
                ("day=d1".into(), 0)
            ]
        );

        let mapped = |metric: Option<&str>| {
            let judge = Judge::SeverityMap {
                column: "risk".into(),
                metric: metric.map(Into::into),
                map: vec![("HIGH".into(), Some(P1)), ("LOW".into(), None)],
            };
            let c = check(&["ds"], judge, OnNoData::Error);
            let rows = vec![
                vec![
                    Value::Text("a".into()),
                    Value::Text("low".into()),
                    Value::Int(1),
                ],
                vec![
                    Value::Text("b".into()),
                    Value::Text("HIGH".into()),
                    Value::Int(2),
                ],
            ];
            let out = evaluate(&c, &rs(&["ds", "risk", "gap"], rows));
            sample_sizes(&drop_unread_samples(&c, out))
        };
        assert_eq!(mapped(None), [("ds=b".into(), 1), ("ds=a".into(), 1)]);
        assert_eq!(
            mapped(Some("gap")),
            [("ds=b".into(), 1), ("ds=a".into(), 0)]
        );
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
    fn impact_floor_raises_every_breach_once() {
        // See: issues/10 item 1
        let mut c = check(&["day"], thresholds(&[(P2, "> 100")]), OnNoData::Error);
        c.min_severity = Some(P1);
        let out = evaluate(
            &c,
            &rs(
                &["day", "gap"],
                vec![
                    vec![Value::Text("d1".into()), Value::Int(500)],
                    vec![Value::Text("d2".into()), Value::Int(5)],
                ],
            ),
        );
        let out = apply_policy(&c, out);
        assert_eq!(
            statuses(&out),
            vec![
                ("day=d1".into(), Status::Breach { severity: P1 }),
                ("day=d2".into(), Status::Pass),
            ]
        );
        // Applying it again changes nothing; a worse breach is never lowered.
        assert_eq!(apply_policy(&c, out.clone()), out);
        c.min_severity = Some(P3);
        assert_eq!(apply_policy(&c, out).worst(), Some(P1));
    }

    #[test]
    fn a_null_metric_is_that_keys_problem() {
        // See: issues/10 item 4
        let c = check(&["day"], thresholds(&[(P2, "> 100")]), OnNoData::Error);
        let out = evaluate(
            &c,
            &rs(
                &["day", "gap"],
                vec![
                    vec![Value::Text("d1".into()), Value::Null],
                    vec![Value::Text("d2".into()), Value::Int(500)],
                ],
            ),
        );
        let s = statuses(&out);
        assert_eq!(s[0], ("day=d2".into(), Status::Breach { severity: P2 }));
        assert!(
            matches!(&s[1], (k, Status::Error { message }) if k == "day=d1" && message.contains("NULL")),
            "{s:?}"
        );
        assert_eq!(out.unjudged(), 1);
        // on_no_data still decides: "pass" makes it no data, a severity a breach.
        let c = check(&["day"], thresholds(&[(P2, "> 100")]), OnNoData::Pass);
        let out = evaluate(
            &c,
            &rs(
                &["day", "gap"],
                vec![vec![Value::Text("d1".into()), Value::Null]],
            ),
        );
        assert_eq!(statuses(&out), vec![("day=d1".into(), Status::NoData)]);
    }

    #[test]
    fn duplicate_keys_are_errors_not_merged() {
        // See: issues/10 item 8
        let c = check(&["day"], thresholds(&[(P2, "> 100")]), OnNoData::Error);
        let out = evaluate(
            &c,
            &rs(
                &["day", "gap"],
                vec![
                    vec![Value::Text("d1".into()), Value::Int(500)],
                    vec![Value::Text("d1".into()), Value::Int(1)],
                    vec![Value::Text("d2".into()), Value::Int(1)],
                ],
            ),
        );
        let s = statuses(&out);
        assert!(
            matches!(&s[0], (k, Status::Error { message }) if k == "day=d1" && message.contains("is on 2 rows")),
            "{s:?}"
        );
        assert_eq!(s[1], ("day=d2".into(), Status::Pass));
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
