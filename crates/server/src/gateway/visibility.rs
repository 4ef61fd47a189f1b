//! Who may see which requests: the requester, the people who may decide
//! them, admins and auditors. Everyone else is told the request does not
//! exist, so ids leak nothing.

use countersign_core::{Approver, Principal, Request};
use countersign_store::RequestFilter;

use super::AppState;
use crate::error::ApiError;
use crate::hub::Wake;

impl AppState {
    /// The request, if `caller` may see it; `not_found` otherwise.
    pub async fn visible_request(&self, caller: &Principal, id: &str) -> Result<Request, ApiError> {
        match self.store.request(id).await? {
            Some(request) if can_see(caller, &request) => Ok(request),
            Some(_) | None => Err(ApiError::not_found(id)),
        }
    }

    /// The request once it leaves `pending`, or as it is after `wait`.
    /// Woken by the decision itself (see [`crate::hub`]), not by polling.
    /// During shutdown, answers `shutting_down` at once.
    pub async fn wait_while_pending(
        &self,
        caller: &Principal,
        id: &str,
        wait: std::time::Duration,
    ) -> Result<Request, ApiError> {
        // Subscribe before reading so that a decision landing in between still wakes us.
        let mut subscription = self.hub.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let request = self.visible_request(caller, id).await?;
            if request.status != countersign_core::Status::Pending || tokio::time::Instant::now() >= deadline {
                return Ok(request);
            }
            match tokio::time::timeout_at(deadline, subscription.next(id)).await {
                Ok(Wake::Changed) | Err(_) => {}
                Ok(Wake::ShuttingDown) => return Err(ApiError::ShuttingDown),
            }
        }
    }

    /// Requests `caller` may see. For pending requests and a human caller
    /// who is not admin or auditor, only those they may actually decide.
    pub async fn visible_requests(&self, caller: &Principal, filter: &RequestFilter) -> Result<Vec<Request>, ApiError> {
        let mut filter = filter.clone();
        if !caller.is_user() {
            filter.principal = Some(caller.reference());
        }
        let mut visible = Vec::new();
        for request in self.store.list_requests(&filter).await? {
            if !can_see(caller, &request) {
                continue;
            }
            if self.can_decide(caller, &request).await?
                || request.principal == caller.reference()
                || caller.is_auditor()
            {
                visible.push(request);
            }
        }
        Ok(visible)
    }

    /// `caller` is a person in an approver group who is not excluded.
    pub async fn can_decide(&self, caller: &Principal, request: &Request) -> Result<bool, ApiError> {
        let Some(person) = caller.person() else {
            return Ok(false);
        };
        if !request.requirements.iter().any(|r| r.admits(&caller.groups)) {
            return Ok(false);
        }
        let approver = Approver { principal: caller.reference(), person, groups: caller.groups.clone() };
        Ok(!self.exclusions_for(request).await?.excludes(&approver))
    }
}

fn can_see(caller: &Principal, request: &Request) -> bool {
    request.principal == caller.reference()
        || caller.is_auditor()
        || (caller.is_user() && request.requirements.iter().any(|r| r.admits(&caller.groups)))
}
