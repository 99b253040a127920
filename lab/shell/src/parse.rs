//! Parses the PowerShell text of one request into a [`Command`]: a command name and its arguments.
//!
//! This is the lab's stand-in for `[scriptblock]::Create` in host.ps1, restricted to what pcfail may
//! send: one command with named parameters (`-Name value`, `-Name:value`, `-Switch`), positional
//! arguments, and literal values (single- and double-quoted strings, barewords, numbers, `$null`,
//! `$true`, `$false`, `@{...}` hashtables, `@(...)` arrays and comma lists). It owns the injection
//! surface, so it follows PowerShell's tokenizer where quoting is concerned: the typographic single
//! quotes U+2018..U+201B are quotes exactly like `'` (CharTraits.IsSingleQuote) and U+201C..U+201E
//! like `"`; a doubled quote of any kind inside a single-quoted string is one literal character.
//!
//! It refuses, rather than evaluates, anything that would run code: a second statement (`;`, a
//! newline, `&&`, `||`, a pipeline `|`, the call operator `&`), script blocks, subexpressions,
//! parenthesized pipelines and barewords in expression position. Variables other than the three
//! constants are refused too: the lab has no variables to expand, and pcfail never sends them.
//! It does not bind arguments to parameters (that is `binding.rs`).

use thiserror::Error;

/// A literal value as PowerShell would pass it to a cmdlet parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    String(String),
    Array(Vec<Value>),
    /// Keys in source order; PowerShell hashtables are case-insensitive, lookups here are too.
    Hashtable(Vec<(String, Value)>),
}

impl Value {
    /// The value as PowerShell converts it to `[string]`: arrays are joined with a space ($OFS).
    pub(crate) fn to_ps_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(true) => "True".to_owned(),
            Value::Bool(false) => "False".to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => d.to_string(),
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(Value::to_ps_string)
                .collect::<Vec<_>>()
                .join(" "),
            Value::Hashtable(_) => "System.Collections.Hashtable".to_owned(),
        }
    }

    /// The .NET type name PowerShell shows in conversion errors.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "System.Boolean",
            Value::Int(i) if i32::try_from(*i).is_ok() => "System.Int32",
            Value::Int(_) => "System.Int64",
            Value::Double(_) => "System.Double",
            Value::String(_) => "System.String",
            Value::Array(_) => "System.Object[]",
            Value::Hashtable(_) => "System.Collections.Hashtable",
        }
    }
}

/// One element of a command's argument list, in source order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    /// `-Name`, or `-Name:value` when `value` is present. `text` is the name as typed (without dash).
    Parameter { name: String, value: Option<Value> },
    /// A positional value, or the value following a `-Name` parameter.
    Value(Value),
}

/// One command invocation: `name arg arg ...`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Command {
    pub name: String,
    pub args: Vec<Arg>,
}

/// Why a request's text was refused. `column` is 1-based, in characters, as PowerShell counts.
#[derive(Clone, Debug, PartialEq, Error)]
pub(crate) enum ParseError {
    /// The text is not valid PowerShell; `message` is PowerShell's own parser message.
    #[error("At line:{line} char:{column}\r\n+ {source_line}\r\n+ {marker}\r\n{message}")]
    Syntax {
        message: String,
        line: usize,
        column: usize,
        source_line: String,
        marker: String,
    },
    /// Valid PowerShell holding more than one statement, or code that would run as one.
    #[error("The request must be exactly one command; {reason} at char {column}.")]
    MultipleStatements { reason: String, column: usize },
    /// Valid PowerShell that the lab shell deliberately does not evaluate (variables, redirection).
    #[error(
        "The lab shell does not evaluate {reason} (at char {column}); pcfail sends only literal values."
    )]
    Unsupported { reason: String, column: usize },
}

/// Parses `text` as exactly one command. `Ok(None)` means the text holds no statement at all
/// (only whitespace or comments), which PowerShell runs as a no-op.
pub(crate) fn parse_command(text: &str) -> Result<Option<Command>, ParseError> {
    Parser::new(text).command()
}

fn is_single_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

fn is_double_quote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}')
}

fn is_dash(c: char) -> bool {
    // PowerShell accepts en dash, em dash and horizontal bar wherever '-' starts a parameter.
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn is_blank(c: char) -> bool {
    c.is_whitespace() && !is_newline(c)
}

/// Characters that end a bareword in argument mode.
fn ends_bareword(c: char) -> bool {
    c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')' | '{' | '}' | ',' | '<' | '>')
}

