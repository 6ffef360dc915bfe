//! Several nodes on Redis, wire-compatible with the Node socket.io Redis
//! adapter (`@socket.io/redis-adapter` 8.3) and emitter
//! (`@socket.io/redis-emitter` 5).
//!
//! - `msgpack`: the msgpack dialect of `notepack.io` (the Node adapter's
//!   parser), decoded with limits on depth, lengths and size.
//! - `wire`: the adapter's messages (broadcasts, requests, responses) in
//!   that format.
//! - `redis`: the bus on Redis and the adapter every namespace gets from it.

#[allow(dead_code)]
pub(crate) mod msgpack;
pub(crate) mod redis;
#[allow(dead_code)]
pub(crate) mod wire;

pub use redis::{BusError, BusStats, RedisBus, RedisConfig};
