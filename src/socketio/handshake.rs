//! What a client presented when it joined a namespace.

use std::net::SocketAddr;
use std::time::SystemTime;

use http::{HeaderMap, Uri};
use serde_json::Value;

use crate::engine::RequestInfo;

/// The handshake of a namespace connection: the engine's HTTP request and
/// the `auth` object of the CONNECT packet. Middlewares and handlers read it.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The client's `auth` payload (`{}` when it sent none).
    pub auth: Value,
    /// Headers of the connection's first request.
    pub headers: HeaderMap,
    /// URL of the connection's first request.
    pub url: Uri,
    /// Peer address, when the server records it.
    pub address: Option<SocketAddr>,
    /// When the namespace connection was made.
    pub issued: SystemTime,
}

impl Handshake {
    pub(crate) fn new(request: &RequestInfo, auth: Value) -> Self {
        Handshake {
            auth,
            headers: request.headers.clone(),
            url: request.uri.clone(),
            address: request.remote_addr,
            issued: SystemTime::now(),
        }
    }

    /// A query parameter of the connection URL, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.url.query()?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}
