//! The console a host process may not have. powershell.exe started by a service, a scheduled task or
//! any process without a console window still reads and writes its redirected standard streams, but
//! setting `[Console]::InputEncoding` or `[Console]::OutputEncoding` calls SetConsoleCP /
//! SetConsoleOutputCP on a console that is not there: .NET throws an IOException, "The handle is
//! invalid." (Win32 error 6, whose system text ends with CRLF), and PowerShell reports it as a
//! SetValueInvocationException. That is a statement-terminating error: after
//! `$ErrorActionPreference = 'Stop'` it ends a `-File` script (exit code 1), unless a `try` catches it.
//!
//! The lab runs no PowerShell, so before READY it reads the host script for exactly these statements
//! when the process is to have no console (`{"kind": "host", "no_console": true}` in faults.json). The
//! scan is lexical, not a parser: comments and quoted strings are skipped, and a `{` opened right
//! after the keyword `try` counts as a try block until its `}`.

use std::path::Path;

use serde_json::Value as Json;

/// Whether faults.json says the host process is started without a console.
pub(crate) fn missing(lab_dir: &Path) -> bool {
    let Ok(bytes) = std::fs::read(lab_dir.join("faults.json")) else {
        return false;
    };
    let Ok(doc) = serde_json::from_slice::<Json>(&bytes) else {
        return false;
    };
    doc.get("rules")
        .and_then(Json::as_array)
        .is_some_and(|rules| {
            rules.iter().any(|r| {
                r.get("kind").and_then(Json::as_str) == Some("host")
                    && r.get("no_console").and_then(Json::as_bool) == Some(true)
            })
        })
}

/// What running `script` (at `shown`) without a console writes to stderr before READY, and whether
/// the script ends there (`true`: the host exits with code 1 and never reports ready).
pub(crate) fn run_without_console(script: &str, shown: &str) -> (Vec<String>, bool) {
    let mut errors = Vec::new();
    let mut stop = false;
    // One entry per open `{`: whether it opened a `try` block.
    let mut blocks: Vec<bool> = Vec::new();
    let mut last_word = String::new();
    let mut in_block_comment = false;
    for (number, line) in script.lines().enumerate() {
        let code = code_of(line, &mut in_block_comment);
        let lower = code.to_ascii_lowercase();
        if assigns(&lower, "$erroractionpreference") {
            // 'Stop' or "Stop" (blanked in `code`, so read from the line up to its comment, if any):
            // every other value lets the script go on.
            let value = line.to_ascii_lowercase();
            let value = value.split(" #").next().unwrap_or_default();
            stop = value.rsplit('=').next().is_some_and(|v| v.contains("stop"));
        }
        // Braces are followed up to the assignment, so that `try { [Console]::InputEncoding = ... }`
        // on one line counts as inside its try, then to the end of the line.
        let mut done = 0;
        for property in ["InputEncoding", "OutputEncoding"] {
            let target = format!("[console]::{}", property.to_ascii_lowercase());
            let Some(at) = assignment(&lower, &target) else {
                continue;
            };
            if at > done {
                follow_blocks(&code[done..at], &mut blocks, &mut last_word);
                done = at;
            }
            if !blocks.iter().any(|t| *t) {
                errors.push(set_value_error(property, shown, number + 1, line));
                if stop {
                    return (errors, true);
                }
            }
        }
        follow_blocks(&code[done..], &mut blocks, &mut last_word);
    }
    (errors, false)
}

/// Whether `lower` (a line's code, lowercased) assigns `target` with `=` (not `-eq`, not `==`).
fn assigns(lower: &str, target: &str) -> bool {
    assignment(lower, target).is_some()
}

/// Where in `lower` the assignment to `target` starts, if the line makes one.
fn assignment(lower: &str, target: &str) -> Option<usize> {
    lower.find(target).filter(|at| {
        let rest = lower[at + target.len()..].trim_start();
        rest.starts_with('=') && !rest.starts_with("==")
    })
}

/// Opens and closes blocks for the braces in `code`; a `{` right after the word `try` opens a try.
fn follow_blocks(code: &str, blocks: &mut Vec<bool>, last_word: &mut String) {
    for token in words_and_signs(code) {
        match token.as_str() {
            "{" => blocks.push(last_word.eq_ignore_ascii_case("try")),
            "}" => {
                blocks.pop();
            }
            _ => {}
        }
        *last_word = token;
    }
}

