//! Fuzz target: `pcfail::runbook::parse_str` on any text, starting from the shipped runbook.
//!
//! What loading promises, whatever the file holds: it returns (no panic, no hang: libFuzzer's
//! `-timeout` and `-max_len` in `.ci/run` bound both), and it either yields a runbook whose bounds
//! hold or reports every problem as one well-formed `path:line:column: error: message` line, in file
//! order, placed inside the text, and echoing no character that could drive the operator's terminal.
//! The rules about which values are right belong to the unit and integration tests, not here.

#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pcfail::runbook::{Diagnostic, LoadError, Operation, Runbook, parse_str};

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    // `runbook::load` decodes the file by its byte-order mark (UTF-8 without one) before parsing;
    // decoding lossily here keeps byte-level mutations useful instead of throwing most of them away.
    let text = String::from_utf8_lossy(data);
    match parse_str(Path::new(FILE), &text) {
        Ok(runbook) => bounds_hold(&runbook),
        Err(LoadError::Invalid { diagnostics }) => well_formed(&text, &diagnostics),
        Err(other) => panic!("parse_str can only fail with diagnostics, got {other:?}"),
    }
});

fn bounds_hold(runbook: &Runbook) {
    let hour = Duration::from_secs(3600);
    for t in [runbook.timeouts.connect, runbook.timeouts.query] {
        assert!(!t.is_zero() && t <= hour, "runbook timeout {t:?}");
    }
    for operation in [
        Operation::Failover,
        Operation::PlannedFailover,
        Operation::Failback,
    ] {
        for step in runbook.procedure(operation).unwrap_or_default().steps {
            if let Some(t) = step.timeout {
                assert!(!t.is_zero() && t <= 24 * hour, "step timeout {t:?}");
            }
        }
    }
}

fn well_formed(text: &str, diagnostics: &[Diagnostic]) {
    assert!(!diagnostics.is_empty(), "invalid, but no problem reported");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut previous = (1, 1);
    for d in diagnostics {
        assert_eq!(d.file, FILE);
        assert!(
            (1..=lines.len()).contains(&d.line),
            "line {} outside 1..={}: {d}",
            d.line,
            lines.len()
        );
        let width = lines[d.line - 1].chars().count();
        assert!(
            (1..=width + 1).contains(&d.column),
            "column {} outside 1..={}: {d}",
            d.column,
            width + 1
        );
        assert!((d.line, d.column) >= previous, "out of file order: {d}");
        previous = (d.line, d.column);
        assert!(!d.message.is_empty(), "empty message at {d}");
        if let Some(c) = d.message.chars().find(|&c| unsafe_to_print(c)) {
            panic!("message holds U+{:04X}: {:?}", u32::from(c), d.message);
        }
        assert_eq!(
            d.to_string(),
            format!("{FILE}:{}:{}: error: {}", d.line, d.column, d.message)
        );
    }
}

/// Characters no message may carry to a terminal: a line break would split the one-line format, an
/// escape would be obeyed, and a bidirectional control would reorder what the operator reads.
/// Written out here rather than taken from pcfail, so a mistake in pcfail's list is not shared.
fn unsafe_to_print(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}
