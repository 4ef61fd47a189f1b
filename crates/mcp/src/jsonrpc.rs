//! JSON-RPC 2.0 messages as MCP uses them, read without being rebuilt:
//! the proxy classifies a message to decide what to do with it, and
//! forwards the original value, so fields it does not know (new protocol
//! versions, `_meta`, extensions) pass through untouched.

use serde_json::{json, Map, Value};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// An internal JSON-RPC error (used for a dead upstream).
pub const INTERNAL_ERROR: i64 = -32603;
/// The HTTP headers that mirror the body (2026-07-28) disagree with it.
pub const HEADER_MISMATCH: i64 = -32020;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind<'a> {
    /// Has a `method` and an `id`: an answer is expected.
    Request { id: &'a Value, method: &'a str },
    /// Has a `method` and no `id`.
    Notification { method: &'a str },
    /// Has an `id` and a `result` or an `error`.
    Response { id: &'a Value },
    /// None of the above (or a batch, which MCP no longer allows).
    Invalid,
}

/// Classifies a message.
pub fn classify(message: &Value) -> Kind<'_> {
    let Value::Object(map) = message else {
        return Kind::Invalid;
    };
    match (map.get("method").and_then(Value::as_str), map.get("id")) {
        (Some(method), Some(id)) if is_id(id) => Kind::Request { id, method },
        (Some(method), None) => Kind::Notification { method },
        (None, Some(id)) if map.contains_key("result") || map.contains_key("error") => Kind::Response { id },
        (Some(_), Some(_)) | (None, Some(_)) | (None, None) => Kind::Invalid,
    }
}

fn is_id(id: &Value) -> bool {
    matches!(id, Value::String(_) | Value::Number(_))
}

/// A map key for a request id: its JSON text, so that `1` and `"1"`
/// stay distinct as JSON-RPC requires.
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// A request's `params`, or an empty object.
pub fn params(message: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    message.get("params").and_then(Value::as_object).unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// The progress token a request asked progress notifications for.
pub fn progress_token(message: &Value) -> Option<&Value> {
    params(message).get("_meta").and_then(|m| m.get("progressToken")).filter(|t| is_id(t))
}

/// The `_meta` key that carries the protocol version in every request of
/// the stateless protocol (2026-07-28 and later).
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// The request belongs to the stateless protocol (2026-07-28 and later),
/// whose results carry a `resultType`.
pub fn is_modern(message: &Value) -> bool {
    params(message).get("_meta").and_then(|m| m.get(PROTOCOL_VERSION_META)).is_some()
}

/// Where the 2026-07-28 `Mcp-Method` / `Mcp-Name` headers, when sent,
/// disagree with the body. Intermediaries may route or authorise on the
/// headers while the server runs the body, so a disagreement is a
/// confused-deputy attempt: the gate refuses it rather than pick a side.
pub fn mirrored_header_mismatch(
    method_header: Option<&str>,
    name_header: Option<&str>,
    message: &Value,
) -> Option<String> {
    let method = match classify(message) {
        Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
        Kind::Response { .. } | Kind::Invalid => None,
    };
    if let Some(header) = method_header {
        if method != Some(header) {
            return Some(format!("the `Mcp-Method` header `{header}` does not match the body"));
        }
    }
    let name = match method {
        Some("tools/call" | "prompts/get") => params(message).get("name").and_then(Value::as_str),
        Some("resources/read") => params(message).get("uri").and_then(Value::as_str),
        Some(_) | None => None,
    };
    match (name_header, name) {
        (Some(header), Some(name)) if header == name => None,
        (Some(header), _) => Some(format!("the `Mcp-Name` header `{header}` does not match the body")),
        (None, _) => None,
    }
}

/// The message repeats a key at its top level or in its `params`. Parsers
/// disagree on which copy wins, so such a message could be one thing to
/// the proxy and another to the server: it is refused.
pub fn has_duplicate_keys(text: &str) -> bool {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};

    struct Keys {
        nested: bool,
    }

    impl<'de> Visitor<'de> for Keys {
        type Value = bool;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut duplicate = false;
            while let Some(key) = map.next_key::<String>()? {
                if !self.nested && key == "params" {
                    duplicate |= map.next_value_seed(Nested)?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
                duplicate |= !seen.insert(key);
            }
            Ok(duplicate)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(false)
        }

        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }

    struct Nested;

    impl<'de> serde::de::DeserializeSeed<'de> for Nested {
        type Value = bool;

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(Keys { nested: true })
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(Keys { nested: false }).unwrap_or(false)
}

/// A success response.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response; `id` is `null` when the request's id is unknown.
pub fn error(id: Option<&Value>, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": {"code": code, "message": message}})
}

/// A notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_four_shapes() {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}});
        assert!(matches!(classify(&request), Kind::Request { method: "tools/call", .. }));
        let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled"});
        assert_eq!(classify(&note), Kind::Notification { method: "notifications/cancelled" });
        let response = json!({"jsonrpc": "2.0", "id": "a", "result": {}});
        assert!(matches!(classify(&response), Kind::Response { .. }));
        assert_eq!(classify(&json!([request])), Kind::Invalid);
        assert_eq!(classify(&json!({"jsonrpc": "2.0", "id": null, "method": "x"})), Kind::Invalid);
        assert_eq!(classify(&json!({"id": 1})), Kind::Invalid);
    }

    #[test]
    fn ids_of_different_types_stay_distinct() {
        assert_ne!(id_key(&json!(1)), id_key(&json!("1")));
    }

    #[test]
    fn finds_repeated_keys() {
        assert!(has_duplicate_keys(r#"{"method": "tools/list", "id": 1, "method": "tools/call"}"#));
        assert!(has_duplicate_keys(r#"{"method": "tools/call", "params": {"name": "a", "name": "b"}}"#));
        assert!(!has_duplicate_keys(r#"{"method": "tools/call", "params": {"name": "a", "arguments": {"x": 1}}}"#));
        assert!(!has_duplicate_keys("[1, 2]"));
    }

    #[test]
    fn mirrored_headers_must_agree_with_the_body() {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "deploy"}});
        let read = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "file:///a"}});
        assert_eq!(mirrored_header_mismatch(None, None, &call), None);
        assert_eq!(mirrored_header_mismatch(Some("tools/call"), Some("deploy"), &call), None);
        assert_eq!(mirrored_header_mismatch(Some("resources/read"), Some("file:///a"), &read), None);
        // A harmless-looking header over a tool call, or another tool's name.
        assert!(mirrored_header_mismatch(Some("tools/list"), None, &call).is_some());
        assert!(mirrored_header_mismatch(Some("tools/call"), Some("read_logs"), &call).is_some());
        assert!(mirrored_header_mismatch(None, Some("read_logs"), &call).is_some());
        // A name header where the body names nothing, or on a response.
        let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
        assert!(mirrored_header_mismatch(Some("tools/list"), Some("x"), &list).is_some());
        assert!(
            mirrored_header_mismatch(Some("ping"), None, &json!({"jsonrpc": "2.0", "id": 4, "result": {}})).is_some()
        );
    }

    #[test]
    fn finds_the_progress_token() {
        let m = json!({"id": 1, "method": "tools/call", "params": {"_meta": {"progressToken": "p"}}});
        assert_eq!(progress_token(&m), Some(&json!("p")));
        assert_eq!(progress_token(&json!({"id": 1, "method": "x"})), None);
    }
}
