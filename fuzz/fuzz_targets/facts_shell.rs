//! Shell command lines and argv lists, as any kind's payload carries them
//! (facts follow the payload, not the kind): the tokenizer, the wrapper
//! unwrapping, stdin read as a script or SQL, and the kubectl reader. The
//! input is also repeated into deep and wide shapes (nested `sh -c`,
//! substitutions, subshells, long `&&`/`|` chains), which must end in
//! facts on a thread with a small stack, never in an overflow.
//!
//! Wrapping never hides a destructive command: when the input is
//! destructive, so is (or else unresolved or a parse error) the input
//! under `sh -c '…'` and in every shape that runs it.
#![no_main]

use countersign_facts::{derive, ShellFacts};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// Wraps `text` `times` times in the shape picked by `shape`; `None` for
/// a shape that does not run `text` (a parameter's default value).
fn grow(text: &str, shape: u8, times: usize) -> (String, bool) {
    let (open, close, runs) = match shape % 8 {
        0 => ("$( ", ")", true),
        1 => ("( ", ")", true),
        2 => ("\"$( ", ")\"", true),
        3 => ("{ ", "\n}", true),
        4 => ("${x:-", "}", false),
        5 => ("sudo env nice ", "", true),
        6 => ("true && ", "", true),
        _ => ("cat | ", "", true),
    };
    let mut out = String::with_capacity((open.len() + close.len()) * times + text.len());
    for _ in 0..times {
        out.push_str(open);
    }
    out.push_str(text);
    for _ in 0..times {
        out.push_str(close);
    }
    (out, runs)
}

fn flagged(facts: &ShellFacts) -> bool {
    facts.destructive || facts.unresolved || facts.parse_error
}

fn shell(command: &str) -> ShellFacts {
    derive("shell.exec", &json!({ "command": command })).shell.unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let facts = derive("shell.exec", &json!({"command": text}));
    let _ = facts.lines();
    let destructive = facts.shell.as_ref().is_some_and(|s| s.destructive);
    let argv: Vec<&str> = text.split('\0').collect();
    let _ = derive("k8s.apply", &json!({"argv": argv, "args": argv})).lines();
    let _ = derive("run", &json!({"argv": ["bash"], "stdin": text})).lines();
    let _ = derive("run", &json!({"argv": ["psql", "db"], "stdin": text})).lines();
    if destructive && text.len() < 4096 {
        let quoted = format!("sh -c '{}'", text.replace('\'', r"'\''"));
        let wrapped = shell(&quoted);
        assert!(flagged(&wrapped), "`{quoted}` hides what `{text}` does: {wrapped:?}");
    }
    // The low 3 bits pick the shape; the high bit a few wrappings (within
    // the depth limit, where the facts must still see through them) or
    // thousands (past every limit, where they must fail closed).
    let count = usize::from((control >> 3) & 0x0f);
    let times = if control & 0x80 == 0 { count } else { 64 + count * 1024 };
    let (deep, runs) = grow(text, control, times);
    let worker = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || shell(&deep));
    if let Ok(worker) = worker {
        // A panic or overflow on the worker is the finding.
        match worker.join() {
            Ok(grown) => assert!(!(destructive && runs && !flagged(&grown)), "a shape hides `{text}`: {grown:?}"),
            Err(_) => std::process::abort(),
        }
    }
});
