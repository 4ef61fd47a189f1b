//! SQL statements in every dialect a payload may name.
#![no_main]

use countersign_facts::derive;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const DIALECTS: [&str; 4] = ["generic", "postgres", "mysql", "sqlite"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let dialect = DIALECTS[usize::from(selector) % DIALECTS.len()];
    let _ = derive("sql.execute", &json!({"statement": text, "dialect": dialect})).lines();
});
