//! `dqwatch.toml`: where it is, what it says, and whether it makes sense. Produces a
//! validated [`Config`] or every problem found as [`Diagnostic`]s; reads no warehouse.

mod maintenance;
mod raw;
mod remote;
mod validate;
pub mod values;

use crate::diag::Diagnostic;
pub use crate::model::Secret;
use crate::model::{Category, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use maintenance::{Maintenance, MaintenanceTime};
pub use remote::{DEFAULT_MAX_BYTES_BILLED, parse_bytes};
pub(crate) use validate::{Ctx, Noise, is_email};
pub use values::{
    DurationError, MAX_DURATION, PERCENT_ENCODE_HINT, format_duration, parse_due, parse_duration,
    parse_window, redact_url, try_parse_duration, url_problem,
};

/// The environment variable that names the config file.
pub const CONFIG_ENV: &str = "DQWATCH_CONFIG";
/// Where the config is looked for when neither `--config` nor `$DQWATCH_CONFIG` names it.
pub const DEFAULT_LOCATIONS: [&str; 2] = ["dqwatch.toml", "config/dqwatch.toml"];

/// A validated config. Paths are absolute or relative to the working directory.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Where the checks are.
    pub checks_dir: PathBuf,
    /// A user's own rules, besides the built-in ones.
    pub rules_dir: Option<PathBuf>,
    /// The state store URL (`sqlite://…` or `postgres://…`).
    pub state: Secret,
    /// The handlebars templates.
    pub templates_dir: PathBuf,
    /// `[daemon]`.
    pub daemon: Daemon,
    /// `[connections.NAME]`, by name.
    pub connections: BTreeMap<String, Connection>,
    /// `[mail]`, if configured.
    pub mail: Option<Mail>,
    /// `[[routes]]`, in file order.
    pub routes: Vec<Route>,
    /// `[severity.Pn]`, for every severity (defaults filled in).
    pub severities: BTreeMap<Severity, SeverityPolicy>,
    /// `[impact.NAME]`, by name.
    pub impacts: BTreeMap<String, Impact>,
    /// `[incidents]`: lifecycle defaults a check header may override.
    pub incidents: Lifecycle,
    /// `[[maintenance]]` windows, in file order.
    pub maintenance: Vec<Maintenance>,
    /// `[channels.NAME]`, by outbox channel key (`slack:NAME`, `pagerduty:NAME` …).
    pub channels: BTreeMap<String, Channel>,
}

/// `[channels.NAME]`: a Slack, PagerDuty, Teams or webhook destination.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The section's name.
    pub name: String,
    /// What it is and how to reach it.
    pub kind: ChannelKind,
    /// The least time between two messages (Slack: 1 s); zero turns the limit off.
    pub rate_limit: Duration,
    /// The longest one HTTP request may take.
    pub timeout: Duration,
}

impl Channel {
    /// The outbox channel key: `slack:NAME`, `pagerduty:NAME` …
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.name)
    }
}

/// A channel's kind and connection details (secrets as [`Secret`]).
#[derive(Debug, Clone)]
pub enum ChannelKind {
    /// Slack Web API with a bot token: one thread per incident, root kept up to date.
    Slack {
        /// `xoxb-…`.
        token: Secret,
        /// The Slack channel posted to (`#data-incidents` or an id).
        channel: String,
        /// `https://slack.com/api` unless overridden (tests).
        api_base: String,
        /// `https://WORKSPACE.slack.com`, for permalinks.
        workspace_url: Option<String>,
    },
    /// A Slack incoming webhook: one message per event, no threads.
    SlackWebhook {
        /// The webhook URL (a secret).
        url: Secret,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The integration's 32-character routing key.
        routing_key: Secret,
        /// `https://events.pagerduty.com` unless overridden (tests).
        api_base: String,
    },
    /// A Microsoft Teams Workflows webhook (Adaptive Card).
    Teams {
        /// The workflow URL (a secret: it carries a signature).
        url: Secret,
    },
    /// A generic JSON webhook signed per Standard Webhooks.
    Webhook {
        /// The receiver (may hold a token, so a secret).
        url: Secret,
        /// `whsec_<base64>`.
        secret: Secret,
    },
}

impl ChannelKind {
    /// The `type` as written in the config.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::SlackWebhook { .. } => "slack_webhook",
            ChannelKind::PagerDuty { .. } => "pagerduty",
            ChannelKind::Teams { .. } => "teams",
            ChannelKind::Webhook { .. } => "webhook",
        }
    }

    /// The route key that names channels of this kind (`slack` for both Slack kinds).
    pub fn route_key(&self) -> &'static str {
        match self {
            ChannelKind::Slack { .. } | ChannelKind::SlackWebhook { .. } => "slack",
            ChannelKind::PagerDuty { .. } => "pagerduty",
            ChannelKind::Teams { .. } => "teams",
            ChannelKind::Webhook { .. } => "webhook",
        }
    }
}

