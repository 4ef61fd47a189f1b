//! A policy test-cases file, as JSON and as TOML.
#![no_main]

use countersign_policy::cases::parse_cases;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_cases("fuzz.json", text);
    let _ = parse_cases("fuzz.toml", text);
});
