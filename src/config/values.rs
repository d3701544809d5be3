//! Small value syntaxes shared by the config and check headers: durations (`"15m"`),
//! `${VAR}` interpolation and secrets that never print.

use std::fmt;
use std::time::Duration;

/// Parses `"500ms"`, `"60s"`, `"15m"`, `"2h"`, `"1d"`, `"1w"` or a sequence (`"1h30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = || {
        format!(
            "invalid duration \"{text}\": expected a number and a unit, e.g. \"90s\", \"15m\", \"2h\", \"1d\""
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..num_end].parse().map_err(|_| bad())?;
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
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// Renders seconds as a short duration (`"2h 5m"`, `"45s"`).
pub fn format_duration(seconds: f64) -> String {
    let neg = seconds < 0.0;
    let mut s = seconds.abs().round() as u64;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size {
            parts.push(format!("{}{unit}", s / size));
            s %= size;
        }
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    let out = parts.into_iter().take(2).collect::<Vec<_>>().join(" ");
    if neg { format!("-{out}") } else { out }
}

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

/// A value that must never be printed: `Debug` and `Display` show `****`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that needs it (a login).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// A connection URL whose password (and `password=` query parameter) prints as `****`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = &out[auth_start..auth_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(auth_start + colon + 1..auth_start + at, "****");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=****"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
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
    fn formats_durations() {
        assert_eq!(format_duration(45.0), "45s");
        assert_eq!(format_duration(7500.0), "2h 5m");
        assert_eq!(format_duration(90061.0), "1d 1h");
        assert_eq!(format_duration(0.0), "0s");
    }

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
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "**** ****");
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
}
