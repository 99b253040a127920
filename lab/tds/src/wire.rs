//! Bounds-checked reading of little-endian TDS fields from a reassembled message.
//!
//! Every decoder in this crate reads through [`WireReader`], so running past the end of client
//! input is a [`ProtocolError::Truncated`], never a panic. Writing has no such hazard and lives with
//! the token encoder.

use crate::error::ProtocolError;

/// A cursor over one message's payload.
pub(crate) struct WireReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> WireReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        WireReader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next byte without consuming it.
    pub(crate) fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn bytes(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<&'a [u8], ProtocolError> {
        if self.remaining() < n {
            return Err(ProtocolError::Truncated { what });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), ProtocolError> {
        self.bytes(n, what).map(|_| ())
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(crate) fn u16_le(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32_le(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64_le(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// B_VARCHAR: u8 length in UTF-16 code units, then UTF-16LE [2.2.5.1.3].
    pub(crate) fn b_varchar(&mut self, what: &'static str) -> Result<String, ProtocolError> {
        let units = self.u8(what)? as usize;
        let raw = self.bytes(units * 2, what)?;
        utf16le(raw, what)
    }

    /// US_VARCHAR: u16 length in UTF-16 code units, then UTF-16LE [2.2.5.1.3].
    pub(crate) fn us_varchar(&mut self, what: &'static str) -> Result<String, ProtocolError> {
        let units = self.u16_le(what)? as usize;
        let raw = self.bytes(units * 2, what)?;
        utf16le(raw, what)
    }
}

/// Decodes UTF-16LE strictly: an odd byte count or a lone surrogate is malformed input, the same
/// way tiberius treats it on the other side.
pub(crate) fn utf16le(raw: &[u8], what: &'static str) -> Result<String, ProtocolError> {
    if !raw.len().is_multiple_of(2) {
        return Err(ProtocolError::malformed(
            what,
            "odd number of bytes in UTF-16 text",
        ));
    }
    let units = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|e| ProtocolError::malformed(what, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_past_the_end_is_a_truncation_error_not_a_panic() {
        let cases: &[(&[u8], usize)] = &[(&[], 1), (&[1], 2), (&[1, 2, 3], 4), (&[0; 7], 8)];
        for (buf, n) in cases {
            let mut r = WireReader::new(buf);
            assert!(
                matches!(
                    r.bytes(*n, "x"),
                    Err(ProtocolError::Truncated { what: "x" })
                ),
                "{buf:?} / {n}"
            );
        }
    }

    #[test]
    fn b_varchar_counts_utf16_code_units() {
        // "é😀": é is one unit, the emoji a surrogate pair (two units).
        let text = "é😀";
        let units: Vec<u16> = text.encode_utf16().collect();
        let mut buf = vec![units.len() as u8];
        buf.extend(units.iter().flat_map(|u| u.to_le_bytes()));
        let mut r = WireReader::new(&buf);
        assert_eq!(r.b_varchar("name").unwrap(), text);
        assert!(r.is_empty());
    }

    #[test]
    fn lone_surrogate_is_malformed() {
        let buf = [0x00, 0xD8];
        assert!(matches!(
            utf16le(&buf, "t"),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            utf16le(&[0x41], "t"),
            Err(ProtocolError::Malformed { .. })
        ));
    }
}
