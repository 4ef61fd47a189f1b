//! Durations and timestamps as written in policies, config and flags.
#![no_main]

use countersign_core::{parse_duration, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_duration(text);
    let _ = Timestamp::parse_rfc3339(text);
});
