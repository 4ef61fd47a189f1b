//! The console's background duty, started with its router and ended when
//! the gateway shuts down or the console is dropped: following what other
//! replicas and processes commit, for the live queue ([`crate::live`]).
//! (Expired sessions and logins are purged with every other expired
//! key-value entry by the gateway's own background work.)

use std::sync::Weak;

use crate::ConsoleState;

/// Starts the duty on the current Tokio runtime; outside one (a router
/// built for inspection only) there is nothing to run it on.
pub(crate) fn spawn(state: Weak<ConsoleState>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no async runtime: the console's live queue does not follow other replicas");
        return;
    };
    runtime.spawn(crate::live::follow(state));
}
