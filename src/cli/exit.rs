//! The one mapping from results to process exit codes (DESIGN.md): 0 clean, 1 breaches at or
//! above `--fail-on`, 2 invalid input or usage, 3 a check could not run.

use crate::report::Verdict;
use std::process::ExitCode;

/// A process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Nothing at or above `--fail-on`.
    Clean = 0,
    /// Breaches at or above `--fail-on`.
    Breach = 1,
    /// Invalid config, check file or usage.
    Invalid = 2,
    /// A check could not run.
    CheckFailed = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

impl From<Verdict> for Exit {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Clean => Exit::Clean,
            Verdict::Breach => Exit::Breach,
            Verdict::CheckFailed => Exit::CheckFailed,
        }
    }
}
