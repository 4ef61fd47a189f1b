//! Strict reading of JSON from outside: an object that repeats a key, or
//! uses a key the parser reserves for itself, is refused wherever it sits.
//!
//! Parsers disagree on which copy of a repeated key wins (serde_json keeps
//! the last, others the first), so such a body could be one action to the
//! gate and its policy and another to whatever runs it. Keys are compared
//! after unescaping: `"comm\u0061nd"` and `"command"` are the same key.
//!
//! serde_json also reads some keys as instructions rather than data: with
//! its `raw_value` feature (which axum turns on in the gateway),
//! `{"$serde_json::private::RawValue": "<text>"}` becomes, as a `Value`,
//! the JSON inside the string. Every other parser sees an object holding a
//! string, and no check of the outer text sees the inner one: its repeated
//! keys, or its depth (each inner text starts a fresh recursion limit).
//! So any key starting with [`RESERVED_KEY_PREFIX`] is refused before
//! serde_json builds a value from the text ([`from_slice`]).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};

/// The start of the object keys serde_json reserves for itself
/// (`…::RawValue`, `…::Number`).
pub const RESERVED_KEY_PREFIX: &str = "$serde_json::private::";

/// Why strict reading refused a text.
#[derive(Debug, thiserror::Error)]
pub enum StrictError {
    #[error("an object repeats a key")]
    RepeatedKey,
    #[error("an object key starts with `{RESERVED_KEY_PREFIX}`, which the JSON parser reserves")]
    ReservedKey,
    #[error(transparent)]
    Syntax(#[from] serde_json::Error),
}

/// Checks every object key in `text`: `Ok` when no object repeats a key
/// or uses a reserved one (a reserved key is reported before a repeated
/// one), else why not. Nothing is built from the text but its keys, one
/// object at a time; the walk recurses once per level of nesting, which
/// serde_json stops at 128 (a syntax error).
pub fn check_keys(text: &[u8]) -> Result<(), StrictError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let found = de.deserialize_any(Keys)?;
    de.end()?;
    if found.reserved {
        Err(StrictError::ReservedKey)
    } else if found.repeated {
        Err(StrictError::RepeatedKey)
    } else {
        Ok(())
    }
}

/// Whether some object in `text`, at any depth, repeats a key (or uses a
/// reserved one). Text that does not parse counts as repeating (fail
/// closed).
///
/// This recurses once per level of nesting: callers bound the depth first
/// (serde_json also stops at 128 levels, which ends in `true`).
pub fn has_duplicate_keys(text: &[u8]) -> bool {
    check_keys(text).is_err()
}

/// Whether some object in `text` uses a reserved key. Text that does not
/// parse does not: serde_json stops at the same error before it would read
/// anything after it.
///
/// Cheap for the usual text: a reserved key is spelt out (`serde_json`)
/// or has a character of it escaped (`\u0024serde…`), as no other escape
/// yields one of its characters; text with neither is not walked.
pub fn has_reserved_keys(text: &[u8]) -> bool {
    let holds = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    (holds(b"serde_json") || holds(b"\\u")) && matches!(check_keys(text), Err(StrictError::ReservedKey))
}

/// Parses `text` as a `T` once [`check_keys`] passes it, so no value is
/// ever built from text that repeats or reserves a key.
pub fn from_slice<T: DeserializeOwned>(text: &[u8]) -> Result<T, StrictError> {
    check_keys(text)?;
    Ok(serde_json::from_slice(text)?)
}

/// Parses `text` as a `T`, refusing the reserved keys before anything is
/// read but letting a repeated key through (the last copy wins): for
/// readers that report repeats themselves, with more to say, or that read
/// text from a peer the gateway authenticates.
pub fn from_slice_allowing_repeats<T: DeserializeOwned>(text: &[u8]) -> Result<T, StrictError> {
    if has_reserved_keys(text) {
        return Err(StrictError::ReservedKey);
    }
    Ok(serde_json::from_slice(text)?)
}

/// What the keys of a value hold.
#[derive(Debug, Clone, Copy, Default)]
struct Found {
    repeated: bool,
    reserved: bool,
}

impl Found {
    fn and(self, other: Found) -> Found {
        Found { repeated: self.repeated || other.repeated, reserved: self.reserved || other.reserved }
    }
}

/// Visits a value and reports what its objects' keys hold. It reads the
/// whole value, so a reserved key after a repeated one is still seen.
struct Keys;

