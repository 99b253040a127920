//! A small typed reader over the spanned TOML tree that reports instead of failing.
//!
//! `toml::de::DeTable` keeps a span for every key and value; this reader asks for keys by name and type,
//! records each key it asked for, and at [`Table::finish`] reports every key nobody asked for, with a
//! "did you mean" drawn from the keys that were asked for. Every getter returns `Option`: `None` means
//! "absent or already reported", so the caller simply carries on and more problems surface in one run.
//! Every string it hands out, and every key it names in a message, has passed [`check::text`]: no
//! caller can forget the character check, and no message echoes a control or bidirectional
//! character to the operator's terminal.
//! What the keys mean is the business of `runbook::parse` and the action files, not of this module.

use std::cell::RefCell;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::check;
use super::diagnostic::Diagnostics;

/// A value with the byte range it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located<T> {
    pub(crate) value: T,
    pub(crate) span: Range<usize>,
}

/// A TOML table being read; `context` names it in messages (e.g. "`instances.backup`").
pub(crate) struct Table<'t, 'i> {
    context: String,
    table: &'t DeTable<'i>,
    span: Range<usize>,
    asked: RefCell<Vec<&'static str>>,
}

/// "a string", "an integer", ...: how messages name a TOML type.
fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
pub(crate) fn suggestion<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|&(score, _)| score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Appends "; did you mean `x`?" when a close candidate exists.
pub(crate) fn with_suggestion<'c>(
    message: String,
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    match suggestion(word, candidates) {
        Some(s) => format!("{message}; did you mean `{s}`?"),
        None => message,
    }
}

fn integer_value(text: &str, radix: u32) -> Option<i64> {
    // The parser keeps digits as written; TOML allows `_` between digits.
    i64::from_str_radix(&text.replace('_', ""), radix).ok()
}

/// `text` with its span if it passes [`check::text`]; otherwise the problem is reported at `span`.
fn clean(
    d: &mut Diagnostics<'_>,
    what: &str,
    text: &str,
    span: Range<usize>,
) -> Option<Located<String>> {
    match check::text(what, text) {
        Ok(()) => Some(Located {
            value: text.to_owned(),
            span,
        }),
        Err(message) => {
            d.error(span, message);
            None
        }
    }
}

impl<'t, 'i> Table<'t, 'i> {
    pub(crate) fn new(
        context: impl Into<String>,
        table: &'t DeTable<'i>,
        span: Range<usize>,
    ) -> Self {
        Self {
            context: context.into(),
            table,
            span,
            asked: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn context(&self) -> &str {
        &self.context
    }

    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The raw value of `key`, marking the key as known.
    pub(crate) fn raw(&self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.asked.borrow_mut().push(key);
        self.table.get(key)
    }

    /// The span of `key` itself, for problems about the key rather than its value.
    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
    }

    fn missing(&self, d: &mut Diagnostics<'_>, key: &str) {
        d.error(
            self.span(),
            format!("missing key `{key}` in {}", self.context),
        );
    }

    fn wrong_type(
        &self,
        d: &mut Diagnostics<'_>,
        key: &str,
        want: &str,
        value: &Spanned<DeValue<'_>>,
    ) {
        d.error(
            value.span(),
            format!(
                "`{key}` in {} must be {want}, found {}",
                self.context,
                type_name(value.get_ref())
            ),
        );
    }

    pub(crate) fn opt_string(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Located<String>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::String(s) => clean(d, &format!("`{key}`"), s, value.span()),
            _ => {
                self.wrong_type(d, key, "a string", value);
                None
            }
        }
    }

