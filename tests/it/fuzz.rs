//! A deterministic mutation fuzzer over the input parsers, in process: the demo's
//! `config/dqwatch.toml` (then the templates' self-test), its `checks/**/*.sql` headers,
//! `checks/rules/*.toml` rule checks and the built-in rules as a user's `rules_dir`,
//! mutated bytewise (bit flips, inserted tokens such as huge numbers, quotes, brackets, NUL,
//! unicode and CRLF, deletions, duplications, truncations, replaced values) and handed to
//! the library's parse and validate functions. No input may panic: every mutation must come
//! back as a `Config`/`Check` or as diagnostics.
//!
//! `cargo test` runs [`CASES`] cases from a fixed seed (a few seconds). For a long run set
//! `DQWATCH_FUZZ_SECS=600` (and optionally `DQWATCH_FUZZ_SEED`); the test prints the number
//! of cases and panics, and writes each panicking input to `target/fuzz-panics/`.
//!
//! See: issues/8 item 13.

use dqwatch::checks::{Schedule, parse_check, parse_rule_check, parse_threshold, rule};
use dqwatch::compose::{Composer, Templates};
use dqwatch::config::{self, Config, parse_duration, redact_url, url_problem};
use dqwatch::model::{CheckId, Severity};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Cases in an ordinary `cargo test`.
const CASES: u64 = 3000;
/// The seed of an ordinary run (any change to it changes every case).
const SEED: u64 = 0x00D9_3A7C_4F1B_2E68;

/// Tokens worth inserting: the syntax of each parser, values at and past every range, and
/// the characters that have broken parsers before.
const TOKENS: &[&str] = &[
    "99999999999999999999w",
    "99999999999999999999",
    "1e400",
    "-1",
    "0",
    "nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "0.0000001ms",
    "1.5.5h",
    "36501d",
    "\"",
    "'",
    "\"\"\"",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\u{0}",
    "\u{feff}",
    "é",
    "🦀",
    "\u{202e}",
    "\r\n",
    "\r",
    "\n",
    "\t",
    "\\",
    "\\u{",
    "--",
    "-- dqwatch\n",
    "\n-- ",
    "${",
    "${X}",
    "${X:-",
    "$$",
    "%",
    "@",
    "#",
    "?",
    "/",
    ":",
    ";",
    "P0",
    "P9",
    "> ",
    ">= ",
    "!= ",
    "%\"",
    "* * * * *",
    "* * * * * * * *",
    "*/0 * * * *",
    "0-99999 * * * *",
    "59 23 31 2 *",
    "1-5/3",
    "L",
    "W",
    "@reboot",
    "postgres://u:p?a/ss@w#rd@127.0.0.1:1/db",
    "mysql://",
    "sqlite://",
    "sqlite::memory:",
    "{{",
    "}}",
    "true",
    "1979-05-27T07:32:00Z",
    "[params]\n",
    "[thresholds]\n",
    "[severity_map]\n",
    "[[routes]]\n",
    "[severity.P0]\n",
    "escalation = [{ after = \"1e400h\", email = [\"a@b.c\"] }]\n",
];

/// A small, fast, seedable PRNG (SplitMix64): the same seed gives the same cases everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `input`, applied 1 to 4 times.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        let at = rng.below(len + 1);
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 | 2 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(32)).min(len);
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            5 => out.truncate(at),
            6 | 7 => {
                // Replace a quoted value (or a bare value after `=`) with a token.
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                if let Some((s, e)) = value_at(&out, at) {
                    out.splice(s..e, token.iter().copied());
                }
            }
            _ => {
                // Splice in a piece of another seed.
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let end = (from + 1 + rng.below(64)).min(other.len());
                    out.splice(at..at, other[from..end].iter().copied());
                }
            }
        }
    }
    out
}

/// The value after the first `=` at or after `from`: its byte range (inside the quotes when
/// quoted, else to the end of the line).
fn value_at(text: &[u8], from: usize) -> Option<(usize, usize)> {
    let eq = from + text.get(from..)?.iter().position(|&b| b == b'=')?;
    let mut start = eq + 1;
    while text.get(start) == Some(&b' ') {
        start += 1;
    }
    let line_end = text[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| start + i);
    if text.get(start) == Some(&b'"') {
        let close = text[start + 1..line_end].iter().position(|&b| b == b'"')?;
        Some((start + 1, start + 1 + close))
    } else {
        Some((start, line_end))
    }
}

/// The demo's inputs, read once.
struct Seeds {
    config_path: PathBuf,
    config: String,
    sql: Vec<(PathBuf, String)>,
    rules: Vec<(PathBuf, String)>,
    /// The built-in rules' folders (`sql/rules/NAME`).
    rule_dirs: Vec<PathBuf>,
    /// A temp `rules_dir` that mutated rules are written to.
    scratch: tempfile::TempDir,
}