impl<'de> Visitor<'de> for Keys {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut seen = HashSet::new();
        let mut found = Found::default();
        while let Some(key) = map.next_key::<String>()? {
            found = found.and(map.next_value_seed(Keys)?);
            found.reserved |= key.starts_with(RESERVED_KEY_PREFIX);
            found.repeated |= !seen.insert(key);
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let mut found = Found::default();
        while let Some(inner) = seq.next_element_seed(Keys)? {
            found = found.and(inner);
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found, E> {
        Ok(Found::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Found, E> {
        Ok(Found::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Found, E> {
        Ok(Found::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Found, E> {
        Ok(Found::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Found, E> {
        Ok(Found::default())
    }
    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(Found::default())
    }
}

impl<'de> DeserializeSeed<'de> for Keys {
    type Value = Found;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_any(Keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_found_at_any_depth() {
        for text in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"payload": {"command": "rm -rf /", "command": "ls"}}"#,
            r#"{"p": {"q": {"r": {"s": {"t": 1, "t": 2}}}}}"#,
            r#"{"p": [{"x": 1}, {"y": 1, "y": 2}]}"#,
            r#"[[{"k": 1, "k": 1}]]"#,
            r#"{"payload": {"comm\u0061nd": "rm -rf /", "command": "ls"}}"#,
            r#"{"\u0061": 1, "a": 2}"#,
            r#"{"a": {"b": 1, "b": 2}, "c": 3}"#,
        ] {
            assert!(has_duplicate_keys(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn distinct_keys_pass() {
        for text in [
            r#"{"a": 1, "b": {"a": 1}, "c": [{"a": 1}, {"a": 2}]}"#,
            r#"{"A": 1, "a": 2}"#,
            r#"{"a\u0062": 1, "a": 2}"#,
            "[]",
            "{}",
            "\"x\"",
            "null",
            r#"{"s": "{\"a\": 1, \"a\": 2}"}"#,
        ] {
            assert!(!has_duplicate_keys(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn text_that_does_not_parse_fails_closed() {
        for text in ["{not json", r#"{"a": 1} {"a": 1}"#, "", r#"{"a": 1,}"#] {
            assert!(has_duplicate_keys(text.as_bytes()), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(has_duplicate_keys(deep.as_bytes()), "too deep for the parser: refused, not a stack overflow");
    }

    /// Found by the `json_keys` fuzz target: with serde_json's `raw_value`
    /// feature on (axum turns it on in the gateway, and this crate's tests
    /// turn it on too), this object is, as a `Value`, the JSON inside the
    /// string, with its repeated key and its own depth budget.
    #[test]
    fn keys_the_parser_reserves_are_refused_before_it_reads_them() {
        let hidden =
            r#"{"payload": {"$serde_json::private::RawValue": "{\"command\": \"ls\", \"command\": \"rm -rf /\"}"}}"#;
        let as_value: Result<serde_json::Value, _> = serde_json::from_str(hidden);
        assert_eq!(as_value.unwrap()["payload"]["command"], "rm -rf /", "what the refusal prevents");
        for text in [
            hidden,
            r#"{"$serde_json::private::RawValue": "1"}"#,
            r#"{"$serde_json::private::RawValue": 1}"#,
            r#"{"$serde_json::private::Number": "1e999999"}"#,
            r#"[{"a": 1}, {"b": {"\u0024serde_json::private::RawValue": "[]"}}]"#,
            r#"{"a": 1, "$serde_json::private::anything": 2}"#,
            r#"{"$serde\u005fjson::private::RawValue": "1"}"#,
            // Reported as reserved even after a repeated key.
            r#"{"a": 1, "a": 2, "$serde_json::private::RawValue": "{}"}"#,
        ] {
            assert!(matches!(check_keys(text.as_bytes()), Err(StrictError::ReservedKey)), "{text}");
            assert!(has_reserved_keys(text.as_bytes()) && has_duplicate_keys(text.as_bytes()), "{text}");
            assert!(matches!(from_slice::<serde_json::Value>(text.as_bytes()), Err(StrictError::ReservedKey)));
            let lenient = from_slice_allowing_repeats::<serde_json::Value>(text.as_bytes());
            assert!(matches!(lenient, Err(StrictError::ReservedKey)), "{text}");
        }
        // As data, the prefix is fine.
        let text = r#"{"note": "$serde_json::private::RawValue", "$serde_json": 1}"#;
        assert!(check_keys(text.as_bytes()).is_ok() && !has_reserved_keys(text.as_bytes()));
        assert!(matches!(from_slice::<serde_json::Value>(br#"{"a": 1, "a": 2}"#), Err(StrictError::RepeatedKey)));
        let last_wins = from_slice_allowing_repeats::<serde_json::Value>(br#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(last_wins, serde_json::json!({"a": 2}));
        assert!(matches!(from_slice::<serde_json::Value>(b"{"), Err(StrictError::Syntax(_))));
        assert!(!has_reserved_keys(b"{"));
        assert_eq!(from_slice::<serde_json::Value>(br#"{"a": [1]}"#).unwrap(), serde_json::json!({"a": [1]}));
    }

    /// The same text nests a value once per inner string, each with a fresh
    /// depth budget: the flat depth scan of the outer text sees a depth
    /// of 1.
    #[test]
    fn reserved_keys_cannot_nest_past_the_depth_bound() {
        let mut text = "1".to_owned();
        for _ in 0..6 {
            let inner = format!("{}{}{}", "[".repeat(100), text, "]".repeat(100));
            text = format!("{{\"$serde_json::private::RawValue\": {}}}", serde_json::to_string(&inner).unwrap());
        }
        assert!(matches!(check_keys(text.as_bytes()), Err(StrictError::ReservedKey)));
    }
}