/// `[daemon]`.
#[derive(Debug)]
pub struct Daemon {
    /// The zone cron expressions are read in.
    pub timezone: chrono_tz::Tz,
    /// Address of the HTTP server.
    pub listen: String,
    /// Run a slot missed while down once at start.
    pub catch_up: bool,
    /// Bearer token for changes over HTTP; empty means read-only.
    pub api_token: Secret,
    /// Local time of day digests go out (weekly ones on Mondays).
    pub digest_at: chrono::NaiveTime,
    /// How long a claimed schedule slot stays with its replica without a heartbeat; the
    /// heartbeat renews it every third of this.
    pub claim_lease: std::time::Duration,
}

/// The warehouse database kind, from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// SQLite.
    Sqlite,
    /// Snowflake (HTTP).
    Snowflake,
    /// Google BigQuery (REST).
    Bigquery,
}

impl Dialect {
    /// The name used for rule files (`postgres.sql`, `mysql.sql`, `sqlite.sql`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
            Dialect::Snowflake => "snowflake",
            Dialect::Bigquery => "bigquery",
        }
    }
}

/// `[connections.NAME]`.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The name checks refer to.
    pub name: String,
    /// Which driver.
    pub dialect: Dialect,
    /// The URL, with a relative SQLite path resolved. May hold a password: never print it.
    pub url: Secret,
    /// The URL with its password replaced by `****`.
    pub display_url: String,
    /// Connections (and so checks) at once on this warehouse.
    pub max_concurrency: usize,
    /// Enforced by the database on every statement.
    pub statement_timeout: Duration,
    /// Rows read from one check's result at most.
    pub max_rows: u64,
    /// What an HTTP warehouse (Snowflake, BigQuery) needs besides the URL; `None` for the
    /// sqlx drivers.
    pub remote: Option<Remote>,
    /// The connection's own incident when no check reaches it.
    pub down: Down,
}

/// How a connection that cannot be reached is classified: its incident's severity, category
/// and tags (routes match them as they match a check's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// `down_severity` (default P1).
    pub severity: Severity,
    /// `down_category` (default `check_failure`).
    pub category: crate::model::Category,
    /// `down_tags` (default none).
    pub tags: Vec<String>,
}

impl Default for Down {
    fn default() -> Self {
        Down {
            severity: Severity::P1,
            category: crate::model::Category::CheckFailure,
            tags: Vec::new(),
        }
    }
}

/// The settings of a warehouse reached over HTTP.
#[derive(Debug, Clone)]
pub enum Remote {
    /// `snowflake://USER@ACCOUNT/DATABASE/SCHEMA?warehouse=…&role=…`.
    Snowflake(Snowflake),
    /// `bigquery://PROJECT/DATASET?location=…`.
    Bigquery(Bigquery),
}

/// A Snowflake connection.
#[derive(Debug, Clone)]
pub struct Snowflake {
    /// The account identifier (`orgname-account` or `locator.region`), as in the host name.
    pub account: String,
    /// The login name.
    pub user: String,
    /// The database (the login's default when `None`).
    pub database: Option<String>,
    /// The schema.
    pub schema: Option<String>,
    /// The virtual warehouse (compute).
    pub warehouse: Option<String>,
    /// The role.
    pub role: Option<String>,
    /// How it logs in.
    pub auth: SnowflakeAuth,
    /// `https://ACCOUNT.snowflakecomputing.com`, or `api_base`.
    pub api_base: String,
}

/// How a Snowflake connection logs in.
#[derive(Debug, Clone)]
pub enum SnowflakeAuth {
    /// Key-pair authentication: an unencrypted PKCS#8 RSA private key (PEM) signs a JWT.
    KeyPair(PathBuf),
    /// A password.
    Password(Secret),
}

/// A BigQuery connection.
#[derive(Debug, Clone)]
pub struct Bigquery {
    /// The project jobs run (and are billed) in.
    pub project: String,
    /// The default dataset of unqualified table names.
    pub dataset: Option<String>,
    /// The location jobs run in (e.g. `EU`, `US`, `europe-west3`).
    pub location: Option<String>,
    /// A service-account key file; `None`: `$GOOGLE_APPLICATION_CREDENTIALS` when connecting.
    pub credentials_file: Option<PathBuf>,
    /// The dry-run limit and `maximumBytesBilled` of every job (a check may set its own).
    pub max_bytes_billed: u64,
    /// `https://bigquery.googleapis.com/bigquery/v2`, or `api_base`.
    pub api_base: String,
    /// Overrides the key file's `token_uri`.
    pub token_uri: Option<String>,
}

/// How mail leaves.
#[derive(Debug, Clone)]
pub enum Transport {
    /// One `.eml` file per mail in a folder.
    File {
        /// The folder.
        dir: PathBuf,
    },
    /// An SMTP relay.
    Smtp {
        /// Relay host.
        host: String,
        /// Relay port.
        port: u16,
        /// TLS mode.
        tls: Tls,
        /// Login user.
        username: Option<String>,
        /// Login password.
        password: Secret,
        /// Per-command timeout.
        timeout: Duration,
        /// A CA certificate (PEM) to trust besides the public roots, for an internal relay.
        ca_file: Option<PathBuf>,
    },
}

