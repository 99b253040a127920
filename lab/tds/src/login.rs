//! LOGIN7 [2.2.6.4]: decoding the client's login and writing the server's answer.
//!
//! Decoding turns the fixed part and its (offset, length-in-characters) table into a
//! [`Login`], de-obfuscating the password. Whether the login is accepted is the [`crate::Backend`]'s
//! decision; this module only writes the token sequence a real server sends for either outcome.

use crate::backend::{Login, Message};
use crate::error::ProtocolError;
use crate::token::{COLLATION, TokenWriter, done_status, env_type, token_type};
use crate::wire::{WireReader, utf16le};

use crate::token::{TDS_7_2, TDS_7_4};

/// TDS 7.1 (SQL Server 2000) as LOGINACK announces it [2.2.7.14]: 7.1 itself and its revision 1
/// (SQL Server 2000 SP1). Current SQL Server versions still accept these clients; 7.1 lays out DONE
/// row counts, ERROR line numbers and request headers differently (token.rs, request.rs).
const TDS_7_1: u32 = 0x7100_0000;
const TDS_7_1_REV1: u32 = 0x7100_0001;
const TDS_7_3_A: u32 = 0x730A_0003;
const TDS_7_3_B: u32 = 0x730B_0003;

/// Smallest and largest packet sizes SQL Server accepts (`network packet size` option).
const MIN_PACKET_SIZE: u32 = 512;
const MAX_PACKET_SIZE: u32 = 32767;

/// A decoded LOGIN7 plus the protocol-level settings it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login7 {
    pub(crate) login: Login,
    /// Requested packet size; 0 means "server default".
    pub(crate) packet_size: u32,
    /// The SSPI data of an integrated-security login (fIntSecurity): NTLM's NEGOTIATE.
    pub(crate) sspi: Option<Vec<u8>>,
}

/// Decodes a LOGIN7 payload. Offsets count from the start of the payload; lengths are in UTF-16
/// characters.
pub(crate) fn decode_login7(payload: &[u8]) -> Result<Login7, ProtocolError> {
    let mut r = WireReader::new(payload);
    let _length = r.u32_le("LOGIN7 length")?;
    // [2.2.6.4]: TDSVersion is little-endian here, unlike LOGINACK's big-endian copy.
    let tds_version = r.u32_le("LOGIN7 TDS version")?;
    let packet_size = r.u32_le("LOGIN7 packet size")?;
    // ClientProgVer, ClientPID, ConnectionID, then the option flags; ClientTimeZone, ClientLCID.
    r.skip(12, "LOGIN7 fixed part")?;
    let flags = r.bytes(4, "LOGIN7 option flags")?;
    // OptionFlags2 bit 7: fIntSecurity, the login is Windows authentication through SSPI.
    let integrated = flags[1] & 0x80 != 0;
    r.skip(8, "LOGIN7 fixed part")?;
    let mut fields = [(0usize, 0usize); 9];
    for f in &mut fields {
        let offset = r.u16_le("LOGIN7 offset table")? as usize;
        let chars = r.u16_le("LOGIN7 offset table")? as usize;
        *f = (offset, chars);
    }
    let text =
        |(offset, chars): (usize, usize), what: &'static str| -> Result<Vec<u8>, ProtocolError> {
            let end = offset + chars * 2;
            payload.get(offset..end).map(<[u8]>::to_vec).ok_or_else(|| {
                ProtocolError::malformed(
                    what,
                    format!(
                        "bytes {offset}..{end} outside the {}-byte login",
                        payload.len()
                    ),
                )
            })
        };
    let string = |f, what| text(f, what).and_then(|b| utf16le(&b, what));
    // ClientID (6 bytes), then ibSSPI, cbSSPI (in bytes, not characters); cbSSPILong (after
    // AtchDBFile and ChangePassword) when cbSSPI is 0xFFFF [2.2.6.4].
    let sspi = if integrated {
        r.skip(6, "LOGIN7 ClientID")?;
        let offset = r.u16_le("LOGIN7 ibSSPI")? as usize;
        let mut length = r.u16_le("LOGIN7 cbSSPI")? as usize;
        if length == 0xFFFF {
            r.skip(8, "LOGIN7 offset table")?;
            length = r.u32_le("LOGIN7 cbSSPILong")? as usize;
        }
        let bytes = payload.get(offset..offset + length).ok_or_else(|| {
            ProtocolError::malformed("LOGIN7 SSPI", "the SSPI data lies outside the login")
        })?;
        Some(bytes.to_vec())
    } else {
        None
    };
    let [
        host,
        user,
        password,
        app,
        server,
        _extension,
        _library,
        _language,
        database,
    ] = fields;
    let password_bytes: Vec<u8> = text(password, "LOGIN7 password")?
        .into_iter()
        .map(deobfuscate)
        .collect();
    Ok(Login7 {
        login: Login {
            user: string(user, "LOGIN7 user name")?,
            password: utf16le(&password_bytes, "LOGIN7 password")?,
            database: string(database, "LOGIN7 database")?,
            app_name: string(app, "LOGIN7 app name")?,
            host_name: string(host, "LOGIN7 host name")?,
            server_name: string(server, "LOGIN7 server name")?,
            tds_version,
            windows: false,
        },
        packet_size,
        sspi,
    })
}

