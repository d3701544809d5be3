//! Screening a check's SQL before it reaches a warehouse: a check is one query, so its first
//! word (after comments) must start one. This refuses, unrun, what a read-only transaction
//! does not contain: statements that change the session (`SET`, MariaDB `SET STATEMENT …
//! FOR`, SQLite `PRAGMA`, `ATTACH`) or reach outside the database (PostgreSQL `COPY … TO
//! PROGRAM`), and on SQLite a second statement (sqlx runs every statement of a SQLite
//! string; MariaDB and PostgreSQL refuse a second one when preparing). The database judges
//! everything else.

use crate::config::Dialect;

/// The words a check may start with (or a parenthesis, on PostgreSQL and MariaDB).
const QUERY_KEYWORDS: [&str; 4] = ["SELECT", "WITH", "VALUES", "TABLE"];

/// `Err` with the reason when `sql` may not run as a check on `dialect`.
pub(super) fn screen(sql: &str, dialect: Dialect) -> Result<(), String> {
    if sql.contains('\0') {
        return Err("refused: the query contains a NUL byte".into());
    }
    match dialect {
        // Snowflake comments are `--`, `//` and `/* */`; BigQuery's `--`, `#` and `/* */`.
        // Both refuse a second statement themselves, and the statement type is checked by
        // the warehouse (describe-only request, dry run) before anything runs.
        Dialect::Postgres | Dialect::Snowflake => {
            let start = pg_skip_comments(sql.as_bytes())?;
            query_start(&sql[start..])
        }
        Dialect::Mysql | Dialect::Bigquery => {
            let start = mysql_skip_comments(sql.as_bytes())?;
            query_start(&sql[start..])
        }
        Dialect::Sqlite => sqlite_one_statement(sql),
    }
}

/// Why a check that prepared fine is still refused: it returns no rows to judge.
pub(super) const NOT_A_QUERY: &str = "refused: the statement returns no rows to check; a check is \
     one query (SELECT, WITH, VALUES or TABLE), not SET, DDL, DML, CALL or SELECT … INTO";

/// The text of a screened check that is one statement whatever the server's lexer makes of
/// it, so that it may be sent in one message between fixed statements of ours: a statement
/// ends only at a `;`, so a text with none (one trailing `;` is dropped) cannot hold a
/// second one. `None` for anything else (a `;` in a string or a comment included): such a
/// check takes the path where the server itself refuses a second statement (a prepared
/// statement). On MariaDB/MySQL, a text containing `into` in any case is `None` too, so that
/// `SELECT … INTO OUTFILE` / `INTO @v` is still prepared, and refused, before it could run.
pub(super) fn batchable(sql: &str, dialect: Dialect) -> Option<&str> {
    let body = sql.trim_end();
    let body = body.strip_suffix(';').unwrap_or(body);
    if body.contains(';') || body.contains('\0') {
        return None;
    }
    match dialect {
        Dialect::Postgres => Some(body),
        Dialect::Mysql if !body.to_ascii_lowercase().contains("into") => Some(body),
        Dialect::Mysql | Dialect::Sqlite | Dialect::Snowflake | Dialect::Bigquery => None,
    }
}

fn query_start(rest: &str) -> Result<(), String> {
    if rest.starts_with('(') {
        return Ok(());
    }
    first_keyword(rest)
}

fn first_keyword(rest: &str) -> Result<(), String> {
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(20)
        .collect::<String>()
        .to_ascii_uppercase();
    if QUERY_KEYWORDS.contains(&word.as_str()) {
        return Ok(());
    }
    let found = if word.is_empty() {
        rest.chars()
            .next()
            .map_or("nothing".to_string(), |c| format!("\"{c}\""))
    } else {
        word
    };
    Err(format!(
        "refused: a check is one read-only query (SELECT, WITH, VALUES or TABLE); this one starts with {found}"
    ))
}

