//! Session ids: unguessable, URL-safe, and able to name the node that owns
//! the session (so a later cluster mode can route a poll to its owner).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

/// Random bytes in a sid: 128 bits from the operating system's CSPRNG.
const RANDOM_BYTES: usize = 16;
/// Two bytes of node id, then the random part.
const RAW_LEN: usize = 2 + RANDOM_BYTES;
/// Length of the URL-safe base64 text of `RAW_LEN` bytes.
const TEXT_LEN: usize = RAW_LEN / 3 * 4;

/// An engine.io session id: 24 URL-safe characters carrying a 16-bit node id
/// and 128 random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sid([u8; TEXT_LEN]);

impl Sid {
    /// A new random sid owned by `node`.
    ///
    /// Fails only when the operating system cannot provide random bytes.
    pub fn generate(node: u16) -> Result<Self, getrandom::Error> {
        let mut raw = [0u8; RAW_LEN];
        raw[..2].copy_from_slice(&node.to_be_bytes());
        getrandom::fill(&mut raw[2..])?;
        let mut text = [0u8; TEXT_LEN];
        // RAW_LEN is a multiple of 3, so the encoding fills `text` exactly.
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut text)
            .expect("the buffer is sized for the encoded id");
        debug_assert_eq!(written, TEXT_LEN);
        Ok(Sid(text))
    }

    /// Parses a sid from a request; `None` for anything that is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; TEXT_LEN] = s.as_bytes().try_into().ok()?;
        let mut raw = [0u8; RAW_LEN + 2];
        match URL_SAFE_NO_PAD.decode_slice(bytes, &mut raw) {
            Ok(RAW_LEN) => Some(Sid(bytes)),
            _ => None,
        }
    }

    /// The id of the node that created this session.
    pub fn node(&self) -> u16 {
        let mut raw = [0u8; RAW_LEN + 2];
        match URL_SAFE_NO_PAD.decode_slice(self.0, &mut raw) {
            Ok(_) => u16::from_be_bytes([raw[0], raw[1]]),
            Err(_) => 0,
        }
    }

    /// The sid as text.
    pub fn as_str(&self) -> &str {
        // Only base64 alphabet bytes are ever stored.
        std::str::from_utf8(&self.0).expect("base64url is ASCII")
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sids_are_url_safe_unique_and_carry_the_node() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let sid = Sid::generate(513).unwrap();
            assert_eq!(sid.as_str().len(), 24);
            assert!(
                sid.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(sid.node(), 513);
            assert_eq!(Sid::parse(sid.as_str()), Some(sid));
            assert!(seen.insert(sid));
        }
    }

    #[test]
    fn parse_rejects_what_is_not_a_sid() {
        assert_eq!(Sid::parse(""), None);
        assert_eq!(Sid::parse("short"), None);
        assert_eq!(Sid::parse("!!!!!!!!!!!!!!!!!!!!!!!!"), None);
        assert_eq!(Sid::parse("ééééééééééé!!"), None);
    }
}
