//! JSON-RPC 2.0 messages as MCP uses them, read without being rebuilt:
//! the proxy classifies a message to decide what to do with it, and
//! forwards the original value, so fields it does not know (new protocol
//! versions, `_meta`, extensions) pass through untouched.

use countersign_core::json::StrictError;
use serde_json::{json, Map, Value};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// An internal JSON-RPC error (used for a dead upstream).
pub const INTERNAL_ERROR: i64 = -32603;
/// The HTTP headers that mirror the body (2026-07-28) disagree with it.
pub const HEADER_MISMATCH: i64 = -32020;

/// The most a single message may take, in bytes, on any transport and in
/// either direction (a stdio line, an HTTP body, an SSE event). Bigger
/// ones are refused unread rather than buffered.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// The longest string id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The largest integer id accepted: every JSON parser (JavaScript's
/// included) reads integers up to 2^53 - 1 exactly, so no peer can take
/// two of them for the same id.
pub const MAX_INTEGER_ID: i64 = (1 << 53) - 1;
/// The longest method name accepted, in bytes.
pub const MAX_METHOD_BYTES: usize = 128;

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

/// Classifies a message, leniently: for routing only. What may pass the
/// proxy is decided by [`check`].
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

/// Who sent a message: the rules differ a little (see [`check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Client,
    Upstream,
}

/// Why a message is refused. The text is the proxy's own, never the
/// message's, so that refusals stay small whatever was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Checks that a message is one JSON-RPC 2.0 message as MCP uses it, and
/// classifies it. Anything else is refused, never passed on, so that no
/// peer can read a message differently from the proxy:
/// - an object with `"jsonrpc": "2.0"` and no members but `id`, `method`,
///   `params`, `result` and `error` (so no `"Method"` that a
///   case-insensitive decoder would take for `method`);
/// - a request id is a string of at most [`MAX_ID_BYTES`] or an integer
///   within ±[`MAX_INTEGER_ID`]: not `null`, a float, an object, a boolean;
/// - a method is printable ASCII, at most [`MAX_METHOD_BYTES`], and does
///   not merely look like `tools/call` (`Tools/Call`, `tools.call`);
/// - `params` is an object; a response has exactly one of `result` and
///   `error` (only an error may have a `null` id);
/// - from the client, a notification is in `notifications/`, so a
///   `tools/call` without an id is refused rather than left to the
///   server to read.
///
/// Batches (arrays) are refused: MCP no longer has them, and one would
/// carry several messages past a check made on one.
pub fn check(message: &Value, from: From) -> Result<Kind<'_>, Malformed> {
    let map = match message {
        Value::Object(map) => map,
        Value::Array(_) => return Err(Malformed("JSON-RPC batches are not accepted; send each message on its own")),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            return Err(Malformed("not a JSON-RPC message (not an object)"))
        }
    };
    if map.keys().any(|k| !matches!(k.as_str(), "jsonrpc" | "id" | "method" | "params" | "result" | "error")) {
        return Err(Malformed("the message has a member JSON-RPC does not define"));
    }
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Malformed("the message does not say `\"jsonrpc\": \"2.0\"`"));
    }
    let id = map.get("id");
    if let Some(method) = map.get("method") {
        let Some(method) = method.as_str() else {
            return Err(Malformed("`method` is not a string"));
        };
        check_method(method)?;
        if map.contains_key("result") || map.contains_key("error") {
            return Err(Malformed("a message with a `method` may not have a `result` or an `error`"));
        }
        if map.get("params").is_some_and(|p| !p.is_object()) {
            return Err(Malformed("`params` is not an object"));
        }
        return match id {
            Some(id) => {
                check_id(id)?;
                Ok(Kind::Request { id, method })
            }
            None if from == From::Client && !method.starts_with("notifications/") => {
                Err(Malformed("a request without an `id` is not accepted (only `notifications/…` go without one)"))
            }
            None => Ok(Kind::Notification { method }),
        };
    }
    if map.contains_key("params") {
        return Err(Malformed("`params` without a `method`"));
    }
    let Some(id) = id else {
        return Err(Malformed("neither a request, a notification nor a response"));
    };
    match (map.get("result"), map.get("error")) {
        (Some(_), None) => check_id(id)?,
        (None, Some(error)) => {
            let well_formed = error.get("code").is_some_and(|c| c.as_i64().is_some())
                && error.get("message").is_some_and(Value::is_string);
            if !well_formed {
                return Err(Malformed("an `error` needs an integer `code` and a string `message`"));
            }
            if !id.is_null() {
                check_id(id)?;
            }
        }
        (Some(_), Some(_)) => return Err(Malformed("a response has both a `result` and an `error`")),
        (None, None) => return Err(Malformed("neither a request, a notification nor a response")),
    }
    Ok(Kind::Response { id })
}