/// Undoes the password obfuscation [2.2.6.4]: the client swapped each byte's nibbles, then XORed
/// with 0xA5.
fn deobfuscate(b: u8) -> u8 {
    (b ^ 0xA5).rotate_left(4)
}

/// The TDS version LOGINACK announces: min(client, 7.4), as one of the exact values clients know.
/// `None` for clients older than 7.1 (TDS 7.0, SQL Server 7.0, is long gone).
pub(crate) fn negotiated_version(client: u32) -> Option<u32> {
    match client >> 24 {
        0x71 if client == TDS_7_1 => Some(TDS_7_1),
        0x71 => Some(TDS_7_1_REV1),
        0x72 if client >= TDS_7_2 => Some(TDS_7_2),
        0x72 => Some(TDS_7_1_REV1),
        0x73 if client == TDS_7_3_A => Some(TDS_7_3_A),
        0x73 => Some(TDS_7_3_B),
        0x74..=0x7F => Some(TDS_7_4),
        _ => None,
    }
}

/// The packet size the server grants: the client's request within SQL Server's limits, or the
/// 4096-byte default when the client leaves it to the server (0).
pub(crate) fn negotiated_packet_size(requested: u32) -> u32 {
    if requested == 0 {
        crate::packet::DEFAULT_PACKET_SIZE as u32
    } else {
        requested.clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE)
    }
}

/// Everything the server sends for a successful login, in SQL Server's order: ENVCHANGE database,
/// INFO 5701, ENVCHANGE collation, ENVCHANGE language, INFO 5703, LOGINACK, ENVCHANGE packet size,
/// DONE.
pub(crate) struct LoginReply<'a> {
    pub(crate) database: &'a str,
    pub(crate) server_name: &'a str,
    pub(crate) tds_version: u32,
    pub(crate) packet_size: u32,
    pub(crate) program: &'a str,
    pub(crate) version: [u8; 4],
}

impl LoginReply<'_> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = TokenWriter::for_version(self.tds_version);
        w.env_change_text(env_type::DATABASE, self.database, "master");
        w.message(
            token_type::INFO,
            &Message {
                number: 5701,
                state: 2,
                class: 0,
                message: format!("Changed database context to '{}'.", self.database),
                procedure: String::new(),
                line: 1,
            },
            self.server_name,
        );
        w.env_change_bytes(env_type::COLLATION, &COLLATION, &[]);
        w.env_change_text(env_type::LANGUAGE, "us_english", "");
        w.message(
            token_type::INFO,
            &Message {
                number: 5703,
                state: 1,
                class: 0,
                message: "Changed language setting to us_english.".to_owned(),
                procedure: String::new(),
                line: 1,
            },
            self.server_name,
        );
        w.login_ack(self.tds_version, self.program, self.version);
        let size = self.packet_size.to_string();
        w.env_change_text(env_type::PACKET_SIZE, &size, &size);
        w.done(token_type::DONE, 0, 0, 0);
        w.buf
    }
}

/// A refused login: the ERRORs, then DONE with DONE_ERROR [2.2.7.6], laid out for the client's TDS
/// `version` so that even a refusal is readable. The caller closes the socket.
pub(crate) fn encode_refusal(errors: &[Message], server_name: &str, version: u32) -> Vec<u8> {
    let mut w = TokenWriter::for_version(version);
    for error in errors {
        w.message(token_type::ERROR, error, server_name);
    }
    w.done(token_type::DONE, done_status::ERROR, 0, 0);
    w.buf
}

