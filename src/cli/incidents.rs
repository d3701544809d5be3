//! `dqwatch incidents …`: the incident lifecycle by hand. Acknowledging and resolving go
//! through the same record path as a run, so they land on the timeline and mail people.

use super::args::{IncidentsCommand, StateFilter, TextOrJson};
use super::exit::Exit;
use super::state::{self, State};
use crate::checks::maintenance;
use crate::clock::Clock;
use crate::config::parse_duration;
use crate::engine::apply::{self, ApplyError};
use crate::incidents::{
    Change, Controls, EventFields, Hold, Incident, reconcile, respond, sla, stats,
};
use crate::model::format_duration;
use crate::store::format_time;
use std::path::Path;

/// Runs `dqwatch incidents …`.
pub async fn cmd(config: Option<&Path>, command: IncidentsCommand) -> Exit {
    let st = match state::open_from(config).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let clock = match super::now::clock() {
        Ok(c) => c,
        Err(m) => {
            eprintln!("error: {m}");
            st.store.close().await;
            return Exit::Invalid;
        }
    };
    let clock = clock.as_ref();
    let result = match command {
        IncidentsCommand::List { state, format } => list(&st, state, format, clock).await,
        IncidentsCommand::Show { id, format } => show(&st, id, format, clock).await,
        IncidentsCommand::Ack { id, by, note } => {
            change(&st, id, clock, |inc, now| {
                reconcile::acknowledge(inc, &by, note.clone(), now)
            })
            .await
        }
        IncidentsCommand::Resolve {
            id,
            by,
            note,
            reason,
        } => {
            change(&st, id, clock, |inc, now| {
                respond::resolve(inc, &by, reason, Some(note.clone()), now)
            })
            .await
        }
        IncidentsCommand::Update {
            id,
            status,
            impact,
            next,
            eta,
            workaround,
            note,
            by,
        } => {
            let fields = EventFields {
                status: Some(status),
                impact,
                next,
                eta,
                workaround,
                ..EventFields::default()
            };
            change(&st, id, clock, |inc, now| {
                respond::status_update(inc, &by, fields.clone(), note.clone(), now)
            })
            .await
        }
        IncidentsCommand::Assign { id, to, by } => {
            change_with(&st, id, clock, |inc, c, now| {
                respond::assign(inc, c, &by, &to, now).map(|(ch, c)| (ch, Some(c)))
            })
            .await
        }
        IncidentsCommand::Snooze {
            id,
            duration,
            reason,
            by,
        } => {
            let length = match parse_duration(&duration)
                .map_err(|m| format!("--for: {m}"))
                .and_then(|d| {
                    chrono::Duration::from_std(d).map_err(|_| format!("--for {duration}: too long"))
                }) {
                Ok(d) => d,
                Err(m) => {
                    eprintln!("error: {m}\n  hint: e.g. --for 30m, --for 2h, --for 1d");
                    st.store.close().await;
                    return Exit::Invalid;
                }
            };
            change_with(&st, id, clock, |inc, c, now| {
                respond::snooze(inc, c, &by, now + length, &reason, now)
                    .map(|(ch, c)| (ch, Some(c)))
            })
            .await
        }
        IncidentsCommand::Mute { id, reason, by } => {
            change_with(&st, id, clock, |inc, c, now| {
                respond::mute(inc, c, &by, &reason, now).map(|(ch, c)| (ch, Some(c)))
            })
            .await
        }
        IncidentsCommand::Unsnooze { id, by } | IncidentsCommand::Unmute { id, by } => {
            unhold(&st, id, &by, clock).await
        }
        IncidentsCommand::Note { id, text, by } => {
            change(&st, id, clock, |inc, now| {
                Ok(reconcile::note(inc, &by, text.clone(), now))
            })
            .await
        }
        IncidentsCommand::Stats { since, format } => stats_cmd(&st, &since, format, clock).await,
        IncidentsCommand::Postmortem { id } => postmortem(&st, id, clock).await,
    };
    st.store.close().await;
    match result {
        Ok(exit) => exit,
        Err(message) => {
            eprintln!("error: {message}");
            Exit::CheckFailed
        }
    }
}

type Res = Result<Exit, String>;

