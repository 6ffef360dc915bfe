//! Engine errors and the single place where each maps to an HTTP answer.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};

/// Why bytes from a peer could not be decoded. Cheap: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty packet.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type digit.
    #[error("unknown packet type")]
    UnknownType,
    /// A packet that carries no data had some (or a ping had other than `probe`).
    #[error("unexpected packet data")]
    UnexpectedData,
    /// Text that is not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A `b`-prefixed packet whose base64 does not decode.
    #[error("invalid base64")]
    InvalidBase64,
    /// A v3 payload length prefix that is not 1 to 10 decimal digits
    /// followed by its separator (`:` in text, `0xFF` in binary payloads).
    #[error("invalid payload length")]
    InvalidLength,
    /// A v3 payload that ends before the length its prefix announces.
    #[error("payload shorter than its length prefix")]
    Truncated,
    /// A v3 text payload length that ends between the two UTF-16 halves of
    /// one character.
    #[error("payload length splits a character")]
    SplitCharacter,
    /// A v3 binary payload packet whose marker byte is neither 0 (text) nor
    /// 1 (binary).
    #[error("invalid payload packet marker")]
    InvalidMarker,
    /// A binary packet (`b<type>` base64, or a type byte) of a type other
    /// than message (`4`).
    #[error("binary packet is not a message")]
    BinaryNotMessage,
    /// A JSONP POST form without exactly one `d` field.
    #[error("JSONP form without a single d field")]
    MissingJsonpData,
}

/// A request the engine refuses, with the engine.io error code it answers.
///
/// Every variant maps to exactly one HTTP response in
/// [`EngineError::into_response`]: status 400 (403 for [`Forbidden`]) and the
/// JSON body `{"code":N,"message":"…"}` that engine.io clients understand.
///
/// [`Forbidden`]: EngineError::Forbidden
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Code 0: missing, unknown or disabled `transport`.
    #[error("Transport unknown")]
    UnknownTransport,
    /// Code 1: unknown or closed session id.
    #[error("Session ID unknown")]
    UnknownSid,
    /// Code 2: a handshake with a method other than GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: transport mismatch, plain GET with `transport=websocket`,
    /// malformed Origin header, protocol violation on a request.
    #[error("Bad request")]
    BadRequest,
    /// Code 4: origin not allowed.
    #[error("Forbidden")]
    Forbidden,
    /// Code 5: missing or unsupported `EIO`.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
    /// A POST body over `max_payload` (413, code 3).
    #[error("Payload too large")]
    PayloadTooLarge,
    /// A handshake while the server shuts down (503, code 3); clients retry
    /// later.
    #[error("Server shutting down")]
    ShuttingDown,
    /// A handshake past `max_sessions` (503, code 3).
    #[error("Too many sessions")]
    TooManySessions,
    /// A handshake past `handshakes_per_ip` (429, code 3).
    #[error("Too many handshakes")]
    TooManyHandshakes,
    /// A request target past `max_url_bytes` (414, code 3).
    #[error("URI too long")]
    UriTooLong,
    /// Request headers past `max_header_bytes` (431, code 3).
    #[error("Request headers too large")]
    HeadersTooLarge,
    /// A POST body that did not arrive within `post_timeout` (408, code 3).
    #[error("Request body timeout")]
    BodyTimeout,
}

impl EngineError {
    /// The engine.io error code.
    pub fn code(self) -> u8 {
        match self {
            EngineError::UnknownTransport => 0,
            EngineError::UnknownSid => 1,
            EngineError::BadHandshakeMethod => 2,
            EngineError::BadRequest
            | EngineError::PayloadTooLarge
            | EngineError::ShuttingDown
            | EngineError::TooManySessions
            | EngineError::TooManyHandshakes
            | EngineError::UriTooLong
            | EngineError::HeadersTooLarge
            | EngineError::BodyTimeout => 3,
            EngineError::Forbidden => 4,
            EngineError::UnsupportedProtocolVersion => 5,
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            EngineError::Forbidden => StatusCode::FORBIDDEN,
            EngineError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EngineError::ShuttingDown | EngineError::TooManySessions => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            EngineError::TooManyHandshakes => StatusCode::TOO_MANY_REQUESTS,
            EngineError::UriTooLong => StatusCode::URI_TOO_LONG,
            EngineError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            EngineError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The HTTP answer.
    pub fn into_response(self) -> Response<Body> {
        let body = format!(r#"{{"code":{},"message":"{}"}}"#, self.code(), self);
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = self.status();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_status_and_message() {
        let table = [
            (EngineError::UnknownTransport, 0, 400, "Transport unknown"),
            (EngineError::UnknownSid, 1, 400, "Session ID unknown"),
            (
                EngineError::BadHandshakeMethod,
                2,
                400,
                "Bad handshake method",
            ),
            (EngineError::BadRequest, 3, 400, "Bad request"),
            (EngineError::Forbidden, 4, 403, "Forbidden"),
            (
                EngineError::UnsupportedProtocolVersion,
                5,
                400,
                "Unsupported protocol version",
            ),
            (EngineError::PayloadTooLarge, 3, 413, "Payload too large"),
            (EngineError::ShuttingDown, 3, 503, "Server shutting down"),
            (EngineError::TooManySessions, 3, 503, "Too many sessions"),
            (
                EngineError::TooManyHandshakes,
                3,
                429,
                "Too many handshakes",
            ),
            (EngineError::UriTooLong, 3, 414, "URI too long"),
            (
                EngineError::HeadersTooLarge,
                3,
                431,
                "Request headers too large",
            ),
            (EngineError::BodyTimeout, 3, 408, "Request body timeout"),
        ];
        for (err, code, status, message) in table {
            assert_eq!(err.code(), code);
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(err.to_string(), message);
        }
    }
}
