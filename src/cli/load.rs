//! Loading for every command through the engine's one loader, printing diagnostics.

use crate::config::{self, Config};
use crate::diag::Diagnostic;
use crate::engine::{Engine, LoadError};
use std::path::Path;

/// The process environment, the one `${VAR}` source outside tests.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Prints diagnostics to stderr with a count.
pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
    if diags.len() > 1 {
        eprintln!("{} problems found", diags.len());
    }
}

/// Loads the config, printing its problems.
pub fn config(flag: Option<&Path>) -> Result<Config, Vec<Diagnostic>> {
    let path = config::locate(flag, &env).map_err(|d| vec![d])?;
    config::load(&path, &env)
}

/// Loads the engine (config, checks, templates, transport); on failure prints every problem
/// and returns `None`.
pub fn engine(flag: Option<&Path>) -> Option<Engine> {
    match Engine::locate_and_load(flag, &env) {
        Ok(e) => Some(e),
        Err(LoadError(diags)) => {
            print_diagnostics(&diags);
            None
        }
    }
}
