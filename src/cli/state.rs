//! Opening what the incident commands share: the engine and the state store, each failure
//! printed once with what to do.

use super::exit::Exit;
use super::load;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::deliver::{self as outbox, Delivery};
use crate::notify::{Channels, Mailer};
use crate::store::{Store, StoreError};
use std::time::Duration;

/// The incident machinery of one config: the engine and its state store.
pub struct State {
    /// Config, checks, templates and transport.
    pub engine: Engine,
    /// The state store.
    pub store: Store,
}

/// How long a command waits for the state store to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Loads the engine (exit 2 on a problem) and opens its state store (exit 3 when
/// unreachable).
pub async fn open_from(flag: Option<&std::path::Path>) -> Result<State, Exit> {
    let engine = load::engine(flag).ok_or(Exit::Invalid)?;
    let store = connect(&engine.config).await.map_err(|e| {
        eprintln!(
            "error: {}\n  hint: check `state` in {} (sqlite://PATH or postgres://…)",
            e.chain(),
            engine.config.path.display()
        );
        Exit::CheckFailed
    })?;
    Ok(State { engine, store })
}

/// Opens and migrates the state store, waiting at most [`CONNECT_TIMEOUT`] for a connection.
pub async fn connect(cfg: &Config) -> Result<Store, StoreError> {
    Store::open_within(&cfg.state, Some(CONNECT_TIMEOUT)).await
}

impl State {
    /// Delivers the mail that is due, if a transport is configured; prints a warning on
    /// failure.
    pub async fn deliver(&self, clock: &dyn Clock) -> Option<Delivery> {
        deliver(
            &self.store,
            self.engine.mailer.as_ref(),
            &self.engine.channels,
            clock,
        )
        .await
    }
}

/// Delivers the messages of `store` that are due through `mailer` and `channels`, if any is
/// configured; prints a warning on failure.
pub async fn deliver(
    store: &Store,
    mailer: Option<&Mailer>,
    channels: &Channels,
    clock: &dyn Clock,
) -> Option<Delivery> {
    if mailer.is_none() && channels.is_empty() {
        return None;
    }
    match outbox::deliver(store, mailer, channels, clock).await {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("warning: {}; the mail stays in the outbox", e.chain());
            None
        }
    }
}
