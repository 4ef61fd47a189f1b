//! [`AppState`]: the gateway's shared state, and the few moves every
//! operation shares (applying a transition, announcing it, the policy set
//! in force). Its insides are private; integrations use its operations and
//! the narrow services it hands out.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use countersign_audit::AuditDraft;
use countersign_core::events::Caused;
use countersign_core::{Clock, Principal, Request, Status, SystemClock, Timestamp};
use countersign_policy::PolicyEngine;
use countersign_store::{Store, StoreError, Updated};

use crate::changes::{Changes, Notice, Subscription};
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::identify::{AuthError, Authenticator, LocalTokens};
use crate::metrics::Metrics;
use crate::policies;
use crate::refusals::Refusals;

/// The audit drafts of the events a move caused, in order.
pub(crate) fn drafts(events: Vec<Caused>) -> Vec<AuditDraft> {
    events.into_iter().map(AuditDraft::from).collect()
}

/// The policy set in force and when it was loaded.
pub struct LoadedPolicy {
    pub engine: PolicyEngine,
    pub loaded_at: Timestamp,
}

impl fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("hash", &self.engine.hash())
            .field("policies", &self.engine.policy_count())
            .field("loaded_at", &self.loaded_at)
            .finish()
    }
}

/// Shared state of a running gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: GatewayConfig,
    pub(crate) store: Arc<dyn Store>,
    auth: Arc<dyn Authenticator>,
    /// The one change feed.
    pub(crate) changes: Changes,
    pub(crate) metrics: Metrics,
    /// The rate limiter and counter of refused calls.
    pub(crate) refusals: Refusals,
    /// Where every time the gateway reads comes from.
    clock: Arc<dyn Clock>,
    policy: ArcSwap<LoadedPolicy>,
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    /// Held (shared) by every move that decides under the policy set in
    /// force and then commits (submit, release), and (exclusive) while a new
    /// set is installed: a move decided under the old set commits before
    /// the new one is in force, so the re-decision that follows a reload
    /// sees it, and no move commits a decision of a set already replaced.
    policy_gate: tokio::sync::RwLock<()>,
    /// The audit log's Merkle tree and checkpoint signer.
    pub(crate) audit: std::sync::Arc<crate::checkpoints::AuditLog>,
    /// Serialises identical submissions that may reuse an open request.
    pub(crate) reuse_locks: crate::reuse::ReuseLocks,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the policy set in `{dir}` does not load:\n{problems}")]
    Policy { dir: String, problems: String },
    #[error("cannot write the starter policy to `{dir}`: {reason}")]
    StarterPolicy { dir: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppState {
    /// Loads the policy set (writing the starter policy into a fresh default
    /// policy directory) and records the load in the audit log.
    pub async fn new(config: GatewayConfig, store: Arc<dyn Store>) -> Result<Self, StartError> {
        let auth: Arc<dyn Authenticator> = Arc::new(LocalTokens::new(store.clone()));
        Self::with_authenticator(config, store, auth).await
    }

    /// As [`AppState::new`], with another way of identifying callers.
    pub async fn with_authenticator(
        config: GatewayConfig,
        store: Arc<dyn Store>,
        auth: Arc<dyn Authenticator>,
    ) -> Result<Self, StartError> {
        Self::with_clock(config, store, auth, Arc::new(SystemClock)).await
    }

    /// As [`AppState::with_authenticator`], with the clock every time the
    /// gateway reads comes from: deadlines, stamps, refusal windows and
    /// rate limits (tests move it by hand).
    pub async fn with_clock(
        config: GatewayConfig,
        store: Arc<dyn Store>,
        auth: Arc<dyn Authenticator>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        if config.policies_defaulted && !config.policies_dir.exists() {
            policies::write_starter(&config.policies_dir)?;
        }
        let (engine, shared) = policies::load(&config)
            .map_err(|problems| StartError::Policy { dir: config.policies_dir.display().to_string(), problems })?;
        store.append_audit(vec![policies::loaded_event("system", &engine, None)]).await?;
        let policy = ArcSwap::from_pointee(LoadedPolicy { engine, loaded_at: clock.now() });
        let metrics = Metrics::default();
        metrics.set_limits(&config.limits);
        let refusals = Refusals::new(config.limits.clone(), clock.clone());
        let state = Self(Arc::new(Inner {
            config,
            store,
            auth,
            changes: Changes::default(),
            metrics,
            refusals,
            clock,
            policy,
            reload_lock: tokio::sync::Mutex::new(()),
            policy_gate: tokio::sync::RwLock::new(()),
            audit: crate::checkpoints::new_log(),
            reuse_locks: crate::reuse::ReuseLocks::default(),
        }));
        // With replicas, the set this one loaded is now the one in force.
        state.share_policy(&shared).await?;
        Ok(state)
    }

    /// The time now, by the gateway's clock.
    pub fn now(&self) -> Timestamp {
        self.0.clock.now()
    }

    /// The gateway's clock, for integrations that keep time with it.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.0.clock.clone()
    }

    /// The gateway's part of the validated configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.0.config
    }

    /// The gateway's metrics (integrations count their deliveries here).
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Identifies the caller behind a bearer credential.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        self.0.auth.authenticate(bearer).await
    }

    /// The policy set in force right now.
    pub fn policy(&self) -> Arc<LoadedPolicy> {
        self.0.policy.load_full()
    }

    /// Follows every change to a request, made here or elsewhere (see
    /// [`crate::changes`]).
    pub fn changes(&self) -> Subscription {
        self.0.changes.subscribe()
    }

    /// Stops the gateway: every subscriber, waiting agents first, hears
    /// [`Notice::ShuttingDown`] and background duties end.
    pub fn shut_down(&self) {
        self.0.changes.shut_down();
    }

    /// Completes when the gateway starts shutting down.
    pub async fn stopped(&self) {
        self.0.changes.stopped().await;
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.changes.is_shutting_down()
    }

    /// Whether the store answers (for readiness).
    pub async fn ping(&self) -> Result<(), GatewayError> {
        Ok(self.0.store.ping().await?)
    }

    /// Announces that this process created or changed `request`.
    pub(crate) fn publish_change(&self, request: &Request) {
        self.0.changes.publish(Notice::Here(Arc::new(request.clone())));
    }

    /// Applies a transition and wakes whoever waits on the request if its
    /// status moved. What it moved from is what the transition saw inside
    /// the store's transaction, never an earlier read: a move racing
    /// another must not announce (or count) the other's change as its own.
    pub(crate) async fn update(&self, id: &str, update: countersign_store::UpdateFn) -> Result<Updated, GatewayError> {
        let updated = self.0.store.update_request(id, update).await?;
        if updated.changed && updated.before != updated.request.status {
            self.announce(&updated.request, Some(updated.before));
        }
        if updated.changed {
            self.publish_change(&updated.request);
        }
        Ok(updated)
    }

    /// Counts a status change (waiters hear of it through the change feed).
    pub(crate) fn announce(&self, request: &Request, before: Option<Status>) {
        self.0.metrics.count_transition(request.status.as_str());
        let decided_by_people =
            matches!(request.status, Status::Approved | Status::Denied) && before == Some(Status::Pending);
        if decided_by_people {
            let elapsed = self.now().as_millis().saturating_sub(request.created_at.as_millis());
            self.0.metrics.time_to_decision.observe(elapsed as f64 / 1000.0);
        }
    }

    /// Swaps in a new policy set (used by reload), once every move deciding
    /// under the old one has committed.
    pub(crate) async fn install_policy(&self, engine: PolicyEngine) {
        let _no_move_in_flight = self.0.policy_gate.write().await;
        self.0.policy.store(Arc::new(LoadedPolicy { engine, loaded_at: self.now() }));
    }

    /// The policy set in force, held in force until the guard is dropped:
    /// for a move that decides under it and then commits.
    pub(crate) async fn policy_in_force(&self) -> (tokio::sync::RwLockReadGuard<'_, ()>, Arc<LoadedPolicy>) {
        let guard = self.0.policy_gate.read().await;
        (guard, self.policy())
    }
}
