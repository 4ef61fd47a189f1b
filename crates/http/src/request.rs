//! An agent's request as the proxy reads it: refused when its framing is
//! ambiguous (request smuggling) or its path could mean another one
//! upstream; otherwise described as the `http.request` action that is
//! decided, and forwarded exactly as described.
//!
//! The payload is `{method, path, query?, headers, body? | body_sha256? +
//! body_text?, body_bytes, upgrade?}`: `headers` holds only the allow-listed
//! request headers (the only ones forwarded), `body` a JSON body parsed (up
//! to [`MAX_INLINE_JSON`]), any other body its SHA-256 and size, and its
//! text when it is text the API reads as such.

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
    #[error(
        "the path could mean another one to the API: a `.` or `..` segment, an empty segment, `;`, a backslash, an escaped `/` or control character, or a `%` that is not an escape"
    )]
    BadPath,
    #[error("the method is not in upper case: `GET`, `POST`, … (methods are case-sensitive)")]
    BadMethod,
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

/// The path after `/http/<name>` (at least `/`), in the one form it is
/// decided and forwarded in; refused when the API could resolve it to
/// another path than the one decided on, or when the name is not spelled
/// literally (`/http/%69tems` is decoded to `items` by the router, but is
/// not the API's name as written).
pub fn path_after(full: &str, name: &str) -> Result<String, Malformed> {
    let rest = full.strip_prefix("/http/").and_then(|r| r.strip_prefix(name)).ok_or(Malformed::BadPath)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(Malformed::BadPath);
    }
    normal_path(if rest.is_empty() { "/" } else { rest })
}

/// Characters a path escape stands for that are refused: a path separator
/// (`/`, `\`), `;` (path parameters, which Tomcat and Spring cut off a
/// segment: `..;` is `..` to them) and `.` (dot segments).
const REFUSED_ESCAPES: [u8; 4] = [b'/', b'\\', b';', b'.'];

/// `path` in RFC 3986 normal form, so that a policy matching it, the
/// approver reading it and the API resolving it see one spelling: escapes
/// of unreserved characters decoded (`%70rotected` is `protected`), other
/// escapes upper case, and what an URL parser would escape on the way
/// (space, `"`, `<`, `>`, `` ` ``, `{`, `}`, bytes beyond ASCII) escaped
/// here already. Refused: anything a server could resolve to another
/// path — a `.` or `..` segment however escaped, an empty segment (`//`,
/// which some servers merge), `;`, a backslash, an escaped `/`, a
/// control character, a `%` that is not an escape, and an escape of an
/// escape of any of these (`%252e%252e`, for an API that decodes twice).
fn normal_path(path: &str) -> Result<String, Malformed> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let decoded = escaped(bytes.get(i + 1..i + 3)).ok_or(Malformed::BadPath)?;
                if decoded.is_ascii_control() || REFUSED_ESCAPES.contains(&decoded) && decoded != b'.' {
                    return Err(Malformed::BadPath);
                }
                if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(decoded));
                } else {
                    out.push_str(&format!("%{decoded:02X}"));
                }
                i += 3;
            }
            b';' | b'\\' => return Err(Malformed::BadPath),
            _ if b.is_ascii_control() => return Err(Malformed::BadPath),
            b' ' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | 0x80..=0xff => {
                out.push_str(&format!("%{b:02X}"));
                i += 1;
            }
            _ => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    let segments: Vec<&str> = out.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let bad_segment =
        segments.iter().enumerate().any(|(at, s)| *s == "." || *s == ".." || (s.is_empty() && at != 0 && at != last));
    if !out.starts_with('/') || bad_segment || escapes_a_refused_escape(&out) {
        return Err(Malformed::BadPath);
    }
    Ok(out)
}

/// The byte two hex digits stand for.
fn escaped(hex: Option<&[u8]>) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    match hex? {
        [high, low] => Some(digit(*high)? * 16 + digit(*low)?),
        _ => None,
    }
}