async fn find(
    st: &State,
    id: i64,
) -> Result<Option<(Incident, Vec<crate::incidents::Event>)>, String> {
    st.store.incident(id).await.map_err(|e| e.chain())
}

fn not_found(id: i64) -> Res {
    eprintln!(
        "error: no incident {id}\n  hint: `dqwatch incidents list --state all` shows every incident"
    );
    Ok(Exit::Invalid)
}

async fn holds(
    st: &State,
    list: &[Incident],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<std::collections::HashMap<i64, (Controls, Option<Hold>)>, String> {
    apply::holds(&st.store, &st.engine.config, &st.engine.infos, list, now)
        .await
        .map_err(|e| e.chain())
}

fn with_on_call(inc: &Incident, c: &Controls, hold: Option<&Hold>) -> serde_json::Value {
    crate::incidents::hold::incident_json(inc, c, hold)
}

/// The state column: the state, and the hold when there is one (`open, snoozed`).
fn state_text(inc: &Incident, hold: Option<&Hold>) -> String {
    let state = if inc.flapping {
        format!("{}, flapping", inc.state)
    } else {
        inc.state.as_str().to_string()
    };
    match hold {
        Some(Hold::Maintenance { .. }) => format!("{state}, in maintenance"),
        Some(h) => format!("{state}, {}", h.label()),
        None => state,
    }
}

/// Rows as aligned columns (each as wide as its widest cell); `right` columns align right.
fn table(rows: &[Vec<String>], right: &[usize]) -> Vec<String> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; n];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let last = r.len().saturating_sub(1);
            r.iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, &w))| {
                    if right.contains(&i) {
                        format!("{cell:>w$}")
                    } else if i == last {
                        cell.clone()
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        })
        .collect()
}

