//! Command-line arguments (clap). Flags are runtime choices; checks and routing live in files.

use crate::incidents::{ResolveReason, ResponseStatus};
use crate::model::Severity;
use crate::report::Format;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// dqwatch: data quality checks written as SQL, turned into incidents.
#[derive(Debug, Parser)]
#[command(name = "dqwatch", version, about)]
pub struct Args {
    /// The config file (default: $DQWATCH_CONFIG, ./dqwatch.toml, ./config/dqwatch.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr (level from RUST_LOG, default warn).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run checks once and exit by what they found (CI).
    Run(RunArgs),
    /// Check config and check files; with --connect, prepare every query on its warehouse.
    Validate(ValidateArgs),
    /// List checks with connection, schedule, next run, thresholds and tags.
    List(ListArgs),
    /// Print the exact SQL a check runs.
    Render(RenderArgs),
    /// Build the demo SQLite warehouse and run the demo checks.
    Demo(RunArgs),
    /// Schedule checks by cron, escalate, send digests and mail, serve HTTP.
    Daemon {
        /// Address for health, metrics, the API and the incidents page (overrides `[daemon] listen`).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Incidents by hand: list, show, ack, resolve, note, update, assign, snooze, mute, stats,
    /// postmortem.
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// The mail outbox: list, retry a dead mail, deliver what is due.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Start a project in an empty folder: a config with a SQLite connection, one check and
    /// the mail templates.
    Init {
        /// The folder (created if missing; must be empty).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script (e.g. `dqwatch completions bash >
    /// /etc/bash_completion.d/dqwatch`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// Shells `dqwatch completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// `dqwatch incidents …`.
#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// List incidents.
    List {
        /// Which: active (pending, open, acknowledged), open, acknowledged, resolved, pending, all.
        #[arg(long, value_enum, default_value_t = StateFilter::Active)]
        state: StateFilter,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Show an incident and its whole timeline.
    Show {
        /// Incident id.
        id: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Acknowledge an open incident (stops escalation).
    Ack {
        /// Incident id.
        id: i64,
        /// Who acknowledges.
        #[arg(long)]
        by: String,
        /// A note for the timeline.
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve an incident by hand.
    Resolve {
        /// Incident id.
        id: i64,
        /// Who resolves.
        #[arg(long)]
        by: String,
        /// Why (required, not empty, as in the API; goes on the timeline and into the
        /// resolution mail).
        #[arg(long, value_parser = resolve_note)]
        note: String,
        /// The kind of resolution, counted by `incidents stats` (false-positive rate per check):
        /// fixed, false_positive, expected, duplicate, upstream or other.
        #[arg(long, value_parser = resolve_reason, default_value = "fixed")]
        reason: ResolveReason,
    },
    /// Post a status update to the incident's thread (status, impact, next steps, ETA,
    /// workaround).
    Update {
        /// Incident id.
        id: i64,
        /// Where the response stands: investigating, identified, mitigating or monitoring.
        #[arg(long, value_parser = response_status)]
        status: ResponseStatus,
        /// Who or what is affected.
        #[arg(long)]
        impact: Option<String>,
        /// What happens next.
        #[arg(long)]
        next: Option<String>,
        /// When it should be over, as you would say it (`14:00 UTC`, `in 2h`).
        #[arg(long)]
        eta: Option<String>,
        /// What users can do meanwhile.
        #[arg(long)]
        workaround: Option<String>,
        /// Anything else.
        #[arg(long)]
        note: Option<String>,
        /// Who posts it.
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// Set the incident commander (mails the thread).
    Assign {
        /// Incident id.
        id: i64,
        /// The incident commander.
        #[arg(long)]
        to: String,
        /// Who assigns.
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// Hold the incident's notifications for a while; checks keep running and history is
    /// kept. When the snooze ends, an incident still breaching is told once.
    Snooze {
        /// Incident id.
        id: i64,
        /// How long, e.g. 30m, 2h, 1d.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Who snoozes.
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// End a snooze now (what still breaches is told once).
    Unsnooze {
        /// Incident id.
        id: i64,
        /// Who ends it.
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// Hold the incident's notifications until `unmute`; checks keep running.
    Mute {
        /// Incident id.
        id: i64,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Who mutes.
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// End a mute (what still breaches is told once).
    Unmute {
        /// Incident id.
        id: i64,
        /// Who ends it.
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// Add a note to an incident's timeline.
    Note {
        /// Incident id.
        id: i64,
        /// The note.
        text: String,
        /// Who writes it.
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// Counts, time to detect, acknowledge and resolve, escalation and repeat rates.
    Stats {
        /// Window, e.g. 7d or 24h.
        #[arg(long, default_value = "30d")]
        since: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Render the postmortem template (Markdown) of an incident.
    Postmortem {
        /// Incident id.
        id: i64,
    },
}

/// `dqwatch outbox …`.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List outbox messages (mail and channel messages).
    List {
        /// Which: pending, sent, dead, all.
        #[arg(long, value_enum, default_value_t = OutboxFilter::All)]
        state: OutboxFilter,
        /// Only this channel: `mail`, a kind (`slack`, `pagerduty`, `teams`, `webhook`) or
        /// one channel (`slack:NAME`).
        #[arg(long)]
        channel: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put a dead (or pending) message back in line and deliver it now; with `--channel`,
    /// every dead message of that channel.
    Retry {
        /// Outbox id.
        #[arg(required_unless_present = "channel", conflicts_with = "channel")]
        id: Option<i64>,
        /// Every dead message of this channel (`slack:NAME`, `pagerduty:NAME`, `mail` …).
        #[arg(long)]
        channel: Option<String>,
    },
    /// Deliver every pending message now.
    Deliver,
}

/// `incidents list --state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    /// Pending, open or acknowledged.
    Active,
    /// Open.
    Open,
    /// Acknowledged.
    Acknowledged,
    /// Resolved.
    Resolved,
    /// Pending.
    Pending,
    /// Everything.
    All,
}

/// `outbox list --state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutboxFilter {
    /// Waiting.
    Pending,
    /// Delivered.
    Sent,
    /// Dead letters.
    Dead,
    /// Everything.
    All,
}

/// Text or JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// `dqwatch run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Only these checks: an id glob (`finance/*`), `tag:NAME` or `connection:NAME`. Repeatable.
    #[arg(long, short = 's', value_name = "SELECTOR", value_delimiter = ',')]
    pub select: Vec<String>,
    /// Skip these checks (same syntax as --select). Repeatable.
    #[arg(long, value_name = "SELECTOR", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Exit 1 when a breach at this severity or worse is found.
    #[arg(long, value_parser = parse_severity, default_value = "P1")]
    pub fail_on: Severity,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE (the text report still goes to stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only run and report: no state store, no incidents, no mail (a CI gate).
    #[arg(long)]
    pub no_incidents: bool,
}

/// `dqwatch validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Also prepare every query on its warehouse (without running it).
    #[arg(long)]
    pub connect: bool,
}

/// `dqwatch list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only these checks (same syntax as run --select).
    #[arg(long, short = 's', value_name = "SELECTOR", value_delimiter = ',')]
    pub select: Vec<String>,
}

/// `dqwatch render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The check id (`finance/revenue_reconciliation`).
    pub id: String,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

fn resolve_reason(s: &str) -> Result<ResolveReason, String> {
    ResolveReason::by_hand(s)
}

fn response_status(s: &str) -> Result<ResponseStatus, String> {
    s.parse()
}

/// A resolve note: not empty or blank (the API refuses the same).
fn resolve_note(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("a note is required to resolve an incident by hand: say why".into())
    } else {
        Ok(s.to_string())
    }
}
