//! The one way every open stream through the gateway learns that its
//! caller may no longer use it: a streamed HTTP response, a WebSocket,
//! a Kubernetes watch, `logs -f`, exec, attach or port-forward each
//! hold a [`Caller`] and select on [`Caller::no_longer_accepted`] beside
//! their own traffic; when it resolves the stream is closed and its
//! outcome records [`CUT`] (an `outcome.reported` audit event).
//!
//! The caller's bearer credential is checked again every [`RECHECK`]:
//! a revoked key, a revoked or disabled agent, an expired workload token
//! all end the stream within about that long. A credential store that
//! cannot answer ends it too (fail closed).

use std::time::Duration;

use countersign_gateway::AppState;

/// How often an open stream checks that its caller's credential is still
/// accepted.
pub const RECHECK: Duration = Duration::from_secs(1);

/// What a cut stream's outcome says about why.
pub const CUT: &str = "cut: the caller's credential is no longer accepted";

/// The caller of an open stream, as its credential is checked again.
#[derive(Debug)]
pub struct Caller {
    state: AppState,
    bearer: String,
    every: tokio::time::Interval,
}

impl Caller {
    /// Follows `bearer` (the credential the stream was opened with); the
    /// first check is one [`RECHECK`] from now.
    pub fn new(state: AppState, bearer: String) -> Self {
        let mut every = tokio::time::interval(RECHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.reset();
        Self { state, bearer, every }
    }

    /// Resolves once the credential is no longer accepted; never before.
    /// Cancel safe: a stream selects on it beside its own reads.
    pub async fn no_longer_accepted(&mut self) {
        loop {
            self.every.tick().await;
            if self.state.authenticate(&self.bearer).await.is_err() {
                tracing::info!("an open stream is cut: its caller's credential is no longer accepted");
                return;
            }
        }
    }
}
