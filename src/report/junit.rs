//! `--format junit`: a testsuite per connection, a testcase per check; a breach is a
//! `<failure>` (all breaching keys in its text), a check error an `<error>`. GitLab and
//! Jenkins read it.

use super::metric_text;
use crate::engine::run::RunReport;
use crate::model::{Outcome, Status};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;

/// Renders the report as JUnit XML.
pub fn render(report: &RunReport) -> String {
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for run in &report.runs {
        let status = match &run.outcome {
            Outcome::Error { kind, message } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(format!("{}: {message}", kind.as_str()))
                    .set_type(kind.as_str());
                s
            }
            Outcome::Evaluated { observations, .. } => {
                let breaches: Vec<_> = observations
                    .iter()
                    .filter(|o| matches!(o.status, Status::Breach { .. }))
                    .collect();
                match (run.outcome.worst(), breaches.is_empty()) {
                    (Some(worst), false) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        let lines: Vec<String> = breaches
                            .iter()
                            .map(|o| {
                                let Status::Breach { severity } = o.status else {
                                    return String::new();
                                };
                                let key = if o.key.is_empty() {
                                    String::new()
                                } else {
                                    format!("[{}] ", o.key)
                                };
                                format!("{severity} {key}{}", metric_text(run, o))
                            })
                            .collect();
                        s.set_message(format!(
                            "{} breach{} (worst {worst})",
                            breaches.len(),
                            if breaches.len() == 1 { "" } else { "es" }
                        ))
                        .set_type(worst.as_str())
                        .set_description(lines.join("\n"));
                        s
                    }
                    _ => TestCaseStatus::success(),
                }
            }
        };
        let mut case = TestCase::new(run.check.id.0.clone(), status);
        case.set_classname(format!("dqwatch.{}", run.check.connection))
            .set_time(run.duration);
        suites
            .entry(run.check.connection.as_str())
            .or_insert_with(|| TestSuite::new(format!("dqwatch.{}", run.check.connection)))
            .add_test_case(case);
    }
    let mut junit = Report::new("dqwatch");
    junit
        .set_time(report.duration)
        .add_test_suites(suites.into_values());
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- failed to render JUnit: {e} -->\n"))
}
