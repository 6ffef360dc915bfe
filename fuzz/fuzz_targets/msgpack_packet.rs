//! One binary message from a client of a server configured for the msgpack
//! parser (`socket.io-msgpack-parser`): the packet decoder runs on it with
//! the default limits, and what decodes must stay within them and encode
//! to bytes that decode to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    socketgate::fuzzing::decode_msgpack_packet(data);
});
