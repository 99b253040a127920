//! The three quoting functions: the whole injection surface of pcfail.
//!
//! Every value that comes from a runbook or a server reaches T-SQL or PowerShell text through exactly one
//! of these functions, so an audit of injection safety is an audit of this file. Runbook names are also
//! validated strictly when loaded (`runbook::check`), but quoting never relies on that: a value that
//! passed validation by mistake still cannot leave its literal. This module does not validate meaning
//! (whether a name is a good database name); it only guarantees that a value stays one literal.

use thiserror::Error;

/// The longest name `QUOTENAME` accepts: `sysname` is `nvarchar(128)`, counted in UTF-16 code units.
const SYSNAME_MAX_UNITS: usize = 128;

/// A value that cannot be quoted as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuoteError {
    /// `QUOTENAME` returns NULL for inputs over 128 characters; we refuse instead of emitting NULL.
    #[error("`{name}` is longer than 128 characters, the limit of a SQL Server name")]
    IdentifierTooLong { name: String },
}

/// Quotes a T-SQL identifier as `QUOTENAME(name)` does: `[` + name with every `]` doubled + `]`.
///
/// Inside brackets only `]` is special, so doubling it is sufficient; `[`, quotes, `;`, `--`, newlines
/// and NUL stay part of the name. Like `QUOTENAME`, names over 128 characters are refused.
pub fn sql_identifier(name: &str) -> Result<String, QuoteError> {
    if name.encode_utf16().count() > SYSNAME_MAX_UNITS {
        return Err(QuoteError::IdentifierTooLong {
            name: name.to_owned(),
        });
    }
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('[');
    for c in name.chars() {
        if c == ']' {
            quoted.push(']');
        }
        quoted.push(c);
    }
    quoted.push(']');
    Ok(quoted)
}