fn is_variable_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '?' || c == ':' || c == '$' || c == '^'
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn column_of(&self, pos: usize) -> usize {
        let line_start = self.chars[..pos]
            .iter()
            .rposition(|&c| is_newline(c))
            .map_or(0, |i| i + 1);
        pos - line_start + 1
    }

    fn line_of(&self, pos: usize) -> usize {
        // "\r\n" counts once, as PowerShell's line numbers do.
        let mut line = 1;
        let mut i = 0;
        while i < pos {
            if self.chars[i] == '\n'
                || (self.chars[i] == '\r' && self.chars.get(i + 1) != Some(&'\n'))
            {
                line += 1;
            }
            i += 1;
        }
        line
    }

    /// A ParseException-shaped error at `pos`, underlining `width` characters.
    fn syntax(&self, pos: usize, width: usize, message: &str) -> ParseError {
        let line_start = self.chars[..pos]
            .iter()
            .rposition(|&c| is_newline(c))
            .map_or(0, |i| i + 1);
        let line_end = self.chars[pos..]
            .iter()
            .position(|&c| is_newline(c))
            .map_or(self.chars.len(), |i| pos + i);
        let source_line: String = self.chars[line_start..line_end].iter().collect();
        let column = pos - line_start + 1;
        let width = width.clamp(1, (line_end.saturating_sub(pos)).max(1));
        ParseError::Syntax {
            message: message.to_owned(),
            line: self.line_of(pos),
            column,
            source_line,
            marker: format!("{}{}", " ".repeat(column - 1), "~".repeat(width)),
        }
    }

    /// A second statement (or code that would run as one) was found at `pos`.
    fn multiple(&self, pos: usize, reason: impl Into<String>) -> ParseError {
        ParseError::MultipleStatements {
            reason: reason.into(),
            column: self.column_of(pos),
        }
    }

    /// Lexes the text from `from` only as far as strings and comments go. PowerShell parses the whole
    /// text before running any of it, so an unterminated string anywhere is a parse error even when a
    /// second statement comes first.
    fn unterminated_string_after(&self, from: usize) -> Option<ParseError> {
        let mut i = from;
        while let Some(&c) = self.chars.get(i) {
            if c == '`' {
                i += 2;
            } else if c == '#' {
                while self.chars.get(i).is_some_and(|&c| !is_newline(c)) {
                    i += 1;
                }
            } else if is_single_quote(c) || is_double_quote(c) {
                let single = is_single_quote(c);
                let start = i;
                i += 1;
                loop {
                    let Some(&d) = self.chars.get(i) else {
                        let message = if single {
                            "The string is missing the terminator: '."
                        } else {
                            "The string is missing the terminator: \"."
                        };
                        return Some(self.syntax(start, self.chars.len() - start, message));
                    };
                    if !single && d == '`' {
                        i += 2;
                        continue;
                    }
                    let closes = if single {
                        is_single_quote(d)
                    } else {
                        is_double_quote(d)
                    };
                    if closes {
                        let doubled = self.chars.get(i + 1).is_some_and(|&n| {
                            if single {
                                is_single_quote(n)
                            } else {
                                is_double_quote(n)
                            }
                        });
                        i += if doubled { 2 } else { 1 };
                        if !doubled {
                            break;
                        }
                        continue;
                    }
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        None
    }

    fn unsupported(&self, pos: usize, reason: impl Into<String>) -> ParseError {
        ParseError::Unsupported {
            reason: reason.into(),
            column: self.column_of(pos),
        }
    }

    /// Skips blanks, line continuations (backtick + newline) and comments; never a newline.
    fn skip_blanks(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(c) if is_blank(c) => self.pos += 1,
                Some('`') if self.peek_at(1).is_some_and(is_newline) => {
                    self.pos += 2;
                    if self.chars.get(self.pos - 1) == Some(&'\r') && self.peek() == Some('\n') {
                        self.pos += 1;
                    }
                }
                Some('#') => {
                    while self.peek().is_some_and(|c| !is_newline(c)) {
                        self.pos += 1;
                    }
                }
                Some('<') if self.peek_at(1) == Some('#') => {
                    let start = self.pos;
                    self.pos += 2;
                    loop {
                        match self.peek() {
                            None => {
                                return Err(self.syntax(start, 2, "Missing end of comment: '#>'."));
                            }
                            Some('#') if self.peek_at(1) == Some('>') => {
                                self.pos += 2;
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Skips blanks and newlines (inside hashtables, arrays and after commas).
    fn skip_blanks_and_newlines(&mut self) -> Result<(), ParseError> {
        loop {
            self.skip_blanks()?;
            match self.peek() {
                Some(c) if is_newline(c) => self.pos += 1,
                _ => return Ok(()),
            }
        }
    }

    fn command(&mut self) -> Result<Option<Command>, ParseError> {
        if let Some(error) = self.unterminated_string_after(0) {
            return Err(error);
        }
        self.skip_blanks_and_newlines()?;
        while self.peek() == Some(';') {
            self.pos += 1;
            self.skip_blanks_and_newlines()?;
        }
        let Some(first) = self.peek() else {
            return Ok(None);
        };
        let start = self.pos;
        match first {
            '&' => {
                return Err(self.multiple(start, "the call operator '&' would run another command"));
            }
            '.' if self.peek_at(1).is_none_or(char::is_whitespace) => {
                return Err(self.unsupported(start, "dot-sourcing"));
            }
            '{' => return Err(self.multiple(start, "a script block '{' would run code")),
            '(' => {
                return Err(
                    self.multiple(start, "a parenthesized expression '(' would run a pipeline")
                );
            }
            '$' | '@' => {
                return Err(self.unsupported(
                    start,
                    "an expression statement (the request is not a command)",
                ));
            }
            c if is_single_quote(c) || is_double_quote(c) || c.is_ascii_digit() || is_dash(c) => {
                return Err(self.unsupported(
                    start,
                    "an expression statement (the request is not a command)",
                ));
            }
            _ => {}
        }
        let name = match self.argument_element()? {
            Value::String(name) => name,
            _ => {
                return Err(self.unsupported(
                    start,
                    "an expression statement (the request is not a command)",
                ));
            }
        };
        let mut args = Vec::new();
        let mut parameters_ended = false;
        loop {
            self.skip_blanks()?;
            let Some(c) = self.peek() else { break };
            let at = self.pos;
            match c {
                c if is_newline(c) || c == ';' => {
                    self.pos += 1;
                    self.skip_blanks_and_newlines()?;
                    while self.peek() == Some(';') {
                        self.pos += 1;
                        self.skip_blanks_and_newlines()?;
                    }
                    if self.peek().is_some() {
                        let what = if c == ';' {
                            "';' ends the first statement"
                        } else {
                            "a newline ends the first statement"
                        };
                        return Err(self.multiple(at, what));
                    }
                    break;
                }
                '|' if self.peek_at(1) == Some('|') => {
                    return Err(self.multiple(at, "'||' chains another pipeline"));
                }
                '|' => {
                    self.pos += 1;
                    self.skip_blanks()?;
                    if self.peek().is_none_or(|c| is_newline(c) || c == ';') {
                        return Err(self.syntax(at, 1, "An empty pipe element is not allowed."));
                    }
                    return Err(self.multiple(at, "'|' pipes into another command"));
                }
                '&' if self.peek_at(1) == Some('&') => {
                    return Err(self.multiple(at, "'&&' chains another pipeline"));
                }
                '&' => return Err(self.multiple(at, "'&' would run a command or a background job")),
                '>' => return Err(self.unsupported(at, "a redirection '>'")),
                '1'..='6' | '*' if self.peek_at(1) == Some('>') => {
                    return Err(self.unsupported(at, "a redirection"));
                }
                '<' => {
                    return Err(self.syntax(at, 1, "The '<' operator is reserved for future use."));
                }
                '{' => return Err(self.multiple(at, "a script block '{' would run code")),
                '(' => {
                    return Err(
                        self.multiple(at, "a parenthesized expression '(' would run a pipeline")
                    );
                }
                '}' => {
                    return Err(self.syntax(
                        at,
                        1,
                        "Unexpected token '}' in expression or statement.",
                    ));
                }
                ')' => {
                    return Err(self.syntax(
                        at,
                        1,
                        "Unexpected token ')' in expression or statement.",
                    ));
                }
                ',' => return Err(self.syntax(at, 1, "Missing argument in parameter list.")),
                c if is_dash(c) && !parameters_ended => {
                    let next = self.peek_at(1);
                    if next.is_some_and(|n| n.is_alphabetic() || n == '_' || n == '?') {
                        args.push(self.parameter()?);
                    } else if next.is_some_and(is_dash)
                        && self.peek_at(2).is_none_or(char::is_whitespace)
                    {
                        // `--` ends parameter parsing: later `-x` are plain values.
                        self.pos += 2;
                        parameters_ended = true;
                    } else {
                        args.push(Arg::Value(self.argument_list()?));
                    }
                }
                _ => args.push(Arg::Value(self.argument_list()?)),
            }
        }
        Ok(Some(Command { name, args }))
    }

    /// `-Name`, `-Name:value` or `-Name: value`.
    fn parameter(&mut self) -> Result<Arg, ParseError> {
        self.pos += 1; // the dash
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if ends_bareword(c) || c == ':' || is_single_quote(c) || is_double_quote(c) {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        if self.peek() != Some(':') {
            return Ok(Arg::Parameter { name, value: None });
        }
        let colon = self.pos;
        self.pos += 1;
        self.skip_blanks()?;
        match self.peek() {
            None => Err(self.syntax(
                colon,
                1,
                &format!("Missing an argument for parameter '{name}'."),
            )),
            Some(c) if is_newline(c) || matches!(c, ';' | '|' | '&' | ')' | '}' | ',') => Err(self
                .syntax(
                    colon,
                    1,
                    &format!("Missing an argument for parameter '{name}'."),
                )),
            Some(_) => {
                let value = self.argument_list()?;
                Ok(Arg::Parameter {
                    name,
                    value: Some(value),
                })
            }
        }
    }

    /// One argument-mode element, or several separated by commas (an array).
    fn argument_list(&mut self) -> Result<Value, ParseError> {
        let first = self.argument_element()?;
        self.comma_list(first, Self::argument_element)
    }

    fn comma_list(
        &mut self,
        first: Value,
        mut element: impl FnMut(&mut Self) -> Result<Value, ParseError>,
    ) -> Result<Value, ParseError> {
        let save = self.pos;
        self.skip_blanks()?;
        if self.peek() != Some(',') {
            self.pos = save;
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek() == Some(',') {
            let comma = self.pos;
            self.pos += 1;
            self.skip_blanks_and_newlines()?;
            match self.peek() {
                None => return Err(self.syntax(comma, 1, "Missing argument in parameter list.")),
                Some(';' | '|' | '&' | ')' | '}' | ',') => {
                    return Err(self.syntax(comma, 1, "Missing argument in parameter list."));
                }
                Some(_) => items.push(element(self)?),
            }
            let save = self.pos;
            self.skip_blanks()?;
            if self.peek() != Some(',') {
                self.pos = save;
            }
        }
        Ok(Value::Array(items))
    }

    /// One element in argument mode: a quoted string, a constant, `@{}`/`@()`, or a bareword
    /// (which may continue through quoted parts: `a'b c'` is the one string `ab c`).
    fn argument_element(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.syntax(start, 1, "Missing argument in parameter list."));
        };
        // A token that starts with a quote ends at its closing quote (PowerShell starts a new
        // argument right after it), unlike a bareword, which runs on through quotes.
        if is_single_quote(c) {
            return Ok(Value::String(self.single_quoted()?));
        }
        if is_double_quote(c) {
            return Ok(Value::String(self.double_quoted()?));
        }
        match c {
            '$' => return self.dollar(),
            '@' => return self.at_sign(),
            '{' => return Err(self.multiple(start, "a script block '{' would run code")),
            '(' => {
                return Err(
                    self.multiple(start, "a parenthesized expression '(' would run a pipeline")
                );
            }
            _ => {}
        }
        let mut text = String::new();
        let mut plain = true;
        while let Some(c) = self.peek() {
            if ends_bareword(c) {
                break;
            }
            if is_single_quote(c) {
                text.push_str(&self.single_quoted()?);
                plain = false;
            } else if is_double_quote(c) {
                text.push_str(&self.double_quoted()?);
                plain = false;
            } else if c == '`' {
                match self.peek_at(1) {
                    None => {
                        return Err(self.syntax(
                            self.pos,
                            1,
                            "Missing character after the escape character '`'.",
                        ));
                    }
                    Some(n) if is_newline(n) => break,
                    Some(n) => {
                        text.push(n);
                        self.pos += 2;
                        plain = false;
                    }
                }
            } else if c == '$'
                && self
                    .peek_at(1)
                    .is_some_and(|n| is_variable_char(n) || n == '(' || n == '{')
            {
                return Err(self.variable_error(self.pos));
            } else {
                text.push(c);
                self.pos += 1;
            }
        }
        if text == "--%" {
            return Err(self.unsupported(start, "the stop-parsing token '--%'"));
        }
        if plain && let Some(number) = parse_number(&text) {
            return Ok(number);
        }
        Ok(Value::String(text))
    }

    /// An element in expression mode (hashtable values, `@()` contents): barewords are commands there.
    fn expression_element(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if is_single_quote(c) => Ok(Value::String(self.single_quoted()?)),
            Some(c) if is_double_quote(c) => Ok(Value::String(self.double_quoted()?)),
            Some('$') => self.dollar(),
            Some('@') => self.at_sign(),
            Some('{') => Err(self.multiple(start, "a script block '{' would run code")),
            Some('(') => {
                Err(self.multiple(start, "a parenthesized expression '(' would run a pipeline"))
            }
            Some(_) => {
                let mut text = String::new();
                while let Some(c) = self.peek() {
                    if ends_bareword(c) || c == '=' || is_single_quote(c) || is_double_quote(c) {
                        break;
                    }
                    text.push(c);
                    self.pos += 1;
                }
                match parse_number(&text) {
                    Some(number) => Ok(number),
                    None if text.is_empty() => Err(self.syntax(
                        start,
                        1,
                        "You must provide a value expression following the '=' operator.",
                    )),
                    None => Err(self.multiple(
                        start,
                        format!("the bareword '{text}' in an expression would run a command"),
                    )),
                }
            }
            None => Err(self.syntax(start, 1, "Missing statement after '=' in hash literal.")),
        }
    }

    fn expression_list(&mut self) -> Result<Value, ParseError> {
        let first = self.expression_element()?;
        self.comma_list(first, Self::expression_element)
    }

    /// `'...'` with any of the five single quotes; a doubled quote is one literal character (the
    /// second of the pair, exactly as PowerShell's tokenizer appends it).
    fn single_quoted(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.syntax(
                        start,
                        self.chars.len() - start,
                        "The string is missing the terminator: '.",
                    ));
                }
                Some(c) if is_single_quote(c) => {
                    if self.peek_at(1).is_some_and(is_single_quote) {
                        text.push(self.chars[self.pos + 1]);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(text);
                    }
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `"..."`: backtick escapes and doubled quotes are honoured; `$name` and `$(...)` are refused.
    fn double_quoted(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.syntax(
                    start,
                    self.chars.len() - start,
                    "The string is missing the terminator: \".",
                ));
            };
            if is_double_quote(c) {
                if self.peek_at(1).is_some_and(is_double_quote) {
                    text.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                return Ok(text);
            }
            if c == '`' {
                let Some(e) = self.peek_at(1) else {
                    return Err(self.syntax(
                        start,
                        self.chars.len() - start,
                        "The string is missing the terminator: \".",
                    ));
                };
                // Windows PowerShell 5.1's escapes; "`u{...}" arrived in PowerShell 6 and is a plain 'u' here.
                text.push(match e {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                });
                self.pos += 2;
                continue;
            }
            if c == '$'
                && self
                    .peek_at(1)
                    .is_some_and(|n| is_variable_char(n) || n == '(' || n == '{')
            {
                return Err(self.variable_error(self.pos));
            }
            text.push(c);
            self.pos += 1;
        }
    }

    fn variable_error(&self, at: usize) -> ParseError {
        if self.chars.get(at + 1) == Some(&'(') {
            return self.multiple(at, "a subexpression '$(' would run code");
        }
        let name: String = self.chars[at..]
            .iter()
            .take_while(|&&c| c == '$' || is_variable_char(c) || c == '{' || c == '}')
            .collect();
        self.unsupported(at, format!("the variable '{name}'"))
    }

    /// `$null`, `$true`, `$false`; anything else after `$` is a variable or subexpression.
    fn dollar(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek_at(1) == Some('(') {
            return Err(self.multiple(start, "a subexpression '$(' would run code"));
        }
        let mut end = start + 1;
        while self
            .chars
            .get(end)
            .is_some_and(|&c| c.is_alphanumeric() || c == '_')
        {
            end += 1;
        }
        let name: String = self.chars[start + 1..end]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        let after = self.chars.get(end).copied();
        let terminated = after.is_none_or(|c| ends_bareword(c) || c == '=');
        let value = match name.as_str() {
            "null" if terminated => Value::Null,
            "true" if terminated => Value::Bool(true),
            "false" if terminated => Value::Bool(false),
            _ if end == start + 1 && after.is_none_or(ends_bareword) => {
                // A lone '$' is a literal string in argument mode.
                self.pos = end;
                return Ok(Value::String("$".to_owned()));
            }
            _ => return Err(self.variable_error(start)),
        };
        self.pos = end;
        Ok(value)
    }

    /// `@{...}` hashtable or `@(...)` array subexpression.
    fn at_sign(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        match self.peek_at(1) {
            Some('{') => {
                self.pos += 2;
                self.hashtable(start)
            }
            Some('(') => {
                self.pos += 2;
                self.array_subexpression(start)
            }
            Some(c) if is_single_quote(c) || is_double_quote(c) => {
                Err(self.unsupported(start, "a here-string"))
            }
            _ => Err(self.unsupported(start, "splatting '@'")),
        }
    }

    fn hashtable(&mut self, start: usize) -> Result<Value, ParseError> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        loop {
            self.skip_blanks_and_newlines()?;
            match self.peek() {
                None => return Err(self.syntax(start, 2, "The hash literal was incomplete.")),
                Some('}') => {
                    self.pos += 1;
                    return Ok(Value::Hashtable(entries));
                }
                Some(';') => {
                    self.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let key_at = self.pos;
            let key = match self.peek() {
                Some(c) if is_single_quote(c) => self.single_quoted()?,
                Some(c) if is_double_quote(c) => self.double_quoted()?,
                Some('=') => {
                    return Err(self.syntax(key_at, 1, "Missing key before '=' in hash literal."));
                }
                _ => {
                    let mut key = String::new();
                    while let Some(c) = self.peek() {
                        if c.is_whitespace()
                            || matches!(c, '=' | ';' | '}' | '{' | '(' | ')' | ',' | '|' | '&')
                        {
                            break;
                        }
                        key.push(c);
                        self.pos += 1;
                    }
                    if key.is_empty() {
                        return Err(self.syntax(
                            key_at,
                            1,
                            "Missing '=' operator after key in hash literal.",
                        ));
                    }
                    key
                }
            };
            self.skip_blanks()?;
            if self.peek() != Some('=') {
                return Err(self.syntax(
                    self.pos.min(self.chars.len().saturating_sub(1)),
                    1,
                    "Missing '=' operator after key in hash literal.",
                ));
            }
            self.pos += 1;
            self.skip_blanks_and_newlines()?;
            if self.peek().is_none_or(|c| c == '}' || c == ';') {
                return Err(self.syntax(
                    self.pos.min(self.chars.len().saturating_sub(1)),
                    1,
                    "Missing statement after '=' in hash literal.",
                ));
            }
            let value = self.expression_list()?;
            if entries.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key)) {
                return Err(self.syntax(
                    key_at,
                    key.chars().count(),
                    &format!("Duplicate keys '{key}' are not allowed in hash literals."),
                ));
            }
            entries.push((key, value));
            self.skip_blanks()?;
            match self.peek() {
                Some('}') | Some(';') => {}
                Some(c) if is_newline(c) => {}
                None => return Err(self.syntax(start, 2, "The hash literal was incomplete.")),
                Some(_) => {
                    return Err(self.syntax(
                        self.pos,
                        1,
                        "Missing '=' operator after key in hash literal.",
                    ));
                }
            }
        }
    }

    fn array_subexpression(&mut self, start: usize) -> Result<Value, ParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_blanks_and_newlines()?;
            match self.peek() {
                None => return Err(self.syntax(start, 2, "Missing closing ')' in subexpression.")),
                Some(')') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                Some(';') => {
                    self.pos += 1;
                }
                Some(_) => match self.expression_list()? {
                    // `@(a, b)` holds one statement whose value is an array: its elements are flattened.
                    Value::Array(inner) => items.extend(inner),
                    single => items.push(single),
                },
            }
        }
    }
}

/// PowerShell's numeric literal forms that pcfail could plausibly send: decimal and hex integers
/// and plain decimals. Anything else stays a string.
fn parse_number(text: &str) -> Option<Value> {
    let (negative, digits) = match text.chars().next() {
        Some(c) if is_dash(c) => (true, &text[c.len_utf8()..]),
        Some('+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let sign = if negative { -1 } else { 1 };
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        return i64::from_str_radix(hex, 16)
            .ok()
            .map(|v| Value::Int(sign * v));
    }
    if digits.chars().all(|c| c.is_ascii_digit()) {
        return digits.parse::<i64>().ok().map(|v| Value::Int(sign * v));
    }
    let decimal = digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() == 1
        && digits.chars().any(|c| c.is_ascii_digit());
    if decimal {
        return digits
            .parse::<f64>()
            .ok()
            .map(|v| Value::Double(sign as f64 * v));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    fn named(name: &str, value: Option<Value>) -> Arg {
        Arg::Parameter {
            name: name.to_owned(),
            value,
        }
    }

    fn args(text: &str) -> Vec<Arg> {
        parse_command(text)
            .expect("parses")
            .expect("has a command")
            .args
    }

    #[test]
    fn single_quoted_strings_follow_powershell_quoting() {
        let cases: &[(&str, &str)] = &[
            ("X 'a''b'", "a'b"),
            ("X 'a\u{2019}\u{2019}b'", "a\u{2019}b"),
            ("X 'a\u{2018}\u{2018}b'", "a\u{2018}b"),
            ("X 'a\u{201A}\u{201A}b'", "a\u{201A}b"),
            ("X 'a\u{201B}\u{201B}b'", "a\u{201B}b"),
            // A doubled pair of two different quote characters yields the second one.
            ("X 'a\u{2019}'b'", "a'b"),
            ("X \u{2018}typographic\u{2019}", "typographic"),
            (
                "X 'semi; colon | pipe & amp $(x) $y'",
                "semi; colon | pipe & amp $(x) $y",
            ),
            ("X ''", ""),
            ("X 'multi\nline'", "multi\nline"),
        ];
        for (text, expected) in cases {
            assert_eq!(args(text), vec![Arg::Value(s(expected))], "{text}");
        }
    }

    #[test]
    fn break_out_attempts_stay_one_string_argument() {
        let cases: &[(&str, &str)] = &[
            (
                "Set-X -Identity 'x\u{2019}\u{2019}; Remove-Item C:\\ -Recurse'",
                "x\u{2019}; Remove-Item C:\\ -Recurse",
            ),
            (
                "Set-X -Identity 'x''; Remove-Item C:\\ -Recurse'",
                "x'; Remove-Item C:\\ -Recurse",
            ),
            (
                "Set-X -Identity 'x\u{2018}\u{2018}; Remove-Item C:\\ -Recurse'",
                "x\u{2018}; Remove-Item C:\\ -Recurse",
            ),
            (
                "Set-X -Identity 'x\u{201A}\u{201A} | Stop-Computer'",
                "x\u{201A} | Stop-Computer",
            ),
            (
                "Set-X -Identity 'x\u{201B}\u{201B} && calc'",
                "x\u{201B} && calc",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                args(text),
                vec![named("Identity", None), Arg::Value(s(expected))],
                "{text}"
            );
        }
    }

    #[test]
    fn an_unescaped_typographic_quote_ends_the_string_and_the_rest_is_refused() {
        // The value `x’; Remove-Item C:\ -Recurse` quoted by a client that doubled only ASCII quotes:
        // ’ closes the string, and PowerShell's parser then fails on the trailing quote.
        let err =
            parse_command("Set-X -Identity 'x\u{2019}; Remove-Item C:\\ -Recurse'").unwrap_err();
        assert_eq!(
            err.to_string(),
            "At line:1 char:46\r\n+ Set-X -Identity 'x\u{2019}; Remove-Item C:\\ -Recurse'\r\n+                                              ~\r\nThe string is missing the terminator: '."
        );
        // Without the trailing quote it is a well-formed second statement.
        let err =
            parse_command("Set-X -Identity 'x\u{2019}; Remove-Item C:\\ -Recurse").unwrap_err();
        assert_eq!(
            err,
            ParseError::MultipleStatements {
                reason: "';' ends the first statement".to_owned(),
                column: 20
            }
        );
    }

    #[test]
    fn double_quoted_strings_support_escapes_and_refuse_expansion() {
        let ok: &[(&str, &str)] = &[
            ("X \"plain text\"", "plain text"),
            ("X \"tab`there\"", "tab\there"),
            ("X \"new`nline\"", "new\nline"),
            ("X \"quote`\"d\"", "quote\"d"),
            ("X \"dou\"\"bled\"", "dou\"bled"),
            ("X \"dollar `$x\"", "dollar $x"),
            ("X \"price 5 $\"", "price 5 $"),
            ("X \u{201C}curly\u{201D}", "curly"),
            ("X \"back``tick\"", "back`tick"),
        ];
        for (text, expected) in ok {
            assert_eq!(args(text), vec![Arg::Value(s(expected))], "{text}");
        }
        let refused: &[(&str, ParseError)] = &[
            (
                "X \"a $(Remove-Item x) b\"",
                ParseError::MultipleStatements {
                    reason: "a subexpression '$(' would run code".to_owned(),
                    column: 6,
                },
            ),
            (
                "X \"a $env:TEMP\"",
                ParseError::Unsupported {
                    reason: "the variable '$env:TEMP'".to_owned(),
                    column: 6,
                },
            ),
            (
                "X \"${x}\"",
                ParseError::Unsupported {
                    reason: "the variable '${x}'".to_owned(),
                    column: 4,
                },
            ),
        ];
        for (text, expected) in refused {
            assert_eq!(&parse_command(text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn parameters_and_values_are_recognised() {
        let cases: Vec<(&str, Vec<Arg>)> = vec![
            (
                "X -Confirm:$false",
                vec![named("Confirm", Some(Value::Bool(false)))],
            ),
            ("X -Force", vec![named("Force", None)]),
            (
                "X -PoolState: 'Normal'",
                vec![named("PoolState", Some(s("Normal")))],
            ),
            ("X \u{2013}Force", vec![named("Force", None)]),
            (
                "X -A $null -B $TRUE",
                vec![
                    named("A", None),
                    Arg::Value(Value::Null),
                    named("B", None),
                    Arg::Value(Value::Bool(true)),
                ],
            ),
            (
                "X 42 -7 1.5 0x10",
                vec![
                    Arg::Value(Value::Int(42)),
                    Arg::Value(Value::Int(-7)),
                    Arg::Value(Value::Double(1.5)),
                    Arg::Value(Value::Int(16)),
                ],
            ),
            ("X bare-word", vec![Arg::Value(s("bare-word"))]),
            ("X ab'c d'e", vec![Arg::Value(s("abc de"))]),
            ("X 'a'b", vec![Arg::Value(s("a")), Arg::Value(s("b"))]),
            (
                "X a,'b', c",
                vec![Arg::Value(Value::Array(vec![s("a"), s("b"), s("c")]))],
            ),
            (
                "X @('a','b')",
                vec![Arg::Value(Value::Array(vec![s("a"), s("b")]))],
            ),
            ("X @()", vec![Arg::Value(Value::Array(vec![]))]),
            (
                "X @{Add='x'}",
                vec![Arg::Value(Value::Hashtable(vec![(
                    "Add".to_owned(),
                    s("x"),
                )]))],
            ),
            (
                "X @{Remove='x','y'}",
                vec![Arg::Value(Value::Hashtable(vec![(
                    "Remove".to_owned(),
                    Value::Array(vec![s("x"), s("y")]),
                )]))],
            ),
            (
                "X @{ 'a' = 1; b = @('c') }",
                vec![Arg::Value(Value::Hashtable(vec![
                    ("a".to_owned(), Value::Int(1)),
                    ("b".to_owned(), Value::Array(vec![s("c")])),
                ]))],
            ),
            ("X -- -NotAParameter", vec![Arg::Value(s("-NotAParameter"))]),
            ("X a # trailing comment", vec![Arg::Value(s("a"))]),
            ("X a;", vec![Arg::Value(s("a"))]),
            ("X a\r\n", vec![Arg::Value(s("a"))]),
            ("X C:\\dir\\file", vec![Arg::Value(s("C:\\dir\\file"))]),
        ];
        for (text, expected) in cases {
            assert_eq!(args(text), expected, "{text}");
        }
    }

    #[test]
    fn command_names_are_barewords() {
        let parsed = parse_command("  Get-CsPersistentChatState")
            .unwrap()
            .unwrap();
        assert_eq!(parsed.name, "Get-CsPersistentChatState");
        assert_eq!(parse_command("   # only a comment").unwrap(), None);
        assert_eq!(parse_command("").unwrap(), None);
    }

    #[test]
    fn more_than_one_statement_is_refused() {
        let cases: &[(&str, &str)] = &[
            ("A; B", "';' ends the first statement"),
            ("A\nB", "a newline ends the first statement"),
            ("A && B", "'&&' chains another pipeline"),
            ("A || B", "'||' chains another pipeline"),
            ("A | B", "'|' pipes into another command"),
            ("A &", "'&' would run a command or a background job"),
            (
                "& { Remove-Item x }",
                "the call operator '&' would run another command",
            ),
            ("A { Remove-Item x }", "a script block '{' would run code"),
            (
                "A (Remove-Item x)",
                "a parenthesized expression '(' would run a pipeline",
            ),
            ("A $(Remove-Item x)", "a subexpression '$(' would run code"),
            (
                "A @{Add=(Remove-Item x)}",
                "a parenthesized expression '(' would run a pipeline",
            ),
            (
                "A @{Add=Remove-Item}",
                "the bareword 'Remove-Item' in an expression would run a command",
            ),
            (
                "A @(Remove-Item)",
                "the bareword 'Remove-Item' in an expression would run a command",
            ),
        ];
        for (text, reason) in cases {
            match parse_command(text) {
                Err(ParseError::MultipleStatements { reason: got, .. }) => {
                    assert_eq!(&got, reason, "{text}")
                }
                other => panic!("{text}: expected MultipleStatements, got {other:?}"),
            }
        }
    }

    #[test]
    fn unparseable_text_reports_like_a_parse_exception() {
        let err = parse_command("Set-X -Identity 'abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "At line:1 char:17\r\n+ Set-X -Identity 'abc\r\n+                 ~~~~\r\nThe string is missing the terminator: '."
        );
        let cases: &[(&str, &str)] = &[
            ("X \"abc", "The string is missing the terminator: \"."),
            ("X @{Add='x'", "The hash literal was incomplete."),
            (
                "X @{Add}",
                "Missing '=' operator after key in hash literal.",
            ),
            ("X @('a'", "Missing closing ')' in subexpression."),
            ("X a,", "Missing argument in parameter list."),
            ("X a |", "An empty pipe element is not allowed."),
            ("X < a", "The '<' operator is reserved for future use."),
            ("X }", "Unexpected token '}' in expression or statement."),
            (
                "X @{a=1;a=2}",
                "Duplicate keys 'a' are not allowed in hash literals.",
            ),
        ];
        for (text, message) in cases {
            match parse_command(text) {
                Err(ParseError::Syntax { message: got, .. }) => assert_eq!(&got, message, "{text}"),
                other => panic!("{text}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn variables_and_redirections_are_not_evaluated() {
        let cases: &[(&str, &str)] = &[
            ("X $x", "the variable '$x'"),
            ("X a$b", "the variable '$b'"),
            ("X > out.txt", "a redirection '>'"),
            ("X 2>&1", "a redirection"),
            (
                "$x = 1",
                "an expression statement (the request is not a command)",
            ),
            (
                "'Get-X'",
                "an expression statement (the request is not a command)",
            ),
            ("X @splat", "splatting '@'"),
        ];
        for (text, reason) in cases {
            match parse_command(text) {
                Err(ParseError::Unsupported { reason: got, .. }) => {
                    assert_eq!(&got, reason, "{text}")
                }
                other => panic!("{text}: expected Unsupported, got {other:?}"),
            }
        }
    }

    #[test]
    fn values_convert_to_strings_the_powershell_way() {
        let cases: &[(Value, &str)] = &[
            (Value::Array(vec![s("a"), Value::Int(1)]), "a 1"),
            (Value::Bool(true), "True"),
            (Value::Null, ""),
            (Value::Hashtable(vec![]), "System.Collections.Hashtable"),
        ];
        for (value, expected) in cases {
            assert_eq!(value.to_ps_string(), *expected);
        }
    }
}
