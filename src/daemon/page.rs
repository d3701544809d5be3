//! The incidents page: open incidents by severity with their timelines, and every check's
//! recent runs with a small server-rendered SVG chart of its metric. No JavaScript; every
//! value is HTML-escaped (check SQL and row values are data).

use super::Shared;
use crate::model::{Metric, Severity, Unit};
use crate::store::format_time;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An incident's latest metric in its unit with the threshold it breached, HTML-escaped:
/// `1d 2h (threshold P2 &gt; 24h)`, as the terminal and mails say it.
pub fn incident_metric(inc: &crate::incidents::Incident) -> Option<String> {
    let metric = inc.metric_text()?;
    let threshold = inc
        .threshold_text()
        .map(|t| format!(" (threshold {t})"))
        .unwrap_or_default();
    let label = inc
        .label
        .as_ref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    Some(esc(&format!("{metric}{threshold}{label}")))
}

/// A polyline chart of `values` (oldest first), 160×32; its title gives the range in `unit`.
pub fn sparkline(values: &[f64], unit: Unit) -> String {
    if values.len() < 2 {
        return String::from("<span class=\"muted\">no history yet</span>");
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(*v), h.max(*v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let step = 158.0 / (values.len() - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                1.0 + i as f64 * step,
                31.0 - (v - lo) / span * 30.0
            )
        })
        .collect();
    format!(
        "<svg width=\"160\" height=\"32\" viewBox=\"0 0 160 32\" role=\"img\"><title>{} to {}</title>\
         <polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        esc(&Metric { value: lo, unit }.to_string()),
        esc(&Metric { value: hi, unit }.to_string()),
        points.join(" ")
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#111}h1{font-size:22px}\
h2{font-size:18px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 10px;\
border-bottom:1px solid #ddd;text-align:left;vertical-align:top;font-size:14px}.sev{font-weight:bold}\
.P0{color:#b91c1c}.P1{color:#c2410c}.P2{color:#a16207}.P3{color:#4b5563}.muted{color:#777}\
.dot{display:inline-block;width:9px;height:9px;border-radius:5px;margin-right:2px}\
.pass{background:#16a34a}.breach{background:#dc2626}.error{background:#6b7280}details{margin:4px 0}";

/// Renders the page from the store.
pub async fn render(shared: &Shared) -> Result<String, String> {
    let loaded = shared.loaded();
    let open = shared
        .store
        .incidents(&["open", "acknowledged", "pending"])
        .await
        .map_err(|e| e.chain())?;
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>dqwatch</title><style>{STYLE}</style></head><body>\
         <h1>dqwatch — {} open incident{}</h1><p class=\"muted\">{} check{} · updated {}</p>",
        open.len(),
        if open.len() == 1 { "" } else { "s" },
        loaded.checks.len(),
        if loaded.checks.len() == 1 { "" } else { "s" },
        esc(&format_time(shared.clock.now()))
    );
    for sev in Severity::ALL {
        let list: Vec<_> = open.iter().filter(|i| i.severity == sev).collect();
        if list.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            "<h2 class=\"{sev}\">{sev} — {} incident{}</h2>",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        );
        for inc in list {
            let _ = write!(
                html,
                "<details open><summary><span class=\"sev {sev}\">#{}</span> {} <span class=\"muted\">· {} · {} · opened {}{}</span></summary><table>",
                inc.id,
                esc(&inc.title),
                esc(inc.state.as_str()),
                esc(inc.category.as_str()),
                esc(&inc.opened_at.map(format_time).unwrap_or_else(|| "-".into())),
                incident_metric(inc)
                    .map(|m| format!(" · {m}"))
                    .unwrap_or_default()
            );
            if let Ok(Some((_, events))) = shared.store.incident(inc.id).await {
                for e in events {
                    let _ = write!(
                        html,
                        "<tr><td class=\"muted\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&format_time(e.at)),
                        esc(e.kind.as_str()),
                        esc(&e.actor),
                        esc(e.note.as_deref().unwrap_or(""))
                    );
                }
            }
            html.push_str("</table></details>");
        }
    }
    if open.is_empty() {
        html.push_str("<p>Nothing open. ✓</p>");
    }
    let runs = shared.store.recent_runs(20).await.map_err(|e| e.chain())?;
    let mut by_check: BTreeMap<&str, Vec<&crate::store::RecentRun>> = BTreeMap::new();
    for r in &runs {
        by_check.entry(r.0.as_str()).or_default().push(r);
    }
    html.push_str("<h2>Checks</h2><table><tr><th>check</th><th>schedule</th><th>recent runs</th><th>metric</th></tr>");
    for check in &loaded.checks {
        let dots: String = by_check
            .get(check.id.0.as_str())
            .map(|rs| {
                rs.iter()
                    .map(|(_, at, outcome, sev, ms)| {
                        format!(
                            "<span class=\"dot {}\" title=\"{} {} {} ms\"></span>",
                            esc(outcome),
                            esc(at),
                            esc(sev.as_deref().unwrap_or(outcome)),
                            ms
                        )
                    })
                    .collect()
            })
            .unwrap_or_else(|| "<span class=\"muted\">not run yet</span>".into());
        let history = shared
            .store
            .check_history(&check.id.0, 200)
            .await
            .unwrap_or_default();
        let mut per_run: BTreeMap<&str, f64> = BTreeMap::new();
        for (at, _, metric) in &history {
            if let Some(m) = metric {
                let e = per_run.entry(at.as_str()).or_insert(*m);
                *e = e.max(*m);
            }
        }
        let values: Vec<f64> = per_run.into_values().collect();
        let unit = match &check.judge {
            crate::checks::Judge::Thresholds { levels, .. } => {
                levels.first().map_or(Unit::Number, |t| t.unit)
            }
            _ => Unit::Number,
        };
        let _ = write!(
            html,
            "<tr><td><b>{}</b><br><span class=\"muted\">{}</span></td><td>{}</td><td>{dots}</td><td>{}</td></tr>",
            esc(&check.id.0),
            esc(check.description.as_deref().unwrap_or("")),
            esc(check.schedule.as_ref().map_or("-", |s| s.as_str())),
            sparkline(&values, unit)
        );
    }
    html.push_str("</table></body></html>");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    // See: issues/9 (a threshold keeps its unit; the terminal said `lag_seconds=1d 2h`, the
    // mail `Metric: 93600 (threshold > 24h)`). One check, one breach, every output path.
    #[test]
    fn a_metric_prints_the_same_in_terminal_json_page_and_mail() {
        use crate::checks::{Check, Judge, OnNoData, parse_threshold};
        use crate::compose::{Composer, Templates};
        use crate::config::Lifecycle;
        use crate::engine::run::{CheckRun, RunReport};
        use crate::incidents::{Policy, reconcile};
        use crate::model::{Category, CheckId, ResultSet, Value};
        use chrono::TimeZone;
        use std::collections::BTreeMap;
        use std::sync::Arc;
        use std::time::Duration;

        let check = Arc::new(Check {
            id: CheckId("pipeline/freshness".into()),
            path: "checks/pipeline/freshness.sql".into(),
            description: None,
            connection: "warehouse".into(),
            schedule: None,
            category: Category::StaleData,
            owners: vec![],
            tags: vec![],
            impact: vec![],
            min_severity: None,
            runbook: None,
            keys: vec![],
            judge: Judge::Thresholds {
                metric: "lag_seconds".into(),
                levels: vec![parse_threshold(Severity::P2, "> 24h").unwrap()],
            },
            on_no_data: OnNoData::Error,
            lifecycle: Lifecycle::default(),
            sql: "SELECT 93600 AS lag_seconds".into(),
            sql_line: 1,
            rule: None,
            reconcile: None,
            history: None,
        });
        let rows = ResultSet {
            columns: vec!["lag_seconds".into()],
            rows: vec![vec![Value::Int(93_600)]],
            capped: false,
        };
        let outcome = crate::evaluate::evaluate(&check, &rows);
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .unwrap();
        let run = CheckRun {
            check: check.clone(),
            outcome: outcome.clone(),
            started_at: now,
            duration: Duration::ZERO,
            queued: Duration::ZERO,
        };

        // The terminal.
        let line = crate::report::text::lines(&run).join("\n");
        assert!(line.contains("lag_seconds=1d 2h (P2 > 24h)"), "{line}");

        // JSON: the number stays a number; the text is the terminal's.
        let report = RunReport {
            started_at: now,
            duration: Duration::ZERO,
            runs: vec![run],
            skipped: Vec::new(),
        };
        let doc: serde_json::Value =
            serde_json::from_str(&crate::report::json::render(&report, Severity::P1)).unwrap();
        let obs = &doc["checks"][0]["observations"][0];
        assert_eq!(obs["metric"], 93_600.0);
        assert_eq!(obs["metric_text"], "1d 2h");
        assert_eq!(obs["unit"], "seconds");
        assert_eq!(obs["threshold"], "P2 > 24h");

        // The incident keeps the unit and the threshold with its level.
        let policy = Policy::new(Lifecycle::default(), Category::StaleData, &BTreeMap::new());
        let (changes, _) = reconcile(&check.id, &policy, &outcome, &[], 0, now);
        let change = &changes[0];
        let inc = &change.incident;
        assert_eq!(inc.metric_text().as_deref(), Some("1d 2h"));
        assert_eq!(inc.threshold_text().as_deref(), Some("P2 > 24h"));

        // The page.
        assert_eq!(
            incident_metric(inc).as_deref(),
            Some("1d 2h (threshold P2 &gt; 24h)")
        );

        // Every mail: the built-in opened template, text and HTML.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dqwatch.toml");
        std::fs::write(
            &path,
            "[connections.warehouse]\nurl = \"sqlite://w.db\"\n\
             [mail]\nfrom = \"dq@example.com\"\ndir = \"outbox\"\n\
             [[routes]]\nemail = [\"oncall@example.com\"]\n",
        )
        .unwrap();
        let cfg = crate::config::load(&path, &|_| None).unwrap();
        let templates = Templates::load(&dir.path().join("templates")).unwrap();
        let mail = Composer::new(&cfg, templates)
            .compose(inc, &change.events[0], None, None, None)
            .unwrap()
            .unwrap();
        assert!(
            mail.text
                .contains("Metric:      1d 2h (threshold P2 > 24h)"),
            "{}",
            mail.text
        );
        assert!(
            mail.html.contains("1d 2h (threshold P2 &gt; 24h)"),
            "{}",
            mail.html
        );
    }

    #[test]
    fn sparkline_spans_the_box() {
        let svg = sparkline(&[1.0, 3.0, 2.0], Unit::Number);
        assert!(
            svg.contains("points=\"1.0,31.0 80.0,1.0 159.0,16.0\""),
            "{svg}"
        );
        assert!(sparkline(&[5.0], Unit::Number).contains("no history"));
        assert!(sparkline(&[2.0, 2.0], Unit::Number).contains("points=\"1.0,31.0 159.0,31.0\""));
    }
}
