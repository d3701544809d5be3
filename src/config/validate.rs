//! Raw config → [`Config`]: interpolation, durations, severities, routes and paths, every
//! problem collected with its line before anything is returned.

use super::raw::{RawConfig, RawConnection, RawMail, RawSeverity, Str};
use super::values::{interpolate, parse_due, parse_duration, parse_window};
use super::*;
use crate::diag::LineIndex;
use std::ops::Range;
use toml::Spanned;

/// The longest `statement_timeout`: PostgreSQL keeps it in milliseconds in an `int`.
const MAX_STATEMENT_TIMEOUT: Duration = Duration::from_secs(24 * 86_400);

/// Collects diagnostics against one source file, or against a text cut out of one (a check
/// header), whose positions `at` maps back to the file's. The one validation context of the
/// config and of check files.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub index: LineIndex<'a>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Maps a 1-based (line, column) in the indexed text to the file's.
    pub at: &'a dyn Fn(usize, usize) -> (usize, usize),
    /// Keep quoted values out of toml's messages: a config may hold secrets.
    pub hide_values: bool,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    /// A context for a whole file, taking `${VAR}` values from `env`.
    pub fn new(path: &'a Path, text: &'a str, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            path,
            index: LineIndex::new(text),
            env,
            at: &same_position,
            hide_values: true,
            diags: Vec::new(),
        }
    }

    /// A context for `text` cut out of the file at `path`: `at` maps its positions to the
    /// file's. Such a text names no secrets and has no `${VAR}`s, so toml's messages keep
    /// their quoted values.
    pub fn embedded(
        path: &'a Path,
        text: &'a str,
        at: &'a dyn Fn(usize, usize) -> (usize, usize),
    ) -> Self {
        Self {
            path,
            index: LineIndex::new(text),
            env: &no_env,
            at,
            hide_values: false,
            diags: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let (l, c) = self.index.line_col(span.start);
        let (line, column) = (self.at)(l, c);
        let mut d = Diagnostic::at(self.path, line, column, message);
        d.hint = hint;
        self.diags.push(d);
    }

    /// Reports a toml error at its span (the text's start when it has none).
    pub fn toml_error(&mut self, err: &toml::de::Error) {
        let message = err.message().trim().replace('\n', " ");
        let message = if self.hide_values {
            hide_value(&message)
        } else {
            message
        };
        let hint = message
            .starts_with("unknown field")
            .then(|| "remove the key or fix its spelling".to_string());
        self.error(err.span().unwrap_or(0..0), message, hint);
    }

    /// The string with `${VAR}` replaced; a missing variable is reported and gives `None`.
    pub fn string(&mut self, s: &Str) -> Option<String> {
        match interpolate(s.get_ref(), self.env) {
            Ok(v) => Some(v),
            Err(missing) => {
                for name in missing {
                    self.error(
                        s.span(),
                        format!("environment variable {name} is not set"),
                        Some(format!(
                            "export {name}=…, or give a default: ${{{name}:-value}}"
                        )),
                    );
                }
                None
            }
        }
    }

    pub fn duration(&mut self, s: &Str) -> Option<Duration> {
        let text = self.string(s)?;
        parse_duration(&text)
            .map_err(|m| self.error(s.span(), m, None))
            .ok()
    }

    pub fn severity(&mut self, s: &Str) -> Option<Severity> {
        s.get_ref()
            .parse()
            .map_err(|m| self.error(s.span(), m, None))
            .ok()
    }

    pub fn email(&mut self, s: &Str) -> Option<String> {
        let v = self.string(s)?;
        if is_email(&v) {
            Some(v)
        } else {
            self.error(
                s.span(),
                format!("invalid email address \"{v}\""),
                Some("e.g. \"oncall@example.com\"".into()),
            );
            None
        }
    }

    /// Applies the noise controls written in `[incidents]` or a check header to `lifecycle`.
    pub fn noise(&mut self, lifecycle: &mut Lifecycle, raw: Noise<'_>) {
        if let Some(s) = raw.open_window {
            match parse_window(s.get_ref()) {
                Ok(w) => lifecycle.open_window = Some(w),
                Err(m) => self.error(s.span(), m, None),
            }
        }
        if let Some(s) = raw.flap {
            match s.get_ref().trim() {
                "off" => lifecycle.flap = None,
                text => match parse_window(text) {
                    Ok(w) if w.n >= 2 => lifecycle.flap = Some(w),
                    Ok(_) => self.error(
                        s.span(),
                        "flap needs at least 2 state changes",
                        Some("e.g. flap = \"4 of 10\", or \"off\"".into()),
                    ),
                    Err(m) => self.error(s.span(), m, Some("or flap = \"off\"".into())),
                },
            }
        }
        if let Some(s) = raw.due {
            match parse_due(s.get_ref()) {
                Ok(d) => lifecycle.due = Some(d),
                Err(m) => self.error(s.span(), m, None),
            }
        }
        if let Some(n) = raw.group_keys {
            let v = *n.get_ref();
            if (0..=100_000).contains(&v) {
                lifecycle.group_keys = v as u32;
            } else {
                self.error(
                    n.span(),
                    format!("group_keys must be between 0 (never group) and 100000, found {v}"),
                    None,
                );
            }
        }
    }

    pub fn positive(&mut self, n: &Spanned<i64>, what: &str, max: i64) -> Option<i64> {
        let v = *n.get_ref();
        if (1..=max).contains(&v) {
            Some(v)
        } else {
            self.error(
                n.span(),
                format!("{what} must be between 1 and {max}, found {v}"),
                None,
            );
            None
        }
    }
}

