//! An exported audit chain (JSON array of events): verify it.
#![no_main]

use countersign_audit::{verify_all, AuditEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = serde_json::from_slice::<Vec<AuditEvent>>(data) {
        let _ = verify_all(&events);
    }
});
