//! A log written before the typed events existed still verifies, and every
//! event in it reads back into its typed form and serialises to the bytes
//! it was hashed with. The fixture is `countersign audit export` of a store
//! written by that code (see `fixtures/README.md`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_audit::{verify_all, AuditEvent};
use countersign_core::events::Parsed;
use countersign_core::Timestamp;
use serde_json::Value;

const EXPORTED: &str = include_str!("fixtures/main-audit-log.jsonl");

fn events() -> Vec<AuditEvent> {
    EXPORTED
        .lines()
        .map(|line| {
            let e: Value = serde_json::from_str(line).unwrap();
            let text = |key: &str| e[key].as_str().unwrap().to_owned();
            AuditEvent {
                seq: e["seq"].as_u64().unwrap(),
                time: Timestamp::parse_rfc3339(e["time"].as_str().unwrap()).unwrap(),
                actor: text("actor"),
                kind: text("type"),
                body: AuditEvent::canonical_body(&e["body"]).unwrap(),
                prev_hash: text("prev_hash"),
                hash: text("hash"),
            }
        })
        .collect()
}

#[test]
fn the_exported_old_log_verifies() {
    let events = events();
    let verified = verify_all(&events).unwrap();
    assert_eq!(verified.count, 90);
    assert_eq!(verified.head.hash, events[89].hash);
}

#[test]
fn every_old_event_reads_and_serialises_to_its_hashed_bytes() {
    for event in events() {
        let Parsed::Known(typed) = event.parsed() else { panic!("seq {}: `{}` does not read", event.seq, event.kind) };
        assert_eq!(typed.kind(), event.kind);
        assert_eq!(AuditEvent::canonical_body(&typed.body().unwrap()).unwrap(), event.body, "seq {}", event.seq);
    }
}
