//! A message from the cluster bus (Redis pub/sub), as another node or the
//! Node emitter would publish it: every decoder runs on it (msgpack, a
//! broadcast, a request, a response), and what decodes must encode to
//! bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    socketgate::fuzzing::decode_bus(data);
});