/// A plain `local@domain` check (display names such as `dq <a@b>` are accepted for `from`).
pub(crate) fn is_email(s: &str) -> bool {
    let addr = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    matches!(addr.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !addr.contains(char::is_whitespace))
}

fn same_position(line: usize, column: usize) -> (usize, usize) {
    (line, column)
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// serde's "invalid type: string \"…\", expected …" quotes the value, which may be a
/// password (`[connections] wh = "postgres://u:pw@h/db"`): the message keeps the type only.
pub(crate) fn hide_value(message: &str) -> String {
    const QUOTED: &str = "string \"";
    match (message.find(QUOTED), message.rfind("\", expected")) {
        (Some(start), Some(end)) if end >= start + QUOTED.len() - 1 => {
            format!("{}string{}", &message[..start], &message[end + 1..])
        }
        _ => message.to_string(),
    }
}

pub(super) fn validate(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut ctx = Ctx::new(path, text, env);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            ctx.toml_error(&e);
            return Err(ctx.diags);
        }
    };
    let base = path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
    let rel = |p: String| normalize(&base.join(p));

    let checks_dir = raw
        .checks_dir
        .as_ref()
        .and_then(|s| ctx.string(s))
        .map_or_else(|| base.join("checks"), rel);
    let rules_dir = raw.rules_dir.as_ref().and_then(|s| ctx.string(s)).map(rel);
    let templates_dir = raw
        .templates_dir
        .as_ref()
        .and_then(|s| ctx.string(s))
        .map_or_else(|| base.join("templates"), rel);
    let state = match raw
        .state
        .as_ref()
        .and_then(|s| ctx.string(s).map(|v| (s.span(), v)))
    {
        Some((span, url)) => resolve_state(&mut ctx, span, &url, &base),
        None => format!(
            "sqlite://{}",
            normalize(&base.join(".dqwatch/state.db")).display()
        ),
    };

    let daemon = validate_daemon(&mut ctx, raw.daemon.as_ref());
    let mut connections = BTreeMap::new();
    for (name, conn) in &raw.connections {
        if let Some(c) = validate_connection(&mut ctx, name, conn, &base) {
            connections.insert(name.clone(), c);
        }
    }
    let mail = raw
        .mail
        .as_ref()
        .and_then(|m| validate_mail(&mut ctx, m, &base));
    let mut channels = BTreeMap::new();
    for (name, ch) in &raw.channels {
        if let Some(c) = validate_channel(&mut ctx, name, ch) {
            channels.insert(c.key(), c);
        }
    }
    let routes = raw
        .routes
        .iter()
        .filter_map(|r| validate_route(&mut ctx, r, &raw.channels))
        .collect();

    let mut severities = BTreeMap::new();
    for (name, policy) in &raw.severity {
        let Ok(sev) = name.parse::<Severity>() else {
            ctx.error(
                policy.span(),
                format!("unknown severity [severity.{name}]"),
                Some("severities are P0, P1, P2 and P3".into()),
            );
            continue;
        };
        severities.insert(sev, validate_severity(&mut ctx, policy.get_ref(), sev));
    }
    for sev in Severity::ALL {
        severities.entry(sev).or_insert_with(|| default_policy(sev));
    }

    let mut impacts = BTreeMap::new();
    for (name, imp) in &raw.impact {
        let min_severity = imp
            .get_ref()
            .min_severity
            .as_ref()
            .and_then(|s| ctx.severity(s));
        let email = imp
            .get_ref()
            .email
            .iter()
            .filter_map(|e| ctx.email(e))
            .collect();
        impacts.insert(
            name.clone(),
            Impact {
                min_severity,
                email,
            },
        );
    }

    let mut incidents = Lifecycle::default();
    if let Some(inc) = &raw.incidents {
        if let Some(n) = &inc.open_after {
            incidents.open_after = ctx.positive(n, "open_after", 1000).map_or(1, |v| v as u32);
        }
        if let Some(n) = &inc.resolve_after {
            incidents.resolve_after = ctx
                .positive(n, "resolve_after", 1000)
                .map_or(1, |v| v as u32);
        }
        if let Some(n) = &inc.error_after {
            incidents.error_after = ctx.positive(n, "error_after", 1000).map_or(2, |v| v as u32);
        }
        if let Some(d) = inc.reopen_within.as_ref().and_then(|s| ctx.duration(s)) {
            incidents.reopen_within = d;
        }
        ctx.noise(
            &mut incidents,
            Noise {
                open_window: inc.open_window.as_ref(),
                flap: inc.flap.as_ref(),
                due: inc.due.as_ref(),
                group_keys: inc.group_keys.as_ref(),
            },
        );
    }

    let maintenance = super::maintenance::validate(&mut ctx, &raw.maintenance, &connections);

    if ctx.diags.is_empty() {
        Ok(Config {
            path: path.to_path_buf(),
            checks_dir,
            rules_dir,
            state: Secret::url(state.clone(), redact_url(&state)),
            templates_dir,
            daemon,
            connections,
            mail,
            routes,
            severities,
            impacts,
            incidents,
            maintenance,
            channels,
        })
    } else {
        ctx.diags.sort_by_key(|d| (d.line, d.column));
        Err(ctx.diags)
    }
}

