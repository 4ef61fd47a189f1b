//! The typed bodies are the audit format: every example in
//! `golden/events.jsonl` (one of each kind and body shape, as the code
//! before the typed events wrote them; see `golden/README.md`) reads into
//! its `Event` variant and serialises back to the same canonical bytes, the
//! bytes the hash chain covers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use countersign_core::events::{Event, Parsed};
use serde_json::Value;

const GOLDEN: &str = include_str!("golden/events.jsonl");

fn canonical(value: &Value) -> String {
    serde_json_canonicalizer::to_string(value).unwrap()
}

#[test]
fn every_golden_event_reads_and_serialises_back_to_the_same_bytes() {
    let mut kinds = BTreeSet::new();
    for (n, line) in GOLDEN.lines().enumerate() {
        let line_no = n + 1;
        let record: Value = serde_json::from_str(line).unwrap();
        let kind = record["type"].as_str().unwrap();
        let stored = canonical(&record["body"]);
        assert!(line.contains(&format!(r#""body":{stored}}}"#)), "line {line_no}: the body is not stored canonical");
        let event = match Parsed::read(kind, &stored) {
            Parsed::Known(event) => event,
            Parsed::Unknown(unknown) => panic!("line {line_no}: `{kind}` does not read: {:?}", unknown.why),
        };
        assert_eq!(event.kind(), kind, "line {line_no}");
        assert_eq!(canonical(&event.body().unwrap()), stored, "line {line_no}: `{kind}` serialises differently");
        kinds.insert(kind.to_owned());
    }
    let all: BTreeSet<String> = Event::KINDS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(kinds, all, "every kind has a golden example, and every example a kind");
}
