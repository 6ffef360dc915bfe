//! The sans-IO session state machine driven by arbitrary events; see
//! `socketgate::fuzzing::drive_session` for how the bytes are read and what
//! is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| socketgate::fuzzing::drive_session(data));
