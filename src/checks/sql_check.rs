//! One `.sql` check file → [`Check`]: its `-- dqwatch` header read as TOML, every problem
//! reported at the `.sql` file's own line and column (not the extracted TOML's).

use super::Check;
use super::fields::{build, parse_raw};
use super::header::{self, MARKER};
use crate::config::{Config, Ctx};
use crate::diag::Diagnostic;
use crate::model::CheckId;
use std::path::Path;

/// Parses and validates one `.sql` check file's text. `id` and `path` come from the catalog.
pub fn parse_check(
    id: CheckId,
    path: &Path,
    text: &str,
    config: &Config,
) -> Result<Check, Vec<Diagnostic>> {
    let Some(header) = header::split(text) else {
        return Err(vec![Diagnostic::at(path, 1, 1, format!("a check must start with the line `{MARKER}`"))
            .hint(format!("put `{MARKER}` on the first line, then the header as `-- key = value` lines, then the query"))]);
    };
    let position = |line, column| header.file_position(line, column);
    let mut ctx = Ctx::embedded(path, &header.toml, &position);
    let Some(raw) = parse_raw(&mut ctx, &header.toml) else {
        return Err(ctx.diags);
    };
    if let Some(r) = &raw.rule {
        ctx.error(
            r.span(),
            "`rule` belongs in a .toml check",
            Some("move the rule check to a .toml file (rule = \"…\", [params]); a .sql check is its own query".into()),
        );
    }
    if header.query.trim().is_empty() {
        ctx.diags.push(
            Diagnostic::at(
                path,
                header.query_line,
                1,
                "the check has no query after its header",
            )
            .hint("write the SELECT after the `--` header lines"),
        );
    }
    build(ctx, &header, id, raw, config, None)
}
