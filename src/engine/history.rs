//! Rules judged against dqwatch's own stored history: `volume_anomaly` (a count against its
//! past counts), `schema_change` (columns against the last snapshot) and `trend_risk` with
//! `of` (another check's metric history). The arithmetic is in `evaluate`; this reads and
//! writes the store and builds the rows that the check's judge then evaluates.

use crate::checks::{Check, HistoryEngine};
use crate::evaluate::{evaluate, robust_z, schema_judge, trend};
use crate::incidents::fingerprint;
use crate::model::{ErrorKind, Key, Outcome, QueryStats, ResultSet, Value};
use crate::store::Store;
use crate::warehouse::Warehouse;
use chrono::{DateTime, Datelike, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Past values considered at most per key.
const HISTORY: i64 = 400;
/// The most recent usable values form the baseline.
const BASELINE: usize = 60;

fn err(kind: ErrorKind, message: impl Into<String>) -> Outcome {
    Outcome::Error {
        kind,
        message: message.into(),
    }
}

fn rows(columns: &[&str], rows: Vec<Vec<Value>>) -> ResultSet {
    ResultSet {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
        capped: false,
    }
}

fn num(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::Float)
}

/// Runs a history rule check; also what the warehouse told about its query.
pub async fn outcome(
    check: &Check,
    warehouse: Option<Arc<Warehouse>>,
    store: Option<Store>,
    now: DateTime<Utc>,
) -> (Outcome, QueryStats) {
    let stats = std::sync::Mutex::new(QueryStats::default());
    let outcome = judge(check, warehouse, None, store, now, &stats).await;
    let stats = stats
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (outcome, stats)
}

/// Judges a history rule check on rows already read (its part of a shared scan).
pub async fn outcome_of(
    check: &Check,
    rows: ResultSet,
    store: Option<Store>,
    now: DateTime<Utc>,
) -> Outcome {
    let stats = std::sync::Mutex::new(QueryStats::default());
    judge(check, None, Some(rows), store, now, &stats).await
}

