//! `checks_dir` → every [`Check`], with ids from paths, duplicates refused, and the
//! `--select` / `--exclude` filters.

use super::{Check, parse_check, parse_rule_check};
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::model::CheckId;
use std::path::{Path, PathBuf};

/// The checks of one config, sorted by id.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every valid check.
    pub checks: Vec<Check>,
    /// Number of check files read.
    pub files: usize,
}

/// Reads every check under `config.checks_dir`. All problems are returned together.
pub fn load(config: &Config) -> Result<Catalog, Vec<Diagnostic>> {
    let root = &config.checks_dir;
    let mut files = Vec::new();
    let mut diags = Vec::new();
    if !root.is_dir() {
        return Err(vec![
            Diagnostic::file(root, "checks_dir is not a folder").hint(format!(
                "create it, or point checks_dir in {} at your checks",
                config.path.display()
            )),
        ]);
    }
    let rules = super::rule::load_rules(config.rules_dir.as_deref())?;
    walk(root, &mut files, &mut diags);
    files.sort();
    let texts: Vec<(PathBuf, std::io::Result<String>)> = read_all(files);
    let mut checks: Vec<Check> = Vec::with_capacity(texts.len());
    let count = texts.len();
    for (path, text) in texts {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::file(&path, format!("cannot read check: {e}")));
                continue;
            }
        };
        let id = id_of(root, &path);
        let parsed = if ext == "toml" {
            parse_rule_check(id, &path, &text, config, &rules)
        } else {
            parse_check(id, &path, &text, config)
        };
        match parsed {
            Ok(c) => checks.push(c),
            Err(mut d) => diags.append(&mut d),
        }
    }
    checks.sort_by(|a, b| a.id.cmp(&b.id));
    for pair in checks.windows(2) {
        if pair[0].id == pair[1].id {
            diags.push(
                Diagnostic::file(
                    &pair[1].path,
                    format!("duplicate check id \"{}\"", pair[1].id),
                )
                .hint(format!(
                    "{} has the same id; rename one of them",
                    pair[0].path.display()
                )),
            );
        }
    }
    if diags.is_empty() {
        Ok(Catalog {
            checks,
            files: count,
        })
    } else {
        diags.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
        Err(diags)
    }
}

/// Reads files on a few threads: validating 10,000 checks is mostly file I/O.
fn read_all(files: Vec<PathBuf>) -> Vec<(PathBuf, std::io::Result<String>)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if files.len() < 256 || threads == 1 {
        return files
            .into_iter()
            .map(|p| {
                let t = std::fs::read_to_string(&p);
                (p, t)
            })
            .collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|p| (p.clone(), std::fs::read_to_string(p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::file(dir, format!("cannot read folder: {e}")));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            walk(&path, files, diags);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("sql") || e.eq_ignore_ascii_case("toml"))
        {
            files.push(path);
        }
    }
}

/// The id of a check file: its path under the root, `/`-separated, without extension.
fn id_of(root: &Path, path: &Path) -> CheckId {
    let rel = path.strip_prefix(root).unwrap_or(path).with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    CheckId(parts.join("/"))
}

/// Keeps the checks matched by any of `select` (all when empty) and by none of `exclude`.
/// A selector is `tag:NAME`, `connection:NAME` or an id glob (`*` any text, `?` one character).
/// A selector that matches no check is an error: a typo must not run nothing and pass.
/// Works on checks or on shared checks (`Arc<Check>`).
pub fn select<'a, C: std::borrow::Borrow<Check>>(
    checks: &'a [C],
    select: &[String],
    exclude: &[String],
) -> Result<Vec<&'a C>, String> {
    for s in select.iter().chain(exclude) {
        if !checks.iter().any(|c| matches(c.borrow(), s)) {
            return Err(format!("selector \"{s}\" matches no check"));
        }
    }
    Ok(checks
        .iter()
        .filter(|c| select.is_empty() || select.iter().any(|s| matches((*c).borrow(), s)))
        .filter(|c| !exclude.iter().any(|s| matches((*c).borrow(), s)))
        .collect())
}

fn matches(check: &Check, selector: &str) -> bool {
    if let Some(tag) = selector.strip_prefix("tag:") {
        check.tags.iter().any(|t| t == tag)
    } else if let Some(conn) = selector.strip_prefix("connection:") {
        check.connection == conn
    } else {
        glob(selector.as_bytes(), check.id.0.as_bytes())
    }
}

/// `*` matches any run of characters (including `/`), `?` exactly one.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("finance/*", "finance/revenue", true)]
    #[test_case("*", "a/b/c", true)]
    #[test_case("fin*nue", "finance/revenue", true)]
    #[test_case("finance/rev?nue", "finance/revenue", true)]
    #[test_case("finance", "finance/revenue", false)]
    #[test_case("*/orders", "shop/orders", true)]
    #[test_case("*/orders", "shop/orders_daily", false)]
    fn globs(pattern: &str, id: &str, want: bool) {
        assert_eq!(glob(pattern.as_bytes(), id.as_bytes()), want);
    }

    #[test]
    fn ids_come_from_paths() {
        assert_eq!(
            id_of(Path::new("checks"), Path::new("checks/finance/revenue.sql")).0,
            "finance/revenue"
        );
        assert_eq!(
            id_of(Path::new("/x/checks"), Path::new("/x/checks/a.sql")).0,
            "a"
        );
    }
}
