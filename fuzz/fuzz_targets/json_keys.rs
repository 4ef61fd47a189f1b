//! The strict reading every API body and MCP message goes through: it
//! never panics, and what it passes is JSON whose objects, read back as a
//! value, keep every key they were given (no repeated key lost, no key
//! serde_json reserves read as more JSON), with the same text.
#![no_main]

use countersign_core::json::{check_keys, from_slice, from_slice_allowing_repeats, has_duplicate_keys, StrictError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let lenient = from_slice_allowing_repeats::<Value>(data);
    match check_keys(data) {
        Ok(()) => {}
        Err(StrictError::RepeatedKey) => {
            assert!(lenient.is_ok(), "a text with repeated keys parses, the last copy winning");
            return;
        }
        Err(StrictError::ReservedKey) => {
            assert!(matches!(lenient, Err(StrictError::ReservedKey)), "{lenient:?}");
            return;
        }
        Err(StrictError::Syntax(_)) => {
            assert!(lenient.is_err(), "text that does not parse does not parse leniently either");
            return;
        }
    }
    assert!(!has_duplicate_keys(data));
    let value: Value = match from_slice(data) {
        Ok(value) => value,
        Err(e) => panic!("passed text that does not parse: {e}"),
    };
    assert_eq!(lenient.ok().as_ref(), Some(&value));
    let text = value.to_string();
    assert!(check_keys(text.as_bytes()).is_ok(), "a value's own text repeats and reserves no key");
    assert_eq!(serde_json::from_str::<Value>(&text).ok(), Some(value), "a value reads back from its text");
});
