//! An agent's request as the proxy reads it: refused when its framing is
//! ambiguous (request smuggling) or its path could mean another one
//! upstream; otherwise described as the `http.request` action that is
//! decided, and forwarded exactly as described.
//!
//! The payload is `{method, path, query?, headers, body? | body_sha256?,
//! body_bytes, upgrade?}`: `headers` holds only the allow-listed request headers
//! (the only ones forwarded), `body` a JSON body parsed (up to
//! [`MAX_INLINE_JSON`]), any other body its SHA-256 and size.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use bytes::Bytes;
use countersign_core::Action;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::config::NEVER_FORWARDED;

/// Request headers forwarded to the API (besides `forward_headers`).
pub const FORWARDED: [&str; 16] = [
    "accept",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "idempotency-key",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-event-id",
    "range",
    "user-agent",
    "x-request-id",
];

/// The largest JSON body put in the payload as JSON; a larger one is
/// described by its digest and size, like any other content.
pub const MAX_INLINE_JSON: usize = 64 * 1024;

/// Why a request is refused before it is decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the request has both `Content-Length` and `Transfer-Encoding`; its length is ambiguous")]
    Ambiguous,
    #[error("the request's `Content-Length` is not one number")]
    BadLength,
    #[error("the request's `Transfer-Encoding` is not `chunked`")]
    BadEncoding,
    #[error("the path holds a `.` or `..` segment, a backslash or a control character")]
    BadPath,
}

/// Refuses framing that a proxy and the server behind it could read
/// differently: `Content-Length` beside `Transfer-Encoding`, several
/// lengths, or a transfer coding other than a single `chunked`.
pub fn check_framing(headers: &HeaderMap) -> Result<(), Malformed> {
    let lengths: Vec<&HeaderValue> = headers.get_all(axum::http::header::CONTENT_LENGTH).iter().collect();
    let encodings: Vec<&HeaderValue> = headers.get_all(axum::http::header::TRANSFER_ENCODING).iter().collect();
    if !lengths.is_empty() && !encodings.is_empty() {
        return Err(Malformed::Ambiguous);
    }
    match lengths.as_slice() {
        [] => {}
        [one] => {
            let text = one.to_str().map_err(|_| Malformed::BadLength)?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Malformed::BadLength);
            }
        }
        _ => return Err(Malformed::BadLength),
    }
    match encodings.as_slice() {
        [] => Ok(()),
        [one] if one.as_bytes().eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(Malformed::BadEncoding),
    }
}

/// The path after `/http/<name>` (at least `/`), refused when the API
/// could resolve it to another path than the one decided on, or when the
/// name is not spelled literally (`/http/%69tems` is decoded to `items`
/// by the router, but is not the API's name as written).
pub fn path_after(full: &str, name: &str) -> Result<String, Malformed> {
    let rest = full.strip_prefix("/http/").and_then(|r| r.strip_prefix(name)).ok_or(Malformed::BadPath)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(Malformed::BadPath);
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let bad_segment = path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        let decoded = lower.replace("%2e", ".");
        decoded == "." || decoded == ".."
    });
    let bad_byte = path.bytes().any(|b| b == b'\\' || b.is_ascii_control())
        || encodes_control(path)
        || path.to_ascii_lowercase().contains("%2f")
        || path.to_ascii_lowercase().contains("%5c");
    if bad_segment || bad_byte {
        return Err(Malformed::BadPath);
    }
    Ok(path.to_owned())
}

/// `path` percent-encodes a control character (`%00`, `%0a`, …): an API
/// may cut the path there, or read it as the end of a line.
fn encodes_control(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| b.is_ascii_control())
    })
}

/// A request as it will be forwarded.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: Method,
    /// Starts with `/`; relative to the API's base URL.
    pub path: String,
    pub query: Option<String>,
    /// The allow-listed headers, in the order received.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Incoming {
    /// The headers of `all` that are forwarded: the allow-list and the
    /// upstream's `forward_headers`, never credentials or hop-by-hop ones.
    pub fn pick_headers(all: &HeaderMap, extra: &[String]) -> Vec<(HeaderName, HeaderValue)> {
        all.iter()
            .filter(|(name, _)| {
                let name = name.as_str();
                !NEVER_FORWARDED.contains(&name)
                    && (FORWARDED.contains(&name) || extra.iter().any(|e| e == name))
                    && !hop_by_hop_listed(all, name)
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// The action the policy decides on, for `resource`.
    pub fn action(&self, resource: &str) -> Action {
        let mut payload = Map::new();
        payload.insert("method".to_owned(), json!(self.method.as_str()));
        payload.insert("path".to_owned(), json!(self.path));
        if let Some(query) = &self.query {
            payload.insert("query".to_owned(), json!(query));
        }
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(seen)) => {
                    seen.push_str(", ");
                    seen.push_str(&text);
                }
                Some(_) | None => {
                    headers.insert(name.as_str().to_owned(), Value::String(text));
                }
            }
        }
        payload.insert("headers".to_owned(), Value::Object(headers));
        if !self.body.is_empty() {
            match self.json_body() {
                Some(body) => {
                    payload.insert("body".to_owned(), body);
                }
                None => {
                    payload.insert("body_sha256".to_owned(), json!(hex::encode(Sha256::digest(&self.body))));
                }
            }
        }
        payload.insert("body_bytes".to_owned(), json!(self.body.len()));
        Action {
            kind: crate::KIND.to_owned(),
            resource: resource.to_owned(),
            payload: Value::Object(payload),
            on_behalf_of: None,
            justification: None,
            labels: Vec::new(),
            context: Map::new(),
        }
    }

    /// The body as JSON, when it is declared and parses as JSON and is
    /// small enough to show.
    fn json_body(&self) -> Option<Value> {
        let content_type = self.headers.iter().find(|(n, _)| n == axum::http::header::CONTENT_TYPE)?.1.to_str().ok()?;
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        let json = essence == "application/json" || essence.ends_with("+json");
        if !json || self.body.len() > MAX_INLINE_JSON {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }
}