    /// Whether `key` is written in the table, whatever its type or value: a getter's `None` for a
    /// key that is present means it was reported, and the caller must not fall back to a default.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.get(key).is_some()
    }

    pub(crate) fn string(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Located<String>> {
        if self.table.get(key).is_none() {
            self.raw(key);
            self.missing(d, key);
            return None;
        }
        self.opt_string(d, key)
    }

    pub(crate) fn opt_integer(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Located<i64>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Integer(i) => match integer_value(i.as_str(), i.radix()) {
                Some(n) => Some(Located {
                    value: n,
                    span: value.span(),
                }),
                None => {
                    d.error(
                        value.span(),
                        format!("`{key}` in {} is out of range", self.context),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(d, key, "an integer", value);
                None
            }
        }
    }

    pub(crate) fn opt_bool(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Located<bool>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Located {
                value: *b,
                span: value.span(),
            }),
            _ => {
                self.wrong_type(d, key, "a boolean", value);
                None
            }
        }
    }

    /// An array of strings; a wrong element type is reported per element and the element skipped.
    pub(crate) fn opt_strings(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Vec<Located<String>>> {
        let value = self.raw(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(d, key, "an array of strings", value);
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.extend(clean(d, &format!("`{key}`"), s, item.span())),
                other => d.error(
                    item.span(),
                    format!(
                        "`{key}` in {} must hold only strings, found {}",
                        self.context,
                        type_name(other)
                    ),
                ),
            }
        }
        Some(out)
    }

    pub(crate) fn strings(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Vec<Located<String>>> {
        if self.table.get(key).is_none() {
            self.raw(key);
            self.missing(d, key);
            return None;
        }
        self.opt_strings(d, key)
    }

    /// A sub-table; `context` names it in messages.
    pub(crate) fn opt_table(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
        context: impl Into<String>,
    ) -> Option<Table<'t, 'i>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some(Table::new(context, t, value.span())),
            _ => {
                self.wrong_type(d, key, "a table", value);
                None
            }
        }
    }

    pub(crate) fn table(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
        context: impl Into<String>,
    ) -> Option<Table<'t, 'i>> {
        if self.table.get(key).is_none() {
            self.raw(key);
            self.missing(d, key);
            return None;
        }
        self.opt_table(d, key, context)
    }

    /// An array of tables (`[[key]]`); `context(n)` names the n-th (1-based) in messages.
    pub(crate) fn opt_tables(
        &self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
        context: impl Fn(usize) -> String,
    ) -> Option<Vec<Table<'t, 'i>>> {
        let value = self.raw(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(d, key, "an array of tables", value);
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Table::new(context(i + 1), t, item.span())),
                other => d.error(
                    item.span(),
                    format!(
                        "`{key}` in {} must hold only tables, found {}",
                        self.context,
                        type_name(other)
                    ),
                ),
            }
        }
        Some(out)
    }

    /// The entries of a table whose keys are data (like role names), each with its key span; a key
    /// with a refused character is reported and left out.
    pub(crate) fn entries(
        &self,
        d: &mut Diagnostics<'_>,
    ) -> Vec<(Located<String>, &'t Spanned<DeValue<'i>>)> {
        let what = format!("a key in {}", self.context);
        self.table
            .iter()
            .filter_map(|(k, v)| Some((clean(d, &what, k.get_ref(), k.span())?, v)))
            .collect()
    }

    /// Reports every key that was never asked for. `special` lets the caller phrase a known mistake
    /// better than "unknown key" (an inlined `password`, for one).
    pub(crate) fn finish_with(
        &self,
        d: &mut Diagnostics<'_>,
        special: impl Fn(&str) -> Option<String>,
    ) {
        let asked = self.asked.borrow();
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if asked.contains(&name) {
                continue;
            }
            let what = format!("a key in {}", self.context);
            if clean(d, &what, name, key.span()).is_none() {
                continue;
            }
            let message = special(name).unwrap_or_else(|| {
                with_suggestion(
                    format!("unknown key `{name}` in {}", self.context),
                    name,
                    asked.iter().copied(),
                )
            });
            d.error(key.span(), message);
        }
    }

    pub(crate) fn finish(&self, d: &mut Diagnostics<'_>) {
        self.finish_with(d, |_| None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_but_not_unrelated_words() {
        let keys = ["host", "port", "instance", "data_center", "password_env"];
        let cases = [
            ("hots", Some("host")),
            ("prot", Some("port")),
            ("datacenter", Some("data_center")),
            ("password_evn", Some("password_env")),
            ("colour", None),
        ];
        for (word, expected) in cases {
            assert_eq!(suggestion(word, keys), expected, "word {word:?}");
        }
    }

    #[test]
    fn integers_accept_underscores_and_radix() {
        let cases = [
            ("1433", 10, Some(1433)),
            ("1_433", 10, Some(1433)),
            ("ff", 16, Some(255)),
            ("99999999999999999999", 10, None),
        ];
        for (text, radix, expected) in cases {
            assert_eq!(integer_value(text, radix), expected, "text {text:?}");
        }
    }
}
