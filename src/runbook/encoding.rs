//! The runbook file's bytes to text. Administrators edit runbooks on Windows, where the tools save in
//! more than one encoding: Windows PowerShell 5.1's `>` and `Out-File` write UTF-16LE with a
//! byte-order mark, Notepad has long saved UTF-8 with one, others write plain UTF-8. Each is read by
//! its byte-order mark (UTF-8, UTF-16LE, UTF-16BE), and a file without one is UTF-8. Text that does not
//! decode is one located problem, `path:line:column: error: ...`, like any other in the runbook, with
//! the way to fix it; never "stream did not contain valid UTF-8".

use super::Diagnostic;

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];
const UTF16LE_BOM: &[u8] = &[0xFF, 0xFE];
const UTF16BE_BOM: &[u8] = &[0xFE, 0xFF];

/// What a file that does not decode is told to become.
const FIX: &str = "save the runbook as UTF-8 (or as UTF-16 with a byte-order mark, as Windows PowerShell's `>` writes it)";

/// Decodes a runbook file's bytes; `file` names it in the problem reported.
pub(crate) fn decode(file: &str, bytes: &[u8]) -> Result<String, Diagnostic> {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return utf8(file, rest);
    }
    if let Some(rest) = bytes.strip_prefix(UTF16LE_BOM) {
        return utf16(file, rest, u16::from_le_bytes, "UTF-16LE");
    }
    if let Some(rest) = bytes.strip_prefix(UTF16BE_BOM) {
        return utf16(file, rest, u16::from_be_bytes, "UTF-16BE");
    }
    utf8(file, bytes)
}

fn utf8(file: &str, bytes: &[u8]) -> Result<String, Diagnostic> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => {
            let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).expect("valid up to here");
            let byte = bytes[e.valid_up_to()];
            Err(problem(
                file,
                good,
                format!("the file is not UTF-8 text here (byte 0x{byte:02X}); {FIX}"),
            ))
        }
    }
}

fn utf16(
    file: &str,
    bytes: &[u8],
    unit: fn([u8; 2]) -> u16,
    name: &str,
) -> Result<String, Diagnostic> {
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => text.push(c),
            Err(_) => {
                return Err(problem(
                    file,
                    &text,
                    format!(
                        "the file has a {name} byte-order mark but is not {name} text here (an unpaired surrogate); {FIX}"
                    ),
                ));
            }
        }
    }
    if !bytes.len().is_multiple_of(2) {
        return Err(problem(
            file,
            &text,
            format!("the file has a {name} byte-order mark but ends in half a character; {FIX}"),
        ));
    }
    Ok(text)
}

/// The problem, placed just after the text that did decode.
fn problem(file: &str, good: &str, message: String) -> Diagnostic {
    let line = good.matches('\n').count() + 1;
    let column = good.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Diagnostic {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str) -> Vec<u8> {
        UTF16LE_BOM
            .iter()
            .copied()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect()
    }

    fn utf16be(text: &str) -> Vec<u8> {
        UTF16BE_BOM
            .iter()
            .copied()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect()
    }

    #[test]
    fn every_encoding_windows_tools_save_in_reads_as_the_same_text() {
        let text = "[pool]\nfqdn = \"pool.contoso.com\" # Zürich, 𝄞\r\n";
        let files = [
            text.as_bytes().to_vec(),
            [UTF8_BOM, text.as_bytes()].concat(),
            utf16le(text),
            utf16be(text),
        ];
        for bytes in files {
            assert_eq!(decode("r.toml", &bytes).as_deref(), Ok(text), "{bytes:?}");
        }
    }

    #[test]
    fn text_that_does_not_decode_is_a_located_problem_with_the_fix() {
        let mut lone_surrogate = utf16le("a\nbc");
        lone_surrogate.extend(0xD800u16.to_le_bytes());
        let mut odd = utf16le("x");
        odd.push(b'y');
        let cases: [(Vec<u8>, &str); 3] = [
            (
                b"[pool]\nfqdn = \"Z\xFCrich\"\n".to_vec(),
                "r.toml:2:10: error: the file is not UTF-8 text here (byte 0xFC); save the runbook as UTF-8 (or as UTF-16 with a byte-order mark, as Windows PowerShell's `>` writes it)",
            ),
            (
                lone_surrogate,
                "r.toml:2:3: error: the file has a UTF-16LE byte-order mark but is not UTF-16LE text here (an unpaired surrogate); save the runbook as UTF-8 (or as UTF-16 with a byte-order mark, as Windows PowerShell's `>` writes it)",
            ),
            (
                odd,
                "r.toml:1:2: error: the file has a UTF-16LE byte-order mark but ends in half a character; save the runbook as UTF-8 (or as UTF-16 with a byte-order mark, as Windows PowerShell's `>` writes it)",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode("r.toml", &bytes).unwrap_err().to_string(), expected);
        }
    }
}