/// `name` is listed in the request's `Connection` header, which makes it
/// hop-by-hop whatever it is.
fn hop_by_hop_listed(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name))
}

/// Marks `action` as asking to switch the connection to `protocol`
/// (`upgrade` in the payload: `websocket`, or SPDY for Kubernetes
/// streams), which the facts read (`http.websocket`).
pub fn mark_upgrade(action: &mut Action, protocol: &str) {
    if let Some(payload) = action.payload.as_object_mut() {
        payload.insert("upgrade".to_owned(), Value::String(protocol.to_owned()));
    }
}

/// The client prefers not to wait (`Prefer: respond-async`, RFC 7240).
pub fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.split(';').next().is_some_and(|token| token.trim().eq_ignore_ascii_case("respond-async")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn ambiguous_framing_is_refused() {
        assert_eq!(check_framing(&headers(&[("content-length", "5")])), Ok(()));
        assert_eq!(check_framing(&headers(&[("transfer-encoding", "chunked")])), Ok(()));
        assert_eq!(
            check_framing(&headers(&[("content-length", "5"), ("transfer-encoding", "chunked")])),
            Err(Malformed::Ambiguous)
        );
        assert_eq!(
            check_framing(&headers(&[("content-length", "5"), ("content-length", "6")])),
            Err(Malformed::BadLength)
        );
        assert_eq!(check_framing(&headers(&[("content-length", "+5")])), Err(Malformed::BadLength));
        assert_eq!(check_framing(&headers(&[("transfer-encoding", "gzip, chunked")])), Err(Malformed::BadEncoding));
        assert_eq!(
            check_framing(&headers(&[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")])),
            Err(Malformed::BadEncoding)
        );
    }

    #[test]
    fn paths_that_resolve_elsewhere_are_refused() {
        assert_eq!(path_after("/http/api", "api").unwrap(), "/");
        assert_eq!(path_after("/http/api/items/1", "api").unwrap(), "/items/1");
        for bad in [
            "/http/%61pi/x",
            "/http/ap%69",
            "/http/apix/y",
            "/http/api/a/../admin",
            "/http/api/./x",
            "/http/api/%2E%2e/x",
            "/http/api/a%2fb",
            "/http/api/a\\b",
            "/http/api/x%00",
            "/http/api/x%0A/y",
            "/http/api/%7f",
        ] {
            assert_eq!(path_after(bad, "api"), Err(Malformed::BadPath), "{bad}");
        }
    }

    #[test]
    fn only_allow_listed_headers_are_described_and_forwarded() {
        let all = headers(&[
            ("authorization", "Bearer csa_agent"),
            ("cookie", "s=1"),
            ("content-type", "application/json"),
            ("x-trace", "t"),
            ("x-custom", "c"),
            ("connection", "x-custom"),
            ("accept", "a"),
            ("accept", "b"),
        ]);
        let picked = Incoming::pick_headers(&all, &["x-custom".to_owned(), "x-trace".to_owned()]);
        let names: Vec<&str> = picked.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "x-trace", "accept", "accept"]);
        let incoming = Incoming {
            method: Method::POST,
            path: "/items".into(),
            query: Some("a=1".into()),
            headers: picked,
            body: Bytes::from_static(br#"{"name": "x"}"#),
        };
        let action = incoming.action("billing");
        assert_eq!(action.kind, "http.request");
        assert_eq!(
            action.payload,
            json!({"method": "POST", "path": "/items", "query": "a=1",
                   "headers": {"content-type": "application/json", "x-trace": "t", "accept": "a, b"},
                   "body": {"name": "x"}, "body_bytes": 13})
        );
        action.validate().unwrap();
        let binary = Incoming { headers: Vec::new(), ..incoming };
        let payload = binary.action("billing").payload;
        assert_eq!(payload["body_sha256"].as_str().unwrap().len(), 64);
        assert!(payload.get("body").is_none());
    }

    #[test]
    fn respond_async_is_a_preference_token() {
        assert!(prefers_async(&headers(&[("prefer", "respond-async, wait=10")])));
        assert!(prefers_async(&headers(&[("prefer", "return=minimal"), ("prefer", "Respond-Async")])));
        assert!(!prefers_async(&headers(&[("prefer", "return=respond-async")])));
    }
}
