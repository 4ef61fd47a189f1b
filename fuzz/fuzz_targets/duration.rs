//! Durations and timestamps as written in policies, config and flags:
//! what parses prints back to text that parses to the same value.
#![no_main]

use countersign_core::clock::format_duration;
use countersign_core::{parse_duration, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(duration) = parse_duration(text) {
        let printed = format_duration(duration);
        assert_eq!(parse_duration(&printed), Ok(duration), "`{text}` printed as `{printed}`");
    }
    if let Ok(time) = Timestamp::parse_rfc3339(text) {
        let printed = time.to_rfc3339();
        assert_eq!(Timestamp::parse_rfc3339(&printed), Ok(time), "`{text}` printed as `{printed}`");
    }
});
