//! A store written before the typed audit events existed (see
//! `fixtures/README.md`) opens, its chain verifies, and every event in it
//! reads back into its typed form and serialises to the bytes it was
//! hashed with.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_audit::{verify_all, AuditEvent};
use countersign_core::events::Parsed;
use countersign_store::Store;
use countersign_store_sqlite::SqliteStore;

#[tokio::test]
async fn a_store_written_before_the_typed_events_still_verifies_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("countersign.db");
    // Opening writes (WAL, migrations): never the checked-in file itself.
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/main-audit-log.db"), &path).unwrap();
    let store = SqliteStore::open(&path).unwrap();

    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.count, 90);
    let events = store.audit_events(0, 1000).await.unwrap();
    assert_eq!(verify_all(&events).unwrap(), verified);

    for event in &events {
        let Parsed::Known(typed) = event.parsed() else { panic!("seq {}: `{}` does not read", event.seq, event.kind) };
        assert_eq!(typed.kind(), event.kind);
        assert_eq!(AuditEvent::canonical_body(&typed.body().unwrap()).unwrap(), event.body, "seq {}", event.seq);
    }
}