fn check_id(id: &Value) -> Result<(), Malformed> {
    match id {
        Value::String(s) if s.len() <= MAX_ID_BYTES => Ok(()),
        Value::String(_) => Err(Malformed("the `id` is too long")),
        Value::Number(n) if n.as_i64().is_some_and(|n| (-MAX_INTEGER_ID..=MAX_INTEGER_ID).contains(&n)) => Ok(()),
        Value::Number(_) => Err(Malformed("the `id` is not an integer within ±(2^53 - 1)")),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err(Malformed("the `id` must be a string or an integer"))
        }
    }
}

fn check_method(method: &str) -> Result<(), Malformed> {
    if method.is_empty() || method.len() > MAX_METHOD_BYTES || !method.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Malformed("the `method` is not a plain method name"));
    }
    if method != "tools/call" && looks_like_tools_call(method) {
        return Err(Malformed("the `method` reads as `tools/call` but is not exactly that"));
    }
    Ok(())
}

/// `method` is `tools/call` to a reader that ignores case or punctuation.
fn looks_like_tools_call(method: &str) -> bool {
    let letters: String = method.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    letters == "toolscall"
}

/// Keys of the top level and of `params` that differ only by case (or by
/// the Unicode letters that case-insensitive decoders, such as Go's, fold
/// to ASCII: `ſ`, the Kelvin sign), which such a decoder would take for
/// one another.
pub fn has_folded_keys(message: &Value) -> bool {
    fn fold(key: &str) -> String {
        key.chars()
            .map(|c| match c {
                '\u{17f}' => 's',
                '\u{212a}' => 'k',
                c => c.to_ascii_lowercase(),
            })
            .collect()
    }
    fn collides(map: &Map<String, Value>, known: &[&str]) -> bool {
        let mut seen = std::collections::HashSet::new();
        map.keys().any(|k| {
            let folded = fold(k);
            (folded != *k && known.contains(&folded.as_str())) || !seen.insert(folded)
        })
    }
    let Value::Object(map) = message else { return false };
    let params = map.get("params").and_then(Value::as_object);
    collides(map, &["jsonrpc", "id", "method", "params", "result", "error"])
        || params.is_some_and(|p| collides(p, &["name", "arguments", "_meta", "task", "uri", "cursor"]))
}

/// Checks one message from the client, as parsed from `text`: no
/// repeated keys at any depth, no keys that a case-insensitive decoder
/// would merge, and [`check`]. `Err` holds why, and the id to answer with
/// when the message had a usable one.
pub fn vet_from_client<'a>(text: &str, value: &'a Value) -> Result<Kind<'a>, (Malformed, Option<Value>)> {
    let usable_id = || value.get("id").filter(|id| check_id(id).is_ok()).cloned();
    if has_duplicate_keys(text) {
        return Err((Malformed("a key is repeated in this message; refused"), usable_id()));
    }
    if has_folded_keys(value) {
        return Err((Malformed("two keys of this message differ only by case; refused"), usable_id()));
    }
    check(value, From::Client).map_err(|why| (why, usable_id()))
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

/// Parses a message's text, refusing the keys serde_json reserves (see
/// [`countersign_core::json`]) before it reads them: the value would be
/// JSON hidden in a string, which neither the checks of the text nor the
/// peer (that reads an object holding a string) see.
/// (Repeated keys are refused later, by [`vet_from_client`], which can
/// still answer with the message's id.)
pub fn parse(text: &str) -> Result<Value, StrictError> {
    countersign_core::json::from_slice_allowing_repeats(text.as_bytes())
}

