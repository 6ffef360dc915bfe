//! The API's one error type, and the one place it becomes an HTTP answer.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};

use crate::socketio::EmitError;

/// Why a call failed: an HTTP status, a stable snake_case code for
/// programs, and a message for people. Answered as
/// `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A field of the request that is missing, of the wrong type or out of
    /// range; the message names it.
    pub(crate) fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("{field}: {problem}"),
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unknown_namespace(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_namespace",
            format!("no namespace {path:?} on this server"),
        )
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is needed: `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        )
    }

    /// The same error with `prefix` (`commands[2]`) before its message.
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// `{"code":…,"message":…}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "message": self.message })
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let mut res = json_response(self.status, &serde_json::json!({ "error": self.to_json() }));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"socketgate api\""),
            );
        }
        res
    }
}

impl From<EmitError> for ApiError {
    fn from(e: EmitError) -> Self {
        let (status, code) = match &e {
            EmitError::ReservedEvent => (StatusCode::BAD_REQUEST, "reserved_event"),
            EmitError::Serialize(_) => (StatusCode::BAD_REQUEST, "invalid_field"),
            EmitError::MessageTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "message_too_large"),
            EmitError::Cluster(_) => (StatusCode::SERVICE_UNAVAILABLE, "cluster_unavailable"),
            // A broadcast never reports these; should one, it is ours.
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