fn validate_daemon(ctx: &mut Ctx<'_>, raw: Option<&super::raw::RawDaemon>) -> Daemon {
    let mut daemon = Daemon {
        timezone: chrono_tz::UTC,
        listen: "127.0.0.1:8477".into(),
        catch_up: true,
        api_token: Secret::default(),
        digest_at: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        claim_lease: Duration::from_secs(30),
    };
    let Some(raw) = raw else { return daemon };
    if let Some(tz) = &raw.timezone {
        match tz.get_ref().parse::<chrono_tz::Tz>() {
            Ok(z) => daemon.timezone = z,
            Err(_) => ctx.error(
                tz.span(),
                format!("unknown time zone \"{}\"", tz.get_ref()),
                Some("use an IANA name such as \"UTC\" or \"Europe/Berlin\"".into()),
            ),
        }
    }
    if let Some(listen) = raw
        .listen
        .as_ref()
        .and_then(|s| ctx.string(s).map(|v| (s.span(), v)))
    {
        if listen.1.parse::<std::net::SocketAddr>().is_err() {
            ctx.error(
                listen.0,
                format!("invalid listen address \"{}\"", listen.1),
                Some("e.g. \"127.0.0.1:8477\"".into()),
            );
        }
        daemon.listen = listen.1;
    }
    daemon.catch_up = raw.catch_up.unwrap_or(true);
    if let Some(at) = &raw.digest_at {
        match chrono::NaiveTime::parse_from_str(at.get_ref(), "%H:%M") {
            Ok(t) => daemon.digest_at = t,
            Err(_) => ctx.error(
                at.span(),
                format!("invalid digest_at \"{}\"", at.get_ref()),
                Some("a local time of day as HH:MM, e.g. \"09:00\"".into()),
            ),
        }
    }
    if let Some(token) = raw.api_token.as_ref().and_then(|s| ctx.string(s)) {
        daemon.api_token = Secret::new(token);
    }
    if let Some(lease) = &raw.claim_lease
        && let Some(d) = ctx.duration(lease)
    {
        if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&d) {
            daemon.claim_lease = d;
        } else {
            ctx.error(
                lease.span(),
                format!("claim_lease \"{}\" is out of range", lease.get_ref()),
                Some("between \"1s\" and \"1h\"; the default is \"30s\"".into()),
            );
        }
    }
    daemon
}

/// Removes `.` and `dir/..` pairs without touching the file system, so that paths shown to
/// users (and in GitHub annotations) read `checks/a.sql`, not `config/../checks/a.sql`.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Resolves a relative `sqlite://` path against the config folder.
fn resolve_sqlite(url: &str, base: &Path) -> String {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (file, query) = rest
        .split_once('?')
        .map_or((rest, None), |(f, q)| (f, Some(q)));
    let resolved = if file.is_empty() || file == ":memory:" || Path::new(file).is_absolute() {
        file.to_string()
    } else {
        normalize(&base.join(file)).display().to_string()
    };
    match query {
        Some(q) => format!("sqlite://{resolved}?{q}"),
        None => format!("sqlite://{resolved}"),
    }
}

fn dialect_of(url: &str) -> Option<Dialect> {
    let scheme = url.split_once(':')?.0;
    match scheme {
        "postgres" | "postgresql" => Some(Dialect::Postgres),
        "mysql" | "mariadb" => Some(Dialect::Mysql),
        "sqlite" => Some(Dialect::Sqlite),
        "snowflake" => Some(Dialect::Snowflake),
        "bigquery" => Some(Dialect::Bigquery),
        _ => None,
    }
}

fn resolve_state(ctx: &mut Ctx<'_>, span: Range<usize>, url: &str, base: &Path) -> String {
    match dialect_of(url) {
        Some(Dialect::Sqlite) => resolve_sqlite(url, base),
        Some(Dialect::Postgres) => {
            if let Some(problem) = url_problem(url) {
                ctx.error(
                    span,
                    format!("the state store url cannot be read unambiguously: {problem}"),
                    Some(PERCENT_ENCODE_HINT.into()),
                );
            }
            url.to_string()
        }
        _ => {
            ctx.error(
                span,
                format!("unsupported state store \"{}\"", redact_url(url)),
                Some("use sqlite://PATH or postgres://…".into()),
            );
            String::new()
        }
    }
}

