//! Splits T-SQL text into tokens: identifiers (bare, `[bracketed]`, `"quoted"`), `@variables`,
//! numbers, string literals (`'...'` and `N'...'`, with `''` escapes) and symbols. Comments vanish.

use super::errors::SqlError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword; `quoted` when it came in brackets or double quotes (then never a keyword).
    Ident {
        text: String,
        quoted: bool,
    },
    /// `@name` or `@@name`, with the at-signs.
    Var(String),
    Num(String),
    Str {
        text: String,
        unicode: bool,
    },
    Sym(&'static str),
}

impl Tok {
    /// How SQL Server quotes the token in "Incorrect syntax near '...'".
    pub(crate) fn near(&self) -> String {
        match self {
            Tok::Ident { text, .. } | Tok::Var(text) | Tok::Num(text) => text.clone(),
            Tok::Str { text, .. } => text.clone(),
            Tok::Sym(s) => (*s).to_owned(),
        }
    }

    pub(crate) fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident { text, quoted: false } if text.eq_ignore_ascii_case(kw))
    }
}

const SYMBOLS: [&str; 18] = [
    "::", "<>", "!=", "<=", ">=", "(", ")", ",", ".", "=", "<", ">", "+", "-", "*", "/", "%", ";",
];

pub(crate) fn lex(sql: &str) -> Result<Vec<Tok>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // T-SQL block comments nest.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' || ((c == 'N' || c == 'n') && chars.get(i + 1) == Some(&'\'')) {
            let unicode = c != '\'';
            i += if unicode { 2 } else { 1 };
            let start = i;
            let mut text = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        let s: String = chars[start..].iter().collect();
                        return Err(SqlError::new(105, &[&s]));
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str { text, unicode });
        } else if c == '[' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(SqlError::syntax(&text)),
                    Some(']') if chars.get(i + 1) == Some(&']') => {
                        text.push(']');
                        i += 2;
                    }
                    Some(']') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Ident { text, quoted: true });
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            let text: String = chars[start..i.min(chars.len())].iter().collect();
            i += 1;
            out.push(Tok::Ident { text, quoted: true });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c == '@' || c.is_alphabetic() || c == '_' || c == '#' {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '@' | '#' | '$'))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if c == '@' {
                out.push(Tok::Var(text));
            } else {
                out.push(Tok::Ident {
                    text,
                    quoted: false,
                });
            }
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
                Some(s) => {
                    out.push(Tok::Sym(s));
                    i += s.chars().count();
                }
                None => return Err(SqlError::syntax(&c.to_string())),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(s: &str) -> Tok {
        Tok::Ident {
            text: s.to_owned(),
            quoted: false,
        }
    }

    #[test]
    fn lexes_the_shapes_pcfail_sends() {
        let cases: [(&str, Vec<Tok>); 5] = [
            ("KILL 57", vec![ident("KILL"), Tok::Num("57".into())]),
            (
                "RESTORE LOG [mg]]c] FROM DISK = N'C:\\it''s.trn'",
                vec![
                    ident("RESTORE"),
                    ident("LOG"),
                    Tok::Ident {
                        text: "mg]c".into(),
                        quoted: true,
                    },
                    ident("FROM"),
                    ident("DISK"),
                    Tok::Sym("="),
                    Tok::Str {
                        text: "C:\\it's.trn".into(),
                        unicode: true,
                    },
                ],
            ),
            (
                "a<>@P1 -- comment\n",
                vec![ident("a"), Tok::Sym("<>"), Tok::Var("@P1".into())],
            ),
            ("/* x /* y */ */@@SPID", vec![Tok::Var("@@SPID".into())]),
            (
                "msdb.dbo.x",
                vec![
                    ident("msdb"),
                    Tok::Sym("."),
                    ident("dbo"),
                    Tok::Sym("."),
                    ident("x"),
                ],
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(lex(sql).unwrap(), expected, "{sql}");
        }
    }

    #[test]
    fn an_unclosed_string_is_error_105() {
        assert_eq!(lex("SELECT N'abc").unwrap_err().number, 105);
    }
}
