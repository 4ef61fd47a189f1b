//! One statement (or the statements of one query) through the approval
//! loop, whatever the database: describe each as a `sql.execute` action,
//! submit it, and — while any is pending — tell the client who was asked
//! and wait, until the statement may run or must not.
//!
//! The wire protocol of each database lives beside this module
//! ([`crate::postgres`]); what a refusal or a hold says, and how a
//! decision is reached, is the same for all of them.

use std::future::Future;

use countersign_core::{Action, Outcome, OutcomeStatus, Principal, Request, Status};
pub use countersign_gateway::gate::Interruption;
use countersign_gateway::gate::{self, Ended};
use countersign_gateway::{AppState, Blame, GatewayError};
use serde_json::{json, Map, Value};

/// The action kind of every statement.
pub const KIND: &str = "sql.execute";

/// A statement as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub text: String,
    /// Bound parameters (extended protocol), as [`crate::postgres`]
    /// renders them: text, or a digest and a preview for binary values.
    pub parameters: Option<Vec<Value>>,
    /// The database's estimate of what a write would change, put on the
    /// action's context as `impact_preview`.
    pub preview: Option<Value>,
}

/// Where a statement goes: the resource, the database and its dialect.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: String,
    pub database: String,
    /// The SQL dialect the database speaks (`postgres`).
    pub dialect: &'static str,
}

impl Target {
    /// The action the policy decides on.
    pub fn action(&self, statement: Statement) -> Action {
        let mut payload = Map::new();
        payload.insert("statement".to_owned(), Value::String(statement.text));
        payload.insert("dialect".to_owned(), json!(self.dialect));
        payload.insert("database".to_owned(), json!(self.database));
        if let Some(parameters) = statement.parameters {
            payload.insert("parameters".to_owned(), Value::Array(parameters));
        }
        let mut context = Map::new();
        if let Some(preview) = statement.preview {
            context.insert("impact_preview".to_owned(), preview);
        }
        Action {
            kind: KIND.to_owned(),
            resource: self.resource.clone(),
            payload: Value::Object(payload),
            on_behalf_of: None,
            justification: None,
            labels: Vec::new(),
            context,
        }
    }
}

/// Why a statement does not run, in the terms of a database error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// SQLSTATE: `42501` (insufficient privilege) for a decision against
    /// it, `57014` (cancelled) when the client cancelled, `08006` when the
    /// gateway could not decide.
    pub sqlstate: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub request: Option<String>,
}

/// What the client is told when a statement is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub message: String,
    pub detail: String,
    pub hint: String,
}

/// What happened to the submitted statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every statement may run; these requests record their outcomes, in order.
    Run(Vec<String>),
    /// None runs.
    Refuse(Refusal),
}

/// Statements some of which wait for people.
#[derive(Debug)]
pub struct Held {
    held: gate::Held,
    /// What to tell the client, one for each held statement.
    pub holds: Vec<Hold>,
}

/// What submitting the statements led to.
#[derive(Debug)]
pub enum Submitted {
    Decided(Verdict),
    /// Tell the client, then [`wait`].
    Held(Held),
}

/// Submits `statements` together: all run, or none does. Each is its own
/// request.
pub async fn submit(state: &AppState, principal: &Principal, target: &Target, statements: Vec<Statement>) -> Submitted {
    let actions = statements.into_iter().map(|s| target.action(s)).collect();
    match gate::submit(state, principal, actions).await {
        gate::Submitted::Run(ids) => Submitted::Decided(Verdict::Run(ids)),
        gate::Submitted::Refused(ended) => Submitted::Decided(Verdict::Refuse(refusal(target, ended))),
        gate::Submitted::Held(held) => {
            let holds = held.pending().map(|r| hold(state, target, r)).collect();
            Submitted::Held(Held { held, holds })
        }
    }
}

/// Waits until every held statement is decided, and takes each approval
/// (single use). `interrupted` ends the wait and withdraws what is still
/// pending.
pub async fn wait(
    state: &AppState,
    principal: &Principal,
    target: &Target,
    held: Held,
    interrupted: impl Future<Output = Interruption> + Send,
) -> Verdict {
    match gate::wait(state, principal, held.held, interrupted).await {
        Ok(ids) => Verdict::Run(ids),
        Err(ended) => Verdict::Refuse(refusal(target, ended)),
    }
}

