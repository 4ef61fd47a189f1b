//! Describe and decide: an actor submits an action, the policy set in force
//! decides, and the request is stored with its decision.

use countersign_audit::AuditDraft;
use countersign_core::{Action, Fingerprint, Principal, Request, Status, Timestamp};
use countersign_policy::Verdict;
use serde_json::json;

use super::AppState;
use crate::error::ApiError;

impl AppState {
    /// Decides on an action and stores the request. The answer is given only
    /// after the submission and decision events are durable.
    pub async fn submit(&self, principal: &Principal, action: Action) -> Result<Request, ApiError> {
        action.validate()?;
        let fingerprint = Fingerprint::of(&action, &principal.reference())
            .map_err(|e| ApiError::bad_request("invalid_action", e.to_string()))?;
        // Decided and stored under one policy set: a reload waits for this
        // insert, so its re-decision of open requests sees it.
        let (_in_force, policy) = self.policy_in_force().await;
        let decision = policy.engine.decide(principal, &action);
        let now = Timestamp::now();
        let (status, requirements) = match decision.verdict {
            Verdict::Allow => (Status::Allowed, Vec::new()),
            Verdict::RequireApproval(requirements) => (Status::Pending, requirements),
            Verdict::Deny => (Status::Denied, Vec::new()),
        };
        let expires_at = requirements.iter().map(|r| r.timeout).min().map(|timeout| now.plus(timeout));
        let request = Request {
            id: uuid::Uuid::now_v7().to_string(),
            fingerprint,
            principal: principal.reference(),
            owner: principal.owner.clone(),
            action,
            status,
            reason: decision.reason.clone(),
            policies: decision.policies.clone(),
            policy_hash: decision.policy_hash.clone(),
            requirements,
            created_at: now,
            expires_at,
            approved_at: None,
            release_by: None,
            released_at: None,
            closed_at: (status == Status::Denied).then_some(now),
            votes: Vec::new(),
            comments: Vec::new(),
            outcome: None,
        };
        let actor = principal.reference().to_string();
        let events = vec![
            AuditDraft::new(
                actor.clone(),
                "action.submitted",
                json!({
                    "id": request.id,
                    "fingerprint": request.fingerprint,
                    "kind": request.action.kind,
                    "resource": request.action.resource,
                    "payload": request.action.payload,
                    "on_behalf_of": request.action.on_behalf_of,
                    "justification": request.action.justification,
                    "labels": request.action.labels,
                    "context": request.action.context,
                }),
            ),
            AuditDraft::new(
                "system",
                "action.decided",
                json!({
                    "id": request.id,
                    "status": status.as_str(),
                    "reason": decision.reason,
                    "policies": decision.policies,
                    "errors": decision.errors,
                    "policy_hash": decision.policy_hash,
                    "requirements": request.requirements,
                    "expires_at": request.expires_at,
                }),
            ),
        ];
        self.store.insert_request(request.clone(), events).await?;
        self.metrics.count_decision(status.as_str());
        self.publish_change(&request);
        Ok(request)
    }
}
