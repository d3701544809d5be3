//! Loading: config, checks, templates (with their self-test) and the mail transport. The one
//! loader: `run`, `list`, `render`, the incident commands and the daemon (at start and on
//! SIGHUP) call [`Engine::load`]; `validate` runs the same stages one at a time to print a
//! line for each. A broken template stops every command before anything runs, with the same
//! message.

use super::apply::check_info;
use crate::checks::{self, Catalog, Check};
use crate::compose::{CheckInfo, Composer, Templates};
use crate::config::{self, Config};
use crate::diag::Diagnostic;
use crate::notify::{Channels, Mailer};
use crate::warehouse::Warehouses;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Config, checks and what is built from them; the daemon replaces it as a whole on reload.
pub struct Engine {
    /// The config.
    pub config: Config,
    /// Every check.
    pub checks: Vec<Arc<Check>>,
    /// Ticket facts per check id.
    pub infos: HashMap<String, CheckInfo>,
    /// Templates and routes.
    pub composer: Composer,
    /// Warehouse pools (nothing connects until a check needs it).
    pub warehouses: Warehouses,
    /// The mail transport, when `[mail]` is configured.
    pub mailer: Option<Mailer>,
    /// The `[channels.*]` transports (Slack, PagerDuty, Teams, webhooks).
    pub channels: Channels,
}

/// What made loading fail: every problem found, each with its file and line.
#[derive(Debug, thiserror::Error)]
#[error("{} problem{} in the config, checks or templates", .0.len(), if .0.len() == 1 { "" } else { "s" })]
pub struct LoadError(pub Vec<Diagnostic>);

impl From<Vec<Diagnostic>> for LoadError {
    fn from(diags: Vec<Diagnostic>) -> Self {
        LoadError(diags)
    }
}

impl Engine {
    /// Finds the config (`--config`, `$DQWATCH_CONFIG`, the default places) and loads.
    pub fn locate_and_load(
        flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Engine, LoadError> {
        Engine::load(&locate(flag, env)?, env)
    }

    /// Loads config, checks, templates (self-tested) and the transport: every problem of the
    /// first stage that has any.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Engine, LoadError> {
        let config = config::load(path, env)?;
        checks::maintenance::windows(&config)?;
        let catalog = checks::load(&config)?;
        let composer = templates(&config)?;
        let mailer = transport(&config)?;
        let channels = Channels::new(&config)
            .map_err(|e| LoadError(vec![Diagnostic::file(&config.path, e)]))?;
        let mut engine = Engine::new(config, catalog, composer, mailer);
        engine.channels = channels;
        Ok(engine)
    }

    /// Assembles an engine from loaded parts.
    pub fn new(
        config: Config,
        catalog: Catalog,
        composer: Composer,
        mailer: Option<Mailer>,
    ) -> Engine {
        let warehouses = Warehouses::new(&config);
        let checks: Vec<Arc<Check>> = catalog.checks.into_iter().map(Arc::new).collect();
        let infos = checks
            .iter()
            .map(|c| (c.id.0.clone(), check_info(c)))
            .collect();
        Engine {
            config,
            checks,
            infos,
            composer,
            warehouses,
            mailer,
            channels: Channels::default(),
        }
    }
}

/// Where the config is: `--config`, else `$DQWATCH_CONFIG`, else `./dqwatch.toml`, else
/// `./config/dqwatch.toml`.
pub fn locate(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, LoadError> {
    config::locate(flag, env).map_err(|d| LoadError(vec![d]))
}

/// The templates, loaded and rendered against an example incident: a missing variable or a
/// syntax error is found here, not in the middle of an incident.
pub fn templates(config: &Config) -> Result<Composer, LoadError> {
    let templates = Templates::load(&config.templates_dir)?;
    let composer = Composer::new(config, templates);
    composer.self_test().map_err(|message| {
        LoadError(vec![
            Diagnostic::file(&config.templates_dir, message.to_string())
                .hint("templates see the fields listed in README (Templates)"),
        ])
    })?;
    Ok(composer)
}

/// The mail transport of `[mail]`, if any.
pub fn transport(config: &Config) -> Result<Option<Mailer>, LoadError> {
    config
        .mail
        .as_ref()
        .map(Mailer::new)
        .transpose()
        .map_err(|e| {
            LoadError(vec![
                Diagnostic::file(&config.path, format!("[mail]: {e}"))
                    .hint("fix [mail] in the config"),
            ])
        })
}