async fn list(st: &State, filter: StateFilter, format: TextOrJson, clock: &dyn Clock) -> Res {
    let states: &[&str] = match filter {
        StateFilter::Active => &["pending", "open", "acknowledged"],
        StateFilter::Open => &["open"],
        StateFilter::Acknowledged => &["acknowledged"],
        StateFilter::Resolved => &["resolved"],
        StateFilter::Pending => &["pending"],
        StateFilter::All => &[],
    };
    let now = clock.now();
    let list = st.store.incidents(states).await.map_err(|e| e.chain())?;
    let holds = holds(st, &list, now).await?;
    let none = (Controls::default(), None);
    let windows = active_windows(st, now);
    if format == TextOrJson::Json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|i| {
                let (c, h) = holds.get(&i.id).unwrap_or(&none);
                with_on_call(i, c, h.as_ref())
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        );
        return Ok(Exit::Clean);
    }
    if list.is_empty() {
        outln!("no incidents");
    } else {
        let mut rows = vec![
            [
                "ID", "STATE", "SEV", "CATEGORY", "OPENED", "METRIC", "ASSIGNEE", "TITLE",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for i in &list {
            let (c, h) = holds.get(&i.id).unwrap_or(&none);
            let opened = i.opened_at.map_or_else(
                || "-".to_string(),
                |t| t.format("%Y-%m-%d %H:%M").to_string(),
            );
            rows.push(vec![
                i.id.to_string(),
                state_text(i, h.as_ref()),
                i.severity.as_str().to_string(),
                i.category.as_str().to_string(),
                opened,
                i.metric_text().unwrap_or_else(|| "-".into()),
                c.assignee.clone().unwrap_or_else(|| "-".into()),
                i.title.clone(),
            ]);
        }
        for line in table(&rows, &[0]) {
            outln!("{}", line.trim_end());
        }
        let held: Vec<String> = list
            .iter()
            .filter_map(|i| {
                let (c, h) = holds.get(&i.id)?;
                let h = h
                    .as_ref()
                    .filter(|h| !matches!(h, Hold::Maintenance { .. }))?;
                Some(format!(
                    "  #{} {}{}{}",
                    i.id,
                    h.describe(),
                    c.hold_by
                        .as_ref()
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default(),
                    c.hold_reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ))
            })
            .collect();
        if !held.is_empty() {
            outln!("\nheld:");
            for l in held {
                outln!("{l}");
            }
        }
    }
    if !windows.is_empty() {
        outln!("\nmaintenance windows now:");
        for w in windows {
            outln!("  {w}");
        }
    }
    Ok(Exit::Clean)
}

/// The maintenance windows on at `now`, one line each: name, end, what they cover, reason.
pub(super) fn active_windows(st: &State, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    window_lines(&st.engine.config, now)
}

/// [`active_windows`] from a config (also `dqwatch list`).
pub(super) fn window_lines(
    cfg: &crate::config::Config,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let windows = maintenance::windows(cfg).unwrap_or_default();
    windows
        .iter()
        .filter_map(|w| {
            let end = w.active_until(cfg.daemon.timezone, now)?;
            let m = &w.config;
            let mut scope = Vec::new();
            if let Some(c) = &m.connection {
                scope.push(format!("connection {c}"));
            }
            if !m.checks.is_empty() {
                scope.push(format!("checks {}", m.checks.join(", ")));
            }
            if !m.tags.is_empty() {
                scope.push(format!("tags {}", m.tags.join(", ")));
            }
            if scope.is_empty() {
                scope.push("every check".into());
            }
            Some(format!(
                "{} until {} ({}){}",
                m.name,
                format_time(end),
                scope.join("; "),
                m.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ))
        })
        .collect()
}

async fn show(st: &State, id: i64, format: TextOrJson, clock: &dyn Clock) -> Res {
    let Some((inc, events)) = find(st, id).await? else {
        return not_found(id);
    };
    let holds = holds(st, std::slice::from_ref(&inc), clock.now()).await?;
    let (controls, hold) = holds.get(&inc.id).cloned().unwrap_or_default();
    let told = crate::engine::told::lines(
        &st.engine.config,
        &st.store.told(id).await.map_err(|e| e.chain())?,
    );
    if format == TextOrJson::Json {
        let doc = serde_json::json!({
            "incident": with_on_call(&inc, &controls, hold.as_ref()),
            "timeline": events,
            "told": told,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(Exit::Clean);
    }
    let t =
        |v: Option<chrono::DateTime<chrono::Utc>>| v.map_or_else(|| "-".to_string(), format_time);
    outln!("#{} {}", inc.id, inc.title);
    outln!("  state        {}", state_text(&inc, hold.as_ref()));
    if let Some(h) = &hold {
        outln!(
            "  held         {}{}{}",
            h.describe(),
            controls
                .hold_by
                .as_ref()
                .filter(|_| !matches!(h, Hold::Maintenance { .. }))
                .map(|b| format!(" by {b}"))
                .unwrap_or_default(),
            controls
                .hold_reason
                .as_ref()
                .filter(|_| !matches!(h, Hold::Maintenance { .. }))
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(a) = &controls.assignee {
        outln!("  commander    {a}");
    }
    outln!(
        "  severity     {} (current {}, peak {})",
        inc.severity,
        inc.current_severity,
        inc.peak_severity
    );
    outln!("  category     {}", inc.category);
    outln!("  check        {}", inc.check_id);
    if !inc.key.is_empty() {
        outln!("  key          {}", inc.key);
    }
    if let Some(m) = inc.metric_text() {
        outln!(
            "  metric       {m}{}{}",
            inc.threshold_text()
                .map(|t| format!(" (threshold {t})"))
                .unwrap_or_default(),
            inc.label
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        );
    }
    if let Some(d) = &inc.detail {
        outln!("  error        {d}");
    }
    outln!("  first seen   {}", format_time(inc.first_seen_at));
    outln!("  opened       {}", t(inc.opened_at));
    outln!(
        "  acknowledged {}{}",
        t(inc.acknowledged_at),
        inc.acknowledged_by
            .as_ref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default()
    );
    outln!(
        "  resolved     {}{}",
        t(inc.resolved_at),
        inc.resolved_by
            .as_ref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default()
    );
    outln!("  repeats      {}", inc.repeat_count);
    if !told.is_empty() {
        outln!("\ntold:");
        for t in &told {
            outln!(
                "  {:<24} {} ({}){}{}",
                t.channel,
                t.target,
                t.counts,
                t.thread
                    .as_ref()
                    .map(|th| format!(" — {th}"))
                    .unwrap_or_default(),
                t.link.as_ref().map(|l| format!(" {l}")).unwrap_or_default()
            );
        }
    }
    outln!("\ntimeline:");
    for e in &events {
        outln!(
            "  {}  {:<16} {:<3} {}{}",
            format_time(e.at),
            e.kind.as_str(),
            e.severity.as_str(),
            e.actor,
            e.note
                .as_ref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
        let f = &e.fields;
        let lines = [
            ("status", f.status.map(|s| s.to_string())),
            ("impact", f.impact.clone()),
            ("next", f.next.clone()),
            ("eta", f.eta.clone()),
            ("workaround", f.workaround.clone()),
            ("reason", f.reason.map(|r| r.to_string())),
        ];
        for (name, value) in lines {
            if let Some(v) = value {
                outln!("      {name:<11}{v}");
            }
        }
    }
    Ok(Exit::Clean)
}

async fn change(
    st: &State,
    id: i64,
    clock: &dyn Clock,
    apply: impl Fn(&Incident, chrono::DateTime<chrono::Utc>) -> Result<Change, String>,
) -> Res {
    let now = clock.now();
    let changed = apply::change_incident(
        &st.store,
        &st.engine.composer,
        &st.engine.infos,
        id,
        now,
        |inc| apply(inc, now),
    )
    .await;
    report_change(st, id, clock, changed).await
}

async fn report_change(
    st: &State,
    id: i64,
    clock: &dyn Clock,
    changed: Result<Option<(Change, crate::store::Recorded)>, ApplyError>,
) -> Res {
    let (change, rec) = match changed {
        Ok(Some(done)) => done,
        Ok(None) => return not_found(id),
        Err(ApplyError::Refused { message }) => {
            eprintln!("error: {message}");
            return Ok(Exit::Invalid);
        }
        Err(e) => return Err(e.chain()),
    };
    let delivery = st.deliver(clock).await;
    let ev = change.events.first().map_or("updated", |e| e.kind.as_str());
    out!("incident #{id} {ev}");
    if rec.mails > 0 {
        out!(
            "; {} mail queued, {} sent",
            rec.mails,
            delivery.map_or(0, |d| d.sent)
        );
    } else {
        out!(" (on the timeline; no mail)");
    }
    outln!();
    Ok(Exit::Clean)
}

async fn change_with(
    st: &State,
    id: i64,
    clock: &dyn Clock,
    apply: impl Fn(
        &Incident,
        &Controls,
        chrono::DateTime<chrono::Utc>,
    ) -> Result<(Change, Option<Controls>), String>,
) -> Res {
    let now = clock.now();
    let changed = apply::change_incident_with(
        &st.store,
        &st.engine.composer,
        &st.engine.infos,
        id,
        now,
        |inc, c| apply(inc, c, now),
    )
    .await;
    report_change(st, id, clock, changed).await
}

async fn unhold(st: &State, id: i64, by: &str, clock: &dyn Clock) -> Res {
    match apply::unhold(
        &st.store,
        &st.engine.composer,
        &st.engine.infos,
        id,
        by,
        clock.now(),
    )
    .await
    {
        Ok(Some(mails)) => {
            let delivery = st.deliver(clock).await;
            out!("incident #{id} hold ended");
            if mails > 0 {
                outln!(
                    "; {mails} mail queued, {} sent",
                    delivery.map_or(0, |d| d.sent)
                );
            } else {
                outln!(" (on the timeline; no mail)");
            }
            Ok(Exit::Clean)
        }
        Ok(None) => not_found(id),
        Err(ApplyError::Refused { message }) => {
            eprintln!("error: {message}");
            Ok(Exit::Invalid)
        }
        Err(e) => Err(e.chain()),
    }
}

async fn stats_cmd(st: &State, since: &str, format: TextOrJson, clock: &dyn Clock) -> Res {
    let window = match parse_duration(since) {
        Ok(d) => d,
        Err(m) => {
            eprintln!("error: --since: {m}");
            return Ok(Exit::Invalid);
        }
    };
    let from = clock.now()
        - chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(36500));
    let data = st.store.stats(from).await.map_err(|e| e.chain())?;
    let s = stats::compute(&data.incidents, &data.events, &data.escalated);
    let resolutions = sla::resolutions(&data.incidents, &data.events);
    let targets = st
        .engine
        .config
        .severities
        .iter()
        .map(|(k, p)| (*k, p.respond_within))
        .collect();
    let compliance = sla::compliance(&data.incidents, &data.events, &targets, clock.now());
    if format == TextOrJson::Json {
        let doc = serde_json::json!({
            "since": format_time(from),
            "stats": s,
            "resolutions": resolutions,
            "sla": compliance,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(Exit::Clean);
    }
    let d = |v: Option<f64>| v.map_or_else(|| "-".to_string(), format_duration);
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |r| format!("{:.0}%", r * 100.0));
    outln!(
        "incidents first seen since {} ({since})\n",
        format_time(from)
    );
    // Columns as wide as their widest cell, so that long category names and durations
    // keep the table aligned (issue 14).
    let header = [
        "GROUP",
        "TOTAL",
        "ACTIVE",
        "RESOLVED",
        "DETECT",
        "ACK",
        "RESOLVE",
        "ESCALATED",
        "REPEAT",
    ]
    .map(String::from);
    let row = |name: String, g: &stats::Group| {
        [
            name,
            g.incidents.to_string(),
            g.active.to_string(),
            g.resolved.to_string(),
            d(g.mean_time_to_detect),
            d(g.mean_time_to_acknowledge),
            d(g.mean_time_to_resolve),
            pct(g.escalation_rate),
            pct(g.repeat_rate),
        ]
    };
    let mut rows = vec![header, row("all".into(), &s.overall)];
    rows.extend(
        s.by_severity
            .iter()
            .map(|(k, g)| row(format!("severity {k}"), g)),
    );
    rows.extend(
        s.by_category
            .iter()
            .map(|(k, g)| row(format!("category {k}"), g)),
    );
    let mut widths = [0usize; 9];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        outln!("{}", cells.join("  "));
    }
    outln!(
        "\nDETECT, ACK and RESOLVE are means: first breach → opened, opened → acknowledged, opened → resolved."
    );
    if !resolutions.is_empty() {
        outln!("\nresolutions by check (episodes):\n");
        let reasons = [
            "passed",
            "fixed",
            "false_positive",
            "expected",
            "duplicate",
            "upstream",
            "other",
        ];
        let mut rows = vec![
            std::iter::once("CHECK".to_string())
                .chain(std::iter::once("RESOLVED".to_string()))
                .chain(reasons.iter().map(|r| r.to_uppercase()))
                .chain(std::iter::once("FALSE POSITIVE RATE".to_string()))
                .collect::<Vec<_>>(),
        ];
        for r in &resolutions {
            let mut row = vec![r.check.clone(), r.resolved.to_string()];
            row.extend(
                reasons
                    .iter()
                    .map(|k| r.by_reason.get(*k).copied().unwrap_or(0).to_string()),
            );
            row.push(pct(r.false_positive_rate));
            rows.push(row);
        }
        let right: Vec<usize> = (1..rows[0].len()).collect();
        for line in table(&rows, &right) {
            outln!("{line}");
        }
    }
    outln!("\nSLA: episodes acknowledged within their severity's respond_within\n");
    let mut rows = vec![
        ["SEVERITY", "RESPOND WITHIN", "DUE", "IN TIME", "COMPLIANCE"]
            .map(String::from)
            .to_vec(),
    ];
    for c in &compliance {
        rows.push(vec![
            c.severity.clone(),
            d(c.respond_within),
            c.due.to_string(),
            c.in_time.to_string(),
            pct(c.compliance),
        ]);
    }
    for line in table(&rows, &[1, 2, 3, 4]) {
        outln!("{line}");
    }
    outln!(
        "\nDUE: acknowledged, or unacknowledged past respond_within while open; one that resolved unacknowledged in time needed no response."
    );
    Ok(Exit::Clean)
}

async fn postmortem(st: &State, id: i64, clock: &dyn Clock) -> Res {
    let Some((inc, events)) = find(st, id).await? else {
        return not_found(id);
    };
    let text = st
        .engine
        .composer
        .postmortem(
            &inc,
            &events,
            st.engine.infos.get(&inc.check_id.0),
            clock.now(),
        )
        .map_err(|e| e.to_string())?;
    out!("{text}");
    Ok(Exit::Clean)
}
