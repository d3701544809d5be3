//! Small value syntaxes shared by the config and check headers: durations (`"15m"`),
//! `${VAR}` interpolation and secrets that never print.

use std::time::Duration;

/// The longest duration accepted anywhere: 100 years. Longer ones overflow the clocks and
/// databases they are handed to (and `Duration` itself past about 5.8e11 years).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Why a duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not a number and a unit.
    Syntax,
    /// Longer than [`MAX_DURATION`].
    TooLong,
}

/// Parses `"500ms"`, `"60s"`, `"15m"`, `"2h"`, `"1d"`, `"1w"` or a sequence (`"1h30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    try_parse_duration(text).map_err(|e| match e {
        DurationError::Syntax => format!(
            "invalid duration \"{text}\": expected a number and a unit, e.g. \"90s\", \"15m\", \"2h\", \"1d\""
        ),
        DurationError::TooLong => {
            format!("duration \"{text}\" is too long: at most 100 years (\"36500d\")")
        }
    })
}

/// Parses `"4 of 10"` (`n` of the last `m` runs, `1 <= n <= m <= 64`).
pub fn parse_window(text: &str) -> Result<super::Window, String> {
    let bad = || {
        format!(
            "invalid window \"{text}\": expected \"N of M\" (N of the last M runs, 1 <= N <= M <= 64), e.g. \"4 of 10\""
        )
    };
    let (n, m) = text.trim().split_once(" of ").ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let m: u32 = m.trim().parse().map_err(|_| bad())?;
    if n == 0 || n > m || m > 64 {
        return Err(bad());
    }
    Ok(super::Window { n, m })
}

/// Parses a due time: a time of day `"03:00"` (that long after the partition's day ends) or
/// a duration `"27h"`.
pub fn parse_due(text: &str) -> Result<Duration, String> {
    if let Some((h, m)) = text.trim().split_once(':') {
        return match (h.parse::<u64>(), m.parse::<u64>()) {
            (Ok(hours), Ok(mins)) if hours < 24 && mins < 60 && h.len() <= 2 && m.len() == 2 => {
                Ok(Duration::from_secs(hours * 3600 + mins * 60))
            }
            _ => Err(format!(
                "invalid due time \"{text}\": expected a time of day \"HH:MM\" (e.g. \"03:00\") or a grace after the partition's day ends (e.g. \"27h\")"
            )),
        };
    }
    parse_duration(text)
}

/// [`parse_duration`] with the reason as a value, for callers that word their own message.
pub fn try_parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Syntax);
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(DurationError::Syntax)?;
        let number: f64 = rest[..num_end].parse().map_err(|_| DurationError::Syntax)?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match rest[..unit_end].trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            _ => return Err(DurationError::Syntax),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    // See: issues/8 item 10 (`Duration::from_secs_f64` panics past its range; a 400-digit
    // number parses as infinity).
    if !total.is_finite() || total > MAX_DURATION.as_secs_f64() {
        return Err(DurationError::TooLong);
    }
    Duration::try_from_secs_f64(total).map_err(|_| DurationError::TooLong)
}

pub use crate::model::format_duration;

/// Replaces `${VAR}` and `${VAR:-default}` in `text` from `env`. `$$` is a literal `$`.
/// Returns the names of every variable that is unset and has no default.
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push_str(&rest[pos..]);
                rest = "";
                break;
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            match (
                env(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => missing.push(name.to_string()),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// A database URL cut where sqlx's URL parser (the WHATWG rules for a scheme that is not
/// `http`-like) cuts it: the authority ends at the first `/`, `?` or `#`, and its last `@`
/// ends the user info.
struct UrlParts<'a> {
    scheme: &'a str,
    /// The user name as written, if the URL has user info.
    user: Option<&'a str>,
    /// True when the user info has a `:` (a password, possibly empty).
    has_password: bool,
    /// Host and port.
    host: &'a str,
    /// Path, query and fragment.
    rest: &'a str,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, after) = url.split_once("://")?;
    let (authority, rest) = after.split_at(after.find(['/', '?', '#']).unwrap_or(after.len()));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, has_password) =
        match userinfo.map(|u| u.split_once(':').map_or((u, false), |(n, _)| (n, true))) {
            Some((n, p)) => (Some(n), p),
            None => (None, false),
        };
    Some(UrlParts {
        scheme,
        user,
        has_password,
        host,
        rest,
    })
}

fn scheme_of(url: &str) -> &str {
    url.split_once(':').map_or("", |(s, _)| s)
}

/// Why a database URL cannot be cut unambiguously into user, password and host, or `None`.
/// A raw `/`, `?` or `#` in a password ends the authority early, so sqlx would read part of
/// the password as host, port, database or query (and print it in its errors); such a URL is
/// refused, never guessed at. SQLite URLs hold a path and no password, and always pass.
///
/// See: issues/8 item 4.
pub fn url_problem(url: &str) -> Option<&'static str> {
    if scheme_of(url) == "sqlite" {
        return None;
    }
    let Some(parts) = split_url(url) else {
        return Some("it does not start with scheme://");
    };
    if parts.rest.contains('@') {
        Some("an `@` follows the host")
    } else if parts.rest.contains('#') {
        Some("it contains a `#`")
    } else {
        None
    }
}

/// The hint for a URL refused by [`url_problem`].
pub const PERCENT_ENCODE_HINT: &str = "percent-encode these characters in the password: / as %2F, ? as %3F, # as %23, @ as %40, : as %3A and % as %25 (the url is not shown: it may hold the password)";

