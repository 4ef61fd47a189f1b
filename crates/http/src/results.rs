//! Responses kept for clients that did not wait (`Prefer: respond-async`,
//! or a hold that outlasted the upstream's `hold`): each is collected
//! once, by the principal that sent the request, at
//! `/v1/http/results/<request id>`, and kept only briefly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use countersign_core::PrincipalRef;
use serde_json::Value;

use crate::forward::Stored;

/// How long a result waits to be collected once it is ready.
pub const KEEP: Duration = Duration::from_secs(300);
/// How long a request may wait for its decision and still be collected.
const KEEP_WAITING: Duration = Duration::from_secs(24 * 3600);
/// The most results kept at once.
pub const MAX_RESULTS: usize = 10_000;
/// The most results kept at once for one principal: one agent's flood of
/// `respond-async` requests does not leave no room for anyone else's.
pub const MAX_RESULTS_EACH: usize = 1_000;
/// The largest response body kept.
pub const MAX_KEPT_BYTES: usize = 8 * 1024 * 1024;

/// Where the results are collected.
pub const PATH: &str = "/v1/http/results/{id}";

/// What became of a request run in the background.
#[derive(Debug, Clone)]
pub enum Slot {
    /// Not decided, or not yet run.
    Waiting,
    /// The API's response.
    Ready(Stored),
    /// It did not run (or its response could not be kept): this status
    /// and JSON body say why.
    Refused(StatusCode, Value),
}

#[derive(Debug)]
struct Entry {
    owner: PrincipalRef,
    slot: Slot,
    expires: Instant,
}

/// The results, by request id.
#[derive(Debug, Default)]
pub struct Results {
    entries: Mutex<HashMap<String, Entry>>,
}

/// What a collector gets.
#[derive(Debug)]
pub enum Collected {
    /// No such result for this caller (never, already collected, or expired).
    Unknown,
    Waiting,
    Done(Slot),
}

impl Results {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts keeping request `id` for `owner`, unless it is kept already
    /// (its result may have come first). False when too many are kept, in
    /// all or for `owner`.
    pub fn wait_for(&self, id: &str, owner: &PrincipalRef) -> bool {
        let mut entries = self.entries();
        let now = Instant::now();
        entries.retain(|_, e| e.expires > now);
        if entries.contains_key(id) {
            return true;
        }
        if entries.len() >= MAX_RESULTS || entries.values().filter(|e| e.owner == *owner).count() >= MAX_RESULTS_EACH {
            return false;
        }
        entries.insert(id.to_owned(), Entry { owner: owner.clone(), slot: Slot::Waiting, expires: now + KEEP_WAITING });
        true
    }

    /// The result of request `id`, kept for [`KEEP`].
    pub fn complete(&self, id: &str, owner: &PrincipalRef, slot: Slot) {
        let mut entries = self.entries();
        if entries.len() >= MAX_RESULTS && !entries.contains_key(id) {
            tracing::warn!(request = %id, "too many HTTP results are kept; this one is dropped");
            return;
        }
        entries.insert(id.to_owned(), Entry { owner: owner.clone(), slot, expires: Instant::now() + KEEP });
    }

    /// Hands over request `id`'s result to `caller`, once.
    pub fn collect(&self, id: &str, caller: &PrincipalRef) -> Collected {
        let mut entries = self.entries();
        let now = Instant::now();
        match entries.get(id) {
            Some(e) if e.owner == *caller && e.expires > now => {}
            Some(_) | None => return Collected::Unknown,
        }
        match entries.get(id).map(|e| &e.slot) {
            Some(Slot::Waiting) => Collected::Waiting,
            Some(Slot::Ready(_) | Slot::Refused(..)) | None => {
                entries.remove(id).map_or(Collected::Unknown, |e| Collected::Done(e.slot))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use countersign_core::PrincipalKind;

    fn who(name: &str) -> PrincipalRef {
        PrincipalRef { kind: PrincipalKind::Agent, name: name.into() }
    }

    #[test]
    fn a_result_is_collected_once_by_its_owner() {
        let results = Results::default();
        assert!(results.wait_for("r1", &who("a")));
        assert!(matches!(results.collect("r1", &who("a")), Collected::Waiting));
        assert!(matches!(results.collect("r1", &who("b")), Collected::Unknown));
        let stored = Stored { status: StatusCode::OK, headers: HeaderMap::new(), body: "x".into() };
        results.complete("r1", &who("a"), Slot::Ready(stored));
        assert!(matches!(results.collect("r1", &who("b")), Collected::Unknown));
        assert!(matches!(results.collect("r1", &who("a")), Collected::Done(Slot::Ready(_))));
        assert!(matches!(results.collect("r1", &who("a")), Collected::Unknown));
        // A result that came before the client stopped waiting stays.
        results.complete("r2", &who("a"), Slot::Refused(StatusCode::FORBIDDEN, Value::Null));
        assert!(results.wait_for("r2", &who("a")));
        assert!(matches!(results.collect("r2", &who("a")), Collected::Done(Slot::Refused(..))));
    }

    #[test]
    fn one_principal_cannot_take_every_place() {
        let results = Results::default();
        for i in 0..MAX_RESULTS_EACH {
            assert!(results.wait_for(&format!("a{i}"), &who("flood")));
        }
        assert!(!results.wait_for("one-more", &who("flood")));
        assert!(results.wait_for("b0", &who("b")));
        // A request already kept is still waited for.
        assert!(results.wait_for("a0", &who("flood")));
    }
}
