//! An engine.io v3 text payload (`<UTF-16 length>:<packet>`), as posted
//! under `b64=1` or through JSONP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketgate::engine::payload_v3;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(packets) = payload_v3::decode_text(text) else {
        return;
    };
    let frames: Vec<_> = packets.iter().map(|p| p.to_frame()).collect();
    let wire = payload_v3::encode_text(&frames);
    match payload_v3::decode_text(&wire) {
        Ok(again) => assert_eq!(again, packets, "{text:?} re-encoded as {wire:?}"),
        Err(e) => panic!("{text:?} re-encoded as {wire:?} fails: {e}"),
    }
});