fn validate_connection(
    ctx: &mut Ctx<'_>,
    name: &str,
    raw: &Spanned<RawConnection>,
    base: &Path,
) -> Option<Connection> {
    let c = raw.get_ref();
    let url = ctx.string(&c.url);
    let max_concurrency = c
        .max_concurrency
        .as_ref()
        .map_or(Some(4), |n| ctx.positive(n, "max_concurrency", 1024));
    let statement_timeout = c
        .statement_timeout
        .as_ref()
        .map_or(Some(Duration::from_secs(60)), |s| ctx.duration(s));
    let max_rows = c
        .max_rows
        .as_ref()
        .map_or(Some(10_000), |n| ctx.positive(n, "max_rows", i64::MAX));
    let timeout_span = c
        .statement_timeout
        .as_ref()
        .map_or(raw.span(), Spanned::span);
    if statement_timeout.is_some_and(|t| t < Duration::from_millis(1)) {
        ctx.error(timeout_span, "statement_timeout must be at least 1ms", None);
    } else if statement_timeout.is_some_and(|t| t > MAX_STATEMENT_TIMEOUT) {
        // See: issues/8 item 10
        ctx.error(
            timeout_span,
            "statement_timeout must be at most 24d",
            Some("PostgreSQL's statement_timeout holds at most 2147483647 ms (24.8 days)".into()),
        );
    }
    let url = url?;
    if let Some(problem) = url_problem(&url) {
        ctx.error(
            c.url.span(),
            format!("the url of connection \"{name}\" cannot be read unambiguously: {problem}"),
            Some(PERCENT_ENCODE_HINT.into()),
        );
        return None;
    }
    let Some(dialect) = dialect_of(&url) else {
        let shown = if url.is_empty() {
            "an empty url".to_string()
        } else {
            format!("\"{}\"", redact_url(&url))
        };
        ctx.error(
            c.url.span(),
            format!("connection \"{name}\" has {shown}: the scheme is not supported"),
            Some(
                "use postgres://, mysql:// (also MariaDB), sqlite://, snowflake:// or bigquery://"
                    .into(),
            ),
        );
        return None;
    };
    super::remote::refuse_foreign_keys(ctx, name, c, dialect);
    let remote = match dialect {
        Dialect::Snowflake | Dialect::Bigquery => Some(super::remote::validate(
            ctx, name, raw, &url, dialect, base,
        )?),
        _ => None,
    };
    let url = if dialect == Dialect::Sqlite {
        resolve_sqlite(&url, base)
    } else {
        url
    };
    let mut down = Down::default();
    if let Some(s) = &c.down_severity {
        down.severity = ctx.severity(s)?;
    }
    if let Some(cat) = &c.down_category {
        down.category = cat
            .get_ref()
            .parse()
            .map_err(|m| ctx.error(cat.span(), m, None))
            .ok()?;
    }
    down.tags = c.down_tags.iter().map(|t| t.get_ref().clone()).collect();
    Some(Connection {
        name: name.to_string(),
        dialect,
        display_url: redact_url(&url),
        url: Secret::url(url.clone(), redact_url(&url)),
        max_concurrency: max_concurrency? as usize,
        statement_timeout: statement_timeout?,
        max_rows: max_rows? as u64,
        remote,
        down,
    })
}

fn validate_mail(ctx: &mut Ctx<'_>, m: &RawMail, base: &Path) -> Option<Mail> {
    let from = ctx.email(&m.from);
    let kind = m
        .transport
        .as_ref()
        .map_or_else(|| "file".to_string(), |t| t.get_ref().clone());
    let transport = match kind.as_str() {
        "file" => {
            let dir = m
                .dir
                .as_ref()
                .and_then(|d| ctx.string(d))
                .unwrap_or_else(|| "outbox".into());
            let dir = normalize(&base.join(dir));
            Transport::File { dir }
        }
        "smtp" => {
            let Some(host_s) = &m.host else {
                ctx.error(
                    m.from.span(),
                    "smtp transport needs a host",
                    Some("add host = \"smtp.example.com\" to [mail]".into()),
                );
                return None;
            };
            let host = ctx.string(host_s)?;
            let tls = match m.tls.as_ref().map(|t| t.get_ref().as_str()) {
                None | Some("starttls") => Tls::Starttls,
                Some("tls") => Tls::Tls,
                Some("none") => Tls::None,
                Some(other) => {
                    let span = m.tls.as_ref().map_or(0..0, Spanned::span);
                    ctx.error(
                        span,
                        format!("unknown tls mode \"{other}\""),
                        Some("use \"starttls\", \"tls\" or \"none\"".into()),
                    );
                    Tls::Starttls
                }
            };
            let default_port = match tls {
                Tls::Starttls => 587,
                Tls::Tls => 465,
                Tls::None => 25,
            };
            let port = m
                .port
                .as_ref()
                .map_or(Some(default_port), |p| ctx.positive(p, "port", 65535));
            let username = m
                .username
                .as_ref()
                .and_then(|u| ctx.string(u))
                .filter(|u| !u.is_empty());
            let password = m
                .password
                .as_ref()
                .and_then(|p| ctx.string(p))
                .unwrap_or_default();
            let timeout = m
                .timeout
                .as_ref()
                .map_or(Some(Duration::from_secs(30)), |t| ctx.duration(t));
            let ca_file = m
                .ca_file
                .as_ref()
                .and_then(|c| ctx.string(c))
                .map(|c| normalize(&base.join(c)));
            Transport::Smtp {
                host,
                port: port? as u16,
                tls,
                username,
                password: Secret::new(password),
                timeout: timeout?,
                ca_file,
            }
        }
        other => {
            let span = m.transport.as_ref().map_or(0..0, Spanned::span);
            ctx.error(
                span,
                format!("unknown mail transport \"{other}\""),
                Some("use \"file\" or \"smtp\"".into()),
            );
            return None;
        }
    };
    Some(Mail {
        from: from?,
        transport,
    })
}

/// Slack's Web API, PagerDuty's Events API: the public endpoints, unless `api_base` says.
const SLACK_API: &str = "https://slack.com/api";
const PAGERDUTY_API: &str = "https://events.pagerduty.com";