/// `path`, once its escapes are decoded, still escapes a refused
/// character or a control character: `%252e` is `%2e` to an API that
/// decodes once, and `.` to one that decodes twice.
fn escapes_a_refused_escape(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut once = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match escaped(bytes.get(i + 1..i + 3)).filter(|_| b == b'%') {
            Some(decoded) => {
                once.push(decoded);
                i += 3;
            }
            None => {
                once.push(b);
                i += 1;
            }
        }
    }
    once.windows(3).any(|w| {
        w[0] == b'%'
            && escaped(Some(&w[1..]))
                .is_some_and(|decoded| decoded.is_ascii_control() || REFUSED_ESCAPES.contains(&decoded))
    })
}

/// `query` as it is decided and forwarded: what an URL parser would
/// escape on the way (bytes beyond ASCII, space, `"`, `#`, `<`, `>`, `'`)
/// escaped already, so the query an approver reads is the one the API
/// gets, in plain ASCII (no character in it can reorder what is shown).
pub fn normal_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for b in query.bytes() {
        match b {
            b' ' | b'"' | b'#' | b'<' | b'>' | b'\'' | 0x80..=0xff => out.push_str(&format!("%{b:02X}")),
            _ if b.is_ascii_control() => out.push_str(&format!("%{b:02X}")),
            _ => out.push(char::from(b)),
        }
    }
    out
}

/// The request's method is not spelled as an API reads it: methods are
/// case-sensitive (RFC 9110), so `get` is not `GET` to most servers,
/// though some read it as `GET` and policies would see it upper-cased.
pub fn check_method(method: &Method) -> Result<(), Malformed> {
    let text = method.as_str();
    if text.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_') {
        Ok(())
    } else {
        Err(Malformed::BadMethod)
    }
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
                    if let Some(text) = self.text_body() {
                        payload.insert("body_text".to_owned(), Value::String(text.to_owned()));
                    }
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

    /// The body as JSON, when it is shown as JSON: what the API reads is
    /// then what the approver reads. Only a body small enough to show,
    /// with one JSON `Content-Type` (two, and the API may read either),
    /// no charset but UTF-8, no `Content-Encoding` (the API reads the
    /// decoded bytes, not these), and JSON that parsers cannot read
    /// differently ([`unambiguous_json`]); any other body is shown by its
    /// digest.
    fn json_body(&self) -> Option<Value> {
        let mut types = self.headers.iter().filter(|(n, _)| n == axum::http::header::CONTENT_TYPE);
        let content_type = types.next()?.1.to_str().ok()?;
        if types.next().is_some() || self.body.len() > MAX_INLINE_JSON || !self.read_as_sent() {
            return None;
        }
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return None;
        }
        let value = unambiguous_json(&self.body)?;
        // Its strings as the card will print them, escapes decoded.
        (!value.to_string().chars().any(deceptive)).then_some(value)
    }

    /// Any other body, as text, when the API reads these very characters:
    /// UTF-8 without control characters (bar tab and line ends), small
    /// enough to show, neither encoded nor declared in another charset.
    /// A form, YAML (server-side apply), or JSON that is not shown as
    /// JSON is then read by the approver as sent.
    fn text_body(&self) -> Option<&str> {
        if self.body.len() > MAX_INLINE_JSON || !self.read_as_sent() {
            return None;
        }
        let text = std::str::from_utf8(&self.body).ok()?;
        let plain = text.chars().all(|c| (!c.is_control() || matches!(c, '\t' | '\n' | '\r')) && !deceptive(c));
        plain.then_some(text)
    }

    /// The body's bytes are what the API reads: no `Content-Encoding`
    /// (the API would read the decoded bytes) and no charset but UTF-8
    /// (another charset reads the same bytes as other characters).
    fn read_as_sent(&self) -> bool {
        self.headers.iter().all(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes());
            if name == axum::http::header::CONTENT_ENCODING {
                return text.trim().eq_ignore_ascii_case("identity");
            }
            let other_charset = name == axum::http::header::CONTENT_TYPE
                && text.split(';').skip(1).filter_map(|p| p.split_once('=')).any(|(key, value)| {
                    key.trim().eq_ignore_ascii_case("charset")
                        && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
                });
            !other_charset
        })
    }
}

