//! The settings of warehouses reached over HTTP: Snowflake and BigQuery. Their URLs name
//! where the data is; secrets come from their own keys (`password`, `private_key_file`,
//! `credentials_file`), so that a URL never holds one.

use super::raw::RawConnection;
use super::validate::Ctx;
use super::{Bigquery, Dialect, Remote, Secret, Snowflake, SnowflakeAuth};
use std::path::Path;
use toml::Spanned;

/// BigQuery's default cost guard: 10 GB (10^10 bytes) per check.
pub const DEFAULT_MAX_BYTES_BILLED: u64 = 10_000_000_000;

/// The keys only some kinds of connection take, with the kinds.
const ONLY_FOR: [(&str, &[Dialect]); 6] = [
    ("password", &[Dialect::Snowflake]),
    ("private_key_file", &[Dialect::Snowflake]),
    ("credentials_file", &[Dialect::Bigquery]),
    ("max_bytes_billed", &[Dialect::Bigquery]),
    ("token_uri", &[Dialect::Bigquery]),
    ("api_base", &[Dialect::Snowflake, Dialect::Bigquery]),
];

/// Reports the keys a connection of `dialect` does not take.
pub(super) fn refuse_foreign_keys(
    ctx: &mut Ctx<'_>,
    name: &str,
    c: &RawConnection,
    dialect: Dialect,
) {
    let given = [
        &c.password,
        &c.private_key_file,
        &c.credentials_file,
        &c.max_bytes_billed,
        &c.token_uri,
        &c.api_base,
    ];
    for ((key, kinds), value) in ONLY_FOR.iter().zip(given) {
        if let Some(v) = value
            && !kinds.contains(&dialect)
        {
            let names: Vec<&str> = kinds.iter().map(|d| d.as_str()).collect();
            ctx.error(
                v.span(),
                format!(
                    "connection \"{name}\" is {}: `{key}` is for {} connections only",
                    dialect.as_str(),
                    names.join(" and ")
                ),
                Some("remove the key".into()),
            );
        }
    }
}

