//! Facts of an HTTP request (`http.*` kinds): the method, whether it only
//! reads, the body's size, and — when the gateway holds the API's OpenAPI
//! document — the operation the path names and its path parameters, so a
//! policy says `context.facts.http.operation == "deleteRepo"` rather than
//! matching path strings.
//!
//! The payload is `{method, path, query?, headers?, body?, body_bytes?,
//! upgrade?}` as the HTTP proxy describes a request. The OpenAPI document is the
//! operator's (read from a file by the gateway, never from the payload);
//! [`HttpApi::from_openapi`] keeps only its path templates and operation
//! ids, within bounds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most operations read from one document.
pub const MAX_OPERATIONS: usize = 10_000;
/// The longest path (template or request) matched, in bytes.
pub const MAX_PATH_BYTES: usize = 8 * 1024;
/// The most segments a path may have to be matched.
const MAX_SEGMENTS: usize = 64;

/// Methods that only read (RFC 9110's safe methods, bar `TRACE`, which
/// the proxy does not treat as routine).
pub const READ_ONLY_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// The methods an OpenAPI path item may hold operations under.
const OPENAPI_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// What an HTTP request does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpFacts {
    /// Upper case, as sent (`GET`, `POST`, …).
    pub method: String,
    /// `GET`, `HEAD` or `OPTIONS`, spelled so (methods are case-sensitive).
    pub read_only: bool,
    /// The path as sent, without the query.
    pub path: String,
    /// The OpenAPI `operationId` the method and path match; empty when no
    /// document is configured, none matches, or the operation has no id.
    pub operation: String,
    /// The OpenAPI path template matched (`/repos/{owner}/{repo}`); empty
    /// when none.
    pub path_template: String,
    /// The template's parameters as the path fills them, percent-decoded.
    pub path_params: BTreeMap<String, String>,
    /// True when a document is configured and the request matches one of
    /// its operations: a policy can refuse what the API does not document.
    pub documented: bool,
    /// The body's size in bytes.
    pub body_bytes: u64,
    /// The request opens a WebSocket (`upgrade: "websocket"` in the
    /// payload): decided once, at the upgrade, for every message that
    /// follows, so it is never `read_only`.
    #[serde(default)]
    pub websocket: bool,
    /// The payload lacks a method or a path, or they cannot be read.
    pub parse_error: bool,
}

