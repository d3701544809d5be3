//! The incidents page: open incidents by severity with their timelines, and every check's
//! recent runs with a small server-rendered SVG chart of its metric. No JavaScript; every
//! value is HTML-escaped (check SQL and row values are data).

use super::Shared;
use crate::checks::Check;
use crate::compose::CheckInfo;
use crate::engine::load::Engine;
use crate::incidents::{Controls, Hold, Incident};
use crate::model::{IncidentState, Key, Metric, Severity, Unit};
use crate::store::format_time;
use chrono::{DateTime, Utc};
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

/// The query parameters of `/`: each narrows the list (empty or absent: everything).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    /// `P0`…`P3`.
    #[serde(default)]
    pub severity: String,
    /// `pending`, `open` or `acknowledged`.
    #[serde(default)]
    pub state: String,
    /// A connection name.
    #[serde(default)]
    pub connection: String,
    /// A check tag.
    #[serde(default)]
    pub tag: String,
    /// An owner address.
    #[serde(default)]
    pub owner: String,
}

/// How long ago, to the minute: `3 h 12 m`, `2 d 4 h`, `45 s`.
pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} m")
    } else if m > 0 {
        format!("{m} m")
    } else {
        format!("{secs} s")
    }
}

/// `<time>` showing the age, the exact time on hover.
fn time_ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let exact = format_time(t);
    format!(
        "<time datetime=\"{e}\" title=\"{e}\">{} ago</time>",
        age(now, t),
        e = esc(&exact)
    )
}

/// An http(s) link, or the text alone for anything else (no `javascript:` links).
fn safe_link(url: &str, text: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!("<a href=\"{}\">{}</a>", esc(url.trim()), esc(text))
    } else {
        esc(url)
    }
}

/// A run's time and metric (`None`: the run had no data).
pub type Point = (DateTime<Utc>, Option<f64>);

/// One series of a chart: its name and its points.
pub struct Series {
    /// The key.
    pub name: String,
    /// Oldest first.
    pub points: Vec<Point>,
}

const COLOURS: [&str; 6] = [
    "#1d4ed8", "#7e22ce", "#0f766e", "#b45309", "#be185d", "#374151",
];

