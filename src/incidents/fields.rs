//! The structured fields an event may carry: a responder's status update, a resolution's
//! reason, an assignment, a snooze's end. Stored as JSON on the event (`fields_json`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where the response stands, as incident responders say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Looking for the cause.
    Investigating,
    /// The cause is known.
    Identified,
    /// A fix or workaround is being applied.
    Mitigating,
    /// Fixed; watching that it stays fixed.
    Monitoring,
}

impl ResponseStatus {
    /// Every status, in response order.
    pub const ALL: [ResponseStatus; 4] = [
        ResponseStatus::Investigating,
        ResponseStatus::Identified,
        ResponseStatus::Mitigating,
        ResponseStatus::Monitoring,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::Investigating => "investigating",
            ResponseStatus::Identified => "identified",
            ResponseStatus::Mitigating => "mitigating",
            ResponseStatus::Monitoring => "monitoring",
        }
    }
}

impl fmt::Display for ResponseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResponseStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown status \"{s}\": use investigating, identified, mitigating or monitoring"
                )
            })
    }
}

/// Why an incident was resolved. `passed` is dqwatch's own: the check passed again
/// (`resolve_after` runs); a person resolving by hand gives one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolveReason {
    /// The check passed again.
    Passed,
    /// Someone fixed the data or the pipeline.
    Fixed,
    /// The check was wrong: nothing was broken.
    FalsePositive,
    /// A known, intended change (a backfill, a migration).
    Expected,
    /// Another incident covers it.
    Duplicate,
    /// Caused upstream, outside this team's reach.
    Upstream,
    /// Anything else (the note says what).
    Other,
}

impl ResolveReason {
    /// The reasons a person may give (`passed` is dqwatch's).
    pub const BY_HAND: [ResolveReason; 6] = [
        ResolveReason::Fixed,
        ResolveReason::FalsePositive,
        ResolveReason::Expected,
        ResolveReason::Duplicate,
        ResolveReason::Upstream,
        ResolveReason::Other,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveReason::Passed => "passed",
            ResolveReason::Fixed => "fixed",
            ResolveReason::FalsePositive => "false_positive",
            ResolveReason::Expected => "expected",
            ResolveReason::Duplicate => "duplicate",
            ResolveReason::Upstream => "upstream",
            ResolveReason::Other => "other",
        }
    }

    /// Parses a reason a person gives (`passed` is not one).
    pub fn by_hand(s: &str) -> Result<ResolveReason, String> {
        Self::BY_HAND
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown reason \"{s}\": use fixed, false_positive, expected, duplicate, upstream or other"
                )
            })
    }
}

impl fmt::Display for ResolveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's structured fields; all empty for most events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFields {
    /// A status update's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    /// Who or what is affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<String>,
    /// What happens next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// When it is expected to be over, as the responder wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    /// What users can do meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
    /// A resolution's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ResolveReason>,
    /// An assignment's incident commander.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// A snooze's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl EventFields {
    /// True when no field is set (stored as NULL).
    pub fn is_empty(&self) -> bool {
        *self == EventFields::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_passed_is_not_by_hand() {
        for s in ResponseStatus::ALL {
            assert_eq!(s.as_str().parse::<ResponseStatus>(), Ok(s));
        }
        assert!("resolved".parse::<ResponseStatus>().is_err());
        for r in ResolveReason::BY_HAND {
            assert_eq!(ResolveReason::by_hand(r.as_str()), Ok(r));
        }
        assert!(ResolveReason::by_hand("passed").is_err());
        assert!(ResolveReason::by_hand("false-positive").is_err());
        let f = EventFields {
            reason: Some(ResolveReason::FalsePositive),
            ..EventFields::default()
        };
        let j = serde_json::to_string(&f).unwrap();
        assert_eq!(j, r#"{"reason":"false_positive"}"#);
        assert_eq!(serde_json::from_str::<EventFields>(&j).unwrap(), f);
        assert!(EventFields::default().is_empty());
    }
}