fn seeds() -> Seeds {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config_path = root.join("config/dqwatch.toml");
    let config = std::fs::read_to_string(&config_path).expect("read the demo config");
    let mut sql = Vec::new();
    let mut rules = Vec::new();
    let mut dirs = vec![root.join("checks")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read checks/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                match path.extension().and_then(|e| e.to_str()) {
                    Some("sql") => sql.push((path, text)),
                    Some("toml") => rules.push((path, text)),
                    _ => {}
                }
            }
        }
    }
    sql.sort();
    rules.sort();
    assert!(!sql.is_empty() && !rules.is_empty(), "no demo checks found");
    let mut rule_dirs: Vec<PathBuf> = std::fs::read_dir(root.join("sql/rules"))
        .expect("read sql/rules")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("rule.toml").is_file())
        .collect();
    rule_dirs.sort();
    Seeds {
        config_path,
        config,
        sql,
        rules,
        rule_dirs,
        scratch: tempfile::tempdir().expect("a temp dir"),
    }
}

fn env(name: &str) -> Option<String> {
    (name == "X").then(|| "p?a/ss@w#rd".to_string())
}

/// Runs every parser that `text` can reach; panics propagate to the caller's `catch_unwind`.
fn exercise(
    kind: usize,
    text: &str,
    rule_target: (&Path, &str),
    deep: bool,
    seeds: &Seeds,
    base: &Config,
    rules: &BTreeMap<String, rule::Rule>,
) {
    match kind {
        0 => {
            if let Ok(cfg) = config::parse(&seeds.config_path, text, &env) {
                // A config that validates must carry the demo's checks and render the
                // templates' self-test too.
                for (path, sql) in seeds.sql.iter().take(3) {
                    let _ = parse_check(CheckId("fuzz".into()), path, sql, &cfg);
                }
                // Compiling the templates is slow: one valid config in sixteen.
                if deep && let Ok(templates) = Templates::load(&cfg.templates_dir) {
                    let _ = Composer::new(&cfg, templates).self_test();
                }
            }
        }
        1 => {
            let _ = parse_check(
                CheckId("fuzz".into()),
                Path::new("checks/fuzz.sql"),
                text,
                base,
            );
        }
        2 => {
            let _ = parse_rule_check(
                CheckId("fuzz".into()),
                Path::new("checks/fuzz.toml"),
                text,
                base,
                rules,
            );
        }
        _ => {
            // A user's rule in `rules_dir`: `text` is its rule.toml or its sqlite.sql (the
            // demo's dialect), the rest copied from the built-in rule it replaces.
            let (dir, file) = rule_target;
            let name = dir.file_name().unwrap_or_default();
            let target = seeds.scratch.path().join(name);
            let _ = std::fs::remove_dir_all(seeds.scratch.path());
            std::fs::create_dir_all(&target).expect("create the scratch rule");
            for f in ["rule.toml", "postgres.sql", "mysql.sql", "sqlite.sql"] {
                let body = if f == file {
                    text.to_string()
                } else {
                    std::fs::read_to_string(dir.join(f)).unwrap_or_default()
                };
                std::fs::write(target.join(f), body).expect("write the scratch rule");
            }
            if let Ok(user_rules) = rule::load_rules(Some(seeds.scratch.path())) {
                let uses = format!("rule = \"{}\"", name.to_string_lossy());
                for (path, check) in seeds.rules.iter().filter(|(_, c)| c.contains(&uses)) {
                    let _ =
                        parse_rule_check(CheckId("fuzz".into()), path, check, base, &user_rules);
                }
            }
        }
    }
    // The small syntaxes on their own, fed the same bytes line by line.
    for line in text.lines().take(8) {
        let value = line
            .split_once('=')
            .map_or(line, |(_, v)| v)
            .trim()
            .trim_matches('"');
        let _ = parse_duration(value);
        let _ = parse_threshold(Severity::P1, value);
        let _ = Schedule::parse(value);
        let _ = url_problem(value);
        let _ = redact_url(value);
    }
}

/// Outcome of a fuzz run.
struct Tally {
    cases: u64,
    /// Time spent per kind (config, sql check, rule check, rule).
    time: [Duration; 4],
    panics: Vec<(usize, Vec<u8>, String)>,
}

