//! Several nodes on Redis, wire-compatible with the Node socket.io Redis
//! adapter (`@socket.io/redis-adapter` 8.3) and emitter
//! (`@socket.io/redis-emitter` 5).
//!
//! - `msgpack`: the msgpack dialect of `notepack.io` (the Node adapter's
//!   parser), decoded with limits on depth, lengths and size.
//! - `wire`: the adapter's messages (broadcasts, requests, responses) in
//!   that format.

#[allow(dead_code)]
pub(crate) mod msgpack;
#[allow(dead_code)]
pub(crate) mod wire;
