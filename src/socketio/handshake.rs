//! What a client presented when it joined a namespace.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use http::{HeaderMap, Uri};
use serde_json::Value;

use super::types::Room;
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
    /// What the socket starts with, as middlewares set it.
    start: Start,
}

/// The data and rooms a socket starts with, set by connect middlewares
/// ([`Handshake::set_socket_data`], [`Handshake::join_socket`]).
#[derive(Debug, Default)]
pub(crate) struct Start(Mutex<StartWith>);

#[derive(Debug, Default, Clone)]
pub(crate) struct StartWith {
    pub(crate) data: Option<Value>,
    pub(crate) rooms: Vec<Room>,
}

impl Start {
    fn lock(&self) -> MutexGuard<'_, StartWith> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clone for Start {
    fn clone(&self) -> Self {
        Start(Mutex::new(self.lock().clone()))
    }
}

impl Handshake {
    pub(crate) fn new(request: &RequestInfo, auth: Value) -> Self {
        Handshake {
            auth,
            headers: request.headers.clone(),
            url: request.uri.clone(),
            address: request.remote_addr,
            issued: SystemTime::now(),
            start: Start::default(),
        }
    }

    /// Sets the data the socket starts with ([`Socket::data`](super::Socket::data)),
    /// from a connect middleware: it is in place before the connect handler
    /// runs (on a recovered socket, it replaces the recovered data).
    pub fn set_socket_data(&self, data: Value) {
        self.start.lock().data = Some(data);
    }

    /// Adds a room the socket is in from the start, from a connect
    /// middleware: it is a member before the connect handler runs and
    /// before the client hears it is connected.
    pub fn join_socket(&self, room: impl Into<Room>) {
        self.start.lock().rooms.push(room.into());
    }

    /// What middlewares set for the socket to start with.
    pub(crate) fn start(&self) -> StartWith {
        self.start.lock().clone()
    }

    /// A query parameter of the connection URL, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.url.query()?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// The handshake's query parameters as a JSON object.
    pub(crate) fn query_json(&self) -> serde_json::Map<String, Value> {
        self.url
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), Value::from(v.into_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The handshake as the reference server describes it (`socket.handshake`
    /// in Node: `headers`, `time`, `address`, `xdomain`, `secure`, `issued`,
    /// `url`, `query`, `auth`), for nodes of a mixed cluster.
    pub fn to_node_json(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .keys()
            .map(|name| {
                let values: Vec<&str> = self
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (name.as_str().to_owned(), Value::from(values.join(", ")))
            })
            .collect();
        let query = self.query_json();
        let issued = self
            .issued
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        serde_json::json!({
            "headers": headers,
            "time": js_date_string(issued),
            "address": self.address.map(|a| a.ip().to_string()).unwrap_or_default(),
            "xdomain": self.headers.contains_key(http::header::ORIGIN),
            "secure": false,
            "issued": u64::try_from(issued).unwrap_or(u64::MAX),
            "url": self.url.to_string(),
            "query": query,
            "auth": self.auth,
        })
    }
}

/// What JavaScript's `new Date(ms).toString()` gives in UTC:
/// `Fri Dec 04 2026 17:45:00 GMT+0000 (Coordinated Universal Time)`.
fn js_date_string(ms: u128) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!(
        "{weekday} {month} {d:02} {y:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month (1–12) and day of a day count since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's well-known algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_javascript_writes_them() {
        assert_eq!(
            js_date_string(0),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        // 2026-12-04T17:45:07.123Z
        assert_eq!(
            js_date_string(1_796_406_307_123),
            "Fri Dec 04 2026 17:45:07 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
