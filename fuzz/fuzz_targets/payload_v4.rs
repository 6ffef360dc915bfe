//! An engine.io v4 polling payload (`0x1e`-separated, `b` + base64).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketgate::engine::payload;

fuzz_target!(|data: &[u8]| {
    let Ok(packets) = payload::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    assert!(!packets.is_empty());
    let frames: Vec<_> = packets.iter().map(|p| p.to_frame()).collect();
    let wire = payload::encode(&frames);
    assert_eq!(
        frames.iter().map(payload::encoded_len).sum::<usize>() + frames.len() - 1,
        wire.len(),
        "encoded_len disagrees with encode"
    );
    match payload::decode(wire.clone()) {
        Ok(again) => assert_eq!(again, packets, "{data:?} re-encoded as {wire:?}"),
        Err(e) => panic!("{data:?} re-encoded as {wire:?} fails: {e}"),
    }
});
