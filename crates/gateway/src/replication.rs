//! Several replicas on one store: waking waiters when another replica
//! decides, and keeping one policy set in force everywhere.
//!
//! Both only run when the store has a change feed
//! ([`countersign_store::Store::change_feed`]), that is, when other
//! replicas may share it (PostgreSQL).
//!
//! - **Wake-ups.** Each notice of a changed request goes into the one
//!   change feed ([`crate::changes`]) at once, waking the waiters on it; a
//!   notice that may hide others (the feed reconnected, or this task fell
//!   behind) goes in as "anything may have changed". The change-counter
//!   poll in [`super::deadlines`] stays on as the fallback.
//! - **Policy.** Every load (startup, SIGHUP, `POST /v1/policies/reload`)
//!   publishes the set's files in the key-value area: the files under
//!   `set:<hash>` (content-addressed, so never overwritten), then `hash`.
//!   Every replica follows `hash` (notice, or a poll every 200 ms) and
//!   installs exactly those files, so all replicas decide under the same
//!   set within milliseconds; the last load on any replica is the one in
//!   force. Replicas must share `[approval]` defaults, which the hash does
//!   not cover.

use std::time::Duration;

use countersign_audit::AuditDraft;
use countersign_core::events::{Event, PolicyAdopted, PolicyLoadFailed};
use countersign_policy::{Defaults, PolicyEngine, PolicySource};
use countersign_store::{Change, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::changes::Notice;
use crate::error::GatewayError;
use crate::AppState;

/// The key-value namespace of the shared policy set.
pub const POLICY_NAMESPACE: &str = "countersign.policy";
/// The key naming the hash of the set in force.
pub const POLICY_HASH_KEY: &str = "hash";
/// How often the shared hash is read when no notice came (the fallback).
const POLICY_POLL: Duration = Duration::from_millis(200);
/// The `source` of policy events about a set another replica loaded.
const SHARED: &str = "shared";
/// How many times a publisher retries a compare-and-set it lost.
const PUBLISH_ATTEMPTS: usize = 8;

/// A policy set as shared through the store: its files, exactly as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedPolicy {
    pub hash: String,
    pub files: Vec<SharedFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SharedFile>,
}

/// One file of a shared policy set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFile {
    pub file: String,
    pub text: String,
}

impl SharedFile {
    fn of(source: &PolicySource) -> Self {
        Self { file: source.file.clone(), text: source.text.clone() }
    }

    fn source(&self) -> PolicySource {
        PolicySource { file: self.file.clone(), text: self.text.clone() }
    }
}

impl SharedPolicy {
    pub fn new(hash: &str, sources: &[PolicySource], schema: Option<&PolicySource>) -> Self {
        Self {
            hash: hash.to_owned(),
            files: sources.iter().map(SharedFile::of).collect(),
            schema: schema.map(SharedFile::of),
        }
    }

    fn set_key(&self) -> String {
        set_key(&self.hash)
    }

    /// Loads these files; the result must have the advertised hash.
    fn load(&self, defaults: Defaults) -> Result<PolicyEngine, String> {
        let sources = self.files.iter().map(SharedFile::source).collect();
        let schema = self.schema.as_ref().map(SharedFile::source);
        let engine = PolicyEngine::from_sources(sources, schema, defaults).map_err(|e| e.problems().join("; "))?;
        if engine.hash() == self.hash {
            Ok(engine)
        } else {
            Err(format!("the shared files hash to {}, not {}", engine.hash(), self.hash))
        }
    }
}

fn set_key(hash: &str) -> String {
    format!("set:{hash}")
}

impl AppState {
    /// Whether other replicas may share this store.
    pub fn is_replicated(&self) -> bool {
        self.0.store.change_feed().is_some()
    }

