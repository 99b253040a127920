//! The host's stderr back into text: Windows PowerShell started with `-EncodedCommand` and a
//! redirected stderr writes its error, warning and verbose records there as CLIXML (reference I.2:
//! a `#< CLIXML` line, then `<Objs ...><S S="Error">text_x000D__x000A_</S></Objs>`), not as the text a
//! console shows. Operators read the host's stderr in error messages and journals, so it is decoded
//! line by line as it arrives: each `<S S="kind">` string becomes the lines it holds, warnings and
//! verbose text get the prefixes a console gives them, progress records are dropped. Text that is not
//! CLIXML (a host started otherwise, powershell.exe's own complaints) passes through unchanged.

/// The marker PowerShell writes before its first serialized record.
const MARKER: &str = "#< CLIXML";

/// Decodes one stderr stream, line by line.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    /// The marker was seen: lines of `<Objs>` are CLIXML from here on.
    serialized: bool,
}

impl Decoder {
    /// The text lines that one line of stderr stands for (none for the marker or a progress record).
    pub(crate) fn lines(&mut self, line: &str) -> Vec<String> {
        if line == MARKER {
            self.serialized = true;
            return Vec::new();
        }
        if !(self.serialized && line.starts_with("<Objs")) {
            return vec![line.to_owned()];
        }
        let mut out = Vec::new();
        for (kind, text) in strings(line) {
            let prefix = match kind.to_ascii_lowercase().as_str() {
                "warning" => "WARNING: ",
                "verbose" => "VERBOSE: ",
                "debug" => "DEBUG: ",
                _ => "",
            };
            let text = unescape(text);
            let text = text.strip_suffix("\r\n").unwrap_or(&text);
            out.extend(
                text.split('\n')
                    .map(|l| format!("{prefix}{}", l.strip_suffix('\r').unwrap_or(l))),
            );
        }
        out
    }
}

/// Every `<S S="kind">text</S>` element of a line, in order, with its text still escaped.
fn strings(line: &str) -> Vec<(&str, &str)> {
    const OPEN: &str = "<S S=\"";
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(OPEN) {
        rest = &rest[start + OPEN.len()..];
        let Some((kind, after)) = rest.split_once("\">") else {
            break;
        };
        let Some((text, after)) = after.split_once("</S>") else {
            break;
        };
        found.push((kind, text));
        rest = after;
    }
    found
}

/// XML's character references first, then the `_xHHHH_` escapes PowerShell uses for characters XML
/// cannot hold (`_x000D__x000A_` is a line break; a literal `_` before `x` is written `_x005F_`).
fn unescape(text: &str) -> String {
    let xml = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let mut units: Vec<u16> = Vec::with_capacity(xml.len());
    let mut rest = xml.as_str();
    while let Some(at) = rest.find("_x") {
        let (before, candidate) = rest.split_at(at);
        units.extend(before.encode_utf16());
        let code = candidate
            .get(2..6)
            .filter(|hex| {
                candidate.get(6..7) == Some("_") && hex.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .and_then(|hex| u16::from_str_radix(hex, 16).ok());
        match code {
            Some(unit) => {
                units.push(unit);
                rest = &candidate[7..];
            }
            None => {
                units.extend("_x".encode_utf16());
                rest = &candidate[2..];
            }
        }
    }
    units.extend(rest.encode_utf16());
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(lines: &[&str]) -> Vec<String> {
        let mut decoder = Decoder::default();
        lines.iter().flat_map(|l| decoder.lines(l)).collect()
    }

    #[test]
    fn records_become_the_lines_a_console_shows() {
        let cases: [(&[&str], &[&str]); 5] = [
            // An error written as PowerShell writes one: several strings, escaped line breaks.
            (
                &[
                    "#< CLIXML",
                    r#"<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">Import-Module : The specified module 'SkypeForBusiness' was not loaded._x000D__x000A_</S><S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>"#,
                ],
                &[
                    "Import-Module : The specified module 'SkypeForBusiness' was not loaded.",
                    "At line:1 char:1",
                ],
            ),
            // Warnings and verbose text get their console prefixes; progress is dropped.
            (
                &[
                    "#< CLIXML",
                    r#"<Objs Version="1.1.0.1" xmlns="x"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN><MS><I64 N="SourceId">1</I64></MS></Obj><S S="warning">unapproved verbs_x000D__x000A_</S><S S="verbose">Loading module_x000D__x000A_</S></Objs>"#,
                ],
                &["WARNING: unapproved verbs", "VERBOSE: Loading module"],
            ),
            // XML references and escaped underscores come back as written.
            (
                &[
                    "#< CLIXML",
                    r#"<Objs><S S="Error">a &lt;b&gt; &amp; 'c' _x005F_x0041_ _x2603_ _xZZ_</S></Objs>"#,
                ],
                &["a <b> & 'c' _x0041_ \u{2603} _xZZ_"],
            ),
            // Not CLIXML: unchanged, including before a marker.
            (
                &["plain text", "#< CLIXML", "also plain"],
                &["plain text", "also plain"],
            ),
            (
                &["<Objs><S S=\"Error\">x</S></Objs>"],
                &["<Objs><S S=\"Error\">x</S></Objs>"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(input), expected, "{input:?}");
        }
    }
}
