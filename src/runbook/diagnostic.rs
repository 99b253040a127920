//! Runbook problems with their place in the file: `path:line:column: error: message`.
//!
//! The loader never stops at the first problem: every check pushes into one [`Diagnostics`] collector,
//! which turns byte offsets into 1-based lines and character columns only when it is finished, so the
//! operator fixes the whole file in one pass. This module knows nothing about runbook keys.

use std::fmt;
use std::ops::Range;

/// One problem in a runbook, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Collects problems found while reading one runbook text.
#[derive(Debug)]
pub(crate) struct Diagnostics<'s> {
    file: String,
    text: &'s str,
    found: Vec<(usize, String)>,
}

impl<'s> Diagnostics<'s> {
    pub(crate) fn new(file: impl Into<String>, text: &'s str) -> Self {
        Self {
            file: file.into(),
            text,
            found: Vec::new(),
        }
    }

    /// Records a problem at the start of `span`.
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.found.push((span.start, message.into()));
    }

    /// The 1-based line of a byte offset, for messages that point back ("first used on line 12").
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The problems in file order (stable, so two problems at one place keep the order they were found).
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.found.sort_by_key(|&(offset, _)| offset);
        self.found
            .into_iter()
            .map(|(offset, message)| {
                let (line, column) = line_column(self.text, offset);
                Diagnostic {
                    file: self.file.clone(),
                    line,
                    column,
                    message,
                }
            })
            .collect()
    }
}

/// 1-based line and column (in characters, as editors count) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    // An offset inside a multi-byte character (never produced by the parser, but cheap to guard) is
    // moved back to the character's start rather than panicking in the slice below.
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let text = "a = 1\nbé = 2\n\nc";
        let cases = [
            (0, (1, 1)),
            (4, (1, 5)),
            (6, (2, 1)),
            (9, (2, 3)),
            (14, (3, 1)),
            (15, (4, 1)),
            (99, (4, 2)),
        ];
        for (offset, expected) in cases {
            assert_eq!(line_column(text, offset), expected, "offset {offset}");
        }
    }

    #[test]
    fn problems_are_reported_in_file_order_with_their_place() {
        let mut diagnostics = Diagnostics::new("rb.toml", "x = 1\ny = 2\n");
        diagnostics.error(6..7, "second");
        diagnostics.error(0..1, "first");
        let lines: Vec<String> = diagnostics
            .finish()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            ["rb.toml:1:1: error: first", "rb.toml:2:1: error: second"]
        );
    }
}
