//! `dqwatch incidents …`: the incident lifecycle by hand. Acknowledging and resolving go
//! through the same record path as a run, so they land on the timeline and mail people.

use super::args::{IncidentsCommand, StateFilter, TextOrJson};
use super::exit::Exit;
use super::state::{self, State};
use crate::clock::{Clock, SystemClock};
use crate::config::parse_duration;
use crate::engine::apply::{self, ApplyError};
use crate::incidents::{Change, Incident, reconcile, stats};
use crate::model::format_duration;
use crate::store::format_time;
use std::path::Path;

/// Runs `dqwatch incidents …`.
pub async fn cmd(config: Option<&Path>, command: IncidentsCommand) -> Exit {
    let st = match state::open_from(config).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let clock = SystemClock;
    let result = match command {
        IncidentsCommand::List { state, format } => list(&st, state, format).await,
        IncidentsCommand::Show { id, format } => show(&st, id, format).await,
        IncidentsCommand::Ack { id, by, note } => {
            change(&st, id, &clock, |inc, now| {
                reconcile::acknowledge(inc, &by, note.clone(), now)
            })
            .await
        }
        IncidentsCommand::Resolve { id, by, note } => {
            change(&st, id, &clock, |inc, now| {
                reconcile::resolve(inc, &by, Some(note.clone()), now)
            })
            .await
        }
        IncidentsCommand::Note { id, text, by } => {
            change(&st, id, &clock, |inc, now| {
                Ok(reconcile::note(inc, &by, text.clone(), now))
            })
            .await
        }
        IncidentsCommand::Stats { since, format } => stats_cmd(&st, &since, format, &clock).await,
        IncidentsCommand::Postmortem { id } => postmortem(&st, id, &clock).await,
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

async fn list(st: &State, filter: StateFilter, format: TextOrJson) -> Res {
    let states: &[&str] = match filter {
        StateFilter::Active => &["pending", "open", "acknowledged"],
        StateFilter::Open => &["open"],
        StateFilter::Acknowledged => &["acknowledged"],
        StateFilter::Resolved => &["resolved"],
        StateFilter::Pending => &["pending"],
        StateFilter::All => &[],
    };
    let list = st.store.incidents(states).await.map_err(|e| e.chain())?;
    if format == TextOrJson::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
        );
        return Ok(Exit::Clean);
    }
    if list.is_empty() {
        outln!("no incidents");
        return Ok(Exit::Clean);
    }
    outln!(
        "{:>5}  {:<12}  {:<3}  {:<19}  {:<20}  {:<10}  TITLE",
        "ID",
        "STATE",
        "SEV",
        "CATEGORY",
        "OPENED",
        "METRIC"
    );
    for i in &list {
        let opened = i.opened_at.map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        );
        outln!(
            "{:>5}  {:<12}  {:<3}  {:<19}  {:<20}  {:<10}  {}",
            i.id,
            i.state.as_str(),
            i.severity.as_str(),
            i.category.as_str(),
            opened,
            i.metric_text().unwrap_or_else(|| "-".into()),
            i.title
        );
    }
    Ok(Exit::Clean)
}

async fn show(st: &State, id: i64, format: TextOrJson) -> Res {
    let Some((inc, events)) = find(st, id).await? else {
        return not_found(id);
    };
    let told = crate::engine::told::lines(
        &st.engine.config,
        &st.store.told(id).await.map_err(|e| e.chain())?,
    );
    if format == TextOrJson::Json {
        let doc = serde_json::json!({ "incident": inc, "timeline": events, "told": told });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(Exit::Clean);
    }
    let t =
        |v: Option<chrono::DateTime<chrono::Utc>>| v.map_or_else(|| "-".to_string(), format_time);
    outln!("#{} {}", inc.id, inc.title);
    outln!("  state        {}", inc.state);
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
    if format == TextOrJson::Json {
        let doc = serde_json::json!({ "since": format_time(from), "stats": s });
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
