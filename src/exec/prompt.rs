//! Questions to the operator at the terminal: typed confirmations, never a bare Enter.
//!
//! Every answer is a word the operator must type (the pool's FQDN before the first disruptive step,
//! `yes` at a pause, a sentence naming the risk for the split-brain override), so a stray keypress
//! cannot confirm anything. `--yes` answers the ordinary questions in advance; the split-brain
//! override and accepting an unforeseen data loss are never answered by `--yes`. Journaling what was
//! answered is the caller's job; this module only asks. The wait is asynchronous, so a signal ends it.

use std::io::{BufRead, IsTerminal, Write};

use super::session::Answers;

/// Asks for `expected` (compared case-insensitively, surrounding blanks ignored). Returns how the
/// confirmation was given (`--yes`, `typed`), or why there is none.
pub(crate) async fn confirm(
    answers: Answers,
    prompt: &str,
    expected: &str,
) -> Result<&'static str, String> {
    match answers {
        Answers::Yes => Ok("--yes"),
        Answers::Ask => {
            typed(
                prompt,
                expected,
                "run again with `--yes` to confirm in advance",
            )
            .await
        }
    }
}

/// Asks for `expected` at the terminal whatever `--yes` says: for choices `--yes` must not make.
/// `instead` says what to do when there is no terminal to ask at.
pub(crate) async fn typed(
    prompt: &str,
    expected: &str,
    instead: &str,
) -> Result<&'static str, String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "confirmation needed, but standard input is not a terminal; {instead}"
        ));
    }
    {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "{prompt}");
    }
    let _ = std::io::stderr().flush();
    // Read on a thread of its own, so that Ctrl-C (or SIGTERM) interrupts the wait at once instead
    // of after the next Enter.
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map(|n| (n, line))
    })
    .await;
    match read {
        Ok(Ok((0, _))) | Ok(Err(_)) | Err(_) => {
            Err("no answer (end of input); nothing more was done".to_owned())
        }
        Ok(Ok((_, line))) if line.trim().eq_ignore_ascii_case(expected) => Ok("typed"),
        Ok(Ok(_)) => Err(format!(
            "the operator did not confirm (expected `{expected}`)"
        )),
    }
}