fn validate_channel(
    ctx: &mut Ctx<'_>,
    name: &str,
    raw: &Spanned<super::raw::RawChannel>,
) -> Option<Channel> {
    let c = raw.get_ref();
    let kind = c.kind.get_ref().as_str();
    // A required key: reported at the section when missing.
    let need = |ctx: &mut Ctx<'_>, v: &Option<Str>, key: &str, example: &str| -> Option<String> {
        match v {
            Some(s) => ctx.string(s),
            None => {
                ctx.error(
                    raw.span(),
                    format!("[channels.{name}] (type \"{kind}\") needs {key}"),
                    Some(format!("add {key} = {example}")),
                );
                None
            }
        }
    };
    let http_url = |ctx: &mut Ctx<'_>, s: &Option<Str>, v: String, key: &str| -> Option<String> {
        if v.starts_with("https://") || v.starts_with("http://") {
            Some(v)
        } else {
            // Not shown: a webhook URL is a secret.
            ctx.error(
                s.as_ref().map_or(raw.span(), Spanned::span),
                format!("[channels.{name}] {key} is not an http(s) URL"),
                Some("e.g. \"https://…\" (the value is not shown: it may be a secret)".into()),
            );
            None
        }
    };
    let api_base = |ctx: &mut Ctx<'_>, default: &str| -> Option<String> {
        match &c.api_base {
            None => Some(default.to_string()),
            Some(s) => {
                let v = ctx.string(s)?;
                http_url(
                    ctx,
                    &c.api_base,
                    v.trim_end_matches('/').to_string(),
                    "api_base",
                )
            }
        }
    };
    let kind = match kind {
        "slack" => {
            let token = need(ctx, &c.token, "token", "\"${SLACK_BOT_TOKEN}\"");
            let channel = need(ctx, &c.channel, "channel", "\"#data-incidents\"");
            if let Some(t) = &token
                && !(t.starts_with("xoxb-") || t.starts_with("xoxp-"))
            {
                ctx.error(
                    c.token.as_ref().map_or(raw.span(), Spanned::span),
                    format!("[channels.{name}] token is not a Slack bot token"),
                    Some("a bot token starts with xoxb- (the value is not shown)".into()),
                );
            }
            let api_base = api_base(ctx, SLACK_API);
            let workspace_url = c
                .workspace_url
                .as_ref()
                .and_then(|s| ctx.string(s))
                .and_then(|v| http_url(ctx, &c.workspace_url, v, "workspace_url"))
                .map(|v| v.trim_end_matches('/').to_string());
            ChannelKind::Slack {
                token: Secret::new(token?),
                channel: channel?,
                api_base: api_base?,
                workspace_url,
            }
        }
        "slack_webhook" | "teams" => {
            let url = need(ctx, &c.url, "url", "\"${WEBHOOK_URL}\"")
                .and_then(|v| http_url(ctx, &c.url, v, "url"))?;
            let url = Secret::new(url);
            if kind == "teams" {
                ChannelKind::Teams { url }
            } else {
                ChannelKind::SlackWebhook { url }
            }
        }
        "pagerduty" => {
            let key = need(
                ctx,
                &c.routing_key,
                "routing_key",
                "\"${PAGERDUTY_ROUTING_KEY}\"",
            );
            if let Some(k) = &key
                && k.chars().count() != 32
            {
                ctx.error(
                    c.routing_key.as_ref().map_or(raw.span(), Spanned::span),
                    format!(
                        "[channels.{name}] routing_key has {} characters; PagerDuty's have 32",
                        k.chars().count()
                    ),
                    Some("copy the integration key of an Events API v2 integration (the value is not shown)".into()),
                );
            }
            let api_base = api_base(ctx, PAGERDUTY_API);
            ChannelKind::PagerDuty {
                routing_key: Secret::new(key?),
                api_base: api_base?,
            }
        }
        "webhook" => {
            let url = need(ctx, &c.url, "url", "\"https://hooks.example.com/dqwatch\"")
                .and_then(|v| http_url(ctx, &c.url, v, "url"));
            let secret = need(ctx, &c.secret, "secret", "\"${DQWATCH_WEBHOOK_SECRET}\"");
            if let Some(sec) = &secret
                && !is_whsec(sec)
            {
                ctx.error(
                    c.secret.as_ref().map_or(raw.span(), Spanned::span),
                    format!("[channels.{name}] secret is not a Standard Webhooks secret"),
                    Some("it reads whsec_ followed by base64 (the value is not shown)".into()),
                );
            }
            ChannelKind::Webhook {
                url: Secret::new(url?),
                secret: Secret::new(secret?),
            }
        }
        other => {
            ctx.error(
                c.kind.span(),
                format!("unknown channel type \"{other}\""),
                Some(
                    "use \"slack\", \"slack_webhook\", \"pagerduty\", \"teams\" or \"webhook\""
                        .into(),
                ),
            );
            return None;
        }
    };
    let default_rate = if matches!(
        kind,
        ChannelKind::Slack { .. } | ChannelKind::SlackWebhook { .. }
    ) {
        Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    let rate_limit = match &c.rate_limit {
        None => default_rate,
        Some(s) => match ctx.string(s)?.as_str() {
            "0" | "0s" | "off" => Duration::ZERO,
            text => parse_duration(text)
                .map_err(|m| ctx.error(s.span(), m, None))
                .ok()?,
        },
    };
    let timeout = match &c.timeout {
        None => Duration::from_secs(10),
        Some(s) => ctx.duration(s)?,
    };
    Some(Channel {
        name: name.to_string(),
        kind,
        rate_limit,
        timeout,
    })
}

/// `whsec_` followed by base64 of at least one byte.
fn is_whsec(s: &str) -> bool {
    use base64::Engine as _;
    s.strip_prefix("whsec_").is_some_and(|b| {
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .is_ok_and(|k| !k.is_empty())
    })
}

