//! Shell command lines and argv lists, as any kind's payload carries them
//! (facts follow the payload, not the kind): the tokenizer, the wrapper
//! unwrapping, stdin read as a script or SQL, and the kubectl reader. The
//! input is also repeated into deep and wide shapes (nested `sh -c`,
//! substitutions, subshells, long `&&`/`|` chains), which must end in
//! facts on a thread with a small stack, never in an overflow.
#![no_main]

use countersign_facts::derive;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// Wraps `text` `times` times in the shape picked by `shape`.
fn grow(text: &str, shape: u8, times: usize) -> String {
    let (open, close) = match shape % 8 {
        0 => ("$( ", ")"),
        1 => ("( ", ")"),
        2 => ("\"$( ", ")\""),
        3 => ("{ ", "; }"),
        4 => ("${x:-", "}"),
        5 => ("sudo env nice ", ""),
        6 => ("true && ", ""),
        _ => ("cat | ", ""),
    };
    let mut out = String::with_capacity((open.len() + close.len()) * times + text.len());
    for _ in 0..times {
        out.push_str(open);
    }
    out.push_str(text);
    for _ in 0..times {
        out.push_str(close);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let _ = derive("shell.exec", &json!({"command": text})).lines();
    let argv: Vec<&str> = text.split('\0').collect();
    let _ = derive("k8s.apply", &json!({"argv": argv, "args": argv})).lines();
    let _ = derive("run", &json!({"argv": ["bash"], "stdin": text})).lines();
    let _ = derive("run", &json!({"argv": ["psql", "db"], "stdin": text})).lines();
    let times = usize::from(control) * 64;
    let deep = grow(text, control >> 5, times);
    let worker = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || {
        let _ = derive("run", &json!({"command": deep})).lines();
    });
    if let Ok(worker) = worker {
        // A panic or overflow on the worker is the finding.
        if worker.join().is_err() {
            std::process::abort();
        }
    }
});