/// Why an OpenAPI document was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("the document has no `paths` object")]
    NoPaths,
    #[error("the document holds more than {MAX_OPERATIONS} operations")]
    TooManyOperations,
    #[error("the path template `{0}` is not a path (it must start with `/` and be at most 8 KiB)")]
    BadTemplate(String),
}

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`, the whole segment.
    Param(String),
    /// Text around one parameter within a segment: `{name}.json`.
    Mixed {
        prefix: String,
        name: String,
        suffix: String,
    },
}

/// One operation of an API: a method on a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    operation_id: String,
}

/// The operations of an API, as its OpenAPI document lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpApi {
    operations: Vec<Operation>,
}

impl HttpApi {
    /// Reads the path templates and operation ids of an OpenAPI (3.x, or
    /// Swagger 2.0) document. Paths are relative to the API's base URL.
    pub fn from_openapi(document: &Value) -> Result<Self, ApiError> {
        let paths = document.get("paths").and_then(Value::as_object).ok_or(ApiError::NoPaths)?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            if !template.starts_with('/') || template.len() > MAX_PATH_BYTES {
                return Err(ApiError::BadTemplate(template.chars().take(80).collect()));
            }
            let Some(item) = item.as_object() else { continue };
            let segments = template_segments(template);
            for method in OPENAPI_METHODS {
                let Some(operation) = item.get(method).and_then(Value::as_object) else { continue };
                if operations.len() >= MAX_OPERATIONS {
                    return Err(ApiError::TooManyOperations);
                }
                let operation_id = operation.get("operationId").and_then(Value::as_str).unwrap_or("");
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: segments.clone(),
                    operation_id: operation_id.chars().take(256).collect(),
                });
            }
        }
        Ok(Self { operations })
    }

    /// How many operations the document lists.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The operation `method` on `path` matches, and its parameters. Of
    /// several matches, the one with the most literal segments wins (as
    /// OpenAPI says: `/users/me` before `/users/{id}`).
    fn find(&self, method: &str, path: &str) -> Option<(&Operation, BTreeMap<String, String>)> {
        let segments: Vec<&str> = split(path).collect();
        if segments.len() > MAX_SEGMENTS {
            return None;
        }
        let mut best: Option<(usize, &Operation, BTreeMap<String, String>)> = None;
        for operation in self.operations.iter().filter(|o| o.method == method) {
            let Some(params) = matches(&operation.segments, &segments) else { continue };
            let literal = operation.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
            if best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
                best = Some((literal, operation, params));
            }
        }
        best.map(|(_, operation, params)| (operation, params))
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn template_segments(template: &str) -> Vec<Segment> {
    split(template)
        .map(|segment| {
            let (Some(open), Some(close)) = (segment.find('{'), segment.rfind('}')) else {
                return Segment::Literal(segment.to_owned());
            };
            if close < open || segment[open + 1..close].contains(['{', '}']) {
                return Segment::Literal(segment.to_owned());
            }
            let name = segment[open + 1..close].to_owned();
            if open == 0 && close == segment.len() - 1 {
                Segment::Param(name)
            } else {
                Segment::Mixed { prefix: segment[..open].to_owned(), name, suffix: segment[close + 1..].to_owned() }
            }
        })
        .collect()
}

fn matches(template: &[Segment], path: &[&str]) -> Option<BTreeMap<String, String>> {
    if template.len() != path.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (segment, text) in template.iter().zip(path) {
        match segment {
            Segment::Literal(literal) => {
                if *literal != percent_decode(text) {
                    return None;
                }
            }
            Segment::Param(name) => {
                params.insert(name.clone(), percent_decode(text));
            }
            Segment::Mixed { prefix, name, suffix } => {
                let inner = text.strip_prefix(prefix.as_str())?.strip_suffix(suffix.as_str())?;
                if inner.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(inner));
            }
        }
    }
    Some(params)
}

/// `%XX` escapes decoded; an invalid escape, or bytes that are not UTF-8,
/// stay as they were sent.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes.get(i), bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (Some(b'%'), Some(high), Some(low)) => {
                // Two hex digits make at most 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (Some(byte), _, _) => {
                out.push(*byte);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// The facts of an HTTP request's payload, matched against `api` when the
/// gateway holds the API's document.
pub fn from_payload(payload: &Value, api: Option<&HttpApi>) -> HttpFacts {
    let sent = payload.get("method").and_then(Value::as_str);
    let method = sent.map(str::to_ascii_uppercase);
    let path = payload.get("path").and_then(Value::as_str);
    let body_bytes = payload.get("body_bytes").and_then(Value::as_u64).unwrap_or(0);
    let (Some(method), Some(path)) = (method, path) else {
        return HttpFacts { body_bytes, parse_error: true, ..HttpFacts::default() };
    };
    let readable = path.starts_with('/')
        && path.len() <= MAX_PATH_BYTES
        && !method.is_empty()
        && method.len() <= 32
        && method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
    if !readable {
        return HttpFacts { method: String::new(), body_bytes, parse_error: true, ..HttpFacts::default() };
    }
    let websocket = payload.get("upgrade").and_then(Value::as_str).is_some_and(|p| p.eq_ignore_ascii_case("websocket"));
    let mut facts = HttpFacts {
        // Methods are case-sensitive: `get` is not `GET` to most servers,
        // so only the method as sent counts as one that only reads.
        read_only: sent.is_some_and(|sent| READ_ONLY_METHODS.contains(&sent)) && !websocket,
        websocket,
        path: path.to_owned(),
        body_bytes,
        ..HttpFacts::default()
    };
    if let Some((operation, params)) = api.and_then(|api| api.find(&method, path)) {
        facts.operation.clone_from(&operation.operation_id);
        facts.path_template.clone_from(&operation.template);
        facts.path_params = params;
        facts.documented = true;
    }
    facts.method = method;
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api() -> HttpApi {
        HttpApi::from_openapi(&json!({
            "openapi": "3.1.0",
            "paths": {
                "/repos/{owner}/{repo}": {
                    "get": {"operationId": "getRepo"},
                    "delete": {"operationId": "deleteRepo"},
                    "parameters": []
                },
                "/repos/{owner}/mine": {"get": {"operationId": "getMine"}},
                "/files/{name}.json": {"get": {"operationId": "getFile"}},
                "/health": {"get": {}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_path_names_an_operation_and_its_parameters() {
        let api = api();
        assert_eq!(api.len(), 5);
        let f =
            from_payload(&json!({"method": "delete", "path": "/repos/acme/web%20site", "body_bytes": 0}), Some(&api));
        assert_eq!(f.method, "DELETE");
        assert!(!f.read_only && f.documented && !f.parse_error);
        assert_eq!(f.operation, "deleteRepo");
        assert_eq!(f.path_template, "/repos/{owner}/{repo}");
        assert_eq!(f.path_params["owner"], "acme");
        assert_eq!(f.path_params["repo"], "web site");
        // A literal segment beats a parameter.
        assert_eq!(
            from_payload(&json!({"method": "GET", "path": "/repos/acme/mine"}), Some(&api)).operation,
            "getMine"
        );
        let f = from_payload(&json!({"method": "GET", "path": "/files/a.json"}), Some(&api));
        assert_eq!((f.operation.as_str(), f.path_params["name"].as_str()), ("getFile", "a"));
        // Documented without an id.
        let f = from_payload(&json!({"method": "HEAD", "path": "/health"}), Some(&api));
        assert!(!f.documented && f.read_only);
        let f = from_payload(&json!({"method": "GET", "path": "/health"}), Some(&api));
        assert!(f.documented && f.operation.is_empty());
    }

    #[test]
    fn what_the_document_does_not_list_is_undocumented() {
        let api = api();
        for (method, path) in [("POST", "/repos/a/b"), ("GET", "/repos/a"), ("GET", "/repos/a/b/c"), ("GET", "/")] {
            let f = from_payload(&json!({"method": method, "path": path}), Some(&api));
            assert!(!f.documented && f.operation.is_empty() && f.path_params.is_empty(), "{method} {path}");
        }
        let f = from_payload(&json!({"method": "GET", "path": "/repos/a/b", "body_bytes": 12}), None);
        assert!(f.read_only && !f.documented && f.body_bytes == 12);
    }

    #[test]
    fn only_a_read_only_method_as_sent_is_read_only() {
        // `get` is not `GET` to a server that compares methods as sent.
        for method in ["get", "Get", "head", "options"] {
            let f = from_payload(&json!({"method": method, "path": "/items/1"}), None);
            assert!(!f.read_only && !f.parse_error, "{method}");
        }
        assert!(from_payload(&json!({"method": "GET", "path": "/items/1"}), None).read_only);
    }

    #[test]
    fn a_websocket_upgrade_is_never_read_only() {
        let f = from_payload(&json!({"method": "GET", "path": "/ws", "upgrade": "websocket"}), None);
        assert!(f.websocket && !f.read_only && !f.parse_error);
        let f = from_payload(&json!({"method": "GET", "path": "/ws", "upgrade": "WebSocket"}), None);
        assert!(f.websocket && !f.read_only);
        let f = from_payload(&json!({"method": "GET", "path": "/ws"}), None);
        assert!(!f.websocket && f.read_only);
        let f = from_payload(&json!({"method": "GET", "path": "/ws", "upgrade": 1}), None);
        assert!(!f.websocket && f.read_only);
    }

    #[test]
    fn unreadable_payloads_are_parse_errors() {
        for payload in [
            json!({}),
            json!({"method": "GET"}),
            json!({"method": 1, "path": "/"}),
            json!({"method": "GET", "path": "relative"}),
            json!({"method": "G E T", "path": "/"}),
            json!({"method": "GET", "path": format!("/{}", "a".repeat(MAX_PATH_BYTES))}),
        ] {
            assert!(from_payload(&payload, None).parse_error, "{payload}");
        }
    }

    #[test]
    fn documents_are_bounded() {
        assert_eq!(HttpApi::from_openapi(&json!({"openapi": "3.0.0"})), Err(ApiError::NoPaths));
        assert!(matches!(HttpApi::from_openapi(&json!({"paths": {"nope": {}}})), Err(ApiError::BadTemplate(_))));
        let paths: serde_json::Map<String, Value> =
            (0..=MAX_OPERATIONS).map(|i| (format!("/p{i}"), json!({"get": {}}))).collect();
        assert_eq!(HttpApi::from_openapi(&json!({ "paths": paths })), Err(ApiError::TooManyOperations));
    }

    #[test]
    fn percent_decoding_never_fails() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%ff"), "%ff");
    }
}
