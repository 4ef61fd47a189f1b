//! A config file: parse and validate.
#![no_main]

use countersign::config::RawConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(raw) = RawConfig::parse("fuzz.toml", text) {
        let _ = raw.validate(&countersign::config::MapEnv::default());
    }
});
