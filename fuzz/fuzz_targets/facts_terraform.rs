//! Terraform plans (`terraform show -json` output), as a JSON string.
#![no_main]

use countersign_facts::derive;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = derive("terraform.apply", &json!({"plan": text})).lines();
});