/// The offset of the first byte after MariaDB/MySQL whitespace and comments. An executable
/// comment (`/*! … */`, `/*M! … */`) is code to the server, so it is refused rather than
/// skipped.
fn mysql_skip_comments(s: &[u8]) -> Result<usize, String> {
    let mut i = 0;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        let rest = &s[i..];
        if rest.starts_with(b"#")
            || (rest.starts_with(b"--") && rest.get(2).is_none_or(|c| *c <= b' '))
        {
            i += rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
        } else if rest.starts_with(b"/*!") || rest.starts_with(b"/*M!") {
            return Err(
                "refused: a check may not start with an executable comment (/*! … */)".into(),
            );
        } else if rest.starts_with(b"/*") {
            match find(&rest[2..], b"*/") {
                Some(end) => i += 2 + end + 2,
                None => return Err("refused: unterminated comment".into()),
            }
        } else {
            return Ok(i);
        }
    }
}

/// The offset of the first byte after PostgreSQL whitespace and comments (`/* */` nests).
fn pg_skip_comments(s: &[u8]) -> Result<usize, String> {
    let mut i = 0;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        let rest = &s[i..];
        if rest.starts_with(b"--") {
            i += rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
        } else if rest.starts_with(b"/*") {
            let mut depth = 0usize;
            let mut j = 0;
            loop {
                if j + 1 >= rest.len() {
                    return Err("refused: unterminated comment".into());
                }
                match &rest[j..j + 2] {
                    b"/*" => {
                        depth += 1;
                        j += 2;
                    }
                    b"*/" => {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => j += 1,
                }
            }
            i += j;
        } else {
            return Ok(i);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A token of SQLite's tokenizer, as far as statements go.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// Whitespace or a comment.
    Space,
    /// `;`, the end of a statement.
    Semi,
    /// Anything else.
    Other,
}

/// One statement, starting with a query keyword, as SQLite splits `sql`. The tokenizer
/// follows SQLite's `sqlite3GetToken` wherever a token can hold a `;` (strings, quoted
/// identifiers, comments, `[…]` and TCL-style `$var(…)` parameters), so a `;` SQLite ends a
/// statement at is never hidden from it.
fn sqlite_one_statement(sql: &str) -> Result<(), String> {
    let s = sql.as_bytes();
    let mut i = 0;
    let mut first: Option<usize> = None;
    let mut ended_at: Option<usize> = None;
    while i < s.len() {
        let (len, token) = sqlite_token(&s[i..]);
        match token {
            Token::Space => {}
            Token::Semi => {
                if first.is_some() && ended_at.is_none() {
                    ended_at = Some(i);
                }
            }
            Token::Other => match (first, ended_at) {
                (None, _) => first = Some(i),
                (Some(_), Some(at)) => {
                    let line = 1 + s[..at].iter().filter(|c| **c == b'\n').count();
                    return Err(format!(
                        "refused: a check is one statement, and more follows the \";\" on line {line}"
                    ));
                }
                (Some(_), None) => {}
            },
        }
        i += len.max(1);
    }
    match first {
        Some(start) => first_keyword(&sql[start..]),
        None => Err("refused: the query is empty".into()),
    }
}

/// SQLite's `IdChar`: letters, digits, `_`, `$` and every byte of a multi-byte character.
fn id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The length and kind of the SQLite token at the start of `s` (not empty).
fn sqlite_token(s: &[u8]) -> (usize, Token) {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    match s[0] {
        b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' => (1, Token::Space),
        b'-' if at(1) == b'-' => (
            s.iter().position(|c| *c == b'\n').unwrap_or(s.len()),
            Token::Space,
        ),
        b'/' if at(1) == b'*' && s.len() > 2 => (
            find(&s[2..], b"*/").map_or(s.len(), |e| 2 + e + 2),
            Token::Space,
        ),
        b';' => (1, Token::Semi),
        q @ (b'\'' | b'"' | b'`') => {
            let mut i = 1;
            while i < s.len() {
                if s[i] == q {
                    if at(i + 1) == q {
                        i += 2;
                        continue;
                    }
                    return (i + 1, Token::Other);
                }
                i += 1;
            }
            (s.len(), Token::Other)
        }
        b'[' => (
            s.iter().position(|c| *c == b']').map_or(s.len(), |e| e + 1),
            Token::Other,
        ),
        // A blob literal ends at the next quote, with no doubling.
        b'x' | b'X' if at(1) == b'\'' => (
            s[2..]
                .iter()
                .position(|c| *c == b'\'')
                .map_or(s.len(), |e| 2 + e + 1),
            Token::Other,
        ),
        b'$' | b'@' | b':' | b'#' => {
            let mut n = 0;
            let mut i = 1;
            while i < s.len() {
                let c = s[i];
                if id_char(c) {
                    n += 1;
                } else if c == b'(' && n > 0 {
                    i += 1;
                    while i < s.len()
                        && !matches!(s[i], b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' | b')')
                    {
                        i += 1;
                    }
                    if at(i) == b')' {
                        i += 1;
                    }
                    return (i, Token::Other);
                } else if c == b':' && at(i + 1) == b':' {
                    i += 1;
                } else {
                    break;
                }
                i += 1;
            }
            (i, Token::Other)
        }
        c if id_char(c) || c == b'.' => {
            let len = s
                .iter()
                .position(|c| !(id_char(*c) || *c == b'.'))
                .unwrap_or(s.len());
            (len.max(1), Token::Other)
        }
        _ => (1, Token::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("SELECT 1" ; "plain")]
    #[test_case("select 1;" ; "trailing semicolon")]
    #[test_case("SELECT 1;\n-- end" ; "trailing comment")]
    #[test_case("-- lead\n/* c */ WITH a AS (SELECT 1) SELECT * FROM a ;; " ; "comments and empty statements")]
    #[test_case("VALUES (1)" ; "values")]
    #[test_case("SELECT 'a;b', \"c;d\", `e;f`, [g;h] FROM t" ; "quoted semicolons")]
    #[test_case("SELECT 'it''s; fine'" ; "doubled quote")]
    #[test_case("SELECT x'00' /* ; */ -- ;" ; "blob and comments")]
    #[test_case("SELECT 1 /* unterminated ; VACUUM" ; "an unterminated comment runs to the end")]
    // SQLite's own splits: a TCL-style parameter runs to whitespace or ")", and a blob
    // literal ends at its second quote, so neither holds a statement end.
    #[test_case("SELECT @a(x;y) FROM t" ; "tcl variable holding a semicolon")]
    #[test_case("SELECT x'ab''; VACUUM INTO 'z'" ; "blob then a string")]
    fn sqlite_accepts(sql: &str) {
        assert_eq!(screen(sql, Dialect::Sqlite), Ok(()));
    }

    #[test_case("PRAGMA query_only=0; VACUUM INTO '/tmp/x'" ; "pragma then vacuum")]
    #[test_case("SELECT 1; DELETE FROM t" ; "select then delete")]
    #[test_case("SELECT $a('x); VACUUM INTO 'y'; --')" ; "tcl variable hides a quote")]
    #[test_case("SELECT x'ab'; VACUUM INTO 'z'" ; "blob then vacuum")]
    #[test_case("PRAGMA query_only = 0" ; "pragma")]
    #[test_case("ATTACH DATABASE 'x.db' AS x" ; "attach")]
    #[test_case("BEGIN" ; "begin")]
    #[test_case("  " ; "empty")]
    #[test_case("SELECT 1\0; DROP TABLE t" ; "nul byte")]
    fn sqlite_refuses(sql: &str) {
        assert!(screen(sql, Dialect::Sqlite).is_err(), "{sql}");
    }

    #[test_case("SELECT 1" ; "plain")]
    #[test_case("-- c\n# d\n/* e */ (SELECT 1) UNION (SELECT 2)" ; "comments and parenthesis")]
    #[test_case("with a as (select 1) select * from a" ; "lower case with")]
    fn mysql_accepts(sql: &str) {
        assert_eq!(screen(sql, Dialect::Mysql), Ok(()));
    }

    #[test_case("SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(100)" ; "set statement")]
    #[test_case("/*!SET STATEMENT tx_read_only=0 FOR*/ DELETE FROM t RETURNING n" ; "executable comment")]
    #[test_case("/*M!100000 SET STATEMENT a=1 FOR */ SELECT 1" ; "mariadb executable comment")]
    #[test_case("--x\nSELECT 1" ; "double dash without space is no comment")]
    #[test_case("SET SESSION TRANSACTION READ WRITE" ; "set session")]
    #[test_case("TRUNCATE TABLE t" ; "truncate")]
    #[test_case("CALL p()" ; "call")]
    #[test_case("/* open" ; "unterminated")]
    fn mysql_refuses(sql: &str) {
        assert!(screen(sql, Dialect::Mysql).is_err(), "{sql}");
    }

    #[test_case("SELECT 1" ; "plain")]
    #[test_case("/* a /* nested */ comment */ -- x\n(SELECT 1)" ; "nested comment")]
    #[test_case("TABLE t" ; "table")]
    fn postgres_accepts(sql: &str) {
        assert_eq!(screen(sql, Dialect::Postgres), Ok(()));
    }

    #[test_case("COPY (SELECT 1) TO PROGRAM 'true'" ; "copy to program")]
    #[test_case("/* a /* nested */ SELECT */ SET statement_timeout = 0" ; "nested comment hides select")]
    #[test_case("SET statement_timeout = 0" ; "set")]
    #[test_case("/* open /* */" ; "unterminated nested")]
    fn postgres_refuses(sql: &str) {
        assert!(screen(sql, Dialect::Postgres).is_err(), "{sql}");
    }

    #[test]
    fn the_reason_names_the_first_word() {
        assert_eq!(
            screen("  set session max_statement_time = 0", Dialect::Mysql),
            Err("refused: a check is one read-only query (SELECT, WITH, VALUES or TABLE); this one starts with SET".into())
        );
        assert_eq!(
            screen("SELECT 1;\nSELECT 2", Dialect::Sqlite),
            Err("refused: a check is one statement, and more follows the \";\" on line 1".into())
        );
    }

    #[test]
    fn batchable_is_only_what_cannot_hold_a_second_statement() {
        use Dialect::{Mysql, Postgres, Sqlite};
        assert_eq!(batchable("SELECT 1", Postgres), Some("SELECT 1"));
        assert_eq!(batchable("SELECT 1 ;\n  ", Postgres), Some("SELECT 1 "));
        assert_eq!(
            batchable("-- x\nSELECT 1 -- y\n", Mysql),
            Some("-- x\nSELECT 1 -- y")
        );
        // A `;` anywhere but at the end: in a string, a comment or between statements.
        for sql in [
            "SELECT 1; SELECT 2",
            "SELECT 1;;",
            "SELECT ';'",
            "SELECT 1 -- ;\nFROM t",
            "SELECT $$;$$",
            "SELECT 1; COMMIT; SET default_transaction_read_only = off",
        ] {
            assert_eq!(batchable(sql, Postgres), None, "{sql}");
            assert_eq!(batchable(sql, Mysql), None, "{sql}");
        }
        // INTO in any case, even where it is harmless, is prepared first on MariaDB/MySQL.
        for sql in [
            "SELECT 1 INTO OUTFILE '/tmp/x'",
            "SELECT 1 into @v",
            "SELECT 1 AS points_into",
        ] {
            assert_eq!(batchable(sql, Mysql), None, "{sql}");
            assert!(batchable(sql, Postgres).is_some(), "{sql}");
        }
        assert_eq!(batchable("SELECT 1", Sqlite), None);
    }
}