/// The outbox channel keys a route names under `key` (`slack`, `pagerduty` …): each entry
/// is a `[channels.NAME]` of that kind, or (Slack) the `channel` one Slack section posts to.
fn route_channels(
    ctx: &mut Ctx<'_>,
    key: &str,
    value: Option<&Spanned<toml::Value>>,
    sections: &BTreeMap<String, Spanned<super::raw::RawChannel>>,
) -> Vec<String> {
    let Some(v) = value else {
        return Vec::new();
    };
    let names: Vec<String> = match v.get_ref() {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(a) if a.iter().all(toml::Value::is_str) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => {
            ctx.error(
                v.span(),
                format!("{key} must name a channel or a list of channels"),
                Some(format!(
                    "e.g. {key} = [\"NAME\"] for a [channels.NAME] section"
                )),
            );
            return Vec::new();
        }
    };
    let kinds: &[&str] = if key == "slack" {
        &["slack", "slack_webhook"]
    } else {
        std::slice::from_ref(&key)
    };
    let mut out = Vec::new();
    for name in names {
        let of_kind = |n: &str| {
            sections
                .get(n)
                .map(|c| c.get_ref().kind.get_ref().as_str())
                .filter(|k| kinds.contains(k))
        };
        if let Some(k) = of_kind(&name) {
            out.push(format!("{k}:{name}"));
            continue;
        }
        // `slack = ["#data-incidents"]`: the Slack section posting there.
        let by_target: Vec<&String> = sections
            .iter()
            .filter(|(n, c)| {
                of_kind(n).is_some()
                    && c.get_ref().channel.as_ref().map(|t| t.get_ref()) == Some(&name)
            })
            .map(|(n, _)| n)
            .collect();
        if let [n] = by_target.as_slice() {
            if let Some(k) = of_kind(n) {
                out.push(format!("{k}:{n}"));
            }
            continue;
        }
        let hint = match sections.get(&name) {
            Some(c) => format!(
                "[channels.{name}] is of type \"{}\"; name it under {} instead",
                c.get_ref().kind.get_ref(),
                c.get_ref().kind.get_ref().replace("slack_webhook", "slack")
            ),
            None => {
                let known: Vec<&str> = sections
                    .iter()
                    .filter(|(n, _)| of_kind(n).is_some())
                    .map(|(n, _)| n.as_str())
                    .collect();
                if name.starts_with('#') {
                    format!(
                        "no slack channel posts to {name}: add a [channels.NAME] with type = \"slack\" and channel = \"{name}\""
                    )
                } else if known.is_empty() {
                    format!(
                        "add a [channels.{name}] section with type = \"{}\"",
                        kinds[0]
                    )
                } else {
                    format!("known {key} channels: {}", known.join(", "))
                }
            }
        };
        ctx.error(
            v.span(),
            format!("unknown {key} channel \"{name}\""),
            Some(hint),
        );
    }
    out
}

fn validate_route(
    ctx: &mut Ctx<'_>,
    raw: &Spanned<super::raw::RawRoute>,
    sections: &BTreeMap<String, Spanned<super::raw::RawChannel>>,
) -> Option<Route> {
    let r = raw.get_ref();
    let severity = r.severity.iter().filter_map(|s| ctx.severity(s)).collect();
    let category = r
        .category
        .iter()
        .filter_map(|c| {
            c.get_ref()
                .parse::<Category>()
                .map_err(|m| ctx.error(c.span(), m, None))
                .ok()
        })
        .collect();
    let email: Vec<String> = r.email.iter().filter_map(|e| ctx.email(e)).collect();
    let mut channels = Vec::new();
    for (key, value) in [
        ("slack", &r.slack),
        ("pagerduty", &r.pagerduty),
        ("teams", &r.teams),
        ("webhook", &r.webhook),
    ] {
        channels.extend(route_channels(ctx, key, value.as_ref(), sections));
    }
    if r.email.is_empty()
        && r.slack.is_none()
        && r.pagerduty.is_none()
        && r.teams.is_none()
        && r.webhook.is_none()
    {
        ctx.error(
            raw.span(),
            "route has no email recipients and no channel",
            Some(
                "add email = [\"team@example.com\"] or slack = [\"NAME\"] for a [channels.NAME]"
                    .into(),
            ),
        );
    }
    let digest = match r.digest.as_ref().map(|d| (d.span(), d.get_ref().as_str())) {
        None | Some((_, "immediate")) => Digest::Immediate,
        Some((_, "daily")) => Digest::Daily,
        Some((_, "weekly")) => Digest::Weekly,
        Some((span, other)) => {
            ctx.error(
                span,
                format!("unknown digest \"{other}\""),
                Some("use \"daily\" or \"weekly\", or leave it out for immediate mail".into()),
            );
            Digest::Immediate
        }
    };
    Some(Route {
        severity,
        category,
        tags: r.tags.iter().map(|t| t.get_ref().clone()).collect(),
        email,
        channels,
        digest,
    })
}

/// The noise controls as written, where `[incidents]` and check headers share them.
#[derive(Clone, Copy)]
pub struct Noise<'a> {
    pub open_window: Option<&'a Spanned<String>>,
    pub flap: Option<&'a Spanned<String>>,
    pub due: Option<&'a Spanned<String>>,
    pub group_keys: Option<&'a Spanned<i64>>,
}

fn validate_severity(ctx: &mut Ctx<'_>, raw: &RawSeverity, sev: Severity) -> SeverityPolicy {
    let mut policy = default_policy(sev);
    if let Some(d) = raw.description.as_ref().and_then(|s| ctx.string(s)) {
        policy.description = d;
    }
    policy.respond_within = raw.respond_within.as_ref().and_then(|s| ctx.duration(s));
    policy.renotify_every = raw.renotify_every.as_ref().and_then(|s| ctx.duration(s));
    for step in &raw.escalation {
        let s = step.get_ref();
        let after = ctx.duration(&s.after);
        let email = s.email.iter().filter_map(|e| ctx.email(e)).collect();
        let until = match s.until.as_ref().map(|u| (u.span(), u.get_ref().as_str())) {
            None | Some((_, "acknowledged")) => Until::Acknowledged,
            Some((_, "resolved")) => Until::Resolved,
            Some((span, other)) => {
                ctx.error(
                    span,
                    format!("unknown until \"{other}\""),
                    Some("use \"acknowledged\" or \"resolved\"".into()),
                );
                Until::Acknowledged
            }
        };
        if let Some(after) = after {
            policy.escalation.push(EscalationStep {
                after,
                email,
                until,
            });
        }
    }
    policy
}

