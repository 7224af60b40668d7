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

/// Columns a tab takes in the echoed source line, as rustc shows it.
const TAB_WIDTH: usize = 4;

/// One diagnostic as text. The caret covers the span's part of its first line. Tabs in the
/// echoed line are expanded to spaces and the caret is placed by the same count, so it sits
/// under the span whatever tab width the terminal uses; the reported column still counts a
/// tab as one character.
pub fn render_one(path: &str, source: &str, d: &Diagnostic) -> String {
    let line_text = source
        .lines()
        .nth(d.span.line.saturating_sub(1))
        .unwrap_or("");
    let gutter = d.span.line.to_string().len();
    let pad = " ".repeat(gutter);
    let caret_start = display_width(&line_text[..column_byte_offset(line_text, d.span.col)]);
    let span_len = source
        .get(d.span.start..d.span.end)
        .map(|s| display_width(s.lines().next().unwrap_or("")))
        .unwrap_or(1)
        .max(1);
    let mut out = String::new();
    let _ = writeln!(out, "error: {}", d.message);
    let _ = writeln!(out, "{pad}--> {}:{}:{}", path, d.span.line, d.span.col);
    let _ = writeln!(out, "{pad} |");
    let echoed = line_text.replace('\t', &" ".repeat(TAB_WIDTH));
    let _ = writeln!(out, "{} | {}", d.span.line, echoed);
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

/// The columns `text` takes once its tabs are expanded.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| if c == '\t' { TAB_WIDTH } else { 1 })
        .sum()
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

    #[test]
    fn caret_lines_up_under_a_tab_indented_span() {
        let source = "backfill x on t {\n\tset x = a +\t!b\n}\n";
        let start = source.find('!').unwrap();
        let span = Span {
            start,
            end: start + 1,
            line: 2,
            col: 14,
        };
        let text = render_one(
            "specs/a.mig",
            source,
            &Diagnostic::new(span, "expected an expression, found `!`"),
        );
        assert_eq!(
            text,
            "error: expected an expression, found `!`\n --> specs/a.mig:2:14\n  |\n\
             2 |     set x = a +    !b\n  |                    ^\n"
        );
    }
}
