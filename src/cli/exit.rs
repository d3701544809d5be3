//! The one mapping from results to process exit codes (DESIGN.md): 0 clean, 1 breaches at or
//! above `--fail-on`, 2 invalid input or usage, 3 a check could not run.

use crate::report::Verdict;
use std::fmt;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Set once the reader of stdout has gone away; later output is dropped.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Set once a stdout failure other than a closed pipe was reported.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Standard output for command results. Once the reader has gone away (a closed pipe, as in
/// `dqwatch outbox list | head -1`), every write succeeds without writing: the command
/// finishes its work quietly and keeps its own exit code, so that `dqwatch run | head` in a
/// CI gate still fails on breaches. ripgrep exits quietly too; `println!` panics (exit 101).
///
/// See: issues/8 item 12.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Stdout {
    fn quiet(result: io::Result<()>) -> io::Result<()> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                STDOUT_GONE.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => other,
        }
    }
}

impl io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !STDOUT_GONE.load(Ordering::Relaxed) {
            Self::quiet(io::stdout().lock().write_all(buf))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if STDOUT_GONE.load(Ordering::Relaxed) {
            return Ok(());
        }
        Self::quiet(io::stdout().lock().flush())
    }
}

/// Writes command output (the `out!` and `outln!` macros). A closed pipe drops it quietly;
/// another failure (a full disk) is reported once on stderr, without panicking.
pub(crate) fn print(args: fmt::Arguments<'_>, newline: bool) {
    let mut out = Stdout;
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = written
        && !STDOUT_FAILED.swap(true, Ordering::Relaxed)
    {
        let _ = writeln!(io::stderr(), "error: failed to write to stdout: {e}");
    }
}
