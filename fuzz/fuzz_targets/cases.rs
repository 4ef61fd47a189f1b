//! A policy test-cases file, as JSON and as TOML: cases that read write
//! back as JSON that reads as the same cases.
#![no_main]

use countersign_policy::cases::parse_cases;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for file in ["fuzz.json", "fuzz.toml"] {
        let Ok(cases) = parse_cases(file, text) else { continue };
        let json = serde_json::to_string(&cases).unwrap_or_default();
        match parse_cases("again.json", &json) {
            Ok(again) => assert_eq!(again, cases, "{file}: `{json}`"),
            Err(e) => panic!("{file}: cases written as `{json}` do not read back: {e}"),
        }
    }
});
