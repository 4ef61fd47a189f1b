//! kubectl argument lists (a `k8s.*` payload's `args`, NUL-separated) and
//! kubectl command lines, widened by repeating the input before `delete ns
//! prod`: nothing panics, a `read_only` call only ever runs verbs that
//! read, and a `delete` is never read-only, whatever came before it.
#![no_main]

use countersign_facts::{derive, Facts, KUBECTL_READ_ONLY_VERBS as READING};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn check(facts: &Facts) {
    if let Some(k) = &facts.kubectl {
        assert!(!k.read_only || k.verbs.iter().all(|v| READING.contains(&v.as_str())), "{k:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let args: Vec<&str> = text.split('\0').collect();
    let facts = derive("k8s.delete", &json!({ "args": args }));
    let _ = facts.lines();
    check(&facts);
    let facts = derive("k8s.delete", &json!({"command": format!("kubectl {}", args.join(" "))}));
    let _ = facts.lines();
    check(&facts);
    let mut wide: Vec<&str> = Vec::new();
    // A few copies, or (the high bit) thousands: a little past the 64 Ki
    // argument limit at most, so both sides of it are tried.
    let count = usize::from(control & 0x7f);
    let times = if control & 0x80 == 0 { count % 8 } else { count * 64 };
    for _ in 0..times {
        if wide.len() > 70_000 {
            break;
        }
        wide.extend_from_slice(&args);
    }
    wide.extend(["delete", "ns", "prod"]);
    let facts = derive("k8s.delete", &json!({ "args": wide }));
    check(&facts);
    if let Some(k) = facts.kubectl {
        assert!(!k.read_only || k.verbs.iter().all(|v| v != "delete"), "{k:?}");
    }
});
