//! Shell command lines and argv lists, as `shell.exec` and `k8s.*` payloads
//! carry them: the tokenizer, the wrapper unwrapping and the kubectl reader.
#![no_main]

use countersign_facts::derive;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = derive("shell.exec", &json!({"command": text})).lines();
    let argv: Vec<&str> = text.split('\0').collect();
    let _ = derive("k8s.apply", &json!({"argv": argv, "args": argv})).lines();
});
