//! The severity policy and lifecycle settings that apply to one check: thresholds give the
//! base level, `impact` tags may raise it (`[impact.revenue] min_severity = "P0"`).

use crate::config::{Impact, Lifecycle};
use crate::model::{Category, Severity};
use std::collections::BTreeMap;

/// What reconcile needs to know about a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Counts and windows.
    pub lifecycle: Lifecycle,
    /// The check's category.
    pub category: Category,
    /// The floor from its impact tags, if any.
    pub min_severity: Option<Severity>,
    /// Severity of the incident opened when the check keeps failing to run.
    pub failure_severity: Severity,
}

impl Policy {
    /// Builds the policy of a check from its impact tags and the config's `[impact.*]`.
    pub fn new(
        lifecycle: Lifecycle,
        category: Category,
        impact: &[String],
        impacts: &BTreeMap<String, Impact>,
    ) -> Self {
        let min_severity = impact
            .iter()
            .filter_map(|i| impacts.get(i)?.min_severity)
            .min();
        Policy {
            lifecycle,
            category,
            min_severity,
            failure_severity: Severity::P2,
        }
    }

    /// The severity of a breach after the impact floor.
    pub fn classify(&self, base: Severity) -> Severity {
        match self.min_severity {
            Some(floor) if floor.at_least(base) => floor,
            _ => base,
        }
    }

    /// The reopen window as a chrono duration.
    pub fn reopen_within(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lifecycle.reopen_within).unwrap_or(chrono::Duration::zero())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lifecycle: Lifecycle::default(),
            category: Category::QualityDegradation,
            min_severity: None,
            failure_severity: Severity::P2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impact_raises_never_lowers() {
        let mut impacts = BTreeMap::new();
        impacts.insert(
            "revenue".to_string(),
            Impact {
                min_severity: Some(Severity::P1),
                email: vec![],
            },
        );
        let p = Policy::new(
            Lifecycle::default(),
            Category::Reconciliation,
            &["revenue".into()],
            &impacts,
        );
        assert_eq!(p.classify(Severity::P3), Severity::P1);
        assert_eq!(p.classify(Severity::P0), Severity::P0);
        let none = Policy::new(
            Lifecycle::default(),
            Category::Reconciliation,
            &["other".into()],
            &impacts,
        );
        assert_eq!(none.classify(Severity::P3), Severity::P3);
    }
}
