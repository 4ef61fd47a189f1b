//! Strict reading of JSON from outside: an object that repeats a key is
//! refused wherever it sits.
//!
//! Parsers disagree on which copy of a repeated key wins (serde_json keeps
//! the last, others the first), so such a body could be one action to the
//! gate and its policy and another to whatever runs it. Keys are compared
//! after unescaping: `"comm\u0061nd"` and `"command"` are the same key.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};

/// Whether some object in `text`, at any depth, repeats a key. Text that
/// does not parse counts as repeating (fail closed).
///
/// This recurses once per level of nesting: callers bound the depth first
/// (serde_json also stops at 128 levels, which ends in `true`).
pub fn has_duplicate_keys(text: &[u8]) -> bool {
    let mut de = serde_json::Deserializer::from_slice(text);
    let repeated = de.deserialize_any(Keys).unwrap_or(true);
    repeated || de.end().is_err()
}

/// Visits a value and says whether any object in it repeats a key.
struct Keys;

impl<'de> Visitor<'de> for Keys {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let inner = map.next_value_seed(Keys)?;
            if inner || !seen.insert(key) {
                // Stopping early leaves text unread, which the parser
                // reports as an error: that too reads as repeated.
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(found) = seq.next_element_seed(Keys)? {
            if found {
                return Ok(true);
            }
        }
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

impl<'de> DeserializeSeed<'de> for Keys {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
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
}
