//! An engine.io v3 binary payload (`application/octet-stream`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketgate::engine::payload_v3;

fuzz_target!(|data: &[u8]| {
    let Ok(packets) = payload_v3::decode_binary(data) else {
        return;
    };
    assert!(!packets.is_empty());
    let frames: Vec<_> = packets.iter().map(|p| p.to_frame()).collect();
    let wire = payload_v3::encode_binary(&frames);
    match payload_v3::decode_binary(&wire) {
        Ok(again) => assert_eq!(again, packets, "{data:?} re-encoded as {wire:?}"),
        Err(e) => panic!("{data:?} re-encoded as {wire:?} fails: {e}"),
    }
});
