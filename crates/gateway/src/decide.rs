//! Describe and decide: an actor submits an action, the policy set in force
//! decides, and the request is stored with its decision.

use countersign_core::events::{Caused, Decided, Event, Submitted};
use countersign_core::{Action, Fingerprint, Principal, Request, Status};
use countersign_policy::Verdict;

use crate::error::GatewayError;
use crate::reuse::{Reuse, Submission};
use crate::state::drafts;
use crate::AppState;

impl AppState {
    /// [`AppState::submit`] for an action an outside caller wrote (the
    /// API): it may not claim what only the gateway's endpoints say.
    pub async fn submit_claimed(&self, principal: &Principal, action: Action) -> Result<Request, GatewayError> {
        action.check_submitter_claims()?;
        self.submit(principal, action).await
    }

    /// Decides on an action and stores the request. The answer is given only
    /// after the submission and decision events are durable.
    pub async fn submit(&self, principal: &Principal, action: Action) -> Result<Request, GatewayError> {
        Ok(self.submit_with(principal, action, Reuse::Never).await?.request)
    }

    /// [`AppState::submit_claimed`], answering with the caller's own open
    /// request for the same action when there is one (see [`Reuse`]).
    pub async fn submit_claimed_reusing(
        &self,
        principal: &Principal,
        action: Action,
        reuse: Reuse,
    ) -> Result<Submission, GatewayError> {
        action.check_submitter_claims()?;
        self.submit_with(principal, action, reuse).await
    }

    async fn submit_with(
        &self,
        principal: &Principal,
        action: Action,
        reuse: Reuse,
    ) -> Result<Submission, GatewayError> {
        action.validate()?;
        let fingerprint = Fingerprint::of(&action, &principal.reference())?;
        // Two identical submissions that may reuse must not both miss the
        // other and store two requests: one looks and stores at a time.
        let _same_action = match reuse {
            Reuse::Never => None,
            Reuse::Open => Some(self.0.reuse_locks.lock(&fingerprint).await),
        };
        // Decided and stored under one policy set: a reload waits for this
        // insert, so its re-decision of open requests sees it.
        let (_in_force, policy) = self.policy_in_force().await;
        let decision = policy.engine.decide(principal, &action);
        let now = self.now();
        // Only an action the policy in force would hold for approval is
        // answered with an earlier open one; allowed and denied actions are
        // decided afresh every time (single use).
        let held = match &decision.verdict {
            Verdict::RequireApproval(_) => true,
            Verdict::Allow | Verdict::Deny => false,
        };
        if held && reuse == Reuse::Open {
            if let Some(open) = self.open_request_for(principal, &fingerprint, now).await? {
                return Ok(Submission { request: open, reused: true });
            }
        }
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
        let decided = Decided {
            id: request.id.clone(),
            status,
            reason: decision.reason,
            policies: decision.policies,
            errors: decision.errors,
            policy_hash: decision.policy_hash,
            requirements: request.requirements.clone(),
            expires_at: request.expires_at,
        };
        let events = vec![
            Caused::by(&request.principal, Event::ActionSubmitted(Submitted::of(&request))),
            Caused::system(Event::ActionDecided(decided)),
        ];
        self.0.store.insert_request(request.clone(), drafts(events)).await?;
        self.0.metrics.count_decision(status.as_str());
        self.publish_change(&request);
        Ok(Submission { request, reused: false })
    }
}
