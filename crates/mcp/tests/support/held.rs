//! The approval loop as a relay test sees it: every call is pending and
//! stays so; what was submitted and refused is kept.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use countersign_core::{Action, Status};
use countersign_mcp::approvals::{GateError, Report, Ticket};
use countersign_mcp::refusal::Refusal;
use countersign_mcp::Approvals;

#[derive(Debug, Default)]
pub struct Held {
    pub submitted: Mutex<Vec<Action>>,
    pub refused: Mutex<Vec<Refusal>>,
}

/// Request `r1`, pending.
pub fn pending_ticket() -> Ticket {
    Ticket {
        id: "r1".into(),
        status: Status::Pending,
        reason: "held".into(),
        policies: vec![],
        asked: vec![],
        expires_at: None,
        approvals: vec![],
        denials: vec![],
    }
}

#[async_trait]
impl Approvals for Held {
    async fn submit(&self, action: Action) -> Result<Ticket, GateError> {
        self.submitted.lock().unwrap().push(action);
        Ok(pending_ticket())
    }
    async fn wait(&self, _id: &str, up_to: Duration) -> Result<Ticket, GateError> {
        tokio::time::sleep(up_to).await;
        Ok(pending_ticket())
    }
    async fn release(&self, _id: &str) -> Result<Ticket, GateError> {
        Err(GateError::Refused { code: "not_approved".into(), message: "held".into() })
    }
    async fn cancel(&self, _id: &str) -> Result<(), GateError> {
        Ok(())
    }
    async fn report(&self, _id: &str, _report: Report) -> Result<(), GateError> {
        Ok(())
    }
    async fn refused(&self, refusal: Refusal) -> Result<(), GateError> {
        self.refused.lock().unwrap().push(refusal);
        Ok(())
    }
}
