//! Background duties: expiring requests at their deadlines, telling the
//! change feed when another process (the CLI, another replica) changed the
//! store, and
//! deleting expired key-value entries (console sessions and logins, seen
//! Slack signatures) so that what nobody comes back for does not pile up.
//! Each replica purges; the purge is one idempotent `DELETE`, so replicas
//! doing it at once only repeat each other's work.

use std::time::Duration;

use countersign_core::lifecycle::settle_deadline;
use countersign_core::Status;
use countersign_store::{RequestFilter, Update};

use crate::changes::Notice;
use crate::error::GatewayError;
use crate::state::drafts;
use crate::AppState;

/// How often deadlines and outside changes are checked. Expiry is enforced
/// exactly by the state machine on every move; this only makes it visible.
const TICK: Duration = Duration::from_millis(200);
/// Purge expired key-value entries every this many ticks (60 s). Nothing
/// reads an expired entry as live (readers compare its deadline), so this
/// only bounds how long dead rows take up space.
const PURGE_EVERY_TICKS: u64 = 300;

impl AppState {
    /// Runs until the gateway shuts down.
    pub async fn run_background(self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_counter = None;
        let mut ticks: u64 = 0;
        // Other replicas' changes, pushed (the counter below is the fallback).
        let follower = self.0.store.change_feed().map(|feed| tokio::spawn(self.clone().follow_changes(feed)));
        loop {
            ticks += 1;
            tick.tick().await;
            if self.is_shutting_down() {
                if let Some(follower) = follower {
                    follower.abort();
                }
                return;
            }
            if let Err(e) = self.expire_due().await {
                tracing::warn!(error = %e, "expiring due requests failed; will retry");
            }
            match self.0.store.change_counter().await {
                Ok(counter) => {
                    // Another process committed: everyone who follows
                    // changes reads again what matters to them.
                    if last_counter.is_some_and(|last| last != counter) && self.0.changes.subscribers() > 0 {
                        self.0.changes.publish(Notice::Unknown);
                    }
                    last_counter = Some(counter);
                }
                Err(e) => tracing::warn!(error = %e, "reading the store's change counter failed"),
            }
            // The gauge is a sample; every few seconds is plenty.
            if ticks % 25 == 1 {
                self.sample_pending().await;
            }
            // The first tick purges at once: what expired while the gateway
            // was down goes first.
            if ticks % PURGE_EVERY_TICKS == 1 {
                match self.0.store.kv_purge_expired(self.now()).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::debug!(purged, "deleted expired key-value entries"),
                    Err(e) => tracing::warn!(error = %e, "deleting expired key-value entries failed; will retry"),
                }
            }
        }
    }

    /// Moves every request past its deadline to `expired`.
    pub async fn expire_due(&self) -> Result<usize, GatewayError> {
        let now = self.now();
        let mut expired = 0;
        for id in self.0.store.due_requests(now).await? {
            let updated = self
                .update(
                    &id,
                    Box::new(move |current| match settle_deadline(current, now) {
                        Some(expired) => {
                            Update { events: drafts(expired.events), save: Some(expired.request), result: Ok(()) }
                        }
                        None => Update { save: None, events: Vec::new(), result: Ok(()) },
                    }),
                )
                .await?;
            if updated.request.status == Status::Expired {
                expired += 1;
            }
        }
        Ok(expired)
    }

    async fn sample_pending(&self) {
        let filter = RequestFilter { status: Some(Status::Pending), limit: 1000, ..RequestFilter::default() };
        if let Ok(pending) = self.0.store.list_requests(&filter).await {
            self.0.metrics.pending.set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        }
    }
}
