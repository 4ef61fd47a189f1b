//! Sealing events into the chain, and verifying a chain.

use countersign_core::Timestamp;

use crate::event::compute_hash;
use crate::{AuditDraft, AuditError, AuditEvent};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The newest event of a chain: where the next one attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self { seq: 0, hash: GENESIS_HASH.to_owned() }
    }
}

impl ChainHead {
    /// Seals `draft` as the next event and moves the head onto it.
    pub fn seal(&mut self, draft: &AuditDraft, time: Timestamp) -> Result<AuditEvent, AuditError> {
        let body = AuditEvent::canonical_body(&draft.body()?)?;
        let seq = self.seq + 1;
        let hash = compute_hash(seq, time, draft.actor(), draft.kind(), &body, &self.hash);
        let event = AuditEvent {
            seq,
            time,
            actor: draft.actor().to_owned(),
            kind: draft.kind().to_owned(),
            body,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        };
        self.seq = seq;
        Ok(event)
    }
}

/// How a chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakReason {
    /// The sequence number is not the one that should come next: an event
    /// was removed, inserted or moved.
    Sequence { found: u64 },
    /// `prev_hash` does not name the previous event.
    Link,
    /// The event's content does not match its hash: it was changed.
    Content,
}

/// The first place where a chain fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit chain breaks at sequence {seq}: {}", describe(.reason))]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: BreakReason,
}

fn describe(reason: &BreakReason) -> String {
    match reason {
        BreakReason::Sequence { found } => {
            format!("found sequence {found} instead (an event was removed, inserted or reordered)")
        }
        BreakReason::Link => "its prev_hash does not match the previous event's hash".to_owned(),
        BreakReason::Content => "its content does not match its hash (the event was altered)".to_owned(),
    }
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub count: u64,
    pub head: ChainHead,
    pub last_time: Option<Timestamp>,
}

/// Verifies a chain one event at a time, so that a long log streams through
/// in constant memory.
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    head: ChainHead,
    last_time: Option<Timestamp>,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event. After an error the verifier should be dropped.
    pub fn push(&mut self, event: &AuditEvent) -> Result<(), ChainBreak> {
        let expected = self.head.seq + 1;
        if event.seq != expected {
            return Err(ChainBreak { seq: expected, reason: BreakReason::Sequence { found: event.seq } });
        }
        if event.prev_hash != self.head.hash {
            return Err(ChainBreak { seq: expected, reason: BreakReason::Link });
        }
        if event.compute_hash() != event.hash {
            return Err(ChainBreak { seq: expected, reason: BreakReason::Content });
        }
        self.head = ChainHead { seq: event.seq, hash: event.hash.clone() };
        self.last_time = Some(event.time);
        Ok(())
    }

    pub fn finish(self) -> Verified {
        Verified { count: self.head.seq, head: self.head, last_time: self.last_time }
    }
}

/// Verifies a whole chain held in memory.
pub fn verify_all<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> Result<Verified, ChainBreak> {
    let mut verifier = ChainVerifier::new();
    for event in events {
        verifier.push(event)?;
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn chain(n: usize) -> Vec<AuditEvent> {
        let mut head = ChainHead::default();
        (0..n)
            .map(|i| {
                let draft = AuditDraft::raw(format!("agent:a{i}"), "action.submitted", json!({"i": i, "s": "x"}));
                head.seal(&draft, Timestamp(1_000 + i64::try_from(i).unwrap())).unwrap()
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let events = chain(50);
        let v = verify_all(&events).unwrap();
        assert_eq!(v.count, 50);
        assert_eq!(v.head.hash, events[49].hash);
        assert_eq!(events[0].prev_hash, GENESIS_HASH);
    }

    #[derive(Debug, Clone)]
    enum Tamper {
        Body,
        Actor,
        Time,
        Hash,
        Remove,
        Swap,
        Insert,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Any single change, removal, swap or insertion is reported at
        /// exactly the first affected sequence number.
        #[test]
        fn tampering_is_found_at_the_first_bad_seq(
            n in 2usize..40,
            at in any::<prop::sample::Index>(),
            tamper in prop_oneof![
                Just(Tamper::Body), Just(Tamper::Actor), Just(Tamper::Time), Just(Tamper::Hash),
                Just(Tamper::Remove), Just(Tamper::Swap), Just(Tamper::Insert)
            ],
        ) {
            let mut events = chain(n);
            let i = at.index(n - 1);
            let seq = events[i].seq;
            match tamper {
                Tamper::Body => events[i].body = r#"{"i":999}"#.to_owned(),
                Tamper::Actor => events[i].actor.push('x'),
                Tamper::Time => events[i].time = Timestamp(events[i].time.0 + 1),
                Tamper::Hash => {
                    // Rewriting the hash to match the altered content still
                    // breaks the next event's link.
                    events[i].body = r#"{"i":999}"#.to_owned();
                    events[i].hash = events[i].compute_hash();
                }
                Tamper::Remove => { events.remove(i); }
                Tamper::Swap => events.swap(i, i + 1),
                Tamper::Insert => {
                    let mut forged = events[i].clone();
                    forged.actor = "user:mallory".into();
                    events.insert(i + 1, forged);
                }
            }
            let expected = match tamper {
                Tamper::Hash | Tamper::Insert => seq + 1,
                Tamper::Body | Tamper::Actor | Tamper::Time | Tamper::Remove | Tamper::Swap => seq,
            };
            let err = verify_all(&events).unwrap_err();
            prop_assert_eq!(err.seq, expected);
        }
    }
}
