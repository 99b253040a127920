//! Windows authentication inside LOGIN7: the server's half of NTLMv2 [MS-NLMP], as a domain
//! controller would verify it on SQL Server's behalf.
//!
//! The client's LOGIN7 carries an NTLM NEGOTIATE message in its SSPI field [2.2.6.4]; the server
//! answers with an SSPI token (0xED) holding a CHALLENGE [MS-NLMP 2.2.1.2]; the client's next
//! message carries the AUTHENTICATE [2.2.1.3], whose NTLMv2 response proves the password
//! [MS-NLMP 3.3.2]. This module builds the CHALLENGE, reads the AUTHENTICATE and checks the proof;
//! which accounts exist, and their passwords, are the backend's.
//!
//! Deliberately not done: NTLMv1 and anonymous responses (refused), the MIC and session-key
//! exchange (signing and sealing are TLS's job in TDS), Kerberos and SPNEGO wrapping.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};

use crate::error::ProtocolError;

pub(crate) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NegotiateFlags [MS-NLMP 2.2.2.5] the lab's CHALLENGE may grant.
mod flag {
    pub(super) const UNICODE: u32 = 0x0000_0001;
    pub(super) const REQUEST_TARGET: u32 = 0x0000_0004;
    pub(super) const SIGN: u32 = 0x0000_0010;
    pub(super) const SEAL: u32 = 0x0000_0020;
    pub(super) const NTLM: u32 = 0x0000_0200;
    pub(super) const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub(super) const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    pub(super) const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub(super) const TARGET_INFO: u32 = 0x0080_0000;
    pub(super) const VERSION: u32 = 0x0200_0000;
    pub(super) const N128: u32 = 0x2000_0000;
    pub(super) const KEY_EXCH: u32 = 0x4000_0000;
    pub(super) const N56: u32 = 0x8000_0000;
}

/// AV_PAIR ids [MS-NLMP 2.2.2.1].
mod av {
    pub(super) const EOL: u16 = 0;
    pub(super) const NB_COMPUTER_NAME: u16 = 1;
    pub(super) const NB_DOMAIN_NAME: u16 = 2;
    pub(super) const DNS_COMPUTER_NAME: u16 = 3;
    pub(super) const DNS_DOMAIN_NAME: u16 = 4;
    pub(super) const TIMESTAMP: u16 = 7;
}

/// Who the server says it is in its CHALLENGE.
pub(crate) struct Target<'a> {
    /// NetBIOS domain, e.g. `LITWAREINC`.
    pub(crate) domain: &'a str,
    /// NetBIOS computer name, e.g. `DAL-SQL-001`.
    pub(crate) computer: &'a str,
    pub(crate) dns_domain: &'a str,
    pub(crate) dns_computer: &'a str,
}

/// The CHALLENGE message for a client's NEGOTIATE. `server_challenge` must be random per login;
/// `filetime` is the current time in 100 ns units since 1601 (MsvAvTimestamp).
pub(crate) fn challenge(
    negotiate: &[u8],
    target: &Target<'_>,
    server_challenge: [u8; 8],
    filetime: u64,
) -> Result<Vec<u8>, ProtocolError> {
    if negotiate.len() < 16 || &negotiate[..8] != SIGNATURE || u32_at(negotiate, 8) != 1 {
        return Err(ProtocolError::malformed(
            "SSPI",
            "the login's SSPI data is not an NTLM NEGOTIATE message",
        ));
    }
    let asked = u32_at(negotiate, 12);
    let grantable = flag::SIGN
        | flag::SEAL
        | flag::ALWAYS_SIGN
        | flag::EXTENDED_SESSIONSECURITY
        | flag::VERSION
        | flag::N128
        | flag::KEY_EXCH
        | flag::N56;
    let flags = (asked & grantable)
        | flag::UNICODE
        | flag::REQUEST_TARGET
        | flag::NTLM
        | flag::TARGET_TYPE_DOMAIN
        | flag::TARGET_INFO;

    let name = utf16(target.domain);
    let mut info = Vec::new();
    for (id, value) in [
        (av::NB_DOMAIN_NAME, target.domain),
        (av::NB_COMPUTER_NAME, target.computer),
        (av::DNS_DOMAIN_NAME, target.dns_domain),
        (av::DNS_COMPUTER_NAME, target.dns_computer),
    ] {
        let v = utf16(value);
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&(v.len() as u16).to_le_bytes());
        info.extend_from_slice(&v);
    }
    info.extend_from_slice(&av::TIMESTAMP.to_le_bytes());
    info.extend_from_slice(&8u16.to_le_bytes());
    info.extend_from_slice(&filetime.to_le_bytes());
    info.extend_from_slice(&av::EOL.to_le_bytes());
    info.extend_from_slice(&0u16.to_le_bytes());

    // Fixed part: signature, type, TargetNameFields, flags, challenge, reserved, TargetInfoFields,
    // Version = 56 bytes; then the payload.
    const FIXED: usize = 56;
    let mut m = Vec::with_capacity(FIXED + name.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    fields(&mut m, name.len(), FIXED);
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    fields(&mut m, info.len(), FIXED + name.len());
    // Version: Windows Server 2016 (10.0.14393), NTLM revision 15.
    m.extend_from_slice(&[10, 0, 0x39, 0x38, 0, 0, 0, 15]);
    m.extend_from_slice(&name);
    m.extend_from_slice(&info);
    Ok(m)
}

