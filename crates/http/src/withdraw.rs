//! Withdrawing held requests whose client went away: a handler that
//! waits for a decision holds a [`Withdraw`]; when the server drops the
//! handler (the client disconnected), the requests still pending are
//! cancelled, so nothing runs that no client waits for.

use countersign_core::{Principal, Request};
use countersign_gateway::gate;
use countersign_gateway::AppState;

/// Cancels `requests` when dropped, unless [`Withdraw::disarm`]ed first.
#[derive(Debug)]
pub struct Withdraw {
    state: AppState,
    principal: Principal,
    requests: Option<Vec<Request>>,
}

impl Withdraw {
    pub fn new(state: AppState, principal: Principal, requests: Vec<Request>) -> Self {
        Self { state, principal, requests: Some(requests) }
    }

    /// The wait ended while the client was still there.
    pub fn disarm(&mut self) {
        self.requests = None;
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(requests) = self.requests.take() {
            let (state, principal) = (self.state.clone(), self.principal.clone());
            tokio::spawn(async move { gate::cancel_pending(&state, &principal, &requests).await });
        }
    }
}
