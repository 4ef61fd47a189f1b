//! The key-value area every replica shares, for integrations: one
//! namespace each ([`KeyValues`]), compare-and-set so that racing replicas
//! agree, entries that expire, and [`Lease`]s that let one replica among
//! several do a duty (deliver a channel, scan for escalations).

use std::sync::Arc;
use std::time::Duration;

use countersign_core::{Clock, Timestamp};
use countersign_store::{Store, StoreError};

/// One namespace of the key-value area. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KeyValues {
    store: Arc<dyn Store>,
    namespace: String,
}

impl crate::AppState {
    /// The key-value entries under `namespace` (an integration's own:
    /// `channels`, `console`, …).
    pub fn key_values(&self, namespace: &str) -> KeyValues {
        KeyValues::new(self.0.store.clone(), namespace)
    }
}

impl KeyValues {
    /// `namespace` of `store`'s key-value area. Integrations get theirs
    /// from [`crate::AppState::key_values`]; this is for what holds a
    /// store anyway (tests, the CLI).
    pub fn new(store: Arc<dyn Store>, namespace: &str) -> Self {
        Self { store, namespace: namespace.to_owned() }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The value of `key`, if set (an expired entry may still be read until
    /// it is purged: callers that set expiring entries compare the time).
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.kv_get(&self.namespace, key).await
    }

    /// Sets `key` to `value` (`None` deletes it) only if it is `expected`
    /// now (`None`: absent). Of racing setters with the same `expected`,
    /// exactly one succeeds. The value carries no expiry.
    pub async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
    ) -> Result<bool, StoreError> {
        self.store.kv_compare_and_set(&self.namespace, key, expected, value).await
    }

    /// As [`KeyValues::compare_and_set`], for a value that may be purged
    /// after `expires_at`.
    pub async fn compare_and_set_expiring(
        &self,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        self.store.kv_compare_and_set_expiring(&self.namespace, key, expected, value, expires_at).await
    }
}

/// A claim, renewed while it is used, that this process does a duty no
/// other replica does meanwhile. The entry holds the holder's id and when
/// the claim lapses; a holder that stops renewing loses it after `ttl`.
#[derive(Debug)]
pub struct Lease {
    kv: KeyValues,
    clock: Arc<dyn Clock>,
    key: String,
    me: String,
    ttl: Duration,
    held_until: Option<tokio::time::Instant>,
}

impl Lease {
    /// The lease `key` in `kv`, lasting `ttl` from each renewal, with time
    /// read from `clock` (the gateway's).
    pub fn new(kv: KeyValues, clock: Arc<dyn Clock>, key: &str, ttl: Duration) -> Self {
        Self { kv, clock, key: key.to_owned(), me: uuid::Uuid::now_v7().to_string(), ttl, held_until: None }
    }

    /// Whether this process holds the lease, claiming or renewing it when due.
    pub async fn hold(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if self.held_until.is_some_and(|until| until > now + self.ttl / 2) {
            return true;
        }
        match self.claim().await {
            Ok(true) => {
                self.held_until = Some(now + self.ttl);
                true
            }
            Ok(false) => {
                self.held_until = None;
                false
            }
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "cannot renew a lease");
                // Keep going while the old claim lasts; nobody else can take it before.
                self.held_until.is_some_and(|until| until > now)
            }
        }
    }

    async fn claim(&self) -> Result<bool, StoreError> {
        let now = self.clock.now().as_millis();
        let current = self.kv.get(&self.key).await?;
        let free = match current.as_deref().and_then(|v| v.split_once(' ')) {
            None => true,
            Some((owner, expires)) => owner == self.me || expires.parse::<i64>().map_or(true, |e| e < now),
        };
        if !free {
            return Ok(false);
        }
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let mine = format!("{} {}", self.me, now.saturating_add(ttl));
        self.kv.compare_and_set(&self.key, current, Some(mine)).await
    }
}
