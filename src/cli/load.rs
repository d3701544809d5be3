//! Locating and loading config and checks for every command, printing diagnostics.

use crate::checks::{self, Catalog};
use crate::config::{self, Config};
use crate::diag::Diagnostic;
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

/// Loads config and checks; on failure prints every problem and returns `None`.
pub fn all(flag: Option<&Path>) -> Option<(Config, Catalog)> {
    let loaded = config(flag).and_then(|cfg| checks::load(&cfg).map(|cat| (cfg, cat)));
    match loaded {
        Ok(v) => Some(v),
        Err(diags) => {
            print_diagnostics(&diags);
            None
        }
    }
}
