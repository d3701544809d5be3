//! Reconciling 10,000 outcomes (1,000 of them breaching keys with open incidents) into the
//! SQLite state store, and into PostgreSQL when `DQWATCH_TEST_POSTGRES_URL` is set; and
//! rendering ticket mails. Prints figures; asserts nothing. `cargo bench --bench reconcile`.

use anyhow::Result;
use chrono::{Duration, TimeZone, Utc};
use dqwatch::checks::{Check, Judge, OnNoData};
use dqwatch::compose::{Composer, Templates};
use dqwatch::config::{self, Lifecycle};
use dqwatch::engine::run::{CheckRun, RunReport};
use dqwatch::model::{
    Category, CheckId, Key, Observation, Op, Outcome, Severity, Status, Threshold, Value,
};
use dqwatch::store::Store;
use std::sync::Arc;
use std::time::Instant;

const CHECKS: usize = 10_000;
const BREACHING: usize = 1_000;

fn check(i: usize) -> Arc<Check> {
    Arc::new(Check {
        max_bytes_billed: None,
        id: CheckId(format!("bench/c{i:05}")),
        path: format!("checks/bench/c{i:05}.sql").into(),
        description: Some("bench".into()),
        connection: "warehouse".into(),
        schedule: None,
        category: Category::QualityDegradation,
        owners: vec!["owner@example.com".into()],
        tags: vec![],
        impact: vec![],
        min_severity: None,
        runbook: None,
        keys: vec!["k".into()],
        judge: Judge::Thresholds {
            metric: "m".into(),
            levels: vec![],
        },
        on_no_data: OnNoData::Error,
        lifecycle: Lifecycle::default(),
        sql: "SELECT 1".into(),
        sql_line: 2,
        rule: None,
        reconcile: None,
        history: None,
        fuse: None,
    })
}

fn report(checks: &[Arc<Check>], at: chrono::DateTime<Utc>) -> RunReport {
    let runs = checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let breach = i < BREACHING;
            let status = if breach {
                Status::Breach {
                    severity: Severity::P1,
                }
            } else {
                Status::Pass
            };
            let obs = Observation {
                key: Key(vec![("k".into(), format!("{i}"))]),
                status,
                metric: Some(if breach { 500.0 } else { 5.0 }),
                value: Some(if breach { 500.0 } else { 5.0 }),
                threshold: Some(Threshold {
                    severity: Severity::P1,
                    op: Op::Gt,
                    limit: 100.0,
                    unit: dqwatch::model::Unit::Number,
                    text: "> 100".into(),
                }),
                label: None,
                sample: vec![vec![Value::Int(i as i64), Value::Float(500.0)]],
            };
            CheckRun {
                stats: Default::default(),
                check: Arc::clone(c),
                outcome: Outcome::Evaluated {
                    columns: vec!["k".into(), "m".into()],
                    observations: vec![obs],
                    rows: 1,
                    capped: false,
                },
                started_at: at,
                duration: std::time::Duration::from_millis(3),
                queued: std::time::Duration::ZERO,
            }
        })
        .collect();
    RunReport {
        started_at: at,
        duration: std::time::Duration::ZERO,
        runs,
        skipped: Vec::new(),
    }
}

async fn bench_store(name: &str, state_url: &str, dir: &std::path::Path) -> Result<()> {
    let cfg_text = format!(
        "state = \"{state_url}\"\n[connections.warehouse]\nurl = \"sqlite://w.db\"\n[mail]\nfrom = \"dq <dq@example.com>\"\ndir = \"outbox\"\n[[routes]]\nemail = [\"oncall@example.com\"]\n"
    );
    std::fs::write(dir.join("dqwatch.toml"), cfg_text)?;
    let cfg =
        config::load(&dir.join("dqwatch.toml"), &|_| None).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let store = Store::open(&cfg.state).await?;
    let composer = Composer::new(
        &cfg,
        Templates::load(&cfg.templates_dir).map_err(|d| anyhow::anyhow!("{d:?}"))?,
    );
    let checks: Vec<Arc<Check>> = (0..CHECKS).map(check).collect();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();

    // First pass opens the 1,000 incidents (and writes their tickets).
    let start = Instant::now();
    let rec = dqwatch::engine::apply::record_runs(
        &report(&checks, t0).runs,
        &[],
        &store,
        &composer,
        &cfg,
        t0,
    )
    .await?;
    let first = start.elapsed();
    // Steady state: the same outcomes again, 1,000 incidents open, nothing new to tell.
    let mut times = Vec::new();
    for n in 1..=5 {
        let at = t0 + Duration::minutes(n);
        let start = Instant::now();
        dqwatch::engine::apply::record_runs(
            &report(&checks, at).runs,
            &[],
            &store,
            &composer,
            &cfg,
            at,
        )
        .await?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{name:<10} first pass (opens {} incidents, {} mails): {:>7.1} ms = {:>8.0} outcomes/s | steady pass (1,000 open): median {:>7.1} ms = {:>8.0} outcomes/s",
        rec.opened,
        rec.mails,
        first.as_secs_f64() * 1000.0,
        CHECKS as f64 / first.as_secs_f64(),
        median * 1000.0,
        CHECKS as f64 / median
    );
    store.close().await;
    Ok(())
}

fn bench_render(dir: &std::path::Path) -> Result<()> {
    let cfg =
        config::load(&dir.join("dqwatch.toml"), &|_| None).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let composer = Composer::new(
        &cfg,
        Templates::load(&cfg.templates_dir).map_err(|d| anyhow::anyhow!("{d:?}"))?,
    );
    let mut inc = dqwatch::compose::example_incident();
    inc.state = dqwatch::model::IncidentState::Open;
    let ev = dqwatch::incidents::Event {
        id: 1,
        kind: dqwatch::incidents::EventKind::Opened,
        at: inc.first_seen_at,
        actor: "dqwatch".into(),
        severity: inc.severity,
        note: None,
        fields: Default::default(),
    };
    let n = 5_000;
    let start = Instant::now();
    for i in 0..n {
        inc.id = i;
        let mail = composer
            .compose(&inc, &ev, None, None, None)
            .map_err(anyhow::Error::msg)?;
        std::hint::black_box(mail);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "render     {n} ticket mails (subject, text, HTML): {:.1} ms = {:.0} mails/s",
        secs * 1000.0,
        n as f64 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let dir = tempfile::tempdir()?;
    bench_store("sqlite", "sqlite://state.db", dir.path()).await?;
    if let Ok(admin) = std::env::var("DQWATCH_TEST_POSTGRES_URL") {
        let schema = format!("dqbench_{}", std::process::id());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await?;
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
        let pg_dir = tempfile::tempdir()?;
        let result = bench_store("postgres", &url, pg_dir.path()).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut conn)
            .await?;
        result?;
    } else {
        println!("postgres   skipped: DQWATCH_TEST_POSTGRES_URL not set");
    }
    bench_render(dir.path())?;
    Ok(())
}