fn default_policy(sev: Severity) -> SeverityPolicy {
    let description = match sev {
        Severity::P0 => "Critical: data unavailable or wrong where money or customers see it",
        Severity::P1 => "High: important data is wrong or late",
        Severity::P2 => "Medium: data quality is degraded",
        Severity::P3 => "Low: worth a look",
    };
    SeverityPolicy {
        description: description.into(),
        respond_within: None,
        renotify_every: None,
        escalation: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indoc::indoc;

    fn env(name: &str) -> Option<String> {
        (name == "PGPASS").then(|| "s3cret".to_string())
    }

    fn check(text: &str) -> Result<Config, Vec<Diagnostic>> {
        validate(Path::new("cfg/dqwatch.toml"), text, &env)
    }

    fn errors(text: &str) -> Vec<String> {
        check(text)
            .unwrap_err()
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn resolves_paths_and_defaults() {
        let cfg = check(indoc! {r#"
            checks_dir = "../checks"
            [connections.wh]
            url = "sqlite://../demo.db"
            [connections.pg]
            url = "postgres://u:${PGPASS}@h/db"
            statement_timeout = "5s"
        "#})
        .unwrap();
        assert_eq!(cfg.checks_dir, Path::new("checks"));
        assert_eq!(cfg.connections["wh"].url.expose(), "sqlite://demo.db");
        assert_eq!(
            cfg.connections["pg"].url.expose(),
            "postgres://u:s3cret@h/db"
        );
        assert_eq!(cfg.connections["pg"].display_url, "postgres://u:****@h/db");
        assert_eq!(
            cfg.connections["pg"].statement_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(cfg.connections["wh"].max_rows, 10_000);
        assert_eq!(cfg.severities.len(), 4);
    }

    // Issue 12: Snowflake and BigQuery connections.
    #[test]
    fn reads_snowflake_and_bigquery_connections() {
        let cfg = check(indoc! {r#"
            [connections.sf]
            url = "snowflake://jane%40acme.com@xy12345.eu-central-1/ANALYTICS/MARTS?warehouse=DQ_WH&role=DQ_READER"
            password = "${PGPASS}"
            [connections.sf_key]
            url = "snowflake://svc@acme-prod"
            private_key_file = "keys/rsa.p8"
            [connections.bq]
            url = "bigquery://acme-analytics/sales?location=EU"
            credentials_file = "sa.json"
            max_bytes_billed = "500MiB"
        "#})
        .unwrap_or_else(|d| panic!("{d:?}"));
        let Some(Remote::Snowflake(sf)) = &cfg.connections["sf"].remote else {
            panic!("not snowflake");
        };
        assert_eq!(cfg.connections["sf"].dialect, Dialect::Snowflake);
        assert_eq!(sf.user, "jane@acme.com");
        assert_eq!(sf.account, "xy12345.eu-central-1");
        assert_eq!(sf.database.as_deref(), Some("ANALYTICS"));
        assert_eq!(sf.schema.as_deref(), Some("MARTS"));
        assert_eq!(sf.warehouse.as_deref(), Some("DQ_WH"));
        assert_eq!(sf.role.as_deref(), Some("DQ_READER"));
        assert_eq!(
            sf.api_base,
            "https://xy12345.eu-central-1.snowflakecomputing.com"
        );
        assert!(matches!(&sf.auth, SnowflakeAuth::Password(p) if p.expose() == "s3cret"));
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "the password shows in Debug"
        );
        let Some(Remote::Snowflake(key)) = &cfg.connections["sf_key"].remote else {
            panic!("not snowflake");
        };
        assert!(
            matches!(&key.auth, SnowflakeAuth::KeyPair(p) if p == Path::new("cfg/keys/rsa.p8"))
        );
        let Some(Remote::Bigquery(bq)) = &cfg.connections["bq"].remote else {
            panic!("not bigquery");
        };
        assert_eq!(bq.project, "acme-analytics");
        assert_eq!(bq.dataset.as_deref(), Some("sales"));
        assert_eq!(bq.location.as_deref(), Some("EU"));
        assert_eq!(bq.max_bytes_billed, 500 << 20);
        assert_eq!(
            bq.credentials_file.as_deref(),
            Some(Path::new("cfg/sa.json"))
        );
    }

    #[test]
    fn refuses_bad_snowflake_and_bigquery_connections() {
        let e = errors(indoc! {r#"
            [connections.a]
            url = "snowflake://u:hunter2@acct/DB"
            [connections.b]
            url = "snowflake://u@acct/DB"
            [connections.c]
            url = "bigquery://p/d"
            max_bytes_billed = "lots"
            [connections.d]
            url = "postgres://u@h/db"
            max_bytes_billed = "1GB"
            [connections.e]
            url = "snowflake://u@acct/DB?warehouse=W&colour=blue"
            password = "x"
        "#});
        let all = e.join("\n");
        assert!(!all.contains("hunter2"), "{all}");
        assert!(
            all.contains(
                "cfg/dqwatch.toml:2:7: error: the url of connection \"a\" holds a password"
            ),
            "{all}"
        );
        assert!(all.contains("connection \"b\" has no credentials"), "{all}");
        assert!(
            all.contains("cfg/dqwatch.toml:7:20: error: invalid byte count \"lots\""),
            "{all}"
        );
        assert!(
            all.contains("`max_bytes_billed` is for bigquery connections only"),
            "{all}"
        );
        assert!(all.contains("unknown url parameter `colour`"), "{all}");
        assert_eq!(e.len(), 5, "{all}");
    }

    #[test]
    fn unknown_key_names_line_and_choices() {
        let e = errors("[daemon]\ntimezone = \"UTC\"\ncatchup = true\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("cfg/dqwatch.toml:3:1: error: unknown field `catchup`"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn collects_every_problem() {
        let e = errors(indoc! {r#"
            [connections.a]
            url = "${MISSING}"
            statement_timeout = "soon"
            [connections.b]
            url = "oracle://x"
            max_concurrency = 0
            [daemon]
            timezone = "Mars/Base"
        "#});
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(
            e[0].contains("cfg/dqwatch.toml:2:7: error: environment variable MISSING is not set"),
            "{e:#?}"
        );
        assert!(e[1].contains(":3:21: error: invalid duration \"soon\""));
        assert!(e[2].contains(":5:7: error: connection \"b\" has \"oracle://x\""));
        assert!(e[3].contains(":6:19: error: max_concurrency must be between 1 and 1024"));
        assert!(e[4].contains(":8:12: error: unknown time zone \"Mars/Base\""));
    }

    #[test]
    fn mail_and_routes() {
        let cfg = check(indoc! {r#"
            [mail]
            from = "dqwatch <dq@example.com>"
            transport = "smtp"
            host = "smtp.example.com"
            tls = "tls"
            password = "${PGPASS}"
            [[routes]]
            severity = ["P0", "P1"]
            email = ["oncall@example.com"]
            [severity.P0]
            escalation = [{ after = "15m", email = ["b@example.com"], until = "resolved" }]
        "#})
        .unwrap();
        let Some(Mail {
            transport: Transport::Smtp { port, password, .. },
            ..
        }) = cfg.mail
        else {
            panic!()
        };
        assert_eq!((port, password.expose()), (465, "s3cret"));
        assert_eq!(cfg.routes[0].severity, vec![Severity::P0, Severity::P1]);
        assert_eq!(
            cfg.severities[&Severity::P0].escalation[0].until,
            Until::Resolved
        );
    }

    #[test]
    fn channels_and_route_keys() {
        let env = |name: &str| match name {
            "TOKEN" => Some("xoxb-SECRET-token".to_string()),
            "KEY" => Some("k".repeat(32)),
            _ => None,
        };
        let cfg = parse(
            Path::new("dqwatch.toml"),
            "[channels.inc]\ntype = \"slack\"\ntoken = \"${TOKEN}\"\nchannel = \"#data-incidents\"\n\
             [channels.pd]\ntype = \"pagerduty\"\nrouting_key = \"${KEY}\"\n\
             [[routes]]\nslack = [\"#data-incidents\"]\npagerduty = \"pd\"\n",
            &env,
        )
        .unwrap();
        assert_eq!(cfg.routes[0].channels, ["slack:inc", "pagerduty:pd"]);
        assert_eq!(cfg.channels["slack:inc"].rate_limit, Duration::from_secs(1));
        assert_eq!(cfg.channels["pagerduty:pd"].rate_limit, Duration::ZERO);
        let shown = format!("{:?}", cfg.channels);
        assert!(
            !shown.contains("SECRET") && !shown.contains("kkkk"),
            "{shown}"
        );
    }

    #[test]
    fn bad_channels() {
        let e = errors(
            "[channels.a]\ntype = \"slak\"\n[channels.b]\ntype = \"webhook\"\nurl = \"ftp://x\"\nsecret = \"plain\"\n",
        );
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(
            e[0].contains(":2:8: error: unknown channel type \"slak\""),
            "{e:#?}"
        );
        assert!(e[1].contains("url is not an http(s) URL"), "{e:#?}");
        assert!(
            e[2].contains("secret is not a Standard Webhooks secret"),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .all(|d| !d.contains("plain") && !d.contains("ftp://x"))
        );
    }

    #[test]
    fn bad_routes() {
        let e =
            errors("[[routes]]\nseverity = [\"P5\"]\nemail = [\"nobody\"]\ndigest = \"hourly\"\n");
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e[0].contains(":2:13: error: unknown severity \"P5\""));
        assert!(e[1].contains(":3:10: error: invalid email address \"nobody\""));
        assert!(e[2].contains(":4:10: error: unknown digest \"hourly\""));
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize(Path::new("config/../checks/a.sql")),
            Path::new("checks/a.sql")
        );
        assert_eq!(normalize(Path::new("../x/./y")), Path::new("../x/y"));
        assert_eq!(normalize(Path::new("/a/b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("a/..")), Path::new("."));
    }

    // See: issues/8 item 4
    #[test]
    fn a_type_error_does_not_echo_the_value() {
        let e = errors("[connections]\nwh = \"postgres://u:hunter2@h/db\"\n");
        assert!(!e[0].contains("hunter2"), "{}", e[0]);
        assert!(e[0].contains("invalid type: string, expected"), "{}", e[0]);
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = errors("checks_dir = \n");
        assert!(e[0].starts_with("cfg/dqwatch.toml:1:"), "{}", e[0]);
    }
}
