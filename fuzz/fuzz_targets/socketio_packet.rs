//! A socket.io packet and its binary attachments.
//!
//! The input up to the first `0xFF` byte (never part of UTF-8) is the text
//! message; what follows, split at each further `0xFF`, is the attachments.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketgate::socketio::packet::{self, Decoded, Limits, Packet};

/// Decodes `text` and completes it with `attachments`; `None` when it does
/// not decode, or needs more attachments than there are.
fn decode<'a>(
    text: &str,
    mut attachments: impl Iterator<Item = &'a [u8]>,
    limits: &Limits,
) -> Option<Packet> {
    match packet::decode(text, limits).ok()? {
        Decoded::Complete(p) => Some(p),
        Decoded::Partial(mut partial) => loop {
            let expected = partial.expected();
            assert!(expected > 0 && expected <= limits.max_attachments);
            let bin = Bytes::copy_from_slice(attachments.next()?);
            match partial.push(bin, limits) {
                Ok(Some(done)) => {
                    assert_eq!(partial.expected(), 0);
                    assert!(partial.packet().is_none());
                    break Some(done);
                }
                Ok(None) => assert_eq!(partial.expected(), expected - 1),
                Err(_) => {
                    // A refused attachment leaves the packet as it was.
                    assert_eq!(partial.expected(), expected);
                    return None;
                }
            }
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let Some(Ok(text)) = parts.next().map(std::str::from_utf8) else {
        return;
    };
    let limits = Limits::default();
    let Some(packet) = decode(text, parts, &limits) else {
        return;
    };
    if packet.ty.is_binary() {
        assert!(packet.attachments.len() <= limits.max_attachments);
    } else {
        assert!(packet.attachments.is_empty());
    }
    // Re-encoded, it decodes to the same packet given the same attachments.
    let wire = packet.encode_to_string();
    let attachments: Vec<&[u8]> = packet.attachments.iter().map(|b| &b[..]).collect();
    match decode(&wire, attachments.into_iter(), &limits) {
        Some(again) => assert_eq!(again, packet, "{text:?} re-encoded as {wire:?}"),
        None => panic!(
            "{text:?} re-encoded as {wire:?} fails: {:?}",
            packet::decode(&wire, &limits)
        ),
    }
});