/// SMTP TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain connection upgraded by STARTTLS (required).
    Starttls,
    /// Implicit TLS.
    Tls,
    /// No TLS (loopback relays only).
    None,
}

/// `[mail]`.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The From header.
    pub from: String,
    /// How mail leaves.
    pub transport: Transport,
}

/// How often a route's mail goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// One mail per incident event.
    Immediate,
    /// One mail a day.
    Daily,
    /// One mail a week.
    Weekly,
}

/// `[[routes]]`: incidents matching every given filter are told to `email`.
#[derive(Debug, Clone)]
pub struct Route {
    /// Severities that match; empty matches all.
    pub severity: Vec<Severity>,
    /// Categories that match; empty matches all.
    pub category: Vec<Category>,
    /// A check with any of these tags matches; empty matches all.
    pub tags: Vec<String>,
    /// Recipients.
    pub email: Vec<String>,
    /// Other channels told, as outbox channel keys (`slack:NAME`, `pagerduty:NAME` …).
    pub channels: Vec<String>,
    /// Immediate or digest.
    pub digest: Digest,
}

/// When an escalation step stops applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Stops once someone acknowledges.
    Acknowledged,
    /// Stops only at resolution.
    Resolved,
}

/// One escalation step.
#[derive(Debug, Clone)]
pub struct EscalationStep {
    /// Time since the incident opened.
    pub after: Duration,
    /// Who is told.
    pub email: Vec<String>,
    /// What stops it.
    pub until: Until,
}

/// `[severity.Pn]`.
#[derive(Debug, Clone)]
pub struct SeverityPolicy {
    /// What the level means.
    pub description: String,
    /// Expected response time.
    pub respond_within: Option<Duration>,
    /// Reminder interval while unacknowledged.
    pub renotify_every: Option<Duration>,
    /// Escalation chain.
    pub escalation: Vec<EscalationStep>,
}

/// `[impact.NAME]`: a check tagged with this impact is at least `min_severity`.
#[derive(Debug, Clone)]
pub struct Impact {
    /// Floor severity.
    pub min_severity: Option<Severity>,
    /// Extra recipients.
    pub email: Vec<String>,
}

/// Incident lifecycle counts and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// Consecutive breaching runs before an incident opens.
    pub open_after: u32,
    /// Consecutive passing runs before it resolves.
    pub resolve_after: u32,
    /// Consecutive check errors before a `check_failure` incident.
    pub error_after: u32,
    /// A breach this soon after resolving reopens the incident.
    pub reopen_within: Duration,
    /// Also opens when `n` of the last `m` runs breached (`open_window = "4 of 6"`), for a
    /// problem that comes and goes; `None`: consecutive runs only.
    pub open_window: Option<Window>,
    /// An open incident whose state changed `n` times in its last `m` runs (breaching after
    /// passing or back; the first breach counts) is flapping (`flap = "5 of 10"`, the
    /// default; `"off"`): one notice, then quiet until stable.
    pub flap: Option<Window>,
    /// When a partition's data is due, after the partition's day ends (`due = "03:00"`:
    /// 3 h): a breach before then stays pending, not a ticket.
    pub due: Option<Duration>,
    /// A run in which at least this many keys newly breach opens one incident listing them
    /// (a storm) instead of one per key; 0: never.
    pub group_keys: u32,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            open_after: 1,
            resolve_after: 1,
            error_after: 2,
            reopen_within: Duration::from_secs(86_400),
            open_window: None,
            flap: Some(Window { n: 5, m: 10 }),
            due: None,
            group_keys: 10,
        }
    }
}

/// `n` of the last `m` runs (`"4 of 10"`); `1 <= n <= m <= 64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How many.
    pub n: u32,
    /// Of the last how many runs.
    pub m: u32,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.n, self.m)
    }
}

/// Reads and validates the config at `path`, taking `${VAR}` values from `env`.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![
            Diagnostic::file(path, format!("cannot read config: {e}"))
                .hint("pass --config PATH or set DQWATCH_CONFIG"),
        ]
    })?;
    validate::validate(path, &text, env)
}

/// Validates config `text` as if read from `path` (relative paths resolve against its folder),
/// taking `${VAR}` values from `env`. [`load`] without the file system, for property tests.
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Diagnostic>> {
    validate::validate(path, text, env)
}

/// Finds the config file: `--config`, else `$DQWATCH_CONFIG`, else the default locations.
pub fn locate(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, Diagnostic> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = env(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    DEFAULT_LOCATIONS.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
        Diagnostic::file(Path::new(DEFAULT_LOCATIONS[0]), "no config file found")
            .hint("pass --config PATH, set DQWATCH_CONFIG, or create ./dqwatch.toml (the demo's is config/dqwatch.toml)")
    })
}
