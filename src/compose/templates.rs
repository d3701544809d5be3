//! The handlebars templates: built-in defaults (the files in `config/templates/`, embedded),
//! each replaced by a file of the same name in `templates_dir` when present. Two registries,
//! because escaping is per registry: HTML parts are escaped, subject and text are not.

use crate::diag::Diagnostic;
use handlebars::Handlebars;
use serde_json::Value;
use std::path::Path;

/// Template files: name, built-in text.
pub const TEMPLATE_FILES: [(&str, &str); 18] = [
    (
        "opened.subject.hbs",
        include_str!("../../config/templates/opened.subject.hbs"),
    ),
    (
        "opened.txt.hbs",
        include_str!("../../config/templates/opened.txt.hbs"),
    ),
    (
        "opened.html.hbs",
        include_str!("../../config/templates/opened.html.hbs"),
    ),
    (
        "updated.txt.hbs",
        include_str!("../../config/templates/updated.txt.hbs"),
    ),
    (
        "updated.html.hbs",
        include_str!("../../config/templates/updated.html.hbs"),
    ),
    (
        "resolved.txt.hbs",
        include_str!("../../config/templates/resolved.txt.hbs"),
    ),
    (
        "resolved.html.hbs",
        include_str!("../../config/templates/resolved.html.hbs"),
    ),
    (
        "escalated.txt.hbs",
        include_str!("../../config/templates/escalated.txt.hbs"),
    ),
    (
        "escalated.html.hbs",
        include_str!("../../config/templates/escalated.html.hbs"),
    ),
    (
        "digest.subject.hbs",
        include_str!("../../config/templates/digest.subject.hbs"),
    ),
    (
        "digest.txt.hbs",
        include_str!("../../config/templates/digest.txt.hbs"),
    ),
    (
        "digest.html.hbs",
        include_str!("../../config/templates/digest.html.hbs"),
    ),
    (
        "status.subject.hbs",
        include_str!("../../config/templates/status.subject.hbs"),
    ),
    (
        "status.txt.hbs",
        include_str!("../../config/templates/status.txt.hbs"),
    ),
    (
        "status.html.hbs",
        include_str!("../../config/templates/status.html.hbs"),
    ),
    (
        "chat_root.txt.hbs",
        include_str!("../../config/templates/chat_root.txt.hbs"),
    ),
    (
        "chat_event.txt.hbs",
        include_str!("../../config/templates/chat_event.txt.hbs"),
    ),
    (
        "postmortem.md.hbs",
        include_str!("../../config/templates/postmortem.md.hbs"),
    ),
];

/// Compiled templates.
pub struct Templates {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

impl Templates {
    /// Loads the templates, preferring files in `dir`. Syntax errors are diagnostics.
    pub fn load(dir: &Path) -> Result<Templates, Vec<Diagnostic>> {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut diags = Vec::new();
        for (file, builtin) in TEMPLATE_FILES {
            let path = dir.join(file);
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => builtin.to_string(),
                Err(e) => {
                    diags.push(Diagnostic::file(
                        &path,
                        format!("cannot read template: {e}"),
                    ));
                    continue;
                }
            };
            let name = file.trim_end_matches(".hbs");
            let registry = if name.ends_with(".html") {
                &mut html
            } else {
                &mut text
            };
            if let Err(e) = registry.register_template_string(name, source) {
                let (line, col) = e.pos().unwrap_or((0, 0));
                diags.push(
                    Diagnostic::at(
                        &path,
                        line,
                        col,
                        format!("template syntax error: {}", e.reason()),
                    )
                    .hint("see https://handlebarsjs.com/guide/ for the syntax"),
                );
            }
        }
        if diags.is_empty() {
            Ok(Templates { text, html })
        } else {
            Err(diags)
        }
    }

    /// Renders `NAME.txt` (or `postmortem.md`).
    pub fn render_text(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let key = if name == "postmortem" {
            "postmortem.md".to_string()
        } else {
            format!("{name}.txt")
        };
        render(&self.text, &key, ctx)
    }

    /// Renders `NAME.html`, escaping every value.
    pub fn render_html(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        render(&self.html, &format!("{name}.html"), ctx)
    }

    /// Renders a named one-line subject template (`digest`).
    pub fn subject_of(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let s = render(&self.text, &format!("{name}.subject"), ctx)?;
        Ok(one_line(&s))
    }

    /// Renders the thread subject (one line).
    pub fn subject(&self, ctx: &Value) -> Result<String, TemplateError> {
        let s = render(&self.text, "opened.subject", ctx)?;
        Ok(one_line(&s))
    }
}

/// A template that failed to render: which file, where in it when handlebars says, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to render template {template}{}: {message}", at(*line, *column))]
pub struct TemplateError {
    /// The template file (`opened.txt.hbs`).
    pub template: String,
    /// 1-based line in the template, when handlebars gives one.
    pub line: Option<usize>,
    /// 1-based column in the template, when handlebars gives one.
    pub column: Option<usize>,
    /// Handlebars' reason (`Failed to access variable in strict mode Some("incident.titel")`).
    pub message: String,
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

fn render(registry: &Handlebars<'static>, key: &str, ctx: &Value) -> Result<String, TemplateError> {
    registry.render(key, ctx).map_err(|e| TemplateError {
        template: format!("{key}.hbs"),
        line: e.line_no,
        column: e.column_no,
        message: e.reason().to_string(),
    })
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issues/9 (compose returned `Result<_, String>`): a render failure says which
    // template, where in it, and why, as fields.
    #[test]
    fn a_render_error_names_the_template_and_where() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("opened.txt.hbs"),
            "{{incident.title}}\n{{incident.titel}}\n",
        )
        .unwrap();
        let templates = Templates::load(dir.path()).unwrap();
        let ctx = serde_json::json!({ "incident": { "title": "t" } });
        let err = templates.render_text("opened", &ctx).unwrap_err();
        assert_eq!(err.template, "opened.txt.hbs");
        assert_eq!((err.line, err.column), (Some(2), Some(1)));
        assert!(err.message.contains("incident.titel"), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("failed to render template opened.txt.hbs at line 2, column 1: "),
            "{err}"
        );
    }
}
