//! `--format github`: workflow commands that annotate the check file on the pull request
//! (`::error file=…,line=…::`, one per check), then the text summary.

use super::metric_text;
use super::origin::Origin;
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

/// Renders annotations, one per check (GitHub shows only 10 of each type per step): a check
/// with a breach at or above `fail_on`, or a check error, is an error; milder breaches a
/// warning; a skipped check a notice. Each lists the check's breaching keys; `file=` is
/// relative to the repository root ([`Origin`]).
pub fn render(report: &RunReport, fail_on: Severity, origin: &Origin) -> String {
    let mut out = String::new();
    for run in &report.runs {
        let file = escape_prop(&origin.relative(&run.check.path));
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
                let mut worst: Option<Severity> = None;
                let mut lines = Vec::new();
                for o in observations {
                    let Status::Breach { severity } = o.status else {
                        continue;
                    };
                    if worst.is_none_or(|w| severity.at_least(w)) {
                        worst = Some(severity);
                    }
                    let key = if o.key.is_empty() {
                        String::new()
                    } else {
                        format!("[{}] ", o.key)
                    };
                    lines.push(format!("{severity} {key}{}", metric_text(run, o)));
                }
                let Some(worst) = worst else {
                    continue;
                };
                let level = if worst.at_least(fail_on) {
                    "error"
                } else {
                    "warning"
                };
                let n = lines.len();
                let msg = format!(
                    "{n} breaching key{} (worst {worst}):\n{}",
                    if n == 1 { "" } else { "s" },
                    lines.join("\n")
                );
                let _ = writeln!(
                    out,
                    "::{level} file={file},line={},title={title}::{}",
                    run.check.sql_line,
                    escape(&msg)
                );
            }
        }
    }
    for skipped in &report.skipped {
        let file = escape_prop(&origin.relative(&skipped.check.path));
        let title = escape_prop(&format!("dqwatch {}", skipped.check.id));
        let _ = writeln!(
            out,
            "::notice file={file},line={},title={title}::{}",
            skipped.check.sql_line,
            escape(&skipped.reason)
        );
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
