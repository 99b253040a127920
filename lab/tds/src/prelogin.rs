//! PRELOGIN [2.2.6.5]: check the client's option table and answer with ours.
//!
//! The client's ENCRYPTION option is read out for the negotiation (`tls.rs`); the rest of its table
//! is parsed only to refuse garbage early. A plaintext instance answers ENCRYPT_NOT_SUP (0x02): with
//! OFF (0x00) both tiberius and FreeTDS would still start TLS for the login.

use crate::error::ProtocolError;
use crate::wire::WireReader;

/// PRELOGIN option tokens [2.2.6.5].
mod option {
    pub(super) const VERSION: u8 = 0x00;
    pub(super) const ENCRYPTION: u8 = 0x01;
    pub(super) const INSTOPT: u8 = 0x02;
    pub(super) const THREADID: u8 = 0x03;
    pub(super) const MARS: u8 = 0x04;
    pub(super) const TERMINATOR: u8 = 0xFF;
}

#[cfg(test)]
const ENCRYPT_NOT_SUP: u8 = crate::tls::encrypt::NOT_SUP;

/// Validates the client's option table: every (token, offset u16 BE, length u16 BE) entry must
/// point inside the payload, and the table must end with 0xFF. Returns the client's ENCRYPTION
/// value; a client that leaves it out is taken as ENCRYPT_OFF, the option's default [2.2.6.5].
pub(crate) fn check_client_prelogin(payload: &[u8]) -> Result<u8, ProtocolError> {
    let mut r = WireReader::new(payload);
    let mut encryption = crate::tls::encrypt::OFF;
    loop {
        let token = r.u8("PRELOGIN option table")?;
        if token == option::TERMINATOR {
            return Ok(encryption);
        }
        let b = r.bytes(4, "PRELOGIN option entry")?;
        let offset = u16::from_be_bytes([b[0], b[1]]) as usize;
        let length = u16::from_be_bytes([b[2], b[3]]) as usize;
        if offset + length > payload.len() {
            return Err(ProtocolError::malformed(
                "PRELOGIN option",
                format!(
                    "option 0x{token:02x} at {offset}+{length} is outside the {}-byte payload",
                    payload.len()
                ),
            ));
        }
        if token == option::ENCRYPTION && length >= 1 {
            encryption = payload[offset];
        }
    }
}

/// The server's PRELOGIN answer payload (sent as a TABULAR_RESULT message).
///
/// `version` is the 4 LOGINACK version bytes (major, minor, build high, build low); PRELOGIN carries
/// them as major, minor, build (u16 BE), then a u16 sub-build we leave 0.
/// `encryption` is the negotiated ENCRYPTION answer (`tls.rs`).
pub(crate) fn server_prelogin(version: [u8; 4], encryption: u8) -> Vec<u8> {
    let options: [(u8, Vec<u8>); 5] = [
        (
            option::VERSION,
            vec![version[0], version[1], version[2], version[3], 0, 0],
        ),
        (option::ENCRYPTION, vec![encryption]),
        // 0x00: "the instance name matched" [2.2.6.5]; needed when a client names an instance.
        (option::INSTOPT, vec![0x00]),
        // Empty THREADID: tiberius asserts a present value is zero in debug builds.
        (option::THREADID, vec![]),
        (option::MARS, vec![0x00]),
    ];
    let table_len = options.len() * 5 + 1;
    let mut table = Vec::with_capacity(table_len + 16);
    let mut data = Vec::new();
    for (token, value) in &options {
        let offset = (table_len + data.len()) as u16;
        table.push(*token);
        table.extend_from_slice(&offset.to_be_bytes());
        table.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
    }
    table.push(option::TERMINATOR);
    table.extend_from_slice(&data);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_is_a_well_formed_table_saying_encryption_not_supported() {
        let answer = server_prelogin([16, 0, 0x10, 0x7F], ENCRYPT_NOT_SUP);
        assert_eq!(check_client_prelogin(&answer).unwrap(), ENCRYPT_NOT_SUP);
        // ENCRYPTION entry is the second one: token 1 at bytes 5..10.
        assert_eq!(answer[5], option::ENCRYPTION);
        let off = u16::from_be_bytes([answer[6], answer[7]]) as usize;
        assert_eq!(answer[off], ENCRYPT_NOT_SUP);
        // VERSION data is first after the 26-byte table.
        assert_eq!(&answer[26..32], &[16, 0, 0x10, 0x7F, 0, 0]);
    }

    #[test]
    fn garbage_option_tables_are_refused() {
        let cases: &[&[u8]] = &[
            &[],
            &[0x00, 0x00],
            &[0x00, 0x00, 0x10, 0x00, 0x06, 0xFF],
            &[0x01],
        ];
        for case in cases {
            assert!(check_client_prelogin(case).is_err(), "{case:?}");
        }
    }
}
