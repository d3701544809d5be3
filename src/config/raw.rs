//! Serde shapes of `dqwatch.toml`, exactly as written. Private to `config`: the rest of the
//! crate sees only the validated types in `config/mod.rs`.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub(super) type Str = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub checks_dir: Option<Str>,
    pub rules_dir: Option<Str>,
    pub state: Option<Str>,
    pub templates_dir: Option<Str>,
    pub daemon: Option<RawDaemon>,
    #[serde(default)]
    pub connections: BTreeMap<String, Spanned<RawConnection>>,
    pub mail: Option<RawMail>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub severity: BTreeMap<String, Spanned<RawSeverity>>,
    #[serde(default)]
    pub impact: BTreeMap<String, Spanned<RawImpact>>,
    pub incidents: Option<RawIncidents>,
    #[serde(default)]
    pub maintenance: Vec<Spanned<super::maintenance::RawMaintenance>>,
    #[serde(default)]
    pub channels: BTreeMap<String, Spanned<RawChannel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub timezone: Option<Str>,
    pub listen: Option<Str>,
    pub catch_up: Option<bool>,
    pub api_token: Option<Str>,
    pub digest_at: Option<Str>,
    pub claim_lease: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnection {
    pub url: Str,
    pub max_concurrency: Option<Spanned<i64>>,
    pub statement_timeout: Option<Str>,
    pub max_rows: Option<Spanned<i64>>,
    // The incident of the connection itself, when no check reaches it.
    pub down_severity: Option<Str>,
    pub down_category: Option<Str>,
    #[serde(default)]
    pub down_tags: Vec<Str>,
    // Snowflake and BigQuery (see config/remote.rs).
    pub password: Option<Str>,
    pub private_key_file: Option<Str>,
    pub credentials_file: Option<Str>,
    pub max_bytes_billed: Option<Str>,
    pub api_base: Option<Str>,
    pub token_uri: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    pub from: Str,
    pub transport: Option<Str>,
    pub dir: Option<Str>,
    pub host: Option<Str>,
    pub port: Option<Spanned<i64>>,
    pub tls: Option<Str>,
    pub username: Option<Str>,
    pub password: Option<Str>,
    pub timeout: Option<Str>,
    pub ca_file: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    #[serde(default)]
    pub severity: Vec<Str>,
    #[serde(default)]
    pub category: Vec<Str>,
    #[serde(default)]
    pub tags: Vec<Str>,
    #[serde(default)]
    pub email: Vec<Str>,
    pub digest: Option<Str>,
    /// A channel name or a list of them (`"primary"` or `["#data-incidents"]`).
    pub slack: Option<Spanned<toml::Value>>,
    pub pagerduty: Option<Spanned<toml::Value>>,
    pub teams: Option<Spanned<toml::Value>>,
    pub webhook: Option<Spanned<toml::Value>>,
}

/// `[channels.NAME]`: where Slack, PagerDuty, Teams and webhook messages go.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    #[serde(rename = "type")]
    pub kind: Str,
    pub token: Option<Str>,
    pub channel: Option<Str>,
    pub url: Option<Str>,
    pub routing_key: Option<Str>,
    pub secret: Option<Str>,
    pub api_base: Option<Str>,
    pub workspace_url: Option<Str>,
    pub rate_limit: Option<Str>,
    pub timeout: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeverity {
    pub description: Option<Str>,
    pub respond_within: Option<Str>,
    pub renotify_every: Option<Str>,
    #[serde(default)]
    pub escalation: Vec<Spanned<RawEscalationStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalationStep {
    pub after: Str,
    pub email: Vec<Str>,
    pub until: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImpact {
    pub min_severity: Option<Str>,
    #[serde(default)]
    pub email: Vec<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIncidents {
    pub open_after: Option<Spanned<i64>>,
    pub resolve_after: Option<Spanned<i64>>,
    pub error_after: Option<Spanned<i64>>,
    pub reopen_within: Option<Str>,
    pub open_window: Option<Str>,
    pub flap: Option<Str>,
    pub due: Option<Str>,
    pub group_keys: Option<Spanned<i64>>,
}
