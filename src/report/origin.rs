//! Where a report was made, for the CI formats: the repository root that GitHub's `file=`
//! paths are relative to (git's top level of the checks folder, or the current folder outside
//! git) and the host name JUnit's `<testsuite hostname>` carries.

use crate::engine::run::RunReport;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root and host name of a pass.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Paths in annotations are relative to this folder (absolute).
    pub root: PathBuf,
    /// This machine's name.
    pub hostname: String,
}

impl Origin {
    /// Finds the root from the folder of the report's first check (git's top level), falling
    /// back to the current folder, and the host name from the system.
    pub fn detect(report: &RunReport) -> Origin {
        let dir = report
            .runs
            .iter()
            .map(|r| &r.check)
            .chain(report.skipped.iter().map(|s| &s.check))
            .next()
            .and_then(|c| absolute(&c.path).parent().map(Path::to_path_buf));
        let root = dir
            .as_deref()
            .and_then(git_top_level)
            .or_else(|| std::env::current_dir().ok())
            .map(|p| absolute(&p))
            .unwrap_or_default();
        Origin {
            root,
            hostname: hostname(),
        }
    }

    /// `path` relative to the root, `/`-separated; unchanged when it lies outside.
    pub fn relative(&self, path: &Path) -> String {
        let abs = absolute(path);
        match abs.strip_prefix(&self.root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            _ => path.display().to_string(),
        }
    }
}

/// `path` made absolute and, where it exists, with symlinks resolved (git prints the real
/// path of its top level).
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}

/// `git rev-parse --show-toplevel` in `dir`; `None` outside a repository or without git.
fn git_top_level(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let top = String::from_utf8(out.stdout).ok()?;
    let top = top.trim_end_matches(['\n', '\r']);
    (!top.is_empty()).then(|| PathBuf::from(top))
}

/// The kernel's host name, else `/etc/hostname`, else `localhost`.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".into())
}
