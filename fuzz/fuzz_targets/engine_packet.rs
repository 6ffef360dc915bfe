//! One engine.io packet: a WebSocket text frame (or one part of a payload)
//! and a v3 binary frame, from the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketgate::engine::packet::Frame;
use socketgate::engine::{Packet, Str};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(text) = Str::from_utf8(bytes.clone()) {
        assert_eq!(text.as_bytes(), &bytes);
        if let Ok(packet) = Packet::decode_text(text) {
            // Text packets have one spelling: encoding gives the input back.
            let Frame::Text(wire) = packet.to_frame() else {
                panic!("{packet:?} encoded as binary");
            };
            assert_eq!(wire.as_bytes(), &bytes);
        }
    }
    if let Ok(packet) = Packet::decode_binary_v3(bytes.clone()) {
        let Packet::Message(message) = &packet else {
            panic!("a v3 binary frame decoded as {packet:?}");
        };
        assert_eq!(message.as_binary().map(|b| &b[..]), Some(&data[1..]));
        let Frame::Binary(binary) = message.frame() else {
            panic!("binary message with a text frame");
        };
        assert_eq!(binary.typed(), bytes, "the v3 frame is sent as received");
    }
});
