//! GUIDs and the lab's deterministic random numbers (no extra crate: the lab only needs unique ids).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct Guid(pub u128);

impl Guid {
    /// SQL Server's wire order: the first three groups little-endian, the rest as written [2.2.5.5.1.9].
    pub(crate) fn to_wire(self) -> [u8; 16] {
        let b = self.0.to_be_bytes();
        [
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ]
    }

    pub(crate) fn from_wire(w: [u8; 16]) -> Guid {
        let b = [
            w[3], w[2], w[1], w[0], w[5], w[4], w[7], w[6], w[8], w[9], w[10], w[11], w[12], w[13],
            w[14], w[15],
        ];
        Guid(u128::from_be_bytes(b))
    }

    pub(crate) fn parse(s: &str) -> Option<Guid> {
        let hex: String = s
            .trim()
            .trim_matches(|c| c == '{' || c == '}')
            .chars()
            .filter(|c| *c != '-')
            .collect();
        if hex.len() != 32 {
            return None;
        }
        u128::from_str_radix(&hex, 16).ok().map(Guid)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032X}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Guid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Guid::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a GUID: {s}")))
    }
}

/// splitmix64: small, fast and good enough for unique ids; its state is persisted with the world.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A version-4-shaped GUID.
    pub(crate) fn guid(&mut self) -> Guid {
        let v = ((self.next_u64() as u128) << 64) | self.next_u64() as u128;
        Guid(
            (v & !(0xF000u128 << 64) | (0x4000u128 << 64)) & !(0xC000u128 << 48)
                | (0x8000u128 << 48),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_round_trip_through_text_and_wire_order() {
        let g = Guid::parse("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap();
        assert_eq!(g.to_string(), "6F9619FF-8B86-D011-B42D-00C04FC964FF");
        assert_eq!(g.to_wire()[..4], [0xFF, 0x19, 0x96, 0x6F]);
        assert_eq!(Guid::from_wire(g.to_wire()), g);
        let mut rng = Rng(7);
        assert_ne!(rng.guid(), rng.guid());
    }
}
