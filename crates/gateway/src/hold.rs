//! Hold: a request that needs people waits in the store until they decide
//! ([`crate::review`]), its deadline passes ([`crate::deadlines`]), or its
//! requester cancels it. The requester may wait on it here: woken by the
//! change itself through the one change feed ([`crate::changes`]), not by
//! polling.

use countersign_core::{Principal, Request};

use crate::changes::Notice;
use crate::error::GatewayError;
use crate::AppState;

impl AppState {
    /// The request once it leaves `pending`, or as it is after `wait`.
    /// Woken by the decision itself (see [`crate::changes`]), not by polling.
    /// During shutdown, answers `shutting_down` at once.
    pub async fn wait_while_pending(
        &self,
        caller: &Principal,
        id: &str,
        wait: std::time::Duration,
    ) -> Result<Request, GatewayError> {
        // Subscribe before reading so that a decision landing in between still wakes us.
        let mut subscription = self.changes();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let request = self.visible_request(caller, id).await?;
            if request.status != countersign_core::Status::Pending || tokio::time::Instant::now() >= deadline {
                return Ok(request);
            }
            match tokio::time::timeout_at(deadline, subscription.next_for(id)).await {
                Ok(Notice::Here(_) | Notice::Elsewhere(_) | Notice::Unknown) | Err(_) => {}
                Ok(Notice::ShuttingDown) => return Err(GatewayError::ShuttingDown),
            }
        }
    }
}
