//! Runbook problems with their place in the file: `path:line:column: error: message`.
//!
//! The loader never stops at the first problem: every check pushes into one [`Diagnostics`] collector,
//! which turns byte offsets into 1-based lines and character columns only when it is finished, so the
//! operator fixes the whole file in one pass. It does so in one walk over the text, not one walk per
//! problem: a mangled file can have thousands of problems, and a walk each made loading quadratic
//! (profiling the fuzz target, fuzz/fuzz_targets/parse_runbook.rs, showed it). This module knows
//! nothing about runbook keys.

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
    /// Settings this build or platform cannot carry out (`unsupported`): errors for `validate` and
    /// for every command that connects, not for printing a plan.
    build: Vec<(usize, String)>,
}

impl<'s> Diagnostics<'s> {
    pub(crate) fn new(file: impl Into<String>, text: &'s str) -> Self {
        Self {
            file: file.into(),
            text,
            found: Vec::new(),
            build: Vec::new(),
        }
    }

    /// Records a problem at the start of `span`.
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.found.push((span.start, message.into()));
    }

    /// Records a setting this build, platform or machine cannot carry out (integrated
    /// authentication without Kerberos, a CA file that is not there), at the start of `span`.
    pub(crate) fn unsupported(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.build.push((span.start, message.into()));
    }

    /// The 1-based line of a byte offset, for messages that point back ("first used on line 12").
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let before = &self.text.as_bytes()[..offset.min(self.text.len())];
        before.iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The problems in file order (stable, so two problems at one place keep the order they were
    /// found). Unsupported settings are left out: they are reported once the file is otherwise
    /// valid, so the same broken file gets the same answer from every build.
    pub(crate) fn finish(self) -> Vec<Diagnostic> {
        self.located()
    }

    /// Only the unsupported settings, in file order (the file had no other problem).
    pub(crate) fn finish_build(mut self) -> Vec<Diagnostic> {
        self.found = std::mem::take(&mut self.build);
        self.located()
    }

    fn located(mut self) -> Vec<Diagnostic> {
        self.found.sort_by_key(|&(offset, _)| offset);
        let mut cursor = Cursor::new(self.text);
        self.found
            .into_iter()
            .map(|(offset, message)| {
                let (line, column) = cursor.advance_to(offset);
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

/// A place in the text that only moves forward, keeping the line and column it has reached.
struct Cursor<'s> {
    text: &'s str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'s> Cursor<'s> {
    fn new(text: &'s str) -> Self {
        Self {
            text,
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    /// 1-based line and column (in characters, as editors count) of a byte offset at or after the
    /// previous one; an earlier offset gets the previous place.
    fn advance_to(&mut self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        // An offset inside a multi-byte character (never produced by the parser, but cheap to guard)
        // is moved back to the character's start rather than panicking in the slice below.
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        if offset > self.offset {
            for c in self.text[self.offset..offset].chars() {
                if c == '\n' {
                    self.line += 1;
                    self.column = 1;
                } else {
                    self.column += 1;
                }
            }
            self.offset = offset;
        }
        (self.line, self.column)
    }
}

/// 1-based line and column of one byte offset.
#[cfg(test)]
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    Cursor::new(text).advance_to(offset)
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
    fn one_walk_locates_many_problems_in_order() {
        let text = "a = 1\nbé = 2\n\nc";
        let mut cursor = Cursor::new(text);
        let places: Vec<_> = [0, 4, 6, 9, 9, 14, 15, 99]
            .into_iter()
            .map(|offset| cursor.advance_to(offset))
            .collect();
        assert_eq!(
            places,
            [
                (1, 1),
                (1, 5),
                (2, 1),
                (2, 3),
                (2, 3),
                (3, 1),
                (4, 1),
                (4, 2)
            ]
        );
        let mut diagnostics = Diagnostics::new("rb.toml", text);
        assert_eq!((diagnostics.line_of(0), diagnostics.line_of(15)), (1, 4));
        diagnostics.error(15..16, "c");
        assert_eq!(diagnostics.finish()[0].to_string(), "rb.toml:4:1: error: c");
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
