//! Errors that point into a `.mig` file, rendered the way rustc renders them:
//! a headline, `--> path:line:col`, the source line and a caret under the span.

use crate::syntax::ast::Span;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Diagnostics of one file, with what is needed to render them.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDiagnostics {
    pub path: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileDiagnostics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&render_one(&self.path, &self.source, d));
            out.push('\n');
        }
        out
    }
}

/// One diagnostic as text. The caret covers the span's part of its first line.
pub fn render_one(path: &str, source: &str, d: &Diagnostic) -> String {
    let line_text = source
        .lines()
        .nth(d.span.line.saturating_sub(1))
        .unwrap_or("");
    let gutter = d.span.line.to_string().len();
    let pad = " ".repeat(gutter);
    let caret_start = line_text
        .char_indices()
        .take_while(|(i, _)| *i < column_byte_offset(line_text, d.span.col))
        .count();
    let span_len = source
        .get(d.span.start..d.span.end)
        .map(|s| s.lines().next().unwrap_or("").chars().count())
        .unwrap_or(1)
        .max(1);
    let mut out = String::new();
    let _ = writeln!(out, "error: {}", d.message);
    let _ = writeln!(out, "{pad}--> {}:{}:{}", path, d.span.line, d.span.col);
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{} | {}", d.span.line, line_text);
    let _ = writeln!(
        out,
        "{pad} | {}{}",
        " ".repeat(caret_start),
        "^".repeat(span_len)
    );
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} = help: {help}");
    }
    out
}

/// Byte offset in `line` of the 1-based character column `col`.
fn column_byte_offset(line: &str, col: usize) -> usize {
    line.char_indices()
        .nth(col.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(line.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_the_span() {
        let source = "backfill x on t {\n    batch 0\n}\n";
        let start = source.find('0').unwrap();
        let span = Span {
            start,
            end: start + 1,
            line: 2,
            col: 11,
        };
        let text = render_one(
            "specs/a.mig",
            source,
            &Diagnostic::new(span, "batch size must be at least 1"),
        );
        assert_eq!(
            text,
            "error: batch size must be at least 1\n --> specs/a.mig:2:11\n  |\n2 |     batch 0\n  |           ^\n"
        );
    }
}
