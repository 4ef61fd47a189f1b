//! Withdrawing held requests whose client went away: a handler that
//! waits for a decision holds a [`Withdraw`]; when the server drops the
//! handler (the client disconnected), the requests still pending are
//! cancelled, so nothing runs that no client waits for.

use std::time::Duration;

use countersign_core::{Principal, Request};
use countersign_gateway::gate::{self, Held, Interruption};
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

/// Waits up to `hold` for the decision on `held`, withdrawing its pending
/// requests if the client goes away first (the handler is dropped) or
/// the hold runs out (`Interrupted` with `Cancelled`). What an endpoint
/// that answers only once the request ran (a WebSocket, a Kubernetes
/// call) waits with.
pub async fn wait_held(
    state: &AppState,
    principal: &Principal,
    held: Held,
    hold: Duration,
) -> Result<Vec<String>, gate::Ended> {
    let mut withdraw = Withdraw::new(state.clone(), principal.clone(), held.requests.clone());
    let over = async move {
        tokio::time::sleep(hold).await;
        Interruption::Cancelled
    };
    let waited = gate::wait(state, principal, held, over).await;
    withdraw.disarm();
    waited
}
