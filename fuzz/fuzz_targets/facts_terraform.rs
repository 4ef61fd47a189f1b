//! Terraform plans (`terraform show -json` output) as a JSON string, and
//! the same text nested deeply, on a thread with a small stack. A plan
//! given as text and the same plan given as a JSON object have the same
//! facts.
#![no_main]

use countersign_facts::derive;
use countersign_facts::terraform::MAX_PLAN_DEPTH;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// How deeply `value` nests arrays and objects (`{}` is 1, `[[]]` 2).
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1_usize)];
    while let Some((value, at)) = stack.pop() {
        match value {
            Value::Array(items) => {
                deepest = deepest.max(at);
                stack.extend(items.iter().map(|v| (v, at + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(at);
                stack.extend(map.values().map(|v| (v, at + 1)));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
    deepest
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let from_text = derive("terraform.apply", &json!({"plan": text}));
    let _ = from_text.lines();
    let _ = derive("run", &json!({"plan": text})).lines();
    if let Ok(plan @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        if depth(&plan) <= MAX_PLAN_DEPTH && text.len() <= countersign_facts::MAX_INPUT_BYTES {
            let from_object = derive("terraform.apply", &json!({ "plan": plan }));
            assert_eq!(from_text, from_object, "a plan's facts depend on how it was sent");
        }
    }
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
