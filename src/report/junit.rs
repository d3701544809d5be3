//! `--format junit`: a testsuite per connection (with `time`, `timestamp` and `hostname`), a
//! testcase per check. A breach at or above `--fail-on` is a `<failure>` (all breaching keys
//! in its text), a check error an `<error>`, a skipped check `<skipped/>`; a breach below
//! `--fail-on` passes, its keys in `<system-out>`, so that the test report agrees with the
//! job's exit code. GitLab and Jenkins read it (`tests/fixtures/junit/junit.xsd`).

use super::metric_text;
use super::origin::Origin;
use crate::engine::run::{CheckRun, RunReport};
use crate::model::{Outcome, Severity, Status};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;
use std::time::Duration;

/// `SEVERITY [key] metric` for each breaching key of `run`.
fn breach_lines(run: &CheckRun) -> Vec<String> {
    let Outcome::Evaluated { observations, .. } = &run.outcome else {
        return Vec::new();
    };
    observations
        .iter()
        .filter_map(|o| {
            let Status::Breach { severity } = o.status else {
                return None;
            };
            let key = if o.key.is_empty() {
                String::new()
            } else {
                format!("[{}] ", o.key)
            };
            Some(format!("{severity} {key}{}", metric_text(run, o)))
        })
        .collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The testcase of one check run.
fn case(run: &CheckRun, fail_on: Severity) -> TestCase {
    let lines = breach_lines(run);
    let mut below = None;
    let status = match (&run.outcome, run.outcome.worst()) {
        (Outcome::Error { kind, message }, _) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(format!("{}: {message}", kind.as_str()))
                .set_type(kind.as_str());
            s
        }
        (Outcome::Evaluated { .. }, Some(worst)) if worst.at_least(fail_on) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!(
                "{} (worst {worst}, --fail-on {fail_on})",
                plural(lines.len(), "breaching key", "breaching keys")
            ))
            .set_type(worst.as_str())
            .set_description(lines.join("\n"));
            s
        }
        // A key that could not be judged is the check's error (exit 3), not a pass.
        (Outcome::Evaluated { observations, .. }, _) if run.outcome.unjudged() > 0 => {
            let keys: Vec<String> = observations
                .iter()
                .filter_map(|o| match &o.status {
                    crate::model::Status::Error { message } => {
                        Some(format!("[{}] {message}", o.key))
                    }
                    _ => None,
                })
                .collect();
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(format!(
                "{} could not be judged",
                plural(keys.len(), "key", "keys")
            ))
            .set_type("result")
            .set_description(keys.join("\n"));
            s
        }
        (Outcome::Evaluated { .. }, worst) => {
            if let Some(worst) = worst {
                below = Some(format!(
                    "{} below --fail-on {fail_on} (worst {worst}); not a failure:\n{}\n",
                    plural(lines.len(), "breaching key", "breaching keys"),
                    lines.join("\n")
                ));
            }
            TestCaseStatus::success()
        }
    };
    let mut case = TestCase::new(run.check.id.0.clone(), status);
    case.set_classname(format!("dqwatch.{}", run.check.connection))
        .set_time(run.duration);
    if let Some(text) = below {
        case.set_system_out(text);
    }
    case
}

/// Renders the report as JUnit XML; breaches below `fail_on` do not fail.
pub fn render(report: &RunReport, fail_on: Severity, origin: &Origin) -> String {
    let mut suites: BTreeMap<&str, (TestSuite, Duration)> = BTreeMap::new();
    let suite = |connection: &str| {
        let name = format!("dqwatch.{connection}");
        let mut s = TestSuite::new(name);
        s.set_timestamp(report.started_at.fixed_offset());
        (s, Duration::ZERO)
    };
    for run in &report.runs {
        let entry = suites
            .entry(run.check.connection.as_str())
            .or_insert_with(|| suite(&run.check.connection));
        entry.0.add_test_case(case(run, fail_on));
        entry.1 += run.duration;
    }
    for skipped in &report.skipped {
        let mut status = TestCaseStatus::skipped();
        status.set_message(skipped.reason.clone());
        let mut case = TestCase::new(skipped.check.id.0.clone(), status);
        case.set_classname(format!("dqwatch.{}", skipped.check.connection))
            .set_time(Duration::ZERO);
        suites
            .entry(skipped.check.connection.as_str())
            .or_insert_with(|| suite(&skipped.check.connection))
            .0
            .add_test_case(case);
    }
    let mut junit = Report::new("dqwatch");
    junit
        .set_time(report.duration)
        .set_timestamp(report.started_at.fixed_offset())
        .add_test_suites(suites.into_values().map(|(mut s, time)| {
            s.set_time(time);
            s
        }));
    match junit.to_string() {
        Ok(xml) => fix_attributes(&xml, &origin.hostname),
        Err(e) => format!("<!-- failed to render JUnit: {e} -->\n"),
    }
}

/// What quick-junit does not do: `hostname` on each `<testsuite>`, and no `skipped` on
/// `<testsuites>` (Ant's and Surefire's root has none; Jenkins' schema rejects it).
fn fix_attributes(xml: &str, hostname: &str) -> String {
    let host = format!(" hostname=\"{}\"", escape_attr(hostname));
    let mut out = String::with_capacity(xml.len() + 64);
    let mut rest = xml;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find('>').map_or(rest.len(), |e| e + 1);
        let tag = &rest[..end];
        if tag.starts_with("<testsuites ") || tag.starts_with("<testsuites>") {
            out.push_str(&drop_attribute(tag, "skipped"));
        } else if let Some(attrs) = tag.strip_prefix("<testsuite ") {
            out.push_str("<testsuite");
            out.push_str(&host);
            out.push(' ');
            out.push_str(attrs);
        } else {
            out.push_str(tag);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `tag` without the attribute `name="…"`.
fn drop_attribute(tag: &str, name: &str) -> String {
    let needle = format!(" {name}=\"");
    let Some(start) = tag.find(&needle) else {
        return tag.to_string();
    };
    let after = start + needle.len();
    let Some(len) = tag[after..].find('"') else {
        return tag.to_string();
    };
    format!("{}{}", &tag[..start], &tag[after + len + 1..])
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn attributes_are_fixed_on_the_right_tags() {
        let xml = "<testsuites name=\"dqwatch\" tests=\"1\" skipped=\"0\" time=\"0\">\
                   <testsuite name=\"a\" skipped=\"0\"></testsuite></testsuites>";
        let fixed = super::fix_attributes(xml, "h<1>");
        assert_eq!(
            fixed,
            "<testsuites name=\"dqwatch\" tests=\"1\" time=\"0\">\
             <testsuite hostname=\"h&lt;1&gt;\" name=\"a\" skipped=\"0\"></testsuite></testsuites>"
        );
    }
}
