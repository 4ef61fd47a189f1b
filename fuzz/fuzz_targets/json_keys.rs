//! The repeated-key check every API body and MCP message goes through:
//! it never panics, and what it passes is JSON whose objects, read back,
//! keep every key they were given.
#![no_main]

use countersign_core::json::has_duplicate_keys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if has_duplicate_keys(data) {
        return;
    }
    let value: serde_json::Value = match serde_json::from_slice(data) {
        Ok(value) => value,
        Err(e) => panic!("passed text that does not parse: {e}"),
    };
    let text = value.to_string();
    assert!(!has_duplicate_keys(text.as_bytes()), "a value's own text repeats no key");
});