/// The line without its comment and with quoted strings blanked, so that neither a comment that
/// mentions `[Console]::InputEncoding` nor a brace inside a string counts.
fn code_of(line: &str, in_block_comment: &mut bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    // PowerShell's own escapes (`` `' ``, `''` inside '...') only keep a string open longer; a
    // host script needs neither, so the first closing quote ends it.
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if *in_block_comment {
            if c == '#' && chars.peek() == Some(&'>') {
                chars.next();
                *in_block_comment = false;
            }
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            Some(_) => out.push(' '),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '<' if chars.peek() == Some(&'#') => {
                    chars.next();
                    *in_block_comment = true;
                }
                '#' => break,
                _ => out.push(c),
            },
        }
    }
    out
}

/// The words and signs of a line's code, in order (a word is a run of letters).
fn words_and_signs(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in code.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        // Every other sign is a token of its own, so that only `try {` (and not `$try = @{`) opens
        // a try block.
        if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// Windows PowerShell 5.1's rendering of the error on stderr for a `-File` script.
fn set_value_error(property: &str, shown: &str, line_number: usize, line: &str) -> String {
    let statement = line.trim_end();
    let start = statement.len() - statement.trim_start().len();
    let squiggle = "~".repeat(statement.trim_start().chars().count());
    format!(
        "Exception setting \"{property}\": \"The handle is invalid.\r\n\"\nAt {shown}:{line_number} char:{}\n+ {}\n+ {squiggle}\n    + CategoryInfo          : NotSpecified: (:) [], SetValueInvocationException\n    + FullyQualifiedErrorId : ExceptionWhenSetting\n",
        start + 1,
        statement.trim_start(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD_HOST: &str = "$ErrorActionPreference = 'Stop'\n$utf8 = New-Object System.Text.UTF8Encoding $false\n[Console]::InputEncoding = $utf8\n[Console]::OutputEncoding = $utf8\nWrite-Output 'PCFAIL-READY '\n";

    #[test]
    fn setting_the_console_encoding_without_a_console_ends_a_stop_script_before_ready() {
        let (errors, ends) = run_without_console(OLD_HOST, "C:\\pcfail\\host.ps1");
        assert!(ends);
        assert_eq!(
            errors,
            vec![
                "Exception setting \"InputEncoding\": \"The handle is invalid.\r\n\"\nAt C:\\pcfail\\host.ps1:3 char:1\n+ [Console]::InputEncoding = $utf8\n+ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n    + CategoryInfo          : NotSpecified: (:) [], SetValueInvocationException\n    + FullyQualifiedErrorId : ExceptionWhenSetting\n"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn the_error_is_reported_and_the_script_goes_on_without_stop_or_inside_try() {
        let cases: &[(&str, usize, bool)] = &[
            // Without 'Stop', a statement-terminating error does not end the script.
            (
                "[Console]::InputEncoding = $utf8\n[Console]::OutputEncoding = $utf8\n",
                2,
                false,
            ),
            // Caught by a try, on one line or over several.
            (
                "$ErrorActionPreference = 'Stop'\ntry { [Console]::InputEncoding = $utf8 } catch { }\n",
                0,
                false,
            ),
            (
                "$ErrorActionPreference = 'Stop'\ntry\n{\n    [Console]::OutputEncoding = $utf8\n}\ncatch {}\n",
                0,
                false,
            ),
            // After the try block closes, an assignment is outside it again.
            (
                "$ErrorActionPreference = 'Stop'\ntry { $x = 1 } catch { }\n[Console]::OutputEncoding = $utf8\n",
                1,
                true,
            ),
            // Comments, strings and comparisons are not assignments.
            (
                "$ErrorActionPreference = 'Stop'\n# [Console]::InputEncoding = $utf8\n<# [Console]::OutputEncoding = $x #>\n$s = '[Console]::InputEncoding = 1'\nif ([Console]::InputEncoding -eq $utf8) { }\n$r = New-Object System.IO.StreamReader -ArgumentList ([Console]::OpenStandardInput()), $utf8\n",
                0,
                false,
            ),
        ];
        for (script, count, ends) in cases {
            let (errors, ended) = run_without_console(script, "host.ps1");
            assert_eq!((errors.len(), ended), (*count, *ends), "{script}");
        }
    }

    #[test]
    fn only_a_host_rule_with_no_console_takes_the_console_away() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!missing(dir.path()), "no faults.json");
        let write = |text: &str| std::fs::write(dir.path().join("faults.json"), text).unwrap();
        write(
            r#"{"rules":[{"kind":"cmdlet","cmdlet":"Get-CsPersistentChatState","no_console":true}]}"#,
        );
        assert!(!missing(dir.path()));
        write(r#"{"rules":[{"kind":"host","no_console":false}]}"#);
        assert!(!missing(dir.path()));
        write(r#"{"rules":[{"kind":"host","no_console":true}]}"#);
        assert!(missing(dir.path()));
    }
}