/// A character that changes how the text around it is shown without
/// showing itself: bidirectional overrides and isolates (which can show
/// `"amount": 1000` as something else, "Trojan Source"), zero-width and
/// invisible characters. A body holding one is shown by its digest only.
fn deceptive(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// `body` as JSON when no two parsers could read it differently: no
/// object holds two keys that are the same, or the same but for case
/// (parsers differ on which of two equal keys wins, and Go's
/// `encoding/json` matches keys to fields case-insensitively, so
/// `{"amount": 1, "AMOUNT": 1000}` is 1000 to it).
pub fn unambiguous_json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Unambiguous>(body).ok()?;
    serde_json::from_slice(body).ok()
}

/// A JSON value whose objects have no keys equal but for case.
struct Unambiguous;

impl<'de> serde::Deserialize<'de> for Unambiguous {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Unambiguous)
    }
}

impl<'de> serde::de::Visitor<'de> for Unambiguous {
    type Value = Self;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<Self>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            // Upper then lower case: `ſ` (long s) and `K` (Kelvin) fold to
            // `s` and `k`, as Go's case-insensitive match folds them.
            if !seen.insert(key.to_uppercase().to_lowercase()) {
                return Err(serde::de::Error::custom("two keys are equal but for case"));
            }
            map.next_value::<Self>()?;
        }
        Ok(self)
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
            // Path parameters: `..;` is `..` to Tomcat, `a;x` is `a` to Spring.
            "/http/api/a/..;/admin",
            "/http/api/items/protected;x=1",
            "/http/api/items/protected%3Bx",
            // Empty segments, which some servers merge.
            "/http/api//admin",
            "/http/api/a//b",
            // Not escapes.
            "/http/api/100%",
            "/http/api/%zz",
            "/http/api/%+1",
            // Escapes of escapes, for an API that decodes twice.
            "/http/api/%252e%252e/admin",
            "/http/api/a%252fb",
            "/http/api/a%255Cb",
            "/http/api/a%253bb",
            "/http/api/a%2500",
        ] {
            assert_eq!(path_after(bad, "api"), Err(Malformed::BadPath), "{bad}");
        }
    }

    #[test]
    fn paths_are_decided_and_forwarded_in_one_normal_form() {
        for (sent, normal) in [
            ("/http/api/items/%70rotected", "/items/protected"),
            ("/http/api/ws/%61dmin", "/ws/admin"),
            ("/http/api/a%2Ejson", "/a.json"),
            ("/http/api/a%7e%5F%2D", "/a~_-"),
            ("/http/api/x/%c3%a9", "/x/%C3%A9"),
            ("/http/api/x%25y", "/x%25y"),
            ("/http/api/a{b}", "/a%7Bb%7D"),
            ("/http/api/items/", "/items/"),
            ("/http/api/", "/"),
            ("/http/api/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="),
        ] {
            assert_eq!(path_after(sent, "api").unwrap(), normal, "{sent}");
        }
        // `%2e` is `.`, so an escaped dot segment is still refused.
        assert_eq!(path_after("/http/api/a/%2e", "api"), Err(Malformed::BadPath));
    }

    #[test]
    fn a_query_is_decided_as_it_is_forwarded() {
        assert_eq!(normal_query("a=1&b=x%20y+z"), "a=1&b=x%20y+z");
        assert_eq!(normal_query("to=acct\u{202E}1&n='x'"), "to=acct%E2%80%AE1&n=%27x%27");
        assert_eq!(normal_query("q=é"), "q=%C3%A9");
    }

    #[test]
    fn a_method_override_is_never_forwarded() {
        let all =
            headers(&[("x-http-method-override", "DELETE"), ("x-http-method", "DELETE"), ("x-method-override", "PUT")]);
        let extra: Vec<String> = all.keys().map(|n| n.as_str().to_owned()).collect();
        assert!(Incoming::pick_headers(&all, &extra).is_empty());
    }

    #[test]
    fn methods_are_upper_case_as_sent() {
        for good in ["GET", "POST", "PROPFIND", "M-SEARCH"] {
            assert_eq!(check_method(&Method::from_bytes(good.as_bytes()).unwrap()), Ok(()), "{good}");
        }
        for bad in ["get", "Get", "dElEtE", "GET2"] {
            assert_eq!(check_method(&Method::from_bytes(bad.as_bytes()).unwrap()), Err(Malformed::BadMethod), "{bad}");
        }
    }

    #[test]
    fn a_body_the_api_could_read_otherwise_is_shown_by_its_digest() {
        let with = |headers: &[(&'static str, &'static str)], body: &'static str| {
            let headers =
                headers.iter().map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v))).collect();
            let incoming = Incoming {
                method: Method::POST,
                path: "/pay".into(),
                query: None,
                headers,
                body: Bytes::from_static(body.as_bytes()),
            };
            incoming.action("billing").payload
        };
        let json = ("content-type", "application/json");
        let shown = with(&[json], r#"{"amount": 1, "to": {"id": 2}}"#);
        assert_eq!(shown["body"], json!({"amount": 1, "to": {"id": 2}}));
        assert_eq!(with(&[("content-type", "application/json; charset=UTF-8")], "{}")["body"], json!({}));
        assert_eq!(with(&[json, ("content-encoding", "identity")], "{}")["body"], json!({}));
        for (headers, body) in [
            // Which of two equal keys wins depends on the parser.
            (vec![json], r#"{"amount": 1, "amount": 1000}"#),
            // Go's encoding/json matches keys to fields regardless of case.
            (vec![json], r#"{"amount": 1, "AMOUNT": 1000}"#),
            (vec![json], r#"{"to": [{"id": 1, "Id": 2}]}"#),
            (vec![json], r#"{"secret": 1, "\u017fecret": 2}"#),
            // The API reads the decoded bytes.
            (vec![json, ("content-encoding", "deflate")], "{}"),
            // Another charset, another reading of the same bytes.
            (vec![("content-type", "application/json; charset=utf-7")], r#"{"to": "+AGEAYgBj-"}"#),
            // Two types: the API may read it as either.
            (vec![json, ("content-type", "application/x-www-form-urlencoded")], r#"{"a": "1&admin=true"}"#),
        ] {
            let payload = with(&headers, body);
            assert!(payload.get("body").is_none(), "{headers:?} {body}: {payload}");
            assert_eq!(payload["body_sha256"].as_str().unwrap().len(), 64);
            // Its text, when the API reads these characters: both keys show.
            let read_as_sent = !headers.iter().any(|(n, v)| *n == "content-encoding" || v.contains("utf-7"));
            let text = payload.get("body_text").and_then(Value::as_str);
            assert_eq!(text, read_as_sent.then_some(body), "{headers:?} {body}: {payload}");
        }
        // Characters that reorder or hide what is shown: digest only.
        for body in ["{\"to\": \"acct_1\u{202E}0001\u{202C}\"}", "{\"amount\": 1,\u{200B} \"to\": \"a\"}"] {
            let payload = with(&[json], body);
            assert!(payload.get("body").is_none() && payload.get("body_text").is_none(), "{body:?}: {payload}");
        }
        // Escaped, it is shown as the escape it is written as.
        let escaped = with(&[json], r#"{"to": "acct_1\u202e0001"}"#);
        assert!(escaped.get("body").is_none(), "{escaped}");
        assert_eq!(escaped["body_text"], r#"{"to": "acct_1\u202e0001"}"#);
        // A form and YAML read as sent; bytes that are not text are not.
        let form = with(&[("content-type", "application/x-www-form-urlencoded")], "amount=1&to=acct_1");
        assert_eq!(form["body_text"], "amount=1&to=acct_1");
        let yaml = with(&[("content-type", "application/apply-patch+yaml")], "kind: ConfigMap\ndata:\n  a: \"1\"\n");
        assert_eq!(yaml["body_text"], "kind: ConfigMap\ndata:\n  a: \"1\"\n");
        assert!(with(&[("content-type", "application/octet-stream")], "\u{0}\u{1}bin").get("body_text").is_none());
        assert!(with(&[], "\u{1b}[31mred").get("body_text").is_none());
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
