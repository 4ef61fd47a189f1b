//! The approval gateway as the proxy sees it: submit a tool call, wait
//! for its decision, take the approval, cancel, report the outcome.
//!
//! Served by [`InProcess`] when the proxy runs inside the gateway
//! (`/mcp/{upstream}`), and by an HTTP client when it runs beside the agent
//! (`countersign mcp`, implemented in the CLI, which owns the client).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use countersign_core::{Action, Outcome, OutcomeStatus, Principal, Request, Status, Timestamp, VoteKind};
use countersign_gateway::gate::Outcomes;
use countersign_gateway::{AppState, Blame, GatewayError};
use countersign_policy::Verdict;

use crate::refusal::Refusal;

/// Where a request stands, as the proxy needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub status: Status,
    pub reason: String,
    /// The determining policies.
    pub policies: Vec<String>,
    /// Who was asked, per requirement.
    pub asked: Vec<Asked>,
    /// RFC 3339; when a pending request expires.
    pub expires_at: Option<String>,
    pub approvals: Vec<Entry>,
    pub denials: Vec<Entry>,
}

/// One approval requirement and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub policy: String,
    pub groups: Vec<String>,
    pub quorum: u32,
    pub approvals: u64,
}

/// An approval or a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `user:NAME`.
    pub by: String,
    pub comment: Option<String>,
}

/// How a forwarded call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub succeeded: bool,
    pub summary: String,
    /// Hex SHA-256 of the result's content.
    pub output_sha256: String,
}

/// Why the gateway did not do what the proxy asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// A rule refused the move (`expired`, `revoked`, `already_released`, …).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// The caller's credential is not (or no longer) accepted.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// The gateway could not be reached or is shutting down.
    #[error("the approval gateway is unavailable: {0}")]
    Unavailable(String),
}

/// The approval loop, for one caller.
#[async_trait]
pub trait Approvals: Send + Sync + std::fmt::Debug {
    /// Decides on an action and records the request.
    async fn submit(&self, action: Action) -> Result<Ticket, GateError>;
    /// The request once it leaves `pending`, or as it is after `up_to`.
    async fn wait(&self, id: &str, up_to: Duration) -> Result<Ticket, GateError>;
    /// Takes the approval (single use).
    async fn release(&self, id: &str) -> Result<Ticket, GateError>;
    /// Withdraws a pending request.
    async fn cancel(&self, id: &str) -> Result<(), GateError>;
    /// Records how the action went (the gateway's own may record it a
    /// moment later, batched with others).
    async fn report(&self, id: &str, report: Report) -> Result<(), GateError>;
    /// Whether a call to this tool is denied to this caller by a `forbid`
    /// even with empty arguments, so `tools/list` may leave it out.
    /// Only cosmetic: a call to a hidden tool is still gated.
    fn forbids_outright(&self, _action: &Action) -> bool {
        false
    }
    /// Audits a message the proxy refused or dropped.
    async fn refused(&self, refusal: Refusal) -> Result<(), GateError>;
}

/// The approval loop of the gateway this proxy runs in.
#[derive(Debug, Clone)]
pub struct InProcess {
    state: AppState,
    /// Refreshed on every authenticated HTTP request of the session.
    principal: Arc<RwLock<Principal>>,
    /// Tool calls' outcomes, recorded in batches as the gateway's other
    /// endpoints record theirs: one commit for the outcomes of many calls
    /// instead of one commit (and fsync) each, a quarter of the proxy's
    /// CPU per call for a caller that calls one tool after another.
    outcomes: Outcomes,
}

impl InProcess {
    /// The session's link to the gateway; call it inside the runtime (the
    /// outcome recorder is a task).
    pub fn new(state: AppState, principal: Principal) -> Self {
        let outcomes = Outcomes::new(&state);
        Self { state, principal: Arc::new(RwLock::new(principal)), outcomes }
    }

    /// The caller as of its latest authenticated request.
    pub fn principal(&self) -> Principal {
        match self.principal.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes the caller as it was just authenticated again.
    pub fn refresh(&self, principal: Principal) {
        match self.principal.write() {
            Ok(mut p) => *p = principal,
            Err(poisoned) => *poisoned.into_inner() = principal,
        }
    }
}

#[async_trait]
impl Approvals for InProcess {
    async fn submit(&self, action: Action) -> Result<Ticket, GateError> {
        let request = self.state.submit(&self.principal(), action).await.map_err(gate_error)?;
        Ok(ticket(&request))
    }

    async fn wait(&self, id: &str, up_to: Duration) -> Result<Ticket, GateError> {
        let request = self.state.wait_while_pending(&self.principal(), id, up_to).await.map_err(gate_error)?;
        Ok(ticket(&request))
    }

    async fn release(&self, id: &str) -> Result<Ticket, GateError> {
        let request = self.state.release(&self.principal(), id).await.map_err(gate_error)?;
        Ok(ticket(&request))
    }

    async fn cancel(&self, id: &str) -> Result<(), GateError> {
        self.state.cancel(&self.principal(), id).await.map_err(gate_error)?;
        Ok(())
    }

    async fn report(&self, id: &str, report: Report) -> Result<(), GateError> {
        let outcome = Outcome {
            status: if report.succeeded { OutcomeStatus::Succeeded } else { OutcomeStatus::Failed },
            exit_code: None,
            summary: Some(report.summary),
            output_sha256: Some(report.output_sha256),
            reported_at: self.state.now(),
        };
        // This session submitted `id` for this caller; the store's
        // transition still refuses anyone but the requester.
        self.outcomes.report(&self.principal(), id.to_owned(), outcome);
        Ok(())
    }

    async fn refused(&self, refusal: Refusal) -> Result<(), GateError> {
        let actor = self.principal().reference().to_string();
        let event = countersign_audit::AuditDraft::new(actor, refusal.event());
        self.state.audit(vec![event]).await.map_err(|e| GateError::Unavailable(e.to_string()))
    }

    fn forbids_outright(&self, action: &Action) -> bool {
        let decision = self.state.policy().engine.decide(&self.principal(), action);
        match decision.verdict {
            Verdict::Deny => !decision.policies.is_empty() && decision.errors.is_empty(),
            Verdict::Allow | Verdict::RequireApproval(_) => false,
        }
    }
}

fn gate_error(error: GatewayError) -> GateError {
    let message = error.to_string();
    match error.blame() {
        Blame::Unauthenticated => GateError::Unauthenticated(message),
        Blame::Gateway => GateError::Unavailable(message),
        Blame::NotFound | Blame::Caller => GateError::Refused { code: error.code().to_owned(), message },
    }
}

/// The proxy's view of a stored request.
pub fn ticket(request: &Request) -> Ticket {
    let entries = |kind: VoteKind| {
        request
            .votes
            .iter()
            .filter(|v| v.kind == kind)
            .map(|v| Entry { by: v.by.to_string(), comment: v.comment.clone() })
            .collect()
    };
    Ticket {
        id: request.id.clone(),
        status: request.status,
        reason: request.reason.clone(),
        policies: request.policies.clone(),
        asked: request
            .requirements
            .iter()
            .map(|r| Asked {
                policy: r.policy.clone(),
                groups: r.groups.clone(),
                quorum: r.quorum,
                approvals: u64::try_from(request.approvals_for(r)).unwrap_or(u64::MAX),
            })
            .collect(),
        expires_at: request.expires_at.map(Timestamp::to_rfc3339),
        approvals: entries(VoteKind::Approve),
        denials: entries(VoteKind::Deny),
    }
}
