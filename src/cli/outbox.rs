//! `dqwatch outbox …`: see what mail is pending, sent or dead, and send it again.

use super::args::{OutboxCommand, OutboxFilter};
use super::exit::Exit;
use super::state;
use crate::clock::{Clock, SystemClock};
use crate::store::{OutboxState, Waiting, format_time};
use std::fmt::Write as _;
use std::path::Path;

/// Runs `dqwatch outbox …`.
pub async fn cmd(config: Option<&Path>, command: OutboxCommand) -> Exit {
    let st = match state::open_from(config).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let exit = match command {
        OutboxCommand::List {
            state,
            channel,
            limit,
        } => {
            let filter = match state {
                OutboxFilter::Pending => Some(OutboxState::Pending),
                OutboxFilter::Sent => Some(OutboxState::Sent),
                OutboxFilter::Dead => Some(OutboxState::Dead),
                OutboxFilter::All => None,
            };
            match st.store.outbox_of(filter, channel.as_deref(), limit).await {
                Ok(rows) if rows.is_empty() => {
                    outln!("outbox is empty");
                    Exit::Clean
                }
                Ok(rows) => {
                    outln!(
                        "{:>5}  {:<7}  {:>8}  {:<24}  {:<20}  {:<30}  SUBJECT",
                        "ID",
                        "STATE",
                        "ATTEMPTS",
                        "CREATED",
                        "CHANNEL",
                        "TO"
                    );
                    let now = SystemClock.now();
                    for r in rows {
                        outln!(
                            "{:>5}  {:<7}  {:>8}  {:<24}  {:<20}  {:<30}  {}",
                            r.id,
                            r.state.as_str(),
                            r.attempts,
                            format_time(r.created_at),
                            r.channel,
                            r.mail.to.join(","),
                            r.mail.subject
                        );
                        if r.state == OutboxState::Pending {
                            if let Some(until) = r.leased_until.filter(|u| *u >= now) {
                                outln!(
                                    "       leased until {} (being sent, or its sender died)",
                                    format_time(until)
                                );
                            } else if r.next_attempt_at > now {
                                outln!("       next attempt at {}", format_time(r.next_attempt_at));
                            }
                        }
                        if let Some(e) = r.last_error.filter(|_| r.state != OutboxState::Sent) {
                            outln!("       last error: {e}");
                        }
                    }
                    Exit::Clean
                }
                Err(e) => {
                    eprintln!("error: {}", e.chain());
                    Exit::CheckFailed
                }
            }
        }
        OutboxCommand::Retry {
            channel: Some(channel),
            ..
        } => match st.store.retry_channel(&channel, SystemClock.now()).await {
            Ok(0) => {
                eprintln!(
                    "error: no dead message in channel {channel}\n  hint: `dqwatch outbox list --state dead` shows them with their channel"
                );
                Exit::Invalid
            }
            Ok(n) => {
                outln!(
                    "{n} dead message{} of {channel} back in line",
                    if n == 1 { "" } else { "s" }
                );
                deliver(&st).await
            }
            Err(e) => {
                eprintln!("error: {}", e.chain());
                Exit::CheckFailed
            }
        },
        OutboxCommand::Retry { id, .. } => {
            let id = id.unwrap_or_default();
            match st.store.retry_outbox(id, SystemClock.now()).await {
                Ok(true) => deliver(&st).await,
                Ok(false) => {
                    eprintln!(
                        "error: no pending or dead message {id}\n  hint: `dqwatch outbox list` shows the outbox"
                    );
                    Exit::Invalid
                }
                Err(e) => {
                    eprintln!("error: {}", e.chain());
                    Exit::CheckFailed
                }
            }
        }
        OutboxCommand::Deliver => deliver(&st).await,
    };
    st.store.close().await;
    exit
}

async fn deliver(st: &state::State) -> Exit {
    if st.engine.mailer.is_none() && st.engine.channels.is_empty() {
        eprintln!("error: no [mail] and no [channels.*] in the config: nothing can be delivered");
        return Exit::Invalid;
    }
    match st.deliver(&SystemClock).await {
        Some(d) => {
            let mut line = format!("{} sent, {} retrying, {} dead", d.sent, d.retrying, d.dead);
            if let Ok(w) = st.store.outbox_waiting(SystemClock.now()).await {
                line.push_str(&waiting_line(&w));
            }
            outln!("{line}");
            for (channel, why) in &d.down {
                eprintln!("warning: {channel} is down, its messages wait: {why}");
            }
            if let Some(e) = d.last_error {
                eprintln!("warning: {e}");
                return Exit::CheckFailed;
            }
            Exit::Clean
        }
        None => Exit::CheckFailed,
    }
}

/// What still waits after a pass, and until when (empty when nothing does).
pub fn waiting_line(w: &Waiting) -> String {
    let mut line = String::new();
    if let (n @ 1.., Some(until)) = (w.leased, w.leased_until) {
        let _ = write!(
            line,
            "; {n} leased by a sender until {} (a sender that died frees them then)",
            format_time(until)
        );
    }
    if let (n @ 1.., Some(next)) = (w.backing_off, w.next_attempt) {
        let _ = write!(
            line,
            "; {n} waiting to retry (next at {}; `dqwatch outbox retry ID` sends one now)",
            format_time(next)
        );
    }
    line
}
