//! Client bytes on a WebSocket that negotiated permessage-deflate: the
//! frame reader under tungstenite inflates compressed messages within
//! max_payload and passes everything else on; compressing then inflating
//! the same bytes gives them back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    socketgate::fuzzing::inflate_ws(data);
});
