//! `dqwatch list`: the checks as a table with schedule and next fire time.

use super::args::ListArgs;
use super::exit::Exit;
use super::load;
use crate::checks::{self, Judge};
use std::path::Path;

/// Runs `dqwatch list`.
pub fn cmd(config: Option<&Path>, args: &ListArgs) -> Exit {
    let Some(engine) = load::engine(config) else {
        return Exit::Invalid;
    };
    let cfg = &engine.config;
    let selected = match checks::select(&engine.checks, &args.select, &[]) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Exit::Invalid;
        }
    };
    let now = match super::now::clock() {
        Ok(c) => c.now(),
        Err(m) => {
            eprintln!("error: {m}");
            return Exit::Invalid;
        }
    };
    let tz = cfg.daemon.timezone;
    let mut rows = vec![[
        "ID".to_string(),
        "CONNECTION".into(),
        "SCHEDULE".into(),
        format!("NEXT RUN ({tz})"),
        "THRESHOLDS".into(),
        "TAGS".into(),
    ]];
    for c in selected {
        let (schedule, next) = match &c.schedule {
            Some(s) => (
                s.as_str().to_string(),
                s.next_after(tz, now).map_or("-".into(), |t| {
                    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
                }),
            ),
            None => ("-".into(), "run only".into()),
        };
        let thresholds = match &c.judge {
            Judge::RowsFail { severity } => format!("{severity} any row"),
            Judge::Thresholds { metric, levels } => {
                format!(
                    "{metric}: {}",
                    levels
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            Judge::SeverityMap { column, .. } => format!("{column}: severity_map"),
        };
        rows.push([
            c.id.to_string(),
            c.connection.clone(),
            schedule,
            next,
            thresholds,
            c.tags.join(", "),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", cells.join("  ").trim_end());
    }
    // Notifications are held for the checks of a maintenance window that is on now.
    let windows = super::incidents::window_lines(cfg, now);
    if !windows.is_empty() {
        outln!("\nmaintenance windows now:");
        for w in windows {
            outln!("  {w}");
        }
    }
    Exit::Clean
}