/// Quotes a T-SQL Unicode string literal: `N'` + text with every `'` doubled + `'`.
///
/// T-SQL has no escape character inside a literal (backslash is ordinary) and, unlike PowerShell, treats
/// only U+0027 as a quote, so doubling it is sufficient. The `N` prefix keeps non-ASCII paths intact.
pub fn sql_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 3);
    quoted.push_str("N'");
    for c in text.chars() {
        if c == '\'' {
            quoted.push('\'');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// Whether PowerShell's tokenizer treats `c` as a single quote (reference I.4: `CharTraits.IsSingleQuote`).
pub fn is_powershell_single_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

/// Quotes a PowerShell verbatim string: `'` + text with every single-quote character doubled + `'`.
///
/// PowerShell ends a single-quoted string at any of five characters (`'` and the typographic U+2018,
/// U+2019, U+201A, U+201B), so doubling only `'` would let `x’; Remove-Item ...` escape. This doubles
/// each of the five as itself, which is what `CodeGeneration.EscapeSingleQuotedStringContent` does.
/// Inside single quotes `$`, backticks and `"` are not special, so nothing else needs escaping.
pub fn ps_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if is_powershell_single_quote(c) {
            quoted.push(c);
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a bracketed identifier back the way the T-SQL lexer does; returns the name and what
    /// follows the closing bracket. Used to prove that no input can end the identifier early.
    fn lex_bracketed(text: &str) -> (String, &str) {
        let mut chars = text.char_indices().peekable();
        assert_eq!(chars.next().map(|(_, c)| c), Some('['));
        let mut name = String::new();
        while let Some((i, c)) = chars.next() {
            if c == ']' {
                if chars.peek().map(|&(_, c)| c) == Some(']') {
                    chars.next();
                    name.push(']');
                } else {
                    return (name, &text[i + 1..]);
                }
            } else {
                name.push(c);
            }
        }
        panic!("unterminated identifier: {text}");
    }

    /// Reads a quoted literal back: `quote` decides which characters close it; a doubled closer is one
    /// character of content. Returns the content and the rest after the literal.
    fn lex_quoted(text: &str, prefix: &str, quote: fn(char) -> bool) -> (String, String) {
        let body = text.strip_prefix(prefix).expect("literal prefix");
        let mut chars = body.chars().peekable();
        let mut content = String::new();
        while let Some(c) = chars.next() {
            if quote(c) {
                // PowerShell accepts any single-quote character as the second of a doubled pair; we
                // always emit the same character twice, which is one of the accepted pairs.
                if chars.peek().is_some_and(|&n| quote(n)) {
                    content.push(chars.next().expect("peeked"));
                } else {
                    return (content, chars.collect());
                }
            } else {
                content.push(c);
            }
        }
        panic!("unterminated literal: {text}");
    }

    const HOSTILE: &[&str] = &[
        "mgc",
        "",
        "mgc]; DROP DATABASE x; --",
        "a]]b",
        "]",
        "[",
        "it's",
        "x'; DROP TABLE t; --",
        "x’; Remove-Item C:\\ -Recurse; ’",
        "‘‛‚’'",
        "line1\nline2\r\n",
        "nul\0byte",
        "$(Remove-Item x) `n \"dq\"",
        "N'already quoted'",
    ];

    #[test]
    fn sql_identifier_round_trips_every_hostile_name_as_one_identifier() {
        for &name in HOSTILE {
            let quoted = sql_identifier(name).expect("short names quote");
            let (back, rest) = lex_bracketed(&quoted);
            assert_eq!((back.as_str(), rest), (name, ""), "input {name:?}");
        }
    }

    #[test]
    fn sql_identifier_matches_quotename_examples() {
        let cases = [
            ("mgc", "[mgc]"),
            ("abc[]def", "[abc[]]def]"),
            ("a]]b", "[a]]]]b]"),
            ("mgc]; DROP DATABASE x; --", "[mgc]]; DROP DATABASE x; --]"),
        ];
        for (name, expected) in cases {
            assert_eq!(
                sql_identifier(name).as_deref(),
                Ok(expected),
                "input {name:?}"
            );
        }
    }

    #[test]
    fn sql_identifier_refuses_names_over_128_characters_like_quotename() {
        let cases = [(128, true), (129, false)];
        for (len, ok) in cases {
            let name = "a".repeat(len);
            assert_eq!(sql_identifier(&name).is_ok(), ok, "length {len}");
        }
        // Counted in UTF-16 units, as nvarchar(128) counts: 64 astral characters fill it exactly.
        assert!(sql_identifier(&"😀".repeat(64)).is_ok());
        assert_eq!(
            sql_identifier(&"😀".repeat(65)),
            Err(QuoteError::IdentifierTooLong {
                name: "😀".repeat(65)
            })
        );
    }

    #[test]
    fn sql_string_round_trips_every_hostile_text_as_one_literal() {
        for &text in HOSTILE {
            let quoted = sql_string(text);
            let (back, rest) = lex_quoted(&quoted, "N'", |c| c == '\'');
            assert_eq!((back.as_str(), rest.as_str()), (text, ""), "input {text:?}");
        }
    }

    #[test]
    fn sql_string_doubles_only_the_ascii_quote() {
        let cases = [
            ("", "N''"),
            ("it's", "N'it''s'"),
            ("''", "N''''''"),
            (r"\\dal-sql-001\share", r"N'\\dal-sql-001\share'"),
            ("x’y", "N'x’y'"),
        ];
        for (text, expected) in cases {
            assert_eq!(sql_string(text), expected, "input {text:?}");
        }
    }

    #[test]
    fn ps_string_round_trips_every_hostile_text_as_one_literal() {
        for &text in HOSTILE {
            let quoted = ps_string(text);
            let (back, rest) = lex_quoted(&quoted, "'", is_powershell_single_quote);
            assert_eq!((back.as_str(), rest.as_str()), (text, ""), "input {text:?}");
        }
    }

    #[test]
    fn ps_string_doubles_all_five_single_quote_characters() {
        let cases = [
            ("", "''"),
            ("atl-cs-001", "'atl-cs-001'"),
            ("don't", "'don''t'"),
            ("a\u{2018}b", "'a\u{2018}\u{2018}b'"),
            ("a\u{2019}b", "'a\u{2019}\u{2019}b'"),
            ("a\u{201A}b", "'a\u{201A}\u{201A}b'"),
            ("a\u{201B}b", "'a\u{201B}\u{201B}b'"),
            // Double quotes (also typographic ones) are ordinary inside single quotes.
            (
                "say \u{201C}hi\u{201D} \"x\"",
                "'say \u{201C}hi\u{201D} \"x\"'",
            ),
            ("$env:x `n", "'$env:x `n'"),
        ];
        for (text, expected) in cases {
            assert_eq!(ps_string(text), expected, "input {text:?}");
        }
    }
}
