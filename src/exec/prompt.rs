//! Questions to the operator at the terminal: typed confirmations, never a bare Enter.
//!
//! Every answer is a word the operator must type (the pool's FQDN before the first disruptive step,
//! `yes` at a pause, a sentence naming the risk for the split-brain override), so a stray keypress
//! cannot confirm anything. `--yes` answers the ordinary questions in advance; the split-brain
//! override and accepting an unforeseen data loss are never answered by `--yes`. Journaling what was
//! answered is the caller's job; this module only asks.

use std::io::{BufRead, IsTerminal, Write};

use super::session::Answers;

/// Asks for `expected` (compared case-insensitively, surrounding blanks ignored). Returns how the
/// confirmation was given (`--yes`, `typed`), or why there is none.
pub(crate) fn confirm(
    answers: Answers,
    prompt: &str,
    expected: &str,
) -> Result<&'static str, String> {
    match answers {
        Answers::Yes => Ok("--yes"),
        Answers::Ask => typed(
            prompt,
            expected,
            "run again with `--yes` to confirm in advance",
        ),
    }
}

/// Asks for `expected` at the terminal whatever `--yes` says: for choices `--yes` must not make.
/// `instead` says what to do when there is no terminal to ask at.
pub(crate) fn typed(prompt: &str, expected: &str, instead: &str) -> Result<&'static str, String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "confirmation needed, but standard input is not a terminal; {instead}"
        ));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => Err("no answer (end of input); nothing more was done".to_owned()),
        Ok(_) if line.trim().eq_ignore_ascii_case(expected) => Ok("typed"),
        Ok(_) => Err(format!(
            "the operator did not confirm (expected `{expected}`)"
        )),
    }
}