/// The message repeats a key in some object, at any depth. Parsers
/// disagree on which copy wins, so such a message could be one thing to
/// the proxy (or the policy) and another to the server: it is refused.
/// Text that does not parse counts as repeating (fail closed).
pub fn has_duplicate_keys(text: &str) -> bool {
    countersign_core::json::has_duplicate_keys(text.as_bytes())
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
    fn only_plain_json_rpc_passes_the_check() {
        let ok = |v: Value| check(&v, From::Client).is_ok();
        let call = |id: Value| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "x"}});
        assert!(ok(call(json!(1))));
        assert!(ok(call(json!("a"))));
        assert!(ok(call(json!(-MAX_INTEGER_ID))));
        for id in [json!(null), json!(true), json!({}), json!([1]), json!(1.5), json!(1.0), json!(MAX_INTEGER_ID + 1)] {
            assert!(!ok(call(id.clone())), "{id}");
        }
        assert!(!ok(call(json!("i".repeat(MAX_ID_BYTES + 1)))));
        let no_id = json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "x"}});
        assert!(!ok(no_id.clone()), "a tool call without an id");
        assert!(check(&no_id, From::Upstream).is_ok(), "the upstream may send any notification");
        assert!(ok(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})));
        for method in [
            "Tools/Call",
            "tools.call",
            "tools//call",
            "TOOLS/CALL",
            "tools/call ",
            "tools/call\u{0}",
            "tools\u{ff0f}call",
            "",
        ] {
            let message = json!({"jsonrpc": "2.0", "id": 1, "method": method});
            assert!(!ok(message), "{method:?}");
        }
        assert!(!ok(json!({"id": 1, "method": "ping"})), "no jsonrpc");
        assert!(!ok(json!({"jsonrpc": "1.0", "id": 1, "method": "ping"})));
        assert!(!ok(json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "Method": "tools/call"})));
        assert!(!ok(json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": []})));
        assert!(!ok(json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "result": {}})));
        assert!(!ok(json!({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}})));
        assert!(!ok(json!({"jsonrpc": "2.0", "id": null, "result": {}})));
        assert!(ok(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "m"}})));
        assert!(!ok(json!({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}})));
        assert!(!ok(json!([call(json!(1))])), "a batch");
        assert!(!ok(json!("tools/call")));
    }

    #[test]
    fn keys_a_case_insensitive_decoder_would_merge_are_found() {
        let folded = |v: Value| has_folded_keys(&v);
        assert!(folded(json!({"method": "tools/call", "params": {"name": "a", "Name": "b"}})));
        assert!(folded(json!({"method": "tools/call", "params": {"NAME": "b"}})));
        assert!(folded(json!({"method": "tools/call", "params": {"argument\u{17f}": {}}})));
        assert!(folded(json!({"id": 1, "ID": 2})));
        assert!(!folded(json!({"method": "tools/call", "params": {"name": "a", "arguments": {"Path": 1, "path": 2}}})));
        assert!(!folded(json!({"method": "tools/call", "params": {"name": "a", "arguments": {}, "_meta": {}}})));
    }

    /// serde_json (with the `raw_value` feature axum turns on) would read
    /// the string as the message's `params`: a `tools/call` of `echo` to
    /// the proxy and its policy, an object with one odd key to the server.
    #[test]
    fn keys_the_json_parser_reserves_are_refused_before_they_are_read() {
        for text in [
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"$serde_json::private::RawValue": "{\"name\": \"echo\", \"arguments\": {}}"}}"#,
            r#"{"jsonrpc": "2.0", "id": 1, "result": {"\u0024serde_json::private::RawValue": "{}"}}"#,
            r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"$serde_json::private::Number": "1"}]"#,
        ] {
            assert!(matches!(parse(text), Err(StrictError::ReservedKey)), "{text}");
            assert!(crate::relay::Message::parse(text).is_err(), "{text}");
        }
        let text = r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "$serde_json::private::RawValue"}}"#;
        assert_eq!(parse(text).unwrap()["params"]["name"], "$serde_json::private::RawValue");
        // Repeated keys are left to `vet_from_client`, which answers with the id.
        assert!(parse(r#"{"id": 1, "id": 2}"#).is_ok());
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
        // At any depth, and in arrays.
        assert!(has_duplicate_keys(r#"{"params": {"arguments": {"a": {"b": 1, "b": 2}}}}"#));
        assert!(has_duplicate_keys(r#"{"params": {"arguments": [{"b": 1, "b": 2}]}}"#));
        assert!(has_duplicate_keys("{not json"), "fails closed");
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