/// Why the statements do not run, in the terms of a database error.
fn refusal(target: &Target, ended: Ended) -> Refusal {
    match ended {
        Ended::Closed(request) => closed(target, &request),
        Ended::Unavailable { error, request } => unavailable(target, &error, request.as_deref()),
        Ended::Interrupted { interruption: Interruption::Cancelled, request } => Refusal {
            sqlstate: "57014",
            message: "canceling statement due to user request; countersign withdrew its approval request".to_owned(),
            detail: None,
            request,
        },
        Ended::Interrupted { interruption: Interruption::Gone, .. } => {
            Refusal { sqlstate: "08006", message: "the client went away".to_owned(), detail: None, request: None }
        }
    }
}

/// Records how statements went, off the client's path and in batches.
#[derive(Debug, Clone)]
pub struct Outcomes(gate::Outcomes, Principal);

impl Outcomes {
    /// A recorder for `principal`'s statements; it ends (after recording
    /// what it was given) when the last clone is dropped.
    pub fn new(state: &AppState, principal: &Principal) -> Self {
        Self(gate::Outcomes::new(state), principal.clone())
    }

    /// Records how request `id`'s statement went.
    pub fn report(&self, state: &AppState, id: String, succeeded: bool, summary: String) {
        let outcome = Outcome {
            status: if succeeded { OutcomeStatus::Succeeded } else { OutcomeStatus::Failed },
            exit_code: None,
            summary: Some(summary),
            output_sha256: None,
            reported_at: state.now(),
        };
        self.0.report(&self.1, id, outcome);
    }
}

fn hold(state: &AppState, target: &Target, request: &Request) -> Hold {
    let asked = gate::asked(request);
    let until = request.expires_at.map_or_else(|| "no deadline".to_owned(), |t| format!("until {}", t.to_rfc3339()));
    let preview = request
        .action
        .context
        .get("impact_preview")
        .and_then(|p| {
            Some(format!(
                " Impact preview: {}: about {} rows (the planner's estimate).",
                p.get("plan")?.as_str()?,
                p.get("estimated_rows")?.as_u64()?
            ))
        })
        .unwrap_or_default();
    let base = state.config().public_url.trim_end_matches('/');
    Hold {
        message: format!(
            "countersign is holding this statement on `{}` for approval: request {}",
            target.resource, request.id
        ),
        detail: format!(
            "{}; {until}.{preview} The statement runs once approved; cancel it with Ctrl-C.",
            asked.join("; ")
        ),
        hint: format!("review it at {base}/console/requests/{}", request.id),
    }
}

/// The refusal for a request that ended without an approval to take.
fn closed(target: &Target, request: &Request) -> Refusal {
    let policies = if request.policies.is_empty() { "none".to_owned() } else { request.policies.join(", ") };
    let (what, sqlstate) = match request.status {
        Status::Denied => ("denied", "42501"),
        Status::Expired => ("expired before anyone approved", "42501"),
        Status::Revoked => ("revoked", "42501"),
        Status::Cancelled => ("cancelled", "57014"),
        Status::Released => ("already used", "42501"),
        Status::Pending | Status::Approved | Status::Allowed => ("not released", "42501"),
    };
    Refusal {
        sqlstate,
        message: format!("countersign: statement on `{}` {what}: {}", target.resource, request.reason),
        detail: Some(format!("request {}; policies: {policies}", request.id)),
        request: Some(request.id.clone()),
    }
}

fn unavailable(target: &Target, error: &GatewayError, request: Option<&str>) -> Refusal {
    let (sqlstate, what) = match error.blame() {
        Blame::Unauthenticated => ("28000", "your countersign credential is no longer accepted"),
        Blame::Caller | Blame::NotFound => ("42501", "countersign refused the statement"),
        Blame::Gateway => ("08006", "countersign could not decide on the statement, so it did not run"),
    };
    Refusal {
        sqlstate,
        message: format!("{what} (`{}`): {error}", target.resource),
        detail: request.map(|id| format!("request {id}")),
        request: request.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_an_action_on_the_configured_resource() {
        let target = Target { resource: "orders-db".into(), database: "orders".into(), dialect: "postgres" };
        let action =
            target.action(Statement { text: "select 1".into(), parameters: Some(vec![json!("42")]), preview: None });
        assert_eq!(action.kind, "sql.execute");
        assert_eq!(action.resource, "orders-db");
        assert_eq!(
            action.payload,
            json!({"statement": "select 1", "dialect": "postgres", "database": "orders", "parameters": ["42"]})
        );
        action.validate().unwrap();
    }
}
