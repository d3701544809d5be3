//! One `.sql` check file → [`Check`]: its `-- dqwatch` header read as TOML, every problem
//! reported at the `.sql` file's own line and column (not the extracted TOML's).

use super::Check;
use super::fields::{build, parse_raw};
use super::header::{self, MARKER};
use crate::config::{Config, Ctx};
use crate::diag::Diagnostic;
use crate::model::CheckId;
use std::path::Path;

/// Parses and validates one `.sql` check file's text. `id` and `path` come from the catalog.
pub fn parse_check(
    id: CheckId,
    path: &Path,
    text: &str,
    config: &Config,
) -> Result<Check, Vec<Diagnostic>> {
    let Some(header) = header::split(text) else {
        return Err(vec![Diagnostic::at(path, 1, 1, format!("a check must start with the line `{MARKER}`"))
            .hint(format!("put `{MARKER}` on the first line, then the header as `-- key = value` lines, then the query"))]);
    };
    let position = |line, column| header.file_position(line, column);
    let mut ctx = Ctx::embedded(path, &header.toml, &position);
    let Some(raw) = parse_raw(&mut ctx, &header.toml) else {
        return Err(ctx.diags);
    };
    if let Some(r) = &raw.rule {
        ctx.error(
            r.span(),
            "`rule` belongs in a .toml check",
            Some("move the rule check to a .toml file (rule = \"…\", [params]); a .sql check is its own query".into()),
        );
    }
    if header.query.trim().is_empty() {
        ctx.diags.push(
            Diagnostic::at(
                path,
                header.query_line,
                1,
                "the check has no query after its header",
            )
            .hint("write the SELECT after the `--` header lines"),
        );
    }
    build(ctx, &header, id, raw, config, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fields::test_support::{config, show};
    use crate::checks::{Judge, OnNoData, Schedule};
    use crate::config::Lifecycle;
    use crate::model::{Category, Op, Severity};
    use indoc::indoc;
    use std::time::Duration;
    use test_case::test_case;

    fn parse_in(text: &str, connections: &[&str]) -> Result<Check, Vec<String>> {
        let config = config(connections);
        parse_check(
            CheckId("t".into()),
            Path::new("checks/t.sql"),
            text,
            &config,
        )
        .map_err(|ds| ds.iter().map(show).collect())
    }

    fn parse(text: &str) -> Result<Check, Vec<String>> {
        parse_in(text, &["warehouse"])
    }

    fn ok(text: &str) -> Check {
        parse(text).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text).unwrap_err()
    }

    /// A check whose header is `lines` (each written `-- key = value`), then `SELECT 1`.
    fn header(lines: &str) -> String {
        let lines: String = lines.lines().map(|l| format!("-- {l}\n")).collect();
        format!("-- dqwatch\n{lines}SELECT 1\n")
    }

    const MISSING_MARKER: &str = "checks/t.sql:1:1: a check must start with the line `-- dqwatch` (hint: put `-- dqwatch` on the first line, then the header as `-- key = value` lines, then the query)";

    /// serde's list of the header's keys, in declaration order.
    const KEYS: &str = "`description`, `connection`, `schedule`, `category`, `owners`, `tags`, `impact`, `runbook`, `keys`, `metric`, `thresholds`, `severity`, `severity_column`, `severity_map`, `on_no_data`, `open_after`, `resolve_after`, `error_after`, `reopen_within`, `open_window`, `flap`, `due`, `group_keys`, `max_bytes_billed`, `rule`, `fuse`, `params`";

    #[test_case("-- dqwatch\nSELECT 1\n" ; "exactly")]
    #[test_case("-- dqwatch   \nSELECT 1\n" ; "trailing spaces")]
    #[test_case("-- dqwatch\t\nSELECT 1\n" ; "trailing tab")]
    #[test_case("\u{feff}-- dqwatch\nSELECT 1\n" ; "after a bom")]
    #[test_case("-- dqwatch\r\nSELECT 1\r\n" ; "crlf")]
    #[test_case("\u{feff}-- dqwatch\r\nSELECT 1" ; "bom crlf and no final newline")]
    fn the_marker_line_opens_a_check(text: &str) {
        assert_eq!(ok(text).sql.trim_end(), "SELECT 1");
    }

    #[test_case("" ; "empty file")]
    #[test_case("SELECT 1\n" ; "no header")]
    #[test_case("\n-- dqwatch\nSELECT 1\n" ; "not on the first line")]
    #[test_case("-- dqwatch check\nSELECT 1\n" ; "with more words")]
    #[test_case("--dqwatch\nSELECT 1\n" ; "without the space")]
    #[test_case("--\tdqwatch\nSELECT 1\n" ; "with a tab")]
    #[test_case("-- DQWATCH\nSELECT 1\n" ; "in capitals")]
    #[test_case("  -- dqwatch\nSELECT 1\n" ; "indented")]
    #[test_case("-- description = \"d\"\n-- dqwatch\nSELECT 1\n" ; "on the second line")]
    #[test_case("\u{feff}\u{feff}-- dqwatch\nSELECT 1\n" ; "after two boms")]
    fn a_file_without_the_marker_line_is_refused(text: &str) {
        assert_eq!(errors(text), [MISSING_MARKER]);
    }

    #[test_case("-- dqwatch\nSELECT 1\n", 2, "SELECT 1\n", Severity::P2 ; "marker only")]
    #[test_case("-- dqwatch\n-- severity = \"P1\"\nSELECT 1\n", 3, "SELECT 1\n", Severity::P1 ; "one key")]
    #[test_case("-- dqwatch\n--severity = \"P1\"\nSELECT 1\n", 3, "SELECT 1\n", Severity::P1 ; "no space after the dashes")]
    #[test_case("-- dqwatch\n--\tseverity = \"P1\"\nSELECT 1\n", 3, "SELECT 1\n", Severity::P1 ; "a tab after the dashes")]
    #[test_case("-- dqwatch\n--\n-- severity = \"P1\"\n--\nSELECT 1\n", 5, "SELECT 1\n", Severity::P1 ; "bare dashes stay in the header")]
    #[test_case("-- dqwatch\n-- severity = \"P1\"\n\n-- severity = \"P0\"\nSELECT 1\n", 3, "\n-- severity = \"P0\"\nSELECT 1\n", Severity::P1 ; "a blank line ends the header")]
    #[test_case("-- dqwatch\n  -- severity = \"P0\"\nSELECT 1\n", 2, "  -- severity = \"P0\"\nSELECT 1\n", Severity::P2 ; "an indented comment ends the header")]
    #[test_case("-- dqwatch\nSELECT 1 -- severity = \"P0\"\n-- severity = \"P0\"\n", 2, "SELECT 1 -- severity = \"P0\"\n-- severity = \"P0\"\n", Severity::P2 ; "comments after the query start are query")]
    #[test_case("\u{feff}-- dqwatch\r\n-- severity = \"P1\"\r\nSELECT 1\r\n", 3, "SELECT 1\r\n", Severity::P1 ; "bom and crlf")]
    #[test_case("-- dqwatch\n-- severity = \"P1\"\n  \tSELECT 1", 3, "  \tSELECT 1", Severity::P1 ; "query kept verbatim")]
    fn the_header_is_the_run_of_dashed_lines_after_the_marker(
        text: &str,
        sql_line: usize,
        sql: &str,
        severity: Severity,
    ) {
        let check = ok(text);
        assert_eq!(check.sql_line, sql_line);
        assert_eq!(check.sql, sql);
        assert_eq!(check.judge, Judge::RowsFail { severity });
    }

    #[test_case("-- dqwatch\n-- owner = \"a@b.co\"\nSELECT 1\n", 2, 4 ; "after a space")]
    #[test_case("-- dqwatch\n--owner = \"a@b.co\"\nSELECT 1\n", 2, 3 ; "without a space")]
    #[test_case("-- dqwatch\n--\towner = \"a@b.co\"\nSELECT 1\n", 2, 4 ; "after a tab")]
    #[test_case("-- dqwatch\n-- tags = [\"x\"]\n--   owner = \"a@b.co\"\nSELECT 1\n", 3, 6 ; "indented on the third line")]
    #[test_case("-- dqwatch\n--\n--\n-- owner = \"a@b.co\"\nSELECT 1\n", 4, 4 ; "after bare dashes")]
    #[test_case("\u{feff}-- dqwatch\r\n-- tags = [\"x\"]\r\n-- owner = \"a@b.co\"\r\nSELECT 1\r\n", 3, 4 ; "bom and crlf")]
    fn an_unknown_key_is_reported_at_its_sql_line_and_column(
        text: &str,
        line: usize,
        column: usize,
    ) {
        assert_eq!(
            errors(text),
            [format!(
                "checks/t.sql:{line}:{column}: unknown field `owner`, expected one of {KEYS} (hint: remove the key or fix its spelling)"
            )]
        );
    }

    #[test]
    fn an_unknown_table_is_reported_at_its_sql_line() {
        let text = header("metric = \"m\"\n[thresholds]\nP1 = \"> 1\"\n[treshold]\nP2 = \"> 0\"");
        assert_eq!(
            errors(&text),
            [format!(
                "checks/t.sql:5:5: unknown field `treshold`, expected one of {KEYS} (hint: remove the key or fix its spelling)"
            )]
        );
    }

    #[test_case("-- dqwatch\n-- tags = [\"x\"]\n-- severity = P1\nSELECT 1\n", "checks/t.sql:3:15: string values must be quoted, expected literal string" ; "unquoted string")]
    #[test_case("-- dqwatch\n--tags = [\"x\"]\n--severity = P1\nSELECT 1\n", "checks/t.sql:3:14: string values must be quoted, expected literal string" ; "unquoted string without a space")]
    #[test_case("-- dqwatch\n-- tags = [\"x\"\nSELECT 1\n", "checks/t.sql:2:15: unclosed array, expected `]`" ; "unclosed array")]
    #[test_case("-- dqwatch\n-- severity = \"P1\"\n-- severity = \"P2\"\nSELECT 1\n", "checks/t.sql:3:4: duplicate key" ; "a key given twice")]
    #[test_case("\u{feff}-- dqwatch\r\n-- tags = [\"x\"]\r\n-- severity = P1\r\nSELECT 1\r\n", "checks/t.sql:3:15: string values must be quoted, expected literal string" ; "bom and crlf")]
    #[test_case("-- dqwatch\n-- severity = \"P1\n", "checks/t.sql:2:18: invalid basic string, expected `\"`" ; "unclosed string and no query")]
    fn a_toml_error_is_reported_at_its_sql_line_and_column(text: &str, want: &str) {
        assert_eq!(errors(text), [want]);
    }

    #[test_case("description = 1", 18, "integer `1`, expected a string" ; "description")]
    #[test_case("connection = 1", 17, "integer `1`, expected a string" ; "connection")]
    #[test_case("schedule = 1", 15, "integer `1`, expected a string" ; "schedule")]
    #[test_case("category = 1", 15, "integer `1`, expected a string" ; "category")]
    #[test_case("owners = \"a@b.co\"", 13, "string \"a@b.co\", expected a sequence" ; "owners")]
    #[test_case("owners = [1]", 14, "integer `1`, expected a string" ; "owners item")]
    #[test_case("tags = \"x\"", 11, "string \"x\", expected a sequence" ; "tags")]
    #[test_case("impact = 1", 13, "integer `1`, expected a sequence" ; "impact")]
    #[test_case("runbook = true", 14, "boolean `true`, expected a string" ; "runbook")]
    #[test_case("keys = \"id\"", 11, "string \"id\", expected a sequence" ; "keys")]
    #[test_case("metric = 1", 13, "integer `1`, expected a string" ; "metric")]
    #[test_case("thresholds = \"> 1\"", 17, "string \"> 1\", expected a map" ; "thresholds")]
    #[test_case("severity = 1", 15, "integer `1`, expected a string" ; "severity")]
    #[test_case("severity_column = 1", 22, "integer `1`, expected a string" ; "severity_column")]
    #[test_case("severity_map = \"P1\"", 19, "string \"P1\", expected a map" ; "severity_map")]
    #[test_case("on_no_data = false", 17, "boolean `false`, expected a string" ; "on_no_data")]
    #[test_case("open_after = \"2\"", 17, "string \"2\", expected i64" ; "open_after")]
    #[test_case("resolve_after = 1.5", 20, "floating point `1.5`, expected i64" ; "resolve_after")]
    #[test_case("error_after = \"x\"", 18, "string \"x\", expected i64" ; "error_after")]
    #[test_case("reopen_within = 60", 20, "integer `60`, expected a string" ; "reopen_within")]
    #[test_case("rule = 1", 11, "integer `1`, expected a string" ; "rule")]
    #[test_case("params = 1", 13, "integer `1`, expected a map" ; "params")]
    fn an_ill_typed_key_is_reported_at_its_value(line: &str, column: usize, message: &str) {
        assert_eq!(
            errors(&header(line)),
            [format!("checks/t.sql:2:{column}: invalid type: {message}")]
        );
    }

    #[test]
    fn an_ill_typed_threshold_is_reported_at_its_value() {
        let text = header("metric = \"m\"\n[thresholds]\nP1 = 100");
        assert_eq!(
            errors(&text),
            ["checks/t.sql:4:9: invalid type: integer `100`, expected a string"]
        );
    }

    const CRON_HINT: &str = "(hint: 5 fields: minute hour day-of-month month day-of-week, e.g. \"*/15 * * * *\" runs every 15 minutes)";

    #[test_case("category = \"oops\"", "checks/t.sql:2:15: unknown category \"oops\" (expected one of: missing_data, data_loss, stale_data, reconciliation, duplicate_load, schema_break, quality_degradation, pipeline_failure, check_failure)" ; "category")]
    #[test_case("severity = \"P7\"", "checks/t.sql:2:15: unknown severity \"P7\" (expected P0, P1, P2 or P3)" ; "severity")]
    #[test_case("owners = [\"a@b.co\", \"nobody\"]", "checks/t.sql:2:24: owner \"nobody\" is not an email address" ; "owner")]
    #[test_case("runbook = \"wiki/page\"", "checks/t.sql:2:14: runbook \"wiki/page\" is not an http(s) link (hint: e.g. \"https://wiki.example.com/runbooks/x\")" ; "runbook")]
    #[test_case("on_no_data = \"ignore\"", "checks/t.sql:2:17: invalid on_no_data \"ignore\" (hint: use \"error\" (default), \"pass\", or a severity such as \"P2\")" ; "on_no_data")]
    #[test_case("open_after = 0", "checks/t.sql:2:17: open_after must be between 1 and 1000, found 0" ; "open_after zero")]
    #[test_case("resolve_after = 1001", "checks/t.sql:2:20: resolve_after must be between 1 and 1000, found 1001" ; "resolve_after too many")]
    #[test_case("error_after = -1", "checks/t.sql:2:18: error_after must be between 1 and 1000, found -1" ; "error_after negative")]
    #[test_case("reopen_within = \"soon\"", "checks/t.sql:2:20: invalid duration \"soon\": expected a number and a unit, e.g. \"90s\", \"15m\", \"2h\", \"1d\"" ; "reopen_within")]
    #[test_case("reopen_within = \"36501d\"", "checks/t.sql:2:20: duration \"36501d\" is too long: at most 100 years (\"36500d\")" ; "reopen_within too long")]
    #[test_case("open_window = \"3 of 2\"", "checks/t.sql:2:18: invalid window \"3 of 2\": expected \"N of M\" (N of the last M runs, 1 <= N <= M <= 64), e.g. \"4 of 10\"" ; "open_window")]
    #[test_case("flap = \"1 of 10\"", "checks/t.sql:2:11: flap needs at least 2 state changes (hint: e.g. flap = \"4 of 10\", or \"off\")" ; "flap one change")]
    #[test_case("due = \"25:00\"", "checks/t.sql:2:10: invalid due time \"25:00\": expected a time of day \"HH:MM\" (e.g. \"03:00\") or a grace after the partition's day ends (e.g. \"27h\")" ; "due")]
    #[test_case("group_keys = -1", "checks/t.sql:2:17: group_keys must be between 0 (never group) and 100000, found -1" ; "group_keys")]
    #[test_case("connection = \"warehose\"", "checks/t.sql:2:17: unknown connection \"warehose\" (hint: defined connections: warehouse)" ; "connection")]
    #[test_case("rule = \"freshness_lag\"", "checks/t.sql:2:11: `rule` belongs in a .toml check (hint: move the rule check to a .toml file (rule = \"…\", [params]); a .sql check is its own query)" ; "rule")]
    #[test_case("metric = \"lag\"", "checks/t.sql:2:13: metric \"lag\" has no [thresholds] (hint: add a [thresholds] table, e.g. `-- [thresholds]` then `-- P2 = \"> 100\"`; or drop metric so that every returned row is a failure)" ; "metric without thresholds")]
    #[test_case("schedule = \"*/15 * * *\"", &format!("checks/t.sql:2:15: invalid cron \"*/15 * * *\": expected 5 or 6 fields, found 4 {CRON_HINT}") ; "schedule with four fields")]
    #[test_case("schedule = \"0 0 * * 8\"", &format!("checks/t.sql:2:15: invalid cron \"0 0 * * 8\": day-of-week field \"8\": 8 is not a weekday (0-7, 0 and 7 = Sunday) {CRON_HINT}") ; "schedule weekday 8")]
    #[test_case("schedule = \"61 * * * *\"", &format!("checks/t.sql:2:15: invalid cron \"61 * * * *\": minute field \"61\" is not valid {CRON_HINT}") ; "schedule minute 61")]
    #[test_case("schedule = \"@often\"", &format!("checks/t.sql:2:15: invalid cron \"@often\": unknown shorthand @often {CRON_HINT}") ; "schedule shorthand")]
    #[test_case("schedule = \"\"", &format!("checks/t.sql:2:15: invalid cron \"\": expected 5 or 6 fields, found 0 {CRON_HINT}") ; "schedule empty")]
    fn a_bad_value_is_reported_at_its_value_with_a_hint(line: &str, want: &str) {
        assert_eq!(errors(&header(line)), [want]);
    }

    #[test_case("metric = \"m\"\n[thresholds]\nP7 = \"> 1\"", &["checks/t.sql:4:9: unknown severity P7 in [thresholds] (hint: levels are P0, P1, P2 and P3)"] ; "unknown level")]
    #[test_case("metric = \"m\"\n[thresholds]\nP1 = \"> soon\"", &["checks/t.sql:4:9: invalid threshold \"> soon\": expected an operator (>, >=, <, <=, ==, !=) and a number, e.g. \"> 100\" or \"> 2h\""] ; "bad limit")]
    #[test_case("metric = \"m\"\n[thresholds]\nP1 = \"100\"", &["checks/t.sql:4:9: invalid threshold \"100\": expected an operator (>, >=, <, <=, ==, !=) and a number, e.g. \"> 100\" or \"> 2h\""] ; "no operator")]
    #[test_case("metric = \"m\"\n[thresholds]\nP1 = \"> 36501d\"", &["checks/t.sql:4:9: invalid threshold \"> 36501d\": the duration is too long (at most 100 years, \"36500d\")"] ; "too long")]
    #[test_case("metric = \"m\"\n[thresholds]", &["checks/t.sql:3:4: [thresholds] is empty (hint: add a level such as P2 = \"> 100\")"] ; "empty")]
    #[test_case("[thresholds]\nP1 = \"> 1\"", &["checks/t.sql:2:4: [thresholds] needs a metric column (hint: add `-- metric = \"COLUMN\"` naming the numeric column to compare)"] ; "no metric")]
    #[test_case("metric = \"m\"\nseverity_column = \"c\"\n[thresholds]\nP1 = \"> 1\"", &["checks/t.sql:4:4: use either [thresholds] or severity_column with [severity_map], not both"] ; "with a severity column")]
    #[test_case("[thresholds]\nP7 = \"> 1\"\nP8 = \"~ 2\"", &["checks/t.sql:3:9: unknown severity P7 in [thresholds] (hint: levels are P0, P1, P2 and P3)", "checks/t.sql:4:9: unknown severity P8 in [thresholds] (hint: levels are P0, P1, P2 and P3)", "checks/t.sql:2:4: [thresholds] needs a metric column (hint: add `-- metric = \"COLUMN\"` naming the numeric column to compare)"] ; "every problem")]
    fn bad_thresholds(lines: &str, want: &[&str]) {
        assert_eq!(errors(&header(lines)), want);
    }

    #[test_case("> 100", Op::Gt, 100.0 ; "greater")]
    #[test_case(">= 100", Op::Ge, 100.0 ; "greater or equal")]
    #[test_case("< 0.5", Op::Lt, 0.5 ; "less")]
    #[test_case("<= 0", Op::Le, 0.0 ; "less or equal")]
    #[test_case("== 1", Op::Eq, 1.0 ; "equal")]
    #[test_case("!= 1", Op::Ne, 1.0 ; "not equal")]
    #[test_case("> 24h", Op::Gt, 86_400.0 ; "duration")]
    #[test_case("> 1d 2h", Op::Gt, 93_600.0 ; "duration sequence")]
    #[test_case("> 5%", Op::Gt, 5.0 ; "percent")]
    fn a_threshold_in_a_header(text: &str, op: Op, limit: f64) {
        let check = ok(&header(&format!(
            "metric = \"m\"\n[thresholds]\nP1 = \"{text}\""
        )));
        let Judge::Thresholds { metric, levels } = check.judge else {
            panic!("{:?}", check.judge)
        };
        assert_eq!(metric, "m");
        assert_eq!(levels.len(), 1);
        assert_eq!(
            (
                levels[0].severity,
                levels[0].op,
                levels[0].limit,
                &*levels[0].text
            ),
            (Severity::P1, op, limit, text)
        );
    }

    #[test]
    fn threshold_levels_are_sorted_worst_first() {
        let check = ok(&header(indoc! {r#"
            metric = "m"
            [thresholds]
            P3 = "> 1"
            P0 = "> 100"
            P2 = "> 10"
        "#}));
        let Judge::Thresholds { levels, .. } = check.judge else {
            panic!("{:?}", check.judge)
        };
        let order: Vec<_> = levels.iter().map(|l| (l.severity, l.limit)).collect();
        assert_eq!(
            order,
            [
                (Severity::P0, 100.0),
                (Severity::P2, 10.0),
                (Severity::P3, 1.0)
            ]
        );
    }

    #[test]
    fn a_severity_map() {
        let check = ok(&header(indoc! {r#"
            severity_column = "risk"
            metric = "score"
            [severity_map]
            HIGH = "P1"
            LOW = "pass"
            MEDIUM = "p2"
        "#}));
        assert_eq!(
            check.judge,
            Judge::SeverityMap {
                column: "risk".into(),
                metric: Some("score".into()),
                map: vec![
                    ("HIGH".into(), Some(Severity::P1)),
                    ("LOW".into(), None),
                    ("MEDIUM".into(), Some(Severity::P2)),
                ],
            }
        );
        assert_eq!(check.metric(), Some("score"));
    }

    #[test_case("severity_column = \"risk\"\n[severity_map]\nHIGH = \"P9\"\nLOW = \"none\"", &["checks/t.sql:4:11: invalid severity \"P9\" for label HIGH (hint: map each label to P0, P1, P2, P3 or \"pass\")", "checks/t.sql:5:10: invalid severity \"none\" for label LOW (hint: map each label to P0, P1, P2, P3 or \"pass\")"] ; "bad severities")]
    #[test_case("severity_column = \"risk\"", &["checks/t.sql:2:22: severity_column needs a [severity_map] (hint: e.g. `-- [severity_map]` then `-- HIGH = \"P1\"` and `-- LOW = \"pass\"`)"] ; "no map")]
    #[test_case("[severity_map]\nHIGH = \"P1\"", &["checks/t.sql:2:4: [severity_map] needs a severity_column (hint: add `-- severity_column = \"COLUMN\"`)"] ; "no column")]
    fn bad_severity_maps(lines: &str, want: &[&str]) {
        assert_eq!(errors(&header(lines)), want);
    }

    #[test_case("", OnNoData::Error ; "absent")]
    #[test_case("on_no_data = \"error\"", OnNoData::Error ; "error")]
    #[test_case("on_no_data = \"pass\"", OnNoData::Pass ; "pass")]
    #[test_case("on_no_data = \"P1\"", OnNoData::Breach(Severity::P1) ; "a severity")]
    #[test_case("on_no_data = \"p3\"", OnNoData::Breach(Severity::P3) ; "a lowercase severity")]
    fn on_no_data(line: &str, want: OnNoData) {
        assert_eq!(ok(&header(line)).on_no_data, want);
    }

    #[test]
    fn lifecycle_counts_default_to_the_config() {
        assert_eq!(ok(&header("")).lifecycle, Lifecycle::default());
    }

    #[test]
    fn lifecycle_counts_are_overridden_by_the_header() {
        let check = ok(&header(indoc! {r#"
            open_after = 3
            resolve_after = 1000
            error_after = 1
            reopen_within = "2h"
            open_window = "3 of 5"
            flap = "off"
            due = "03:30"
            group_keys = 0
        "#}));
        assert_eq!(
            check.lifecycle,
            Lifecycle {
                open_after: 3,
                resolve_after: 1000,
                error_after: 1,
                reopen_within: Duration::from_secs(7200),
                open_window: Some(crate::config::Window { n: 3, m: 5 }),
                flap: None,
                due: Some(Duration::from_secs(3 * 3600 + 1800)),
                group_keys: 0,
            }
        );
    }

    #[test]
    fn every_key_is_read() {
        let check = ok(&header(indoc! {r#"
            description = "Orders arrive"
            connection = "warehouse"
            schedule = "*/15 * * * *"
            category = "stale_data"
            owners = ["a@example.com"]
            tags = ["finance", "daily"]
            impact = ["revenue"]
            runbook = "https://wiki.example.com/x"
            keys = ["region"]
            severity = "P1"
        "#}));
        assert_eq!(check.id.0, "t");
        assert_eq!(check.path, Path::new("checks/t.sql"));
        assert_eq!(check.description.as_deref(), Some("Orders arrive"));
        assert_eq!(check.connection, "warehouse");
        assert_eq!(
            check.schedule.as_ref().map(Schedule::as_str),
            Some("*/15 * * * *")
        );
        assert_eq!(check.category, Category::StaleData);
        assert_eq!(check.owners, ["a@example.com"]);
        assert_eq!(check.tags, ["finance", "daily"]);
        assert_eq!(check.impact, ["revenue"]);
        assert_eq!(check.runbook.as_deref(), Some("https://wiki.example.com/x"));
        assert_eq!(check.keys, ["region"]);
        assert_eq!(
            check.judge,
            Judge::RowsFail {
                severity: Severity::P1
            }
        );
        assert_eq!(check.sql_line, 12);
        assert_eq!(
            (check.rule, check.reconcile, check.history),
            (None, None, None)
        );
    }

    #[test]
    fn the_only_connection_is_the_default() {
        assert_eq!(ok(&header("")).connection, "warehouse");
    }

    #[test_case(&["warehouse", "finance"], "checks/t.sql:1:1: the header names no connection (hint: add `-- connection = \"NAME\"`; defined connections: finance, warehouse)" ; "several")]
    #[test_case(&[], "checks/t.sql:1:1: the header names no connection (hint: add `-- connection = \"NAME\"`; the config defines no connections: add a [connections.NAME] table)" ; "none")]
    fn a_missing_connection_names_the_choices(connections: &[&str], want: &str) {
        assert_eq!(parse_in(&header(""), connections).unwrap_err(), [want]);
    }

    #[test]
    fn an_unknown_connection_without_any_defined() {
        assert_eq!(
            parse_in(&header("connection = \"wh\""), &[]).unwrap_err(),
            [
                "checks/t.sql:2:17: unknown connection \"wh\" (hint: the config defines no connections: add a [connections.NAME] table)"
            ]
        );
    }

    #[test_case("-- dqwatch\n-- severity = \"P1\"\n", 3 ; "nothing after the header")]
    #[test_case("-- dqwatch\n-- severity = \"P1\"", 3 ; "no final newline")]
    #[test_case("-- dqwatch\n-- severity = \"P1\"\n\n  \t\n", 3 ; "blank lines")]
    #[test_case("-- dqwatch\n", 2 ; "marker only")]
    #[test_case("-- dqwatch\r\n-- severity = \"P1\"\r\n\r\n", 3 ; "crlf")]
    fn a_header_without_a_query_is_refused(text: &str, line: usize) {
        assert_eq!(
            errors(text),
            [format!(
                "checks/t.sql:{line}:1: the check has no query after its header (hint: write the SELECT after the `--` header lines)"
            )]
        );
    }

    #[test]
    fn every_problem_is_reported_in_one_pass() {
        let text = indoc! {r#"
            -- dqwatch
            -- connection = "nope"
            -- schedule = "@often"
            -- severity = "P9"
            -- owners = ["x"]
            -- open_after = 0
            -- on_no_data = "maybe"
        "#};
        let errs = errors(text);
        let at: Vec<&str> = errs
            .iter()
            .map(|e| e.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            at,
            [
                "checks/t.sql:8:1",
                "checks/t.sql:2:17",
                "checks/t.sql:3:15",
                "checks/t.sql:4:15",
                "checks/t.sql:5:14",
                "checks/t.sql:7:17",
                "checks/t.sql:6:17",
            ],
            "{errs:#?}"
        );
    }

    #[test]
    fn a_toml_error_stops_before_other_checks() {
        assert_eq!(errors("-- dqwatch\n-- severity = P1\n").len(), 1);
    }
}
