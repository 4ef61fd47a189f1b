//! The approval loop as an entry point that executes actions itself (a
//! database endpoint, the HTTP proxy) runs it: submit the actions of one
//! client operation together, and — while any is pending — wait until
//! each is decided and take each approval (single use), or withdraw what
//! is still pending when the operation will not run. Outcomes are then
//! recorded off the client's path, in batches.
//!
//! Nothing here speaks a wire protocol: each entry point turns an
//! [`Ended`] into its own terms (an SQLSTATE, an HTTP status).

use std::future::Future;
use std::time::Duration;

use countersign_core::{Action, Outcome, Principal, Request, Status};

use crate::{AppState, GatewayError};

/// How long one wait lasts before it is started again.
const WAIT_SLICE: Duration = Duration::from_secs(30);
/// How long outcomes gather before they are recorded together: the
/// store's group commit then makes them durable in one flush, instead of
/// one flush each competing with the next action's decision.
const OUTCOME_BATCH: Duration = Duration::from_millis(20);

/// How the waiting ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// The client asked to stop.
    Cancelled,
    /// The client went away.
    Gone,
}

/// Why the operation does not run.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per call, matched at once: boxing would only add an allocation")]
pub enum Ended {
    /// A request ended without an approval to take: denied, expired,
    /// revoked, cancelled or already used.
    Closed(Request),
    /// The gateway could not decide (or no longer accepts the caller).
    Unavailable { error: GatewayError, request: Option<String> },
    /// The client interrupted the wait; `request` is the first that was
    /// still pending.
    Interrupted { interruption: Interruption, request: Option<String> },
}

/// Requests some of which wait for people.
#[derive(Debug)]
pub struct Held {
    pub requests: Vec<Request>,
}

impl Held {
    /// The requests that wait for people.
    pub fn pending(&self) -> impl Iterator<Item = &Request> {
        self.requests.iter().filter(|r| r.status == Status::Pending)
    }
}

/// What submitting the actions led to.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per call, matched at once: boxing would only add an allocation")]
pub enum Submitted {
    /// Every action may run; these requests record their outcomes, in order.
    Run(Vec<String>),
    /// None runs.
    Refused(Ended),
    /// Tell the client, then [`wait`].
    Held(Held),
}

/// Submits `actions` together: all run, or none does. Each is its own
/// request.
pub async fn submit(state: &AppState, principal: &Principal, actions: Vec<Action>) -> Submitted {
    let mut requests = Vec::with_capacity(actions.len());
    for action in actions {
        match state.submit(principal, action).await {
            Ok(request) => requests.push(request),
            Err(error) => {
                cancel_pending(state, principal, &requests).await;
                return Submitted::Refused(Ended::Unavailable { error, request: None });
            }
        }
    }
    if let Some(refused) = requests.iter().position(|r| matches!(r.status, Status::Denied)) {
        cancel_pending(state, principal, &requests).await;
        return Submitted::Refused(Ended::Closed(requests.swap_remove(refused)));
    }
    if requests.iter().any(|r| r.status == Status::Pending) {
        return Submitted::Held(Held { requests });
    }
    Submitted::Run(requests.into_iter().map(|r| r.id).collect())
}

/// Waits until every held request is decided, and takes each approval
/// (single use). `interrupted` ends the wait and withdraws what is still
/// pending.
pub async fn wait(
    state: &AppState,
    principal: &Principal,
    held: Held,
    interrupted: impl Future<Output = Interruption> + Send,
) -> Result<Vec<String>, Ended> {
    let requests = held.requests;
    let first_pending = requests.iter().find(|r| r.status == Status::Pending).map(|r| r.id.clone());
    let waited = tokio::select! {
        waited = wait_all(state, principal, &requests) => waited,
        interruption = interrupted => {
            cancel_pending(state, principal, &requests).await;
            return Err(Ended::Interrupted { interruption, request: first_pending });
        }
    };
    if waited.is_err() {
        cancel_pending(state, principal, &requests).await;
    }
    waited
}

async fn wait_all(state: &AppState, principal: &Principal, requests: &[Request]) -> Result<Vec<String>, Ended> {
    let mut ids = Vec::with_capacity(requests.len());
    for request in requests {
        if request.status == Status::Pending {
            let unavailable = |error| Ended::Unavailable { error, request: Some(request.id.clone()) };
            let decided = loop {
                match state.wait_while_pending(principal, &request.id, WAIT_SLICE).await {
                    Ok(r) if r.status == Status::Pending => continue,
                    Ok(r) => break r,
                    Err(e) => return Err(unavailable(e)),
                }
            };
            if decided.status != Status::Approved {
                return Err(Ended::Closed(decided));
            }
            match state.release(principal, &request.id).await {
                Ok(released) if released.status == Status::Released => {}
                Ok(other) => return Err(Ended::Closed(other)),
                Err(e) => return Err(unavailable(e)),
            }
        }
        ids.push(request.id.clone());
    }
    Ok(ids)
}

/// Withdraws the requests that are still pending (the operation will not run).
pub async fn cancel_pending(state: &AppState, principal: &Principal, requests: &[Request]) {
    for request in requests.iter().filter(|r| r.status == Status::Pending) {
        if let Err(e) = state.cancel(principal, &request.id).await {
            tracing::debug!(request = %request.id, error = %e, "could not cancel a request that will not run");
        }
    }
}

/// Who a pending request asks, one line a requirement: "policy `p` asks
/// sre or dba (2 approvals)".
pub fn asked(request: &Request) -> Vec<String> {
    request
        .requirements
        .iter()
        .map(|r| {
            let people = if r.quorum == 1 { "1 approval".to_owned() } else { format!("{} approvals", r.quorum) };
            format!("policy `{}` asks {} ({people})", r.policy, r.groups.join(" or "))
        })
        .collect()
}

/// Records how actions went, off the client's path and in batches.
#[derive(Debug, Clone)]
pub struct Outcomes {
    sender: tokio::sync::mpsc::UnboundedSender<(Principal, String, Outcome)>,
}

impl Outcomes {
    /// A recorder; it ends (after recording what it was given) when the
    /// last clone is dropped.
    pub fn new(state: &AppState) -> Self {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(Principal, String, Outcome)>();
        let state = state.clone();
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + OUTCOME_BATCH;
                while let Ok(Some(next)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
                    batch.push(next);
                }
                let reports = batch.into_iter().map(|(principal, id, outcome)| {
                    let state = &state;
                    async move {
                        if let Err(e) = state.record_outcome(&principal, &id, outcome).await {
                            tracing::warn!(request = %id, error = %e, "could not record an action's outcome");
                        }
                    }
                });
                futures_util::future::join_all(reports).await;
            }
        });
        Self { sender }
    }

    /// Records how request `id`'s action, run for `principal`, went.
    pub fn report(&self, principal: &Principal, id: String, outcome: Outcome) {
        if self.sender.send((principal.clone(), id, outcome)).is_err() {
            tracing::warn!("the outcome recorder has stopped; an outcome is lost");
        }
    }
}
