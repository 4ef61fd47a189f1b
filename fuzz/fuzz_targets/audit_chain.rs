//! The audit chain, three ways (the first byte picks one):
//! - an exported chain (a JSON array of events), as `audit verify` reads
//!   it: when it verifies, the count and head are its own, it verifies
//!   again after an export round trip, and changing one event breaks it
//!   exactly there;
//! - drafts sealed into a chain (one `actor\ttype\tbody` per line): what
//!   was appended verifies, reads back from its export, and its bodies
//!   are canonical;
//! - a refusal record built from client-chosen texts: its body stays
//!   within the documented bound whatever the texts are.
#![no_main]

use countersign_audit::{
    verify_all, AuditDraft, AuditEvent, BreakReason, ChainHead, RefusalKind, RefusalRecord, MAX_REFUSAL_BODY_BYTES,
};
use countersign_core::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => exported(rest),
        1 => sealed(rest),
        _ => refusal(rest),
    }
});

fn exported(data: &[u8]) {
    let Ok(events) = serde_json::from_slice::<Vec<AuditEvent>>(data) else { return };
    let Ok(verified) = verify_all(&events) else { return };
    assert_eq!(verified.count, events.len() as u64);
    let Some(last) = events.last() else { return };
    assert_eq!(verified.head.hash, last.hash);
    for event in &events {
        let _ = event.to_json();
        let _ = event.parsed();
    }
    let text = serde_json::to_vec(&events).unwrap_or_default();
    let again: Vec<AuditEvent> = serde_json::from_slice(&text).unwrap_or_default();
    assert_eq!(again, events, "an export reads back as itself");
    let at = data.len() % events.len();
    let mut altered = events.clone();
    altered[at].actor.push('x');
    let broken = verify_all(&altered).err();
    assert_eq!(broken.map(|b| (b.seq, b.reason)), Some((at as u64 + 1, BreakReason::Content)));
}

fn sealed(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut head = ChainHead::default();
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.splitn(3, '\t');
        let actor = fields.next().unwrap_or_default();
        let kind = fields.next().unwrap_or("action.submitted");
        let body = fields.next().unwrap_or("{}");
        let body = serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_owned()));
        // Times a clock can give (the export writes RFC 3339, years 0-9999).
        let time = Timestamp(1_700_000_000_000 + (i as i64) * 1_001 - (line.len() as i64) * 7);
        if let Ok(event) = head.seal(&AuditDraft::raw(actor, kind, body), time) {
            let canonical = AuditEvent::canonical_body(&event.body_value());
            assert_eq!(canonical.as_deref(), Ok(event.body.as_str()), "a stored body is canonical");
            events.push(event);
        }
    }
    let verified = verify_all(&events);
    assert!(verified.as_ref().is_ok_and(|v| v.count == events.len() as u64 && v.head == head), "{verified:?}");
    let text = serde_json::to_vec(&events).unwrap_or_default();
    let again: Vec<AuditEvent> = serde_json::from_slice(&text).unwrap_or_default();
    assert_eq!(again, events, "an export reads back as itself");
}

fn refusal(data: &[u8]) {
    const KEYS: [&str; 16] =
        ["path", "method", "query", "token", "header", "message", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let text = String::from_utf8_lossy(data);
    let mut texts = text.split('\0');
    let actor = texts.next().unwrap_or_default();
    let mut record = RefusalRecord::new(RefusalKind::RequestRejected, actor).code("code", "unauthenticated");
    for (key, value) in KEYS.iter().zip(texts) {
        record = record.text(key, value).number("status", value.len() as u64);
    }
    let draft = record.into_draft();
    let Ok(event) = ChainHead::default().seal(&draft, Timestamp(1_700_000_000_000)) else {
        panic!("a refusal record always seals")
    };
    assert!(event.body.len() <= MAX_REFUSAL_BODY_BYTES, "{} bytes", event.body.len());
    assert!(event.actor.len() <= 128, "{} bytes", event.actor.len());
}