/// A line chart of each series with labelled axes, scaled from 0 (or from the threshold when
/// values are negative) so that small changes look small; the threshold is a dashed red line.
/// A run without data breaks the line rather than being drawn as a value.
pub fn chart(series: &[Series], threshold: Option<f64>, unit: Unit) -> String {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .chain(threshold);
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let times: Vec<DateTime<Utc>> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let (Some(t0), Some(t1)) = (times.iter().min(), times.iter().max()) else {
        return String::from("<p class=\"muted\">No history yet.</p>");
    };
    let hi = if hi > lo { hi * 1.1 } else { lo + 1.0 };
    let span_t = (*t1 - *t0).num_milliseconds().max(1) as f64;
    let (left, right, top, bottom) = (64.0, 412.0, 10.0, 170.0);
    let x = |t: DateTime<Utc>| left + (t - *t0).num_milliseconds() as f64 / span_t * (right - left);
    let y = |v: f64| bottom - (v - lo) / (hi - lo) * (bottom - top);
    let label = |v: f64| esc(&Metric { value: v, unit }.to_string());
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 420 212\" role=\"img\" aria-label=\"metric history from {} to {}\">\
         <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#374151\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#374151\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#111\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#111\">{}</text>\
         <text x=\"{left}\" y=\"188\" font-size=\"12\" fill=\"#111\">{}</text>\
         <text x=\"{right}\" y=\"188\" text-anchor=\"end\" font-size=\"12\" fill=\"#111\">{}</text>\
         <text x=\"238\" y=\"206\" text-anchor=\"middle\" font-size=\"12\" fill=\"#111\">time (UTC) · value in {}</text>",
        esc(&format_time(*t0)),
        esc(&format_time(*t1)),
        left - 6.0,
        top + 10.0,
        label(hi),
        left - 6.0,
        bottom,
        label(lo),
        esc(&t0.format("%m-%d %H:%M:%S").to_string()),
        esc(&t1.format("%m-%d %H:%M:%S").to_string()),
        esc(unit.as_str()),
    );
    if let Some(t) = threshold {
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#b91c1c\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"12\" fill=\"#b91c1c\">threshold {}</text>",
            left + 4.0,
            y(t) - 4.0,
            label(t),
            y = y(t),
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut runs: Vec<Vec<String>> = vec![Vec::new()];
        for (t, v) in &s.points {
            match v {
                Some(v) => {
                    if let Some(run) = runs.last_mut() {
                        run.push(format!("{:.1},{:.1}", x(*t), y(*v)));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            if run.len() == 1 {
                let mut xy = run[0].split(',');
                let _ = write!(
                    svg,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{colour}\"/>",
                    xy.next().unwrap_or("0"),
                    xy.next().unwrap_or("0")
                );
            } else {
                let _ = write!(
                    svg,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
                    run.join(" "),
                    esc(&s.name)
                );
            }
        }
    }
    svg.push_str("</svg>");
    if series.len() > 1 || series.iter().any(|s| !s.name.is_empty()) {
        svg.push_str("<ul class=\"legend\">");
        for (i, s) in series.iter().enumerate() {
            let _ = write!(
                svg,
                "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
                COLOURS[i % COLOURS.len()],
                esc(if s.name.is_empty() {
                    "(no key)"
                } else {
                    &s.name
                })
            );
        }
        svg.push_str("</ul>");
    }
    svg
}

// Text colours all reach 4.5:1 on white (and on the row tints).
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff;line-height:1.4}\
main{max-width:1200px;margin:0 auto;padding:16px}h1{font-size:22px;margin:8px 0}\
h2{font-size:18px;margin-top:24px}h3{font-size:16px;margin:0 0 4px}.card h2{font-size:16px;margin:0 0 4px}a{color:#1d4ed8}\
.muted{color:#4b5563}.sev{font-weight:bold;padding:1px 6px;border-radius:4px;color:#fff}\
.P0{background:#b91c1c}.P1{background:#c2410c}.P2{background:#a16207}.P3{background:#4b5563}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}\
.card{border:1px solid #d1d5db;border-radius:6px;padding:10px 12px;overflow-wrap:anywhere}\
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:6px 0 0}\
.card dt{color:#4b5563}.card dd{margin:0}.err{font-family:monospace;white-space:pre-wrap;color:#991b1b}\
.state{font-weight:bold}.held{background:#eef;border-radius:4px;padding:0 4px}table{border-collapse:collapse;margin:8px 0;display:block;overflow-x:auto}\
td,th{padding:4px 10px;border-bottom:1px solid #d1d5db;text-align:left;vertical-align:top;font-size:14px}\
form.filters,form.act{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin:8px 0}\
label{display:flex;flex-direction:column;font-size:14px}input,select,textarea,button{font:inherit;padding:4px}\
.chart{width:100%;max-width:640px;height:auto}.legend{display:flex;flex-wrap:wrap;gap:10px;list-style:none;padding:0}\
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px}\
.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:2px}\
.pass{background:#15803d}.breach{background:#b91c1c}.error{background:#374151}.no_data{background:#fff;border:1px solid #374151}\
@media (max-width:420px){.cards{grid-template-columns:1fr}main{padding:10px}}";

/// The page skeleton: language, viewport, one `<main>`.
fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        esc(title)
    )
}

/// A short page for an error or a refusal.
pub fn message_page(status: u16, message: &str) -> String {
    document(
        &format!("dqwatch — {status}"),
        &format!(
            "<h1>{status}</h1><p>{}</p><p><a href=\"/\">Back to the incidents</a></p>",
            esc(message)
        ),
    )
}

/// The state as stored, with how often it reopened (the store keeps no flapping state).
fn state_text(inc: &Incident) -> String {
    let mut s = inc.state.as_str().to_string();
    if inc.flapping {
        s.push_str(" · flapping");
    }
    if inc.repeat_count > 0 {
        let _ = write!(s, " · reopened {}×", inc.repeat_count);
    }
    s
}

/// The hold pill (`snoozed until …`, `muted`, `in maintenance window NAME`), with who and
/// why for a snooze or mute.
fn hold_pill(c: &Controls, hold: &Hold) -> String {
    let (pill, rest) = match hold {
        Hold::Snoozed { until } => ("snoozed", format!(" until {}", format_time(*until))),
        Hold::Muted => ("muted", " until unmuted".to_string()),
        Hold::Maintenance { window } => ("in maintenance", format!(" window {window}")),
    };
    let who = match hold {
        Hold::Maintenance { .. } => String::new(),
        _ => format!(
            "{}{}",
            c.hold_by
                .as_ref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default(),
            c.hold_reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    };
    format!(
        "<span class=\"state held\">{pill}</span>{}",
        esc(&format!("{rest}{who}"))
    )
}

/// One incident as a card on `/`, with its commander and hold when it has them.
fn card(
    inc: &Incident,
    info: Option<&CheckInfo>,
    now: DateTime<Utc>,
    level: u8,
    on_call: Option<&(Controls, Option<Hold>)>,
) -> String {
    let mut out = format!(
        "<article class=\"card\"><h{level}><span class=\"sev {sev}\">{sev}</span> <a href=\"/incidents/{id}\">{}</a></h{level}><dl>",
        esc(&inc.title),
        sev = inc.severity,
        id = inc.id
    );
    let mut row = |k: &str, v: String| {
        let _ = write!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    if let Some(m) = incident_metric(inc) {
        row("metric", m);
    }
    row(
        "state",
        format!("<span class=\"state\">{}</span>", esc(&state_text(inc))),
    );
    if let Some((c, hold)) = on_call {
        if let Some(h) = hold {
            row("held", hold_pill(c, h));
        }
        if let Some(a) = &c.assignee {
            row("commander", esc(a));
        }
    }
    row(
        "since",
        time_ago(now, inc.opened_at.unwrap_or(inc.first_seen_at)),
    );
    row("last seen", time_ago(now, inc.last_seen_at));
    if let Some(by) = &inc.acknowledged_by {
        let at = inc
            .acknowledged_at
            .map(|t| format!(" {}", time_ago(now, t)))
            .unwrap_or_default();
        row("acknowledged", format!("by {}{at}", esc(by)));
    }
    if let Some(detail) = &inc.detail {
        row(
            "error",
            format!("<span class=\"err\">{}</span>", esc(detail)),
        );
    }
    if let Some(info) = info {
        if let Some(d) = &info.description {
            row(
                "check",
                format!(
                    "<a href=\"/checks/{}\">{}</a> — {}",
                    esc(&info.id),
                    esc(&info.id),
                    esc(d)
                ),
            );
        } else {
            row(
                "check",
                format!(
                    "<a href=\"/checks/{}\">{}</a>",
                    esc(&info.id),
                    esc(&info.id)
                ),
            );
        }
        if let Some(r) = &info.runbook {
            row("runbook", safe_link(r, r));
        }
        if !info.owners.is_empty() {
            row("owners", esc(&info.owners.join(", ")));
        }
        row("connection", esc(&info.connection));
    }
    out.push_str("</dl></article>");
    out
}

/// Renders `/` from the store: active incidents by severity (narrowed by `filter`), then
/// every check's recent runs.
/// Each warehouse connection's state from the last background check (`/readyz`'s), one line.
fn connection_states(shared: &Shared) -> String {
    let health = shared
        .health
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .connections
        .clone();
    if health.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = health
        .iter()
        .map(|(name, state)| {
            if state == "ok" {
                format!("{} ✓", esc(name))
            } else {
                format!("<strong>{} ✗</strong> {}", esc(name), esc(state))
            }
        })
        .collect();
    format!(
        "<p class=\"muted\" id=\"connections\">Connections: {}</p>",
        parts.join(" · ")
    )
}

pub async fn render(shared: &Shared, filter: &Filter) -> Result<String, String> {
    let loaded = shared.loaded();
    let now = shared.clock.now();
    let all = shared
        .store
        .incidents(&["open", "acknowledged", "pending"])
        .await
        .map_err(|e| e.chain())?;
    let keep = |inc: &&Incident| {
        let info = loaded.infos.get(&inc.check_id.0);
        (filter.severity.is_empty() || inc.severity.to_string() == filter.severity)
            && (filter.state.is_empty() || inc.state.as_str() == filter.state)
            && (filter.connection.is_empty()
                || info.is_some_and(|i| i.connection == filter.connection))
            && (filter.tag.is_empty() || info.is_some_and(|i| i.tags.contains(&filter.tag)))
            && (filter.owner.is_empty() || info.is_some_and(|i| i.owners.contains(&filter.owner)))
    };
    let open: Vec<&Incident> = all.iter().filter(keep).collect();
    let holds =
        crate::engine::apply::holds(&shared.store, &loaded.config, &loaded.infos, &all, now)
            .await
            .map_err(|e| e.chain())?;
    let mut html = format!(
        "<h1>dqwatch — {} active incident{}</h1><p class=\"muted\">{} check{} · updated <time datetime=\"{t}\">{t}</time></p>",
        open.len(),
        if open.len() == 1 { "" } else { "s" },
        loaded.checks.len(),
        if loaded.checks.len() == 1 { "" } else { "s" },
        t = esc(&format_time(now))
    );
    html.push_str(&connection_states(shared));
    html.push_str(&filter_form(&loaded, filter));
    for sev in Severity::ALL {
        let list: Vec<_> = open.iter().filter(|i| i.severity == sev).collect();
        if list.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            "<h2>{sev} — {} incident{}</h2><div class=\"cards\">",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        );
        for inc in list {
            html.push_str(&card(
                inc,
                loaded.infos.get(&inc.check_id.0),
                now,
                3,
                holds.get(&inc.id),
            ));
        }
        html.push_str("</div>");
    }
    if open.is_empty() {
        html.push_str("<p>Nothing active. ✓</p>");
    }
    let runs = shared.store.recent_runs(20).await.map_err(|e| e.chain())?;
    let mut by_check: BTreeMap<&str, Vec<&crate::store::RecentRun>> = BTreeMap::new();
    for r in &runs {
        by_check.entry(r.0.as_str()).or_default().push(r);
    }
    html.push_str("<h2>Checks</h2><table tabindex=\"0\"><thead><tr><th>check</th><th>schedule</th><th>recent runs (oldest first)</th></tr></thead><tbody>");
    for check in &loaded.checks {
        let dots = by_check
            .get(check.id.0.as_str())
            .map(|rs| dots(rs))
            .unwrap_or_else(|| "<span class=\"muted\">not run yet</span>".into());
        let _ = write!(
            html,
            "<tr><td><a href=\"/checks/{id}\">{id}</a><br><span class=\"muted\">{}</span></td><td>{}</td><td>{dots}</td></tr>",
            esc(check.description.as_deref().unwrap_or("")),
            esc(check.schedule.as_ref().map_or("-", |s| s.as_str())),
            id = esc(&check.id.0),
        );
    }
    html.push_str("</tbody></table>");
    Ok(document("dqwatch — incidents", &html))
}

/// The filter form: plain GET, no script.
fn filter_form(loaded: &Engine, f: &Filter) -> String {
    let select = |name: &str, current: &str, options: Vec<String>| {
        let mut s = format!("<label>{name}<select name=\"{name}\"><option value=\"\">any</option>");
        for o in options {
            let sel = if o == current { " selected" } else { "" };
            let _ = write!(s, "<option{sel}>{}</option>", esc(&o));
        }
        s.push_str("</select></label>");
        s
    };
    let mut conns: Vec<String> = loaded
        .infos
        .values()
        .map(|i| i.connection.clone())
        .collect();
    let mut tags: Vec<String> = loaded.infos.values().flat_map(|i| i.tags.clone()).collect();
    let mut owners: Vec<String> = loaded
        .infos
        .values()
        .flat_map(|i| i.owners.clone())
        .collect();
    for v in [&mut conns, &mut tags, &mut owners] {
        v.sort();
        v.dedup();
    }
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/\">{}{}{}{}{}<button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form>",
        select(
            "severity",
            &f.severity,
            Severity::ALL.iter().map(ToString::to_string).collect()
        ),
        select(
            "state",
            &f.state,
            ["pending", "open", "acknowledged"]
                .map(String::from)
                .to_vec()
        ),
        select("connection", &f.connection, conns),
        select("tag", &f.tag, tags),
        select("owner", &f.owner, owners),
    )
}

/// Coloured dots for runs, each with its time, outcome and duration on hover.
fn dots(runs: &[&crate::store::RecentRun]) -> String {
    runs.iter()
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
}

/// The numeric limit of the check's threshold `text` (as the incident stored it).
fn threshold_limit(check: Option<&Check>, text: Option<&str>) -> Option<f64> {
    match &check?.judge {
        crate::checks::Judge::Thresholds { levels, .. } => {
            let text = text?;
            levels.iter().find(|t| &*t.text == text).map(|t| t.limit)
        }
        _ => None,
    }
}

/// The check's unit (its first threshold's).
fn check_unit(check: &Check) -> Unit {
    match &check.judge {
        crate::checks::Judge::Thresholds { levels, .. } => {
            levels.first().map_or(Unit::Number, |t| t.unit)
        }
        _ => Unit::Number,
    }
}

/// The per-key history of a check, from its stored observations (oldest first). Every run
/// since the oldest observation is a point of every key: a run that failed, or in which the
/// key had no row or no metric, is a gap (`None`), never a value.
async fn history(shared: &Shared, check_id: &str, only_key: Option<&str>) -> Vec<Series> {
    let rows = shared
        .store
        .check_history(check_id, 500)
        .await
        .unwrap_or_default();
    let Some(oldest) = rows.iter().map(|r| r.0.clone()).min() else {
        return Vec::new();
    };
    // Run times as stored (observations carry their run's start time, in the same format).
    let mut runs: std::collections::BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    runs.extend(
        shared
            .store
            .recent_runs(200)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.0 == check_id && r.1 >= oldest)
            .map(|r| r.1),
    );
    let mut by_key: BTreeMap<String, BTreeMap<String, Option<f64>>> = BTreeMap::new();
    for (at, key_json, metric) in rows {
        if only_key.is_some_and(|k| k != key_json) {
            continue;
        }
        by_key.entry(key_json).or_default().insert(at, metric);
    }
    by_key
        .into_iter()
        .map(|(key_json, seen)| Series {
            name: serde_json::from_str::<Vec<(String, String)>>(&key_json)
                .map(|k| Key::from(k).to_string())
                .unwrap_or(key_json),
            points: runs
                .iter()
                .filter_map(|at| {
                    let t = crate::store::parse_time(at).ok()?;
                    Some((t, seen.get(at).copied().flatten()))
                })
                .collect(),
        })
        .collect()
}

/// `/incidents/{id}`: the facts, the metric's history with the threshold, the timeline and,
/// when an API token is configured, the forms that change it. `None`: no such incident.
/// The breaching rows kept with the incident's latest told breach.
fn sample_table(json: &str) -> String {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(json) else {
        return String::new();
    };
    let text = |v: &serde_json::Value| esc(v.as_str().unwrap_or(""));
    let columns = doc["columns"].as_array().cloned().unwrap_or_default();
    let rows = doc["rows"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return String::new();
    }
    let mut html =
        String::from("<h2>Breaching rows (sample)</h2><table tabindex=\"0\"><thead><tr>");
    for c in &columns {
        let _ = write!(html, "<th>{}</th>", text(c));
    }
    html.push_str("</tr></thead><tbody>");
    for r in &rows {
        html.push_str("<tr>");
        for v in r.as_array().map_or(&[][..], Vec::as_slice) {
            let _ = write!(html, "<td>{}</td>", text(v));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    if let Some(n) = doc["capped"].as_u64() {
        let _ = write!(
            html,
            "<p>The result was capped at {n} rows (max_rows): keys past them were not judged.</p>"
        );
    }
    html
}

pub async fn render_incident(shared: &Shared, id: i64) -> Result<Option<String>, String> {
    let loaded = shared.loaded();
    let now = shared.clock.now();
    let Some((inc, events)) = shared.store.incident(id).await.map_err(|e| e.chain())? else {
        return Ok(None);
    };
    let check = loaded.checks.iter().find(|c| c.id == inc.check_id);
    let mut html = format!(
        "<p><a href=\"/\">← all incidents</a></p><h1><span class=\"sev {sev}\">{sev}</span> #{} {}</h1>",
        inc.id,
        esc(&inc.title),
        sev = inc.severity
    );
    let holds = crate::engine::apply::holds(
        &shared.store,
        &loaded.config,
        &loaded.infos,
        std::slice::from_ref(&inc),
        now,
    )
    .await
    .map_err(|e| e.chain())?;
    let on_call = holds.get(&inc.id);
    html.push_str(&card(
        &inc,
        loaded.infos.get(&inc.check_id.0),
        now,
        2,
        on_call,
    ));
    if let Ok(Some(sample)) = shared.store.incident_sample(id).await {
        html.push_str(&sample_table(&sample));
    }
    html.push_str("<h2>Metric history</h2>");
    let key_json = serde_json::to_string(&inc.key.0).unwrap_or_default();
    let series = history(shared, &inc.check_id.0, Some(&key_json)).await;
    let limit = threshold_limit(check.map(|c| &**c), inc.threshold.as_deref());
    html.push_str(&chart(&series, limit, inc.unit));
    html.push_str("<h2>Timeline</h2><table tabindex=\"0\"><thead><tr><th>when</th><th>what</th><th>who</th><th>severity</th><th>note</th></tr></thead><tbody>");
    for e in &events {
        // A status update's fields and a resolution's reason after the note.
        let f = &e.fields;
        let mut note = e.note.clone().unwrap_or_default();
        for (name, value) in [
            ("status", f.status.map(|s| s.to_string())),
            ("impact", f.impact.clone()),
            ("next", f.next.clone()),
            ("ETA", f.eta.clone()),
            ("workaround", f.workaround.clone()),
            ("reason", f.reason.map(|r| r.to_string())),
        ] {
            if let Some(v) = value {
                if !note.is_empty() {
                    note.push_str(" · ");
                }
                let _ = write!(note, "{name}: {v}");
            }
        }
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time_ago(now, e.at),
            esc(e.kind.as_str()),
            esc(&e.actor),
            e.severity,
            esc(&note)
        );
    }
    html.push_str("</tbody></table>");
    // Who was told: this incident's mails among the latest 500 of the outbox.
    let mails: Vec<_> = shared
        .store
        .outbox(None, 500)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.incident_id == Some(id) && m.channel == "mail")
        .collect();
    // Where it was told: the mail thread, the Slack thread, the PagerDuty dedup key.
    let told = crate::engine::told::lines(
        &loaded.config,
        &shared.store.told(id).await.unwrap_or_default(),
    );
    if !told.is_empty() {
        html.push_str("<h2>Told</h2><table tabindex=\"0\"><thead><tr><th>channel</th><th>where</th><th>messages</th><th>thread</th></tr></thead><tbody>");
        for t in &told {
            let thread = match (&t.link, &t.thread) {
                (Some(link), Some(th)) => {
                    format!("<a href=\"{}\">{}</a>", esc(link), esc(th))
                }
                (None, Some(th)) => esc(th),
                _ => String::new(),
            };
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{thread}</td></tr>",
                esc(&t.channel),
                esc(&t.target),
                esc(&t.counts)
            );
        }
        html.push_str("</tbody></table>");
    }
    if !mails.is_empty() {
        html.push_str("<h2>Mail</h2><table tabindex=\"0\"><thead><tr><th>queued</th><th>to</th><th>subject</th><th>state</th></tr></thead><tbody>");
        for m in mails.iter().rev() {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time_ago(now, m.created_at),
                esc(&m.mail.to.join(", ")),
                esc(&m.mail.subject),
                esc(m.state.as_str())
            );
        }
        html.push_str("</tbody></table>");
    }
    if !loaded.config.daemon.api_token.is_empty() && inc.state != IncidentState::Resolved {
        html.push_str("<h2>Act</h2>");
        let fields = "<label>API token<input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label>\
                      <label>Your name<input type=\"text\" name=\"by\" autocomplete=\"name\" required></label>";
        if inc.state != IncidentState::Acknowledged {
            let _ = write!(
                html,
                "<h3>Acknowledge</h3><form class=\"act\" method=\"post\" action=\"/incidents/{id}/ack\">{fields}\
                 <label>Note (optional)<input type=\"text\" name=\"note\"></label><button type=\"submit\">Acknowledge</button></form>"
            );
        }
        let _ = write!(
            html,
            "<h3>Resolve</h3><form class=\"act\" method=\"post\" action=\"/incidents/{id}/resolve\">{fields}\
             <label>Why (required)<input type=\"text\" name=\"note\" required></label>\
             <label>Reason<select name=\"reason\"><option value=\"fixed\">fixed</option><option value=\"false_positive\">false positive</option>\
             <option value=\"expected\">expected</option><option value=\"duplicate\">duplicate</option><option value=\"upstream\">upstream</option>\
             <option value=\"other\">other</option></select></label><button type=\"submit\">Resolve</button></form>\
             <h3>Add a note</h3><form class=\"act\" method=\"post\" action=\"/incidents/{id}/note\">{fields}\
             <label>Note<input type=\"text\" name=\"note\" required></label><button type=\"submit\">Add note</button></form>"
        );
        // Snooze: notifications held for a while; checks keep running.
        if on_call.is_some_and(|(c, _)| c.hold(now).is_some()) {
            let _ = write!(
                html,
                "<h3>End the snooze or mute</h3><form class=\"act\" method=\"post\" action=\"/incidents/{id}/unsnooze\">{fields}\
                 <button type=\"submit\">End it now</button></form>"
            );
        } else {
            let _ = write!(
                html,
                "<h3>Snooze</h3><form class=\"act\" method=\"post\" action=\"/incidents/{id}/snooze\">{fields}\
                 <label>For<select name=\"for\"><option>30m</option><option>1h</option><option selected>2h</option><option>4h</option>\
                 <option>8h</option><option>1d</option></select></label>\
                 <label>Why (required)<input type=\"text\" name=\"note\" required></label><button type=\"submit\">Snooze</button></form>"
            );
        }
    }
    Ok(Some(document(
        &format!("dqwatch — #{id} {}", inc.title),
        &html,
    )))
}

/// `/checks/{id}`: the check's facts, its recent runs with durations and its per-key history.
pub async fn render_check(shared: &Shared, id: &str) -> Result<Option<String>, String> {
    let loaded = shared.loaded();
    let Some(check) = loaded.checks.iter().find(|c| c.id.0 == id) else {
        return Ok(None);
    };
    let info = loaded.infos.get(id);
    let mut html = format!(
        "<p><a href=\"/\">← all incidents</a></p><h1>Check {}</h1><p>{}</p><dl class=\"card\">",
        esc(id),
        esc(check.description.as_deref().unwrap_or(""))
    );
    let _ = write!(
        html,
        "<dt>connection</dt><dd>{}</dd><dt>schedule</dt><dd>{}</dd>",
        esc(&check.connection),
        esc(check.schedule.as_ref().map_or("-", |s| s.as_str()))
    );
    if let Some(info) = info {
        if let Some(r) = &info.runbook {
            let _ = write!(html, "<dt>runbook</dt><dd>{}</dd>", safe_link(r, r));
        }
        if !info.owners.is_empty() {
            let _ = write!(
                html,
                "<dt>owners</dt><dd>{}</dd>",
                esc(&info.owners.join(", "))
            );
        }
        if !info.tags.is_empty() {
            let _ = write!(html, "<dt>tags</dt><dd>{}</dd>", esc(&info.tags.join(", ")));
        }
    }
    html.push_str("</dl><h2>History per key</h2>");
    let series = history(shared, id, None).await;
    let limit = match &check.judge {
        crate::checks::Judge::Thresholds { levels, .. } => {
            levels.iter().map(|t| t.limit).reduce(f64::min)
        }
        _ => None,
    };
    html.push_str(&chart(&series, limit, check_unit(check)));
    let runs = shared.store.recent_runs(50).await.map_err(|e| e.chain())?;
    html.push_str("<h2>Recent runs</h2><table tabindex=\"0\"><thead><tr><th>started</th><th>outcome</th><th>severity</th><th>duration</th></tr></thead><tbody>");
    for (_, at, outcome, sev, ms) in runs.iter().rev().filter(|r| r.0 == id) {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{ms} ms</td></tr>",
            esc(at),
            esc(outcome),
            esc(sev.as_deref().unwrap_or("-"))
        );
    }
    html.push_str("</tbody></table>");
    Ok(Some(document(&format!("dqwatch — check {id}"), &html)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_reads_as_a_pill_with_who_and_why_escaped() {
        let c = Controls {
            hold_by: Some("ann".into()),
            hold_reason: Some("<b>deploy</b>".into()),
            ..Controls::default()
        };
        let until = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 12, 0, 0).unwrap();
        assert_eq!(
            hold_pill(&c, &Hold::Snoozed { until }),
            "<span class=\"state held\">snoozed</span> until 2026-11-30T12:00:00.000Z by ann: &lt;b&gt;deploy&lt;/b&gt;"
        );
        let window = Hold::Maintenance {
            window: "nightly".into(),
        };
        assert_eq!(
            hold_pill(&c, &window),
            "<span class=\"state held\">in maintenance</span> window nightly"
        );
    }

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
            max_bytes_billed: None,
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
            fuse: None,
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
            stats: Default::default(),
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

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn ages_read_in_hours_and_minutes() {
        assert_eq!(age(at(11_520), at(0)), "3 h 12 m");
        assert_eq!(age(at(45), at(0)), "45 s");
        assert_eq!(age(at(2 * 86_400 + 4 * 3_600), at(0)), "2 d 4 h");
        assert_eq!(age(at(0), at(60)), "0 s");
    }

    // See: issues/14 (a 10800→10839 s change was drawn as a full-height spike: min–max scale).
    #[test]
    fn the_chart_scales_from_zero_and_draws_the_threshold() {
        let series = [Series {
            name: "k=a".into(),
            points: vec![(at(0), Some(10_800.0)), (at(60), Some(10_839.0))],
        }];
        let svg = chart(&series, Some(7_200.0), Unit::Seconds);
        // From 0 to 1.1 × 10839: both points near the top, 0.5 px apart, not 160 px.
        let points = svg
            .split("points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        let ys: Vec<f64> = points
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!((ys[0] - ys[1]).abs() < 2.0, "{points}");
        assert!(svg.contains("threshold 2h"), "{svg}");
        assert!(svg.contains("stroke-dasharray"), "{svg}");
        assert!(svg.contains(">0s<"), "the axis starts at 0: {svg}");
    }

    // See: issues/14 (no-data runs showed as green passes).
    #[test]
    fn a_run_without_data_breaks_the_line() {
        let series = [Series {
            name: "k=<b>".into(),
            points: vec![
                (at(0), Some(1.0)),
                (at(60), Some(2.0)),
                (at(120), None),
                (at(180), Some(3.0)),
                (at(240), Some(4.0)),
            ],
        }];
        let svg = chart(&series, None, Unit::Number);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(
            svg.contains("k=&lt;b&gt;") && !svg.contains("k=<b>"),
            "{svg}"
        );
    }

    #[test]
    fn only_http_links_are_links() {
        assert!(
            safe_link("https://x.example/a?b=1&c", "r")
                .starts_with("<a href=\"https://x.example/a?b=1&amp;c\">")
        );
        assert_eq!(safe_link("javascript:alert(1)", "r"), "javascript:alert(1)");
    }
}
