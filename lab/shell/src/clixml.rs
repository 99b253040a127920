//! What Windows PowerShell writes to a redirected stderr when it was started with `-EncodedCommand`
//! (reference I.2): not text but CLIXML, a `#< CLIXML` line and then the records of its error,
//! warning and verbose streams, `<Objs ...><S S="Error">text_x000D__x000A_</S></Objs>`. The lab
//! shell plays that, so pcfail's reading of it is tested against the shape the reference describes.
//!
//! Each record is written as one `<Objs>` line of its own (PowerShell may gather several records in
//! one), which a reader must take either way.

const NAMESPACE: &str = "http://schemas.microsoft.com/powershell/2004/04";

/// The line PowerShell writes before the first record.
pub(crate) const MARKER: &str = "#< CLIXML";

/// One stderr text as a serialized record: `WARNING: x` as a warning record, anything else as an
/// error record, each ending in the line break PowerShell adds.
pub(crate) fn record(text: &str) -> String {
    let (kind, text) = match text.strip_prefix("WARNING: ") {
        Some(warning) => ("warning", warning),
        None => ("Error", text),
    };
    format!(
        "<Objs Version=\"1.1.0.1\" xmlns=\"{NAMESPACE}\"><S S=\"{kind}\">{}</S></Objs>",
        escape(&format!("{text}\r\n"))
    )
}

/// XML's three markup characters as references; control characters, and an `_` that would start an
/// escape, as `_xHHHH_`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '_' if chars.peek() == Some(&'x') => out.push_str("_x005F_"),
            c if c.is_control() => out.push_str(&format!("_x{:04X}_", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_escaped_as_powershell_serializes_them() {
        let cases = [
            (
                "pcfail lab shell: ignoring fault rules: <bad> & worse",
                "<S S=\"Error\">pcfail lab shell: ignoring fault rules: &lt;bad&gt; &amp; worse_x000D__x000A_</S>",
            ),
            (
                "WARNING: unapproved verbs",
                "<S S=\"warning\">unapproved verbs_x000D__x000A_</S>",
            ),
            (
                "a_x0041_\tb",
                "<S S=\"Error\">a_x005F_x0041__x0009_b_x000D__x000A_</S>",
            ),
        ];
        for (text, element) in cases {
            assert_eq!(
                record(text),
                format!("<Objs Version=\"1.1.0.1\" xmlns=\"{NAMESPACE}\">{element}</Objs>")
            );
        }
    }
}