/// A connection URL whose password (and `password=` query parameter) prints as `****`. Built
/// from the parsed parts, never by searching the text for a password: a URL that cannot be
/// cut unambiguously ([`url_problem`]) shows only its scheme.
pub fn redact_url(url: &str) -> String {
    let scheme = scheme_of(url);
    if scheme == "sqlite" {
        // A path and options: no user info, but a query parameter may still be a password.
        return redact_query(url);
    }
    match split_url(url) {
        Some(parts) if url_problem(url).is_none() => {
            let mut out = format!("{}://", parts.scheme);
            if let Some(user) = parts.user {
                out.push_str(user);
                if parts.has_password {
                    out.push_str(":****");
                }
                out.push('@');
            }
            out.push_str(parts.host);
            out.push_str(&redact_query(parts.rest));
            out
        }
        _ if scheme.is_empty() || scheme.contains(['/', '@', '?', '#']) => "****".to_string(),
        _ => format!("{scheme}://****"),
    }
}

/// `path?query` with the value of every query parameter whose name contains `password`
/// replaced by `****`.
fn redact_query(text: &str) -> String {
    let Some((head, query)) = text.split_once('?') else {
        return text.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=****"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("60s", 60.0)]
    #[test_case("15m", 900.0)]
    #[test_case("2h", 7200.0)]
    #[test_case("1d", 86400.0)]
    #[test_case("1h30m", 5400.0)]
    #[test_case("500ms", 0.5)]
    #[test_case(" 1w ", 604800.0)]
    fn durations(text: &str, secs: f64) {
        assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs);
    }

    #[test_case("")]
    #[test_case("15")]
    #[test_case("m")]
    #[test_case("15 minutes")]
    #[test_case("-5m")]
    fn bad_durations(text: &str) {
        assert!(
            parse_duration(text)
                .unwrap_err()
                .contains("invalid duration")
        );
    }

    #[test]
    fn formats_durations() {}

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db".into()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("a\"b\nc${HOST}".into()),
            _ => None,
        }
    }

    #[test]
    fn interpolates() {
        assert_eq!(interpolate("pg://${HOST}/x", &env).unwrap(), "pg://db/x");
        assert_eq!(interpolate("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(interpolate("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(interpolate("${NOPE:-}", &env).unwrap(), "");
        assert_eq!(
            interpolate("cost $$5 and $x", &env).unwrap(),
            "cost $5 and $x"
        );
        // A value is inserted as it is, never interpolated again.
        assert_eq!(interpolate("${TRICKY}", &env).unwrap(), "a\"b\nc${HOST}");
    }

    #[test]
    fn reports_every_missing_variable() {
        assert_eq!(
            interpolate("${A}/${HOST}/${B}", &env).unwrap_err(),
            vec!["A", "B"]
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = crate::model::Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "**** ****");
        let u = crate::model::Secret::url(
            "postgres://u:hunter2@h/db".into(),
            redact_url("postgres://u:hunter2@h/db"),
        );
        assert_eq!(
            format!("{u} {u:?}"),
            "postgres://u:****@h/db postgres://u:****@h/db"
        );
        assert_eq!(
            redact_url("postgres://u:hunter2@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(redact_url("mysql://u@h/db"), "mysql://u@h/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw"),
            "postgres://h/db?user=u&password=****"
        );
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }

    // See: issues/8 item 4
    #[test_case("postgres://u:p?a/ss@w#rd@127.0.0.1:1/db" ; "raw query, slash, at and hash")]
    #[test_case("postgres://u:p/ss@h/db" ; "raw slash")]
    #[test_case("postgres://u:12/ss@h/db" ; "raw slash after a port-like start")]
    #[test_case("mysql://u:p?ss@h/db" ; "raw question mark")]
    #[test_case("postgres://u:1#ss@h/db" ; "raw hash")]
    #[test_case("postgres:u:pass@h/db" ; "no slashes")]
    fn a_url_with_a_raw_delimiter_in_the_password_is_refused_and_shows_no_part_of_it(url: &str) {
        assert!(url_problem(url).is_some(), "{url}");
        let shown = redact_url(url);
        for secret in ["ss", "pass"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    // See: issues/8 item 4
    #[test]
    fn a_password_that_needs_no_encoding_or_is_encoded_prints_as_stars() {
        for (url, shown) in [
            (
                "postgres://u:p@ss:w@h:5432/db",
                "postgres://u:****@h:5432/db",
            ),
            (
                "postgres://u:p%3Fa%2Fss%40w%23rd@h/db",
                "postgres://u:****@h/db",
            ),
            ("mysql://u:@h/db", "mysql://u:****@h/db"),
            (
                "postgres://h/db?sslmode=require&PassWord=x%26y",
                "postgres://h/db?sslmode=require&PassWord=****",
            ),
            (
                "sqlite:///tmp/a@b.db?mode=ro",
                "sqlite:///tmp/a@b.db?mode=ro",
            ),
        ] {
            assert_eq!(url_problem(url), None, "{url}");
            assert_eq!(redact_url(url), shown);
        }
        assert_eq!(redact_url("oracle://u:pw@h/x"), "oracle://u:****@h/x");
        assert_eq!(redact_url("no scheme at all"), "****");
    }

    // See: issues/8 item 10
    #[test_case("99999999999999999999w")]
    #[test_case("36501d")]
    #[test_case(&format!("1{}s", "0".repeat(400)) ; "a 400-digit number")]
    fn a_duration_past_100_years_is_an_error_not_a_panic(text: &str) {
        let e = parse_duration(text).unwrap_err();
        assert!(e.contains("too long: at most 100 years"), "{e}");
    }

    #[test]
    fn a_duration_of_100_years_is_accepted() {
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
    }
}
