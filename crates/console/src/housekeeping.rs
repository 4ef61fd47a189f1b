//! The console's background duties, started with its router and ended when
//! the gateway shuts down or the console is dropped:
//!
//! - deleting expired sessions and abandoned logins from the key-value area
//!   (they expire with their cookies; without this, every session nobody
//!   signed out of would stay in the store for good);
//! - following what other replicas and processes commit, for the live
//!   queue ([`crate::live`]).
//!
//! Each replica purges; the purge is one idempotent `DELETE`, so replicas
//! doing it at once only repeat each other's work.

use std::sync::Weak;
use std::time::Duration;

use countersign_core::Timestamp;

use crate::ConsoleState;

/// How often expired entries are deleted. Nothing reads an expired
/// session (the session check compares its deadline), so this only bounds
/// how long the dead rows take up space.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Starts the duties on the current Tokio runtime; outside one (a router
/// built for inspection only) there is nothing to run them on.
pub(crate) fn spawn(state: Weak<ConsoleState>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no async runtime: the console's housekeeping does not run");
        return;
    };
    runtime.spawn(purge_loop(state.clone()));
    runtime.spawn(crate::live::follow(state));
}

async fn purge_loop(state: Weak<ConsoleState>) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick is at once: what expired while the gateway was
        // down goes first.
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        if state.app.hub.is_shutting_down() {
            return;
        }
        match state.app.store.kv_purge_expired(Timestamp::now()).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "deleted expired console sessions and logins"),
            Err(e) => tracing::warn!(error = %e, "deleting expired console sessions failed; will retry"),
        }
    }
}
