//! Opening what the incident commands share: the state store, the templates and the mail
//! transport, each failure printed once with what to do.

use super::exit::Exit;
use super::load;
use crate::clock::Clock;
use crate::compose::{Composer, Templates};
use crate::config::Config;
use crate::engine::deliver::{self as outbox, Delivery};
use crate::notify::Mailer;
use crate::store::{Store, StoreError};
use std::time::Duration;

/// The incident machinery of one config.
pub struct State {
    /// The state store.
    pub store: Store,
    /// Templates and routes.
    pub composer: Composer,
    /// The mail transport, when `[mail]` is configured.
    pub mailer: Option<Mailer>,
}

/// Loads the config (exit 2 on a problem) and opens its state (see [`open`]).
pub async fn open_from(flag: Option<&std::path::Path>) -> Result<(Config, State), Exit> {
    let cfg = load::config(flag).map_err(|d| {
        load::print_diagnostics(&d);
        Exit::Invalid
    })?;
    let state = open(&cfg).await?;
    Ok((cfg, state))
}

/// How long a command waits for the state store to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Loads templates (exit 2 on a bad one), then opens the store (exit 3 when unreachable).
pub async fn open(cfg: &Config) -> Result<State, Exit> {
    let (composer, mailer) = prepare(cfg)?;
    let store = connect(cfg).await.map_err(|e| {
        eprintln!(
            "error: {}\n  hint: check `state` in {} (sqlite://PATH or postgres://…)",
            e.chain(),
            cfg.path.display()
        );
        Exit::CheckFailed
    })?;
    Ok(State {
        store,
        composer,
        mailer,
    })
}

/// Opens and migrates the state store, waiting at most [`CONNECT_TIMEOUT`] for a connection.
pub async fn connect(cfg: &Config) -> Result<Store, StoreError> {
    Store::open_within(&cfg.state, Some(CONNECT_TIMEOUT)).await
}

/// Templates and the mail transport (exit 2 on a problem, printed).
pub fn prepare(cfg: &Config) -> Result<(Composer, Option<Mailer>), Exit> {
    let templates = Templates::load(&cfg.templates_dir).map_err(|d| {
        load::print_diagnostics(&d);
        Exit::Invalid
    })?;
    let composer = Composer::new(cfg, templates);
    let mailer = match cfg.mail.as_ref().map(Mailer::new).transpose() {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "error: {}: {e}\n  hint: fix [mail] in the config",
                cfg.path.display()
            );
            return Err(Exit::Invalid);
        }
    };
    Ok((composer, mailer))
}

impl State {
    /// Delivers the mail that is due, if a transport is configured; prints a warning on
    /// failure.
    pub async fn deliver(&self, clock: &dyn Clock) -> Option<Delivery> {
        let mailer = self.mailer.as_ref()?;
        match outbox::deliver(&self.store, mailer, clock).await {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("warning: {}; the mail stays in the outbox", e.chain());
                None
            }
        }
    }
}
