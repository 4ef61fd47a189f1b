//! Terraform plans (`terraform show -json` output) as a JSON string, and
//! the same text nested deeply, on a thread with a small stack.
#![no_main]

use countersign_facts::derive;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let _ = derive("terraform.apply", &json!({"plan": text})).lines();
    let _ = derive("run", &json!({"plan": text})).lines();
    let depth = usize::from(control) * 64;
    let deep = format!("{{\"format_version\":\"1\",\"x\":{}{text}{}}}", "[".repeat(depth), "]".repeat(depth));
    let worker = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || {
        let _ = derive("terraform.apply", &json!({"plan": deep})).lines();
    });
    if let Ok(worker) = worker {
        if worker.join().is_err() {
            std::process::abort();
        }
    }
});
