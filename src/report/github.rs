//! `--format github`: workflow commands that annotate the check file on the pull request
//! (`::error file=…,line=…::`), then the text summary.

use super::metric_text;
use super::text::summary;
use crate::engine::run::RunReport;
use crate::model::{Outcome, Severity, Status};
use std::fmt::Write as _;

/// Escapes a workflow-command message (GitHub's rules for `%`, CR and LF).
fn escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property value (also `:` and `,`).
fn escape_prop(s: &str) -> String {
    escape(s).replace(':', "%3A").replace(',', "%2C")
}

/// Renders annotations: breaches at or above `fail_on` and check errors as errors, milder
/// breaches as warnings.
pub fn render(report: &RunReport, fail_on: Severity) -> String {
    let mut out = String::new();
    for run in &report.runs {
        let file = escape_prop(&run.check.path.display().to_string());
        let title = escape_prop(&format!("dqwatch {}", run.check.id));
        match &run.outcome {
            Outcome::Error { kind, message } => {
                let msg = format!("check could not run ({}): {message}", kind.as_str());
                let _ = writeln!(
                    out,
                    "::error file={file},line=1,title={title}::{}",
                    escape(&msg)
                );
            }
            Outcome::Evaluated { observations, .. } => {
                for o in observations {
                    let Status::Breach { severity } = o.status else {
                        continue;
                    };
                    let level = if severity.at_least(fail_on) {
                        "error"
                    } else {
                        "warning"
                    };
                    let key = if o.key.is_empty() {
                        String::new()
                    } else {
                        format!("[{}] ", o.key)
                    };
                    let msg = format!("{severity} {key}{}", metric_text(run, o));
                    let _ = writeln!(
                        out,
                        "::{level} file={file},line={},title={title}::{}",
                        run.check.sql_line,
                        escape(&msg)
                    );
                }
            }
        }
    }
    out.push_str(&summary(report, fail_on));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_workflow_commands() {
        assert_eq!(super::escape("50%\nnext"), "50%25%0Anext");
        assert_eq!(super::escape_prop("a:b,c"), "a%3Ab%2Cc");
    }
}
