//! The lifecycle settings and escalation chains that apply to one check's incidents. The
//! severity floor of its `impact` tags is applied once, by evaluation
//! ([`crate::evaluate::apply_policy`]), before anyone reads the outcome.

use super::types::Step;
use crate::config::{Lifecycle, SeverityPolicy, Until};
use crate::model::{Category, Severity};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What reconcile needs to know about a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Counts and windows.
    pub lifecycle: Lifecycle,
    /// The check's category.
    pub category: Category,
    /// Severity of the incident opened when the check keeps failing to run.
    pub failure_severity: Severity,
    /// Escalation chain and reminder interval (seconds) per severity.
    pub escalations: BTreeMap<Severity, (Vec<Step>, Option<u64>)>,
    /// The zone a partition's day (and so its due time) is read in.
    pub timezone: chrono_tz::Tz,
}

impl Policy {
    /// Builds the policy of a check from its lifecycle, category and the escalation chains
    /// of `[severity.*]`.
    pub fn new(
        lifecycle: Lifecycle,
        category: Category,
        severities: &BTreeMap<Severity, SeverityPolicy>,
    ) -> Self {
        Policy {
            lifecycle,
            category,
            failure_severity: Severity::P2,
            escalations: escalations(severities),
            timezone: chrono_tz::UTC,
        }
    }

    /// Copies the chain and reminders of `severity` onto an incident opening at `now`.
    pub fn arm(&self, inc: &mut super::Incident, now: DateTime<Utc>) {
        let (steps, renotify) = self
            .escalations
            .get(&inc.severity)
            .cloned()
            .unwrap_or_default();
        inc.next_escalation_at = steps.first().map(|s| now + secs(s.after_secs));
        inc.escalation = steps;
        inc.escalation_step = 0;
        inc.renotify_secs = renotify;
        inc.next_reminder_at = renotify.map(|r| now + secs(r));
    }

    /// Re-arms an incident reopening at `now` after someone resolved it by hand while it was
    /// still breaching: the same problem goes on, so its copied chain resumes where it stood
    /// (no step is sent twice), each remaining step measured from the reopening; reminders
    /// start again.
    pub fn resume(&self, inc: &mut super::Incident, now: DateTime<Utc>) {
        inc.next_escalation_at = inc
            .escalation
            .get(inc.escalation_step as usize)
            .map(|s| now + secs(s.after_secs));
        inc.next_reminder_at = inc.renotify_secs.map(|r| now + secs(r));
    }

    /// The reopen window as a chrono duration.
    pub fn reopen_within(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lifecycle.reopen_within).unwrap_or(chrono::Duration::zero())
    }
}

/// Seconds as a chrono duration.
pub fn secs(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

/// The escalation chains of the config, per severity.
pub fn escalations(
    severities: &BTreeMap<Severity, SeverityPolicy>,
) -> BTreeMap<Severity, (Vec<Step>, Option<u64>)> {
    severities
        .iter()
        .map(|(sev, p)| {
            let steps = p
                .escalation
                .iter()
                .map(|s| Step {
                    after_secs: s.after.as_secs(),
                    email: s.email.clone(),
                    until_resolved: s.until == Until::Resolved,
                })
                .collect();
            (*sev, (steps, p.renotify_every.map(|d| d.as_secs().max(1))))
        })
        .collect()
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lifecycle: Lifecycle::default(),
            category: Category::QualityDegradation,
            failure_severity: Severity::P2,
            escalations: BTreeMap::new(),
            timezone: chrono_tz::UTC,
        }
    }
}
