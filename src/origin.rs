//! Which browser origins may open sessions.
//!
//! WebSocket has no CORS: a server that does not check `Origin` lets any web
//! page open a WebSocket to it with the visitor's cookies (cross-site
//! WebSocket hijacking). The same list therefore guards every handshake and
//! drives the CORS headers of polling answers.

use http::HeaderValue;

/// The origin policy.
///
/// A request passes when it has no `Origin` header (not a browser), when its
/// origin names the host the request was sent to (same origin), or when the
/// list allows it. `"*"` in the list allows every origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    list: Vec<String>,
}

/// What the policy says of a request's `Origin` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginCheck {
    /// Allowed.
    Allowed,
    /// A well-formed origin that is not allowed.
    Forbidden,
    /// A header that is not an origin at all.
    Malformed,
}

impl AllowedOrigins {
    /// Same-origin and non-browser requests only (the default).
    pub fn same_origin() -> Self {
        Self::default()
    }

    /// Every origin (`*`).
    pub fn any() -> Self {
        AllowedOrigins {
            any: true,
            list: Vec::new(),
        }
    }

    /// Same origin plus these origins (`https://app.example.com`, with port
    /// when not the default); `"*"` among them allows all.
    pub fn list<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut policy = Self::default();
        for o in origins {
            let o = o.as_ref().trim();
            if o == "*" {
                policy.any = true;
            } else if !o.is_empty() {
                policy
                    .list
                    .push(o.trim_end_matches('/').to_ascii_lowercase());
            }
        }
        policy
    }

    /// Whether every origin is allowed.
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Checks a request's `Origin` against the policy; `host` is the request's
    /// `Host` header.
    pub fn check(&self, origin: Option<&HeaderValue>, host: Option<&HeaderValue>) -> OriginCheck {
        let Some(origin) = origin else {
            return OriginCheck::Allowed;
        };
        let Ok(origin) = origin.to_str() else {
            return OriginCheck::Malformed;
        };
        if origin.is_empty() || origin.bytes().any(|b| b.is_ascii_whitespace()) {
            return OriginCheck::Malformed;
        }
        if self.any {
            return OriginCheck::Allowed;
        }
        let origin = origin.to_ascii_lowercase();
        if self.list.contains(&origin) {
            return OriginCheck::Allowed;
        }
        // Same origin: the authority after `scheme://` is the Host the
        // request was addressed to. The scheme is not compared, because TLS
        // is often terminated by a proxy in front of the gateway.
        let authority = origin.split_once("://").map(|(_, a)| a);
        match (authority, host.and_then(|h| h.to_str().ok())) {
            (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => OriginCheck::Allowed,
            _ => OriginCheck::Forbidden,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn default_allows_no_origin_and_same_origin_only() {
        let p = AllowedOrigins::default();
        let host = hv("127.0.0.1:3000");
        assert_eq!(p.check(None, Some(&host)), OriginCheck::Allowed);
        assert_eq!(
            p.check(Some(&hv("http://127.0.0.1:3000")), Some(&host)),
            OriginCheck::Allowed
        );
        assert_eq!(
            p.check(Some(&hv("http://evil.example")), Some(&host)),
            OriginCheck::Forbidden
        );
        assert_eq!(
            p.check(Some(&hv("null")), Some(&host)),
            OriginCheck::Forbidden
        );
        assert_eq!(
            p.check(Some(&hv("http://127.0.0.1:3000")), None),
            OriginCheck::Forbidden
        );
    }

    #[test]
    fn list_and_wildcard() {
        let p = AllowedOrigins::list(["https://App.example.com/", "http://localhost:8080"]);
        let host = hv("gateway:3000");
        assert_eq!(
            p.check(Some(&hv("https://app.example.com")), Some(&host)),
            OriginCheck::Allowed
        );
        assert_eq!(
            p.check(Some(&hv("http://localhost:8080")), Some(&host)),
            OriginCheck::Allowed
        );
        assert_eq!(
            p.check(Some(&hv("http://localhost:8081")), Some(&host)),
            OriginCheck::Forbidden
        );
        let any = AllowedOrigins::list(["*"]);
        assert!(any.allows_any());
        assert_eq!(
            any.check(Some(&hv("http://x.y")), None),
            OriginCheck::Allowed
        );
    }

    #[test]
    fn malformed_origin_header() {
        let p = AllowedOrigins::any();
        let bad = HeaderValue::from_bytes(b"http://\xffbad").unwrap();
        assert_eq!(p.check(Some(&bad), None), OriginCheck::Malformed);
        assert_eq!(p.check(Some(&hv("")), None), OriginCheck::Malformed);
    }
}