/// The error for a client older than TDS 7.1.
///
/// A real SQL Server that cannot speak a client's TDS version writes error 17802 (severity 20,
/// "The Tabular Data Stream (TDS) version 0x%x of the client library used to open the connection
/// is unsupported or unknown. The connection has been closed.") to its error log and closes the
/// socket without any token. We send the same error as a token before closing, so the person
/// running `tsql` sees why instead of a bare disconnect; the number, class and text are the real
/// ones.
pub(crate) fn unsupported_version(client: u32, peer: std::net::SocketAddr) -> Message {
    Message {
        number: 17802,
        state: 1,
        class: 20,
        message: format!(
            "The Tabular Data Stream (TDS) version 0x{client:x} of the client library used to open the connection is unsupported or unknown. The connection has been closed. [CLIENT: {}]",
            peer.ip()
        ),
        procedure: String::new(),
        line: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a LOGIN7 payload the way a client does.
    fn login7(version: u32, user: &str, password: &str, database: &str) -> Vec<u8> {
        let fields = [
            "host", user, password, "app", "srv", "", "lib", "", database,
        ];
        let fixed = 94;
        let mut head = Vec::new();
        let mut data = Vec::new();
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&version.to_le_bytes());
        head.extend_from_slice(&4096u32.to_le_bytes());
        head.extend_from_slice(&[0; 24]);
        for (i, f) in fields.iter().enumerate() {
            let units: Vec<u16> = f.encode_utf16().collect();
            head.extend_from_slice(&((fixed + data.len()) as u16).to_le_bytes());
            head.extend_from_slice(&(units.len() as u16).to_le_bytes());
            for u in units {
                for b in u.to_le_bytes() {
                    data.push(if i == 2 { b.rotate_left(4) ^ 0xA5 } else { b });
                }
            }
        }
        head.extend_from_slice(&[0; 6 + 4 * 3 + 4]);
        assert_eq!(head.len(), fixed);
        head.extend(data);
        head
    }

    #[test]
    fn login7_fields_and_password_are_decoded() {
        let l = decode_login7(&login7(0x7400_0004, "sa", "Pässw0rd!", "msdb")).unwrap();
        assert_eq!(l.login.user, "sa");
        assert_eq!(l.login.password, "Pässw0rd!");
        assert_eq!(l.login.database, "msdb");
        assert_eq!(l.login.host_name, "host");
        assert_eq!(l.login.app_name, "app");
        assert_eq!(l.login.server_name, "srv");
        assert_eq!(l.login.tds_version, 0x7400_0004);
        assert_eq!(l.packet_size, 4096);
    }

    #[test]
    fn truncated_or_out_of_range_logins_are_errors() {
        let good = login7(0x7400_0004, "sa", "x", "");
        for cut in [0, 10, 50, 93, good.len() - 1] {
            assert!(decode_login7(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[40] = 0xFF; // user name offset far outside
        bad[41] = 0xFF;
        assert!(decode_login7(&bad).is_err());
    }

    #[test]
    fn version_is_min_of_client_and_7_4_and_refused_below_7_1() {
        let cases = [
            (0x7400_0004, Some(TDS_7_4)),
            (0x7500_0000, Some(TDS_7_4)),
            (0x730B_0003, Some(TDS_7_3_B)),
            (0x730A_0003, Some(TDS_7_3_A)),
            (0x7209_0002, Some(TDS_7_2)),
            (0x7100_0001, Some(TDS_7_1_REV1)),
            (0x7100_0000, Some(TDS_7_1)),
            (0x7000_0000, None),
            (0x0800_0000, None),
        ];
        for (client, expected) in cases {
            assert_eq!(negotiated_version(client), expected, "0x{client:08x}");
        }
    }

    #[test]
    fn packet_size_is_clamped_to_sql_server_limits() {
        for (asked, got) in [
            (0, 4096),
            (100, 512),
            (4096, 4096),
            (8000, 8000),
            (65535, 32767),
        ] {
            assert_eq!(negotiated_packet_size(asked), got);
        }
    }

    #[test]
    fn login_reply_tokens_come_in_sql_server_order() {
        let reply = LoginReply {
            database: "master",
            server_name: "S",
            tds_version: TDS_7_4,
            packet_size: 4096,
            program: "Microsoft SQL Server",
            version: [16, 0, 0x10, 0x7F],
        }
        .encode();
        // Walk the length-prefixed tokens, noting (token, ENVCHANGE type or message number).
        let mut seen = Vec::new();
        let mut i = 0;
        while i < reply.len() {
            let t = reply[i];
            if t == token_type::DONE {
                seen.push((t, 0));
                assert_eq!(reply.len(), i + 13, "DONE is last");
                break;
            }
            let len = u16::from_le_bytes([reply[i + 1], reply[i + 2]]) as usize;
            let body = &reply[i + 3..i + 3 + len];
            let detail = match t {
                token_type::ENVCHANGE => u32::from(body[0]),
                token_type::INFO => u32::from_le_bytes([body[0], body[1], body[2], body[3]]),
                token_type::LOGINACK => u32::from_be_bytes([body[1], body[2], body[3], body[4]]),
                other => panic!("unexpected token {other:02X}"),
            };
            seen.push((t, detail));
            i += 3 + len;
        }
        assert_eq!(
            seen,
            vec![
                (token_type::ENVCHANGE, 1),
                (token_type::INFO, 5701),
                (token_type::ENVCHANGE, 7),
                (token_type::ENVCHANGE, 2),
                (token_type::INFO, 5703),
                (token_type::LOGINACK, TDS_7_4),
                (token_type::ENVCHANGE, 4),
                (token_type::DONE, 0),
            ]
        );
    }
}