/// What an AUTHENTICATE message says, as far as checking it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticate {
    pub(crate) domain: String,
    pub(crate) user: String,
    nt_response: Vec<u8>,
}

impl Authenticate {
    pub(crate) fn parse(message: &[u8]) -> Result<Authenticate, ProtocolError> {
        let bad = |why: &str| ProtocolError::malformed("SSPI", why.to_owned());
        if message.len() < 64 || &message[..8] != SIGNATURE || u32_at(message, 8) != 3 {
            return Err(bad("expected an NTLM AUTHENTICATE message"));
        }
        let field = |at: usize| -> Result<&[u8], ProtocolError> {
            let len = u16::from_le_bytes([message[at], message[at + 1]]) as usize;
            let offset = u32_at(message, at + 4) as usize;
            message
                .get(offset..offset + len)
                .ok_or_else(|| bad("a field of the AUTHENTICATE message lies outside it"))
        };
        let flags = u32_at(message, 60);
        let text = |bytes: &[u8]| -> Result<String, ProtocolError> {
            if flags & flag::UNICODE == 0 {
                return Err(bad("an OEM (non-Unicode) AUTHENTICATE message"));
            }
            crate::wire::utf16le(bytes, "NTLM name")
        };
        Ok(Authenticate {
            nt_response: field(20)?.to_vec(),
            domain: text(field(28)?)?,
            user: text(field(36)?)?,
        })
    }

    /// Whether the NTLMv2 response proves `password` for this user and domain, for the CHALLENGE
    /// that carried `server_challenge` [MS-NLMP 3.3.2].
    pub(crate) fn proves(&self, password: &str, server_challenge: &[u8; 8]) -> bool {
        // An NTLMv2 response is NTProofStr (16 bytes) + a blob of at least 28; 24 bytes is NTLMv1.
        if self.nt_response.len() < 16 + 28 {
            return false;
        }
        let (proof, blob) = self.nt_response.split_at(16);
        let nt_hash = Md4::digest(utf16(password));
        let mut identity = utf16(&self.user.to_uppercase());
        identity.extend_from_slice(&utf16(&self.domain));
        let response_key = hmac_md5(&nt_hash, &[&identity]);
        let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(&response_key)
            .expect("HMAC takes any key length");
        mac.update(server_challenge);
        mac.update(blob);
        mac.verify_slice(proof).is_ok()
    }
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A (length, max length, offset) field [MS-NLMP 2.2.1].
fn fields(m: &mut Vec<u8>, len: usize, offset: usize) {
    m.extend_from_slice(&(len as u16).to_le_bytes());
    m.extend_from_slice(&(len as u16).to_le_bytes());
    m.extend_from_slice(&(offset as u32).to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-NLMP 4.2.4: the NTLMv2 example (user "User", domain "Domain", password "Password",
    /// server challenge 0123456789abcdef): its NTProofStr, recomputed here from the published blob.
    #[test]
    fn the_ntlmv2_proof_of_the_specification_example_verifies() {
        let server_challenge = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        // temp = 0x0101, reserved, time 0, client challenge aa..aa, reserved, AV pairs
        // (NbDomainName "Domain", NbComputerName "Server", EOL), reserved.
        let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
        blob.extend_from_slice(&[0; 8]);
        blob.extend_from_slice(&[0xaa; 8]);
        blob.extend_from_slice(&[0; 4]);
        for (id, value) in [(2u16, "Domain"), (1u16, "Server")] {
            let v = utf16(value);
            blob.extend_from_slice(&id.to_le_bytes());
            blob.extend_from_slice(&(v.len() as u16).to_le_bytes());
            blob.extend_from_slice(&v);
        }
        blob.extend_from_slice(&[0; 4]);
        blob.extend_from_slice(&[0; 4]);
        // MS-NLMP 4.2.4.2.2: NTProofStr = 68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c.
        let proof = [
            0x68, 0xcd, 0x0a, 0xb8, 0x51, 0xe5, 0x1c, 0x96, 0xaa, 0xbc, 0x92, 0x7b, 0xeb, 0xef,
            0x6a, 0x1c,
        ];
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&blob);
        let auth = Authenticate {
            domain: "Domain".into(),
            user: "User".into(),
            nt_response,
        };
        assert!(auth.proves("Password", &server_challenge));
        assert!(!auth.proves("password", &server_challenge));
        assert!(!auth.proves("Password", &[0; 8]));
    }

    #[test]
    fn a_challenge_answers_only_an_ntlm_negotiate() {
        let target = Target {
            domain: "LITWAREINC",
            computer: "DAL-SQL-001",
            dns_domain: "litwareinc.com",
            dns_computer: "dal-sql-001.litwareinc.com",
        };
        let mut negotiate = SIGNATURE.to_vec();
        negotiate.extend_from_slice(&1u32.to_le_bytes());
        negotiate.extend_from_slice(&(flag::UNICODE | flag::SEAL).to_le_bytes());
        let m = challenge(&negotiate, &target, [7; 8], 1).unwrap();
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(u32_at(&m, 8), 2);
        assert_eq!(&m[24..32], &[7; 8]);
        assert_ne!(u32_at(&m, 20) & flag::SEAL, 0);
        assert!(challenge(b"NTLMSSP\0\x03\0\0\0\0\0\0\0", &target, [7; 8], 1).is_err());
        assert!(challenge(b"garbage", &target, [7; 8], 1).is_err());
    }
}
