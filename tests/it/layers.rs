//! The layer table of `src/lib.rs` (and STYLE.md), enforced: every `crate::module` a file of
//! `src/` names (outside its `#[cfg(test)]` module) is one its layer may use, arrows only
//! go down, and the pure core never touches I/O crates or the store.
// See: issues/9

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use (besides itself), layer by layer: the
/// edges and everything above them may use every module of the layers before theirs.
fn table() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    const FOUNDATION: &[&str] = &["model", "diag", "clock"];
    const BELOW_ENGINE: &[&str] = &[
        "model",
        "diag",
        "clock",
        "config",
        "checks",
        "evaluate",
        "incidents",
        "compose",
        "warehouse",
        "store",
        "notify",
    ];
    let mut t: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut put = |m: &'static str, uses: &[&'static str]| {
        t.insert(m, uses.iter().copied().collect());
    };
    for m in FOUNDATION {
        put(m, &[]);
    }
    put("config", &["model", "diag"]);
    put("checks", &["model", "diag", "config"]);
    put("evaluate", &["model", "diag", "checks"]);
    put("incidents", &["model", "diag", "config"]);
    put("compose", &["model", "diag", "config", "incidents"]);
    put("warehouse", &["model", "diag", "config", "checks"]);
    put("store", &["model", "diag", "incidents"]);
    put("notify", &["model", "diag", "config"]);
    put("engine", BELOW_ENGINE);
    put("report", &["model", "diag", "engine"]);
    let daemon: Vec<&str> = BELOW_ENGINE
        .iter()
        .copied()
        .chain(["engine", "report"])
        .collect();
    put("daemon", &daemon);
    let cli: Vec<&str> = daemon.iter().copied().chain(["daemon"]).collect();
    put("cli", &cli);
    t
}

/// Modules that stay pure: no I/O crate, no store, no system clock.
const PURE: &[&str] = &[
    "model",
    "diag",
    "config",
    "checks",
    "evaluate",
    "incidents",
    "compose",
];
const IO_CRATES: &[&str] = &["sqlx::", "tokio::", "lettre::", "axum::", "reqwest::"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without its test module (`#[cfg(test)]` to the end of the file, the
/// layout every file here follows) and without comments.
fn code_of(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names: `crate::a::…`, and each of `crate::{a, b::c}`.
fn uses(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

#[test]
fn the_layer_checker_reads_grouped_imports() {
    let found = uses("use crate::{model::Key, store::{Store, Tx}};\nlet x = crate::clock::now();");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["clock", "model", "store"]
    );
}

#[test]
fn imports_only_go_down_the_layer_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let table = table();
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" || file.ends_with("tests.rs") {
            continue;
        }
        let Some(allowed) = table.get(module.as_str()) else {
            wrong.push(format!(
                "src/{}: module `{module}` is not in the layer table",
                rel.display()
            ));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + 7..];
            let used: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if used != module && !used.is_empty() && !allowed.contains(used.as_str()) {
                wrong.push(format!(
                    "src/{}: `{module}` uses `crate::{used}`",
                    rel.display()
                ));
            }
        }
        if PURE.contains(&module.as_str()) {
            for krate in IO_CRATES {
                if code.contains(krate) {
                    wrong.push(format!(
                        "src/{}: pure `{module}` uses {krate}",
                        rel.display()
                    ));
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layer table:\n{}",
        wrong.join("\n")
    );
}