fn fuzz(seed: u64, budget: Budget) -> Tally {
    let seeds = seeds();
    let base =
        config::parse(&seeds.config_path, &seeds.config, &env).expect("the demo config is valid");
    let rules = rule::load_rules(None).expect("built-in rules load");
    let mut rng = Rng(seed);
    let mut tally = Tally {
        cases: 0,
        time: [Duration::ZERO; 4],
        panics: Vec::new(),
    };
    let start = Instant::now();
    while budget.more(tally.cases, start) {
        // Rules are slower (files) and fewer: one case in ten.
        let kind = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3][rng.below(10)];
        let pick = |rng: &mut Rng, v: &[(PathBuf, String)]| v[rng.below(v.len())].1.clone();
        let rule_dir = &seeds.rule_dirs[rng.below(seeds.rule_dirs.len())];
        let rule_file = ["rule.toml", "sqlite.sql"][rng.below(2)];
        let (input, other) = match kind {
            0 => (seeds.config.clone(), pick(&mut rng, &seeds.sql)),
            1 => (pick(&mut rng, &seeds.sql), pick(&mut rng, &seeds.sql)),
            2 => (pick(&mut rng, &seeds.rules), seeds.config.clone()),
            _ => (
                std::fs::read_to_string(rule_dir.join(rule_file)).unwrap_or_default(),
                pick(&mut rng, &seeds.rules),
            ),
        };
        let bytes = mutate(&mut rng, input.as_bytes(), other.as_bytes());
        let deep = rng.below(16) == 0;
        let text = String::from_utf8_lossy(&bytes);
        let case_start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            exercise(
                kind,
                &text,
                (rule_dir, rule_file),
                deep,
                &seeds,
                &base,
                &rules,
            );
        }));
        if let Err(payload) = result {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            tally.panics.push((kind, bytes, message));
        }
        tally.time[kind] += case_start.elapsed();
        tally.cases += 1;
    }
    tally
}

#[derive(Clone, Copy)]
enum Budget {
    Cases(u64),
    Time(Duration),
}

impl Budget {
    fn more(self, done: u64, start: Instant) -> bool {
        match self {
            Budget::Cases(n) => done < n,
            Budget::Time(t) => start.elapsed() < t,
        }
    }
}

/// Writes each panicking input to `target/fuzz-panics/` for reproduction.
fn keep(panics: &[(usize, Vec<u8>, String)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-panics");
    let _ = std::fs::create_dir_all(&dir);
    for (i, (kind, bytes, _)) in panics.iter().enumerate().take(50) {
        let ext = ["toml", "sql", "check.toml", "rule"][*kind];
        let _ = std::fs::write(dir.join(format!("{i}.{ext}")), bytes);
    }
    dir
}

#[test]
fn mutated_configs_and_checks_never_panic() {
    let secs = std::env::var("DQWATCH_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let seed = std::env::var("DQWATCH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(SEED);
    let budget = secs.map_or(Budget::Cases(CASES), |s| {
        Budget::Time(Duration::from_secs(s))
    });
    let start = Instant::now();
    let tally = fuzz(seed, budget);
    let line = format!(
        "fuzz: seed {seed}, {} cases in {:.1} s, {} panics (s per kind: {:.1?})\n",
        tally.cases,
        start.elapsed().as_secs_f64(),
        tally.panics.len(),
        tally.time.map(|t| t.as_secs_f64()),
    );
    // Straight to stderr: the figure is wanted also when the test passes.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    if !tally.panics.is_empty() {
        let dir = keep(&tally.panics);
        let mut distinct: Vec<&str> = tally.panics.iter().map(|p| p.2.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        panic!(
            "{line}inputs in {}\ndistinct messages:\n{}",
            dir.display(),
            distinct.join("\n")
        );
    }
}

#[test]
fn the_mutator_is_deterministic() {
    let mut a = Rng(7);
    let mut b = Rng(7);
    let input = b"a = \"1h\"\nb = 2\n";
    assert_eq!(mutate(&mut a, input, input), mutate(&mut b, input, input));
    assert_eq!(value_at(b"k = \"v\"\n", 0), Some((5, 6)));
    assert_eq!(value_at(b"k = 12\n", 0), Some((4, 6)));
}

/// Cron fields at and past their ranges, with steps of zero and huge numbers: an error or a
/// schedule, never a panic (the `cron` crate sees each field).
#[test]
fn cron_edge_cases_never_panic() {
    let fields = [
        "*",
        "*/0",
        "0/0",
        "*/99999999999999999999",
        "0-99999",
        "99999999999999999999",
        "5-1",
        "1-5/0",
        "L",
        "W",
        "1W",
        "LW",
        "5L",
        "#",
        "1#9",
        "?",
        ",",
        "1,,2",
        "-",
        "1-",
        "-1",
        "0-0/1",
        "60",
        "24",
        "32",
        "13",
        "8",
        "Mon-Sun",
        "Sun-Mon",
        "7-0",
        "7",
        "é",
        "\u{0}",
    ];
    let mut panics = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        for position in 0..5 {
            let mut expr = ["0", "0", "*", "*", "*"];
            expr[position] = f;
            let text = expr.join(" ");
            let other = fields[(i * 7 + position) % fields.len()];
            let six = format!("{other} {text}");
            for t in [text.as_str(), six.as_str()] {
                let result = catch_unwind(|| {
                    if let Ok(s) = Schedule::parse(t) {
                        let _ = s.next_after(chrono_tz::UTC, chrono::DateTime::UNIX_EPOCH);
                    }
                });
                if result.is_err() {
                    panics.push(t.to_string());
                }
            }
        }
    }
    assert!(panics.is_empty(), "cron panics on: {panics:#?}");
}