    /// Makes `shared` the set in force on every replica (no-op on a store
    /// of one's own).
    pub(crate) async fn share_policy(&self, shared: &SharedPolicy) -> Result<(), StoreError> {
        if !self.is_replicated() {
            return Ok(());
        }
        let value = serde_json::to_string(shared)
            .map_err(|e| StoreError::Internal(format!("cannot encode the policy set: {e}")))?;
        // Content-addressed: a set under its hash never changes, so a
        // failed compare-and-set here means the same files are there.
        if self.0.store.kv_get(POLICY_NAMESPACE, &shared.set_key()).await?.is_none() {
            self.0.store.kv_compare_and_set(POLICY_NAMESPACE, &shared.set_key(), None, Some(value)).await?;
        }
        for _ in 0..PUBLISH_ATTEMPTS {
            let current = self.0.store.kv_get(POLICY_NAMESPACE, POLICY_HASH_KEY).await?;
            if current.as_deref() == Some(shared.hash.as_str()) {
                return Ok(());
            }
            let set = self
                .0
                .store
                .kv_compare_and_set(POLICY_NAMESPACE, POLICY_HASH_KEY, current, Some(shared.hash.clone()))
                .await?;
            if set {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable("the shared policy hash kept changing; try again".to_owned()))
    }

    /// Installs the shared policy set if it differs from the one in force.
    /// Returns whether it did.
    pub async fn adopt_shared_policy(&self) -> Result<bool, GatewayError> {
        let Some(hash) = self.0.store.kv_get(POLICY_NAMESPACE, POLICY_HASH_KEY).await? else {
            return Ok(false);
        };
        if hash == self.policy().engine.hash() {
            return Ok(false);
        }
        // Serialised with local reloads, so the two cannot interleave.
        let _serialised = self.0.reload_lock.lock().await;
        let previous = self.policy();
        if hash == previous.engine.hash() {
            return Ok(false);
        }
        let Some(text) = self.0.store.kv_get(POLICY_NAMESPACE, &set_key(&hash)).await? else {
            tracing::warn!(%hash, "the shared policy hash names no stored set; keeping the current one");
            return Ok(false);
        };
        let defaults = Defaults { timeout: self.0.config.default_timeout, valid_for: self.0.config.default_valid_for };
        let loaded = serde_json::from_str::<SharedPolicy>(&text)
            .map_err(|e| format!("the shared policy set does not decode: {e}"))
            .and_then(|shared| shared.load(defaults))
            .map(|engine| {
                engine
                    .with_sql_dialects(self.0.config.sql_dialects.clone())
                    .with_http_apis(self.0.config.http_apis.clone())
            });
        let engine = match loaded {
            Ok(engine) => engine,
            Err(problems) => {
                tracing::error!(%hash, %problems, "the shared policy set does not load here; keeping the current one");
                let failed = PolicyLoadFailed {
                    hash: Some(hash),
                    problems: vec![problems],
                    kept_hash: previous.engine.hash().to_owned(),
                    source: Some(SHARED.to_owned()),
                };
                self.audit(vec![AuditDraft::new("system", Event::PolicyLoadFailed(failed))]).await?;
                return Ok(false);
            }
        };
        let adopted = PolicyAdopted {
            hash: engine.hash().to_owned(),
            previous_hash: previous.engine.hash().to_owned(),
            files: engine.files(),
            policies: engine.policy_count(),
            source: SHARED.to_owned(),
        };
        self.audit(vec![AuditDraft::new("system", Event::PolicyAdopted(adopted))]).await?;
        tracing::info!(hash = %engine.hash(), "installed the policy set another replica loaded");
        self.install_policy(engine).await;
        Ok(true)
    }

    /// Follows what other replicas commit until the gateway shuts down.
    pub async fn follow_changes(self, mut feed: broadcast::Receiver<Change>) {
        let mut poll = tokio::time::interval(POLICY_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Logged once per outage, not five times a second.
        let mut failing = false;
        loop {
            if self.is_shutting_down() {
                return;
            }
            let policy_may_have_changed = tokio::select! {
                change = feed.recv() => match change {
                    Ok(Change::Request(id)) => {
                        self.0.changes.publish(Notice::Elsewhere(id));
                        false
                    }
                    Ok(Change::Kv { namespace, key }) => namespace == POLICY_NAMESPACE && key == POLICY_HASH_KEY,
                    // Notices may have been missed: everyone re-reads.
                    Ok(Change::Unknown) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.0.changes.publish(Notice::Unknown);
                        true
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = poll.tick() => true,
            };
            if policy_may_have_changed {
                match self.adopt_shared_policy().await {
                    Ok(_) if failing => {
                        tracing::info!("the shared policy set can be read again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        tracing::warn!(error = %e, "checking the shared policy set failed; retrying every 200 ms");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
