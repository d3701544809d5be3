//! `dqwatch outbox …`: see what mail is pending, sent or dead, and send it again.

use super::args::{OutboxCommand, OutboxFilter};
use super::exit::Exit;
use super::state;
use crate::clock::{Clock, SystemClock};
use crate::store::{OutboxState, format_time};
use std::path::Path;

/// Runs `dqwatch outbox …`.
pub async fn cmd(config: Option<&Path>, command: OutboxCommand) -> Exit {
    let (_, st) = match state::open_from(config).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let exit = match command {
        OutboxCommand::List { state, limit } => {
            let filter = match state {
                OutboxFilter::Pending => Some(OutboxState::Pending),
                OutboxFilter::Sent => Some(OutboxState::Sent),
                OutboxFilter::Dead => Some(OutboxState::Dead),
                OutboxFilter::All => None,
            };
            match st.store.outbox(filter, limit).await {
                Ok(rows) if rows.is_empty() => {
                    outln!("outbox is empty");
                    Exit::Clean
                }
                Ok(rows) => {
                    outln!(
                        "{:>5}  {:<7}  {:>8}  {:<24}  {:<30}  SUBJECT",
                        "ID",
                        "STATE",
                        "ATTEMPTS",
                        "CREATED",
                        "TO"
                    );
                    for r in rows {
                        outln!(
                            "{:>5}  {:<7}  {:>8}  {:<24}  {:<30}  {}",
                            r.id,
                            r.state.as_str(),
                            r.attempts,
                            format_time(r.created_at),
                            r.mail.to.join(","),
                            r.mail.subject
                        );
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
        OutboxCommand::Retry { id } => match st.store.retry_outbox(id, SystemClock.now()).await {
            Ok(true) => deliver(&st).await,
            Ok(false) => {
                eprintln!(
                    "error: no pending or dead mail {id}\n  hint: `dqwatch outbox list` shows the outbox"
                );
                Exit::Invalid
            }
            Err(e) => {
                eprintln!("error: {}", e.chain());
                Exit::CheckFailed
            }
        },
        OutboxCommand::Deliver => deliver(&st).await,
    };
    st.store.close().await;
    exit
}

async fn deliver(st: &state::State) -> Exit {
    if st.mailer.is_none() {
        eprintln!("error: no [mail] in the config: nothing can be delivered");
        return Exit::Invalid;
    }
    match st.deliver(&SystemClock, true).await {
        Some(d) => {
            outln!("{} sent, {} retrying, {} dead", d.sent, d.retrying, d.dead);
            if let Some(e) = d.last_error {
                eprintln!("warning: {e}");
                return Exit::CheckFailed;
            }
            Exit::Clean
        }
        None => Exit::CheckFailed,
    }
}
