//! Asking again for the same action: a submission that may reuse is
//! answered with the caller's own open request for the exact same action
//! (same fingerprint) instead of a new one, so that an agent that asks
//! again (a hook called twice, a run resumed in another process) waits on,
//! and once approved takes, the request it already has, and nothing is
//! stored, cancelled or audited twice.
//!
//! Only the caller's own requests are looked at (the fingerprint covers the
//! principal too), and only open ones: `pending`, or `approved` and not yet
//! released. A released, allowed or closed request is never handed out
//! again, so an approval stays single use.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use countersign_core::{Fingerprint, Principal, Request, Timestamp};

use crate::error::GatewayError;
use crate::AppState;

/// Whether a submission may be answered with an earlier request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Always a new request (the default).
    Never,
    /// The caller's oldest open request with the same fingerprint when
    /// the policy in force holds the action for approval: an `approved`
    /// one first, else a `pending` one; a new request when there is none.
    Open,
}

/// What a submission answered with.
#[derive(Debug, Clone)]
pub struct Submission {
    pub request: Request,
    /// An earlier open request, not a new one.
    pub reused: bool,
}

/// Stripes of the lock that serialises identical reusing submissions.
const STRIPES: usize = 64;

/// Locks by fingerprint, striped so that memory stays fixed: two
/// different actions share a stripe only by chance, and then merely take
/// turns.
#[derive(Debug)]
pub(crate) struct ReuseLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for ReuseLocks {
    fn default() -> Self {
        Self((0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl ReuseLocks {
    pub(crate) async fn lock(&self, fingerprint: &Fingerprint) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let mut hasher = DefaultHasher::new();
        fingerprint.as_str().hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or_default();
        match self.0.get(stripe) {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }
}

impl AppState {
    /// The caller's oldest open request for exactly this action, still
    /// within its deadline: approved before pending. One lookup by
    /// fingerprint in the store's index of open requests, however many
    /// other requests the caller has open.
    pub(crate) async fn open_request_for(
        &self,
        principal: &Principal,
        fingerprint: &Fingerprint,
        now: Timestamp,
    ) -> Result<Option<Request>, GatewayError> {
        let me = principal.reference();
        let found = self.0.store.open_requests_by_fingerprint(&me, fingerprint, now, 1).await?;
        // The store promises exactly this; checked again because handing
        // out another's request, or a closed one, is what must never happen.
        Ok(found.into_iter().find(|r| {
            r.status.is_open()
                && r.principal == me
                && &r.fingerprint == fingerprint
                && r.deadline().is_none_or(|deadline| deadline > now)
        }))
    }
}