async fn judge(
    check: &Check,
    warehouse: Option<Arc<Warehouse>>,
    read: Option<ResultSet>,
    store: Option<Store>,
    now: DateTime<Utc>,
    stats: &std::sync::Mutex<QueryStats>,
) -> Outcome {
    let (Some(engine), Some(store)) = (&check.history, store) else {
        return err(
            ErrorKind::Result,
            format!(
                "rule {} compares with dqwatch's stored history and needs the state store (run without --no-incidents)",
                check.rule.as_deref().unwrap_or("?")
            ),
        );
    };
    // The rows already read (a shared scan), else the check's own query.
    let fetch = |read: Option<ResultSet>| async {
        if let Some(rs) = read {
            return Ok(rs);
        }
        match &warehouse {
            Some(w) => {
                let f = w
                    .fetch_timed(&check.sql, crate::engine::run::job(check))
                    .await;
                stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .merge(f.stats);
                f.rows.map_err(|e| err(e.kind(), e.to_string()))
            }
            None => Err(err(
                ErrorKind::Connection,
                format!("connection \"{}\" is not configured", check.connection),
            )),
        }
    };
    match engine {
        HistoryEngine::Volume {
            min_history,
            sensitivity,
            day_of_week,
            severity,
        } => {
            let rs = match fetch(read).await {
                Ok(rs) => rs,
                Err(o) => return o,
            };
            let mut out = Vec::with_capacity(rs.rows.len());
            for row in &rs.rows {
                let (subject, count) = (
                    row.first().cloned().unwrap_or(Value::Null),
                    row.get(1).and_then(Value::as_f64),
                );
                let Some(count) = count else {
                    return err(ErrorKind::Result, "the row count is not a number");
                };
                let key = Key(vec![("subject".into(), subject.to_string())]);
                let past = match store
                    .value_history(&fingerprint(&check.id, &key), HISTORY)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => return err(ErrorKind::Query, e.chain()),
                };
                // Breaching runs (an incident was open) stay out of the baseline, so that a past
                // breach does not teach the rule that bad is normal.
                let baseline: Vec<f64> = past
                    .iter()
                    .filter(|(at, _, breached)| {
                        !breached && (!day_of_week || at.weekday() == now.weekday())
                    })
                    .take(BASELINE)
                    .map(|(_, v, _)| *v)
                    .collect();
                let (z, status) = if baseline.len() < *min_history {
                    (None, Value::Null)
                } else {
                    let z = robust_z(&baseline, count);
                    let label = if z.abs() > *sensitivity {
                        severity.as_str()
                    } else {
                        "pass"
                    };
                    (Some(z), Value::Text(label.into()))
                };
                out.push(vec![
                    subject,
                    Value::Float(count),
                    num(z),
                    Value::Int(baseline.len() as i64),
                    status,
                ]);
            }
            let rs = rows(
                &["subject", "row_count", "zscore", "history", "status"],
                out,
            );
            let mut outcome = evaluate(check, &rs);
            // The count, not the z-score, is the history of this rule.
            if let Outcome::Evaluated { observations, .. } = &mut outcome {
                for o in observations {
                    o.value = o
                        .sample
                        .first()
                        .and_then(|r| r.get(1))
                        .and_then(Value::as_f64);
                }
            }
            outcome
        }
        HistoryEngine::Schema { severity, added } => {
            let rs = match fetch(read).await {
                Ok(rs) => rs,
                Err(o) => return o,
            };
            let current: BTreeMap<String, String> = rs
                .rows
                .iter()
                .map(|r| (format!("{}.{}", r[0], r[1]), r[2].to_string()))
                .collect();
            if current.is_empty() {
                return err(
                    ErrorKind::Result,
                    "the table has no columns: does it exist?",
                );
            }
            let previous = match store.snapshot(&check.id.0).await {
                Ok(p) => p.and_then(|(b, at)| {
                    Some((
                        serde_json::from_str::<BTreeMap<String, String>>(&b).ok()?,
                        at,
                    ))
                }),
                Err(e) => return err(ErrorKind::Query, e.chain()),
            };
            // A column whose incident someone resolved by hand since the last run is accepted.
            let accepted: Vec<String> = match &previous {
                Some((_, taken_at)) => match store.known_incidents(*taken_at).await {
                    Ok(known) => known
                        .into_iter()
                        .filter(|i| {
                            i.check_id == check.id
                                && i.state == crate::model::IncidentState::Resolved
                                && i.resolved_by.as_deref()
                                    != Some(crate::incidents::reconcile::SYSTEM_ACTOR)
                                && i.resolved_at.is_some_and(|r| r >= *taken_at)
                        })
                        .map(|i| i.fingerprint)
                        .collect(),
                    Err(e) => return err(ErrorKind::Query, e.chain()),
                },
                None => Vec::new(),
            };
            let column_fp =
                |col: &str| fingerprint(&check.id, &Key(vec![("column".into(), col.into())]));
            let (diffs, baseline) = match &previous {
                Some((p, _)) => schema_judge(
                    p,
                    &current,
                    |change| change != "added" || added.is_some(),
                    |col| accepted.contains(&column_fp(col)),
                ),
                None => (Vec::new(), current.clone()),
            };
            let body = serde_json::to_string(&baseline).unwrap_or_default();
            if let Err(e) = store.put_snapshot(&check.id.0, &body, now).await {
                return err(ErrorKind::Query, e.chain());
            }
            let out = diffs
                .into_iter()
                .map(|(col, change, old, new)| {
                    let label = match (change, added) {
                        ("added", Some(s)) => s.as_str(),
                        ("added", None) => "pass",
                        _ => severity.as_str(),
                    };
                    let text = |s: Option<String>| s.map_or(Value::Null, Value::Text);
                    vec![
                        Value::Text(col),
                        Value::Text(change.into()),
                        text(old),
                        text(new),
                        Value::Text(label.into()),
                    ]
                })
                .collect();
            evaluate(
                check,
                &rows(&["column", "change", "old_type", "new_type", "status"], out),
            )
        }
        HistoryEngine::TrendOf { of, high, medium } => {
            let values = match store
                .check_values(&of.0, now - chrono::Duration::days(9))
                .await
            {
                Ok(v) => v,
                Err(e) => return err(ErrorKind::Query, e.chain()),
            };
            let mut by_key: BTreeMap<String, Vec<(DateTime<Utc>, f64)>> = BTreeMap::new();
            for (key_json, at, v) in values {
                let key: Vec<(String, String)> =
                    serde_json::from_str(&key_json).unwrap_or_default();
                let name = if key.is_empty() {
                    "all".to_string()
                } else {
                    Key::from(key).to_string()
                };
                by_key.entry(name).or_default().push((at, v));
            }
            if by_key.is_empty() && check.on_no_data == crate::checks::OnNoData::Error {
                return err(
                    ErrorKind::NoData,
                    format!("check \"{of}\" has no stored metric history in the last 9 days yet"),
                );
            }
            let out = by_key
                .into_iter()
                .filter_map(|(subject, values)| {
                    let (latest, day, week) = trend(&values)?;
                    let over = |(d, w, _): &(f64, f64, crate::model::Severity)| {
                        day.is_some_and(|x| x > *d) && week.is_some_and(|x| x > *w)
                    };
                    let risk = if over(high) {
                        high.2.as_str()
                    } else if over(medium) {
                        medium.2.as_str()
                    } else {
                        "pass"
                    };
                    Some(vec![
                        Value::Text(subject),
                        Value::Float(latest),
                        num(day),
                        num(week),
                        Value::Text(risk.into()),
                    ])
                })
                .collect();
            evaluate(
                check,
                &rows(
                    &["subject", "latest", "drop_pct_day", "drop_pct_week", "risk"],
                    out,
                ),
            )
        }
    }
}
