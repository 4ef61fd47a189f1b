//! kubectl argument lists (a `k8s.*` payload's `args`, NUL-separated) and
//! kubectl command lines, widened by repeating global flags before the
//! verb: the verb is always found, and nothing panics.
#![no_main]

use countersign_facts::derive;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let args: Vec<&str> = text.split('\0').collect();
    let _ = derive("k8s.delete", &json!({"args": args})).lines();
    let _ = derive("k8s.delete", &json!({"command": format!("kubectl {}", args.join(" "))})).lines();
    let mut wide: Vec<&str> = Vec::new();
    for _ in 0..usize::from(control) * 32 {
        wide.extend_from_slice(&args);
    }
    wide.extend(["delete", "ns", "prod"]);
    let facts = derive("k8s.delete", &json!({"args": wide}));
    if let Some(k) = facts.kubectl {
        // A `delete` is never read-only, whatever came before it.
        assert!(!k.read_only || k.verbs.iter().all(|v| v != "delete"));
    }
});