/// Reads `url` (already interpolated) and the keys of a Snowflake or BigQuery connection.
pub(super) fn validate(
    ctx: &mut Ctx<'_>,
    name: &str,
    raw: &Spanned<RawConnection>,
    url: &str,
    dialect: Dialect,
    base: &Path,
) -> Option<Remote> {
    let c = raw.get_ref();
    let span = c.url.span();
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            ctx.error(
                span,
                format!("the url of connection \"{name}\" cannot be read: {e}"),
                Some(example(dialect).into()),
            );
            return None;
        }
    };
    if parsed.password().is_some() {
        ctx.error(
            span,
            format!("the url of connection \"{name}\" holds a password"),
            Some(match dialect {
                Dialect::Snowflake => {
                    "give it as password = \"${SNOWFLAKE_PASSWORD}\" (or use private_key_file)"
                        .into()
                }
                _ => "BigQuery logs in with a service-account key: credentials_file".into(),
            }),
        );
        return None;
    }
    let host = parsed.host_str().unwrap_or_default().to_string();
    let segments: Vec<String> = parsed
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).map(decode).collect())
        .unwrap_or_default();
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let param = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let allowed: &[&str] = match dialect {
        Dialect::Snowflake => &["warehouse", "role"],
        _ => &["location"],
    };
    for (k, _) in &query {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)) {
            ctx.error(
                span.clone(),
                format!("connection \"{name}\": unknown url parameter `{k}`"),
                Some(format!("the url takes {}", allowed.join(" and "))),
            );
        }
    }
    let api_base = c
        .api_base
        .as_ref()
        .and_then(|s| ctx.string(s))
        .map(|s| s.trim_end_matches('/').to_string());
    if let (Some(base_url), Some(s)) = (&api_base, &c.api_base)
        && !(base_url.starts_with("https://") || base_url.starts_with("http://"))
    {
        ctx.error(
            s.span(),
            format!("api_base of connection \"{name}\" must be an http(s) URL"),
            None,
        );
    }
    let path = |ctx: &mut Ctx<'_>, s: &Option<toml::Spanned<String>>| {
        s.as_ref().and_then(|s| ctx.string(s)).map(|p| base.join(p))
    };
    match dialect {
        Dialect::Snowflake => {
            let user = decode(parsed.username());
            if host.is_empty() || user.is_empty() || segments.len() > 2 {
                ctx.error(
                    span,
                    format!("the url of connection \"{name}\" does not name user, account (and at most database/schema)"),
                    Some(example(dialect).into()),
                );
                return None;
            }
            let auth = match (&c.private_key_file, &c.password) {
                (Some(_), Some(p)) => {
                    ctx.error(
                        p.span(),
                        format!("connection \"{name}\" has both password and private_key_file"),
                        Some("keep one: key-pair authentication is what Snowflake requires for service users".into()),
                    );
                    return None;
                }
                (Some(_), None) => SnowflakeAuth::KeyPair(path(ctx, &c.private_key_file)?),
                (None, Some(p)) => SnowflakeAuth::Password(Secret::new(ctx.string(p)?)),
                (None, None) => {
                    ctx.error(
                        span,
                        format!("connection \"{name}\" has no credentials"),
                        Some("add private_key_file = \"rsa_key.p8\" or password = \"${SNOWFLAKE_PASSWORD}\"".into()),
                    );
                    return None;
                }
            };
            let api_base = api_base.unwrap_or_else(|| {
                format!(
                    "https://{}.snowflakecomputing.com",
                    host.to_ascii_lowercase().replace('_', "-")
                )
            });
            Some(Remote::Snowflake(Snowflake {
                account: host,
                user,
                database: segments.first().cloned(),
                schema: segments.get(1).cloned(),
                warehouse: param("warehouse"),
                role: param("role"),
                auth,
                api_base,
            }))
        }
        _ => {
            if host.is_empty() || segments.len() > 1 || !parsed.username().is_empty() {
                ctx.error(
                    span,
                    format!("the url of connection \"{name}\" does not name a project (and at most a dataset)"),
                    Some(example(dialect).into()),
                );
                return None;
            }
            let max_bytes_billed = match &c.max_bytes_billed {
                Some(s) => {
                    let text = ctx.string(s)?;
                    match parse_bytes(&text) {
                        Ok(n) => n,
                        Err(m) => {
                            ctx.error(s.span(), m, Some("e.g. \"10GB\" or \"500MiB\"".into()));
                            return None;
                        }
                    }
                }
                None => DEFAULT_MAX_BYTES_BILLED,
            };
            Some(Remote::Bigquery(Bigquery {
                project: host,
                dataset: segments.first().cloned(),
                location: param("location"),
                credentials_file: path(ctx, &c.credentials_file),
                max_bytes_billed,
                api_base: api_base
                    .unwrap_or_else(|| "https://bigquery.googleapis.com/bigquery/v2".into()),
                token_uri: c.token_uri.as_ref().and_then(|s| ctx.string(s)),
            }))
        }
    }
}

fn example(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Snowflake => {
            "snowflake://USER@ACCOUNT/DATABASE/SCHEMA?warehouse=WAREHOUSE&role=ROLE (percent-encode an @ in the user as %40)"
        }
        _ => "bigquery://PROJECT/DATASET?location=EU",
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A byte count: a whole number with an optional unit, B, KB, MB, GB, TB (powers of 1000)
/// or KiB, MiB, GiB, TiB (powers of 1024): `"10GB"`, `"500 MiB"`, `"1000000"`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err(format!("invalid byte count \"{text}\": unknown unit")),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid byte count \"{text}\": a positive whole number of bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_bytes("500 MiB"), Ok(500 << 20));
        assert_eq!(parse_bytes("42"), Ok(42));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1.5GB").is_err());
        assert!(parse_bytes("99999999999999TB").is_err());
        assert!(parse_bytes("").is_err());
    }
}
