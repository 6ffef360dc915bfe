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
pub(crate) mod nodes;
pub(crate) mod redis;
pub(crate) mod streams;
#[allow(dead_code)]
pub(crate) mod wire;

pub use nodes::{NodeRegistry, NodesConfig, NodesStats};
pub use redis::{BusError, BusStats, RedisBus, RedisConfig};
pub use streams::{ClusterStore, ClusterStoreConfig, ClusterStoreStats};

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A connection to the Redis at `url` that reconnects by itself; made
/// lazily (Redis need not be up yet).
pub(crate) fn manager(url: &str) -> Result<ConnectionManager, BusError> {
    let client = ::redis::Client::open(url).map_err(|e| BusError::Url {
        url: url.to_owned(),
        error: e.to_string(),
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_max_delay(Duration::from_secs(1))
        .set_number_of_retries(2);
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| BusError::Setup(e.to_string()))
}
