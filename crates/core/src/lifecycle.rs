//! The approval state machine.
//!
//! ```text
//! pending ──► approved ──► released ──► (outcome)
//!    │            │
//!    ├─► denied   ├─► denied (late veto), expired, cancelled, revoked
//!    └─► expired, cancelled, revoked
//! allowed ──► (outcome)
//! ```
//!
//! Every function here is pure: it takes the current request and `now`, and
//! returns the next request with the audit events the move causes
//! ([`Moved`]), or a [`Refusal`]. The store applies the result in one atomic
//! compare-and-set, so concurrent moves resolve to exactly one winner.
//!
//! [`revocation`] decides what revoking an identity does to the open
//! requests, for the stores to persist.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::events::{
    Cancelled, Caused, Closed, CommentAdded, Concluded, Event, Login, OutcomeReported, Released, VoteAccepted,
    VotesWithdrawn,
};
use crate::names::identity_key;
use crate::{Comment, Outcome, PersonKey, PrincipalKind, PrincipalRef, Request, Status, Timestamp, Vote, VoteKind};

pub mod revocation;

pub use revocation::{revoke_identity, Cascade};

/// A move's result: the request as the move leaves it, and the audit events
/// the move causes, in the order they are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub request: Request,
    pub events: Vec<Caused>,
}

impl Moved {
    fn new(request: Request, events: Vec<Caused>) -> Self {
        Self { request, events }
    }
}

/// A human acting on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    pub principal: PrincipalRef,
    pub person: PersonKey,
    pub groups: Vec<String>,
}

/// The people and identities who may not approve a request: the requester,
/// the agent's owner, the user it acts for, and each of their other
/// identities (same email).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    identities: BTreeSet<PrincipalRef>,
    names: BTreeSet<String>,
    persons: BTreeSet<PersonKey>,
}

impl Exclusions {
    /// Excludes one identity.
    pub fn principal(&mut self, principal: PrincipalRef) -> &mut Self {
        if principal.kind == PrincipalKind::User {
            self.names.insert(identity_key(&principal.name));
        }
        self.identities.insert(principal);
        self
    }

    /// Excludes a user, by name, whether or not such a user exists yet.
    /// Names compare by [`identity_key`], so `Carol` excludes `carol`.
    pub fn user_name(&mut self, name: &str) -> &mut Self {
        self.names.insert(identity_key(name));
        if name.contains('@') {
            self.persons.insert(PersonKey::from_email(name));
        }
        self
    }

    /// Excludes a person, under every identity they hold.
    pub fn person(&mut self, person: PersonKey) -> &mut Self {
        self.persons.insert(person);
        self
    }

    pub fn excludes(&self, approver: &Approver) -> bool {
        self.identities.contains(&approver.principal)
            || (approver.principal.kind == PrincipalKind::User
                && self.names.contains(&identity_key(&approver.principal.name)))
            || self.persons.contains(&approver.person)
    }
}

/// Why a move was refused. Each has a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request is `{0}`, not pending")]
    NotPending(&'static str),
    #[error("the request is `{0}` and can no longer change")]
    NotOpen(&'static str),
    #[error("the request's deadline has passed")]
    Expired,
    #[error("you cannot approve or deny a request that you, an agent you own, or your other identity asked for, or that acts on your behalf")]
    SelfApproval,
    #[error("you are not in any approver group of this request")]
    NotAnApprover,
    #[error("you have already approved this request")]
    DuplicateVote,
    #[error("only the requester may do this")]
    NotRequester,
    #[error("the request is `{0}`, not approved")]
    NotApproved(&'static str),
    #[error("the approval was already released; approvals are single-use")]
    AlreadyReleased,
    #[error("an outcome is accepted only for an allowed or released request; this one is `{0}`")]
    OutcomeNotAccepted(&'static str),
    #[error("an outcome was already reported")]
    OutcomeAlreadyReported,
    #[error("this approval needs a fresh login at the identity provider (step-up); approve from the web console after logging in again")]
    StepUpRequired,
}

impl Refusal {
    /// The stable error code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotPending(_) => "not_pending",
            Self::NotOpen(_) => "not_open",
            Self::Expired => "expired",
            Self::SelfApproval => "self_approval",
            Self::NotAnApprover => "not_an_approver",
            Self::DuplicateVote => "duplicate_vote",
            Self::NotRequester => "not_requester",
            Self::NotApproved(_) => "not_approved",
            Self::AlreadyReleased => "already_released",
            Self::OutcomeNotAccepted(_) => "outcome_not_accepted",
            Self::OutcomeAlreadyReported => "outcome_already_reported",
            Self::StepUpRequired => "step_up_required",
        }
    }
}

/// Moves a request past any deadline that `now` has reached: a pending
/// request past `expires_at`, or an approval not released by `release_by`,
/// becomes `expired` (`action.expired`). Returns `None` when nothing is due.
pub fn settle_deadline(request: &Request, now: Timestamp) -> Option<Moved> {
    let due = request.deadline().is_some_and(|t| t <= now);
    due.then(|| {
        let expired = close(request, Status::Expired, "the deadline passed without a decision", now);
        let event = Event::ActionExpired(Closed { id: expired.id.clone(), reason: expired.reason.clone() });
        Moved::new(expired, vec![Caused::system(event)])
    })
}

/// How the approver proved who they are for this vote, for `@step_up`
/// requirements: only a web session whose login at the identity provider
/// is recent enough counts as stepped up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assurance {
    /// A token, an API key, a chat click: no fresh login.
    Credential,
    /// A web session whose identity-provider login happened at `auth_time`;
    /// it counts while younger than `max_age`.
    IdpLogin { auth_time: Timestamp, max_age: Duration },
}

impl Assurance {
    /// Whether this proof satisfies a step-up requirement at `now`. A login
    /// time in the future (beyond a minute of clock skew) proves nothing.
    pub fn is_fresh(self, now: Timestamp) -> bool {
        match self {
            Self::Credential => false,
            Self::IdpLogin { auth_time, max_age } => {
                auth_time <= now.plus(CLOCK_SKEW) && now <= auth_time.plus(max_age)
            }
        }
    }
}

/// Tolerated difference between the identity provider's clock and ours.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Whether an approval by someone in `groups` would count toward a
/// requirement annotated `@step_up`.
pub fn needs_step_up(request: &Request, groups: &[String]) -> bool {
    request.requirements.iter().any(|r| r.routing.step_up && r.admits(groups))
}

/// Records an approval or a denial made without a fresh login; see
/// [`vote_with`].
pub fn vote(
    request: &Request,
    approver: &Approver,
    exclusions: &Exclusions,
    kind: VoteKind,
    comment: Option<String>,
    now: Timestamp,
) -> Result<Moved, Refusal> {
    vote_with(request, approver, exclusions, kind, comment, now, Assurance::Credential)
}

/// Records an approval or a denial.
///
/// A denial by any eligible approver ends the request, and may also veto an
/// approval that was not yet released. An approval that completes every
/// requirement's quorum moves the request to `approved`.
///
/// Events: `approval.accepted` or `denial.accepted` by the approver, then
/// `action.approved` or `action.denied` by the system when the vote decided
/// the request.
///
/// An approval that would count toward a `@step_up` requirement needs an
/// [`Assurance`] that is fresh at `now`; a denial never does, since
/// stopping an action must stay as easy as possible.
pub fn vote_with(
    request: &Request,
    approver: &Approver,
    exclusions: &Exclusions,
    kind: VoteKind,
    comment: Option<String>,
    now: Timestamp,
    assurance: Assurance,
) -> Result<Moved, Refusal> {
    match (request.status, kind) {
        (Status::Pending, VoteKind::Approve | VoteKind::Deny) | (Status::Approved, VoteKind::Deny) => {}
        (Status::Approved, VoteKind::Approve)
        | (
            Status::Allowed | Status::Denied | Status::Released | Status::Expired | Status::Cancelled | Status::Revoked,
            VoteKind::Approve | VoteKind::Deny,
        ) => return Err(Refusal::NotPending(request.status.as_str())),
    }
    if settle_deadline(request, now).is_some() {
        return Err(Refusal::Expired);
    }
    if exclusions.excludes(approver) {
        return Err(Refusal::SelfApproval);
    }
    if !request.requirements.iter().any(|r| r.admits(&approver.groups)) {
        return Err(Refusal::NotAnApprover);
    }
    let already = request.approvals().any(|v| v.person == approver.person);
    if kind == VoteKind::Approve && already {
        return Err(Refusal::DuplicateVote);
    }
    match kind {
        VoteKind::Approve => {
            if needs_step_up(request, &approver.groups) && !assurance.is_fresh(now) {
                return Err(Refusal::StepUpRequired);
            }
        }
        VoteKind::Deny => {}
    }

    let accepted = VoteAccepted {
        id: request.id.clone(),
        fingerprint: request.fingerprint.clone(),
        person: approver.person.clone(),
        groups: approver.groups.clone(),
        comment: comment.clone(),
        login: Some(Login::from(assurance)),
    };
    let mut next = request.clone();
    next.votes.push(Vote {
        kind,
        by: approver.principal.clone(),
        person: approver.person.clone(),
        groups: approver.groups.clone(),
        comment,
        at: now,
        withdrawn_at: None,
    });
    let by = |event| Caused::by(&approver.principal, event);
    match kind {
        VoteKind::Deny => {
            let reason = format!("denied by {}", approver.principal.name);
            let denied = close(&next, Status::Denied, &reason, now);
            let events =
                vec![by(Event::DenialAccepted(accepted)), Caused::system(Event::ActionDenied(concluded(&denied)))];
            Ok(Moved::new(denied, events))
        }
        VoteKind::Approve => {
            let mut events = vec![by(Event::ApprovalAccepted(accepted))];
            if next.quorum_met() {
                let valid_for = next.requirements.iter().map(|r| r.valid_for).min().unwrap_or_default();
                next.status = Status::Approved;
                next.reason = "every approval requirement is met".to_owned();
                next.approved_at = Some(now);
                next.release_by = Some(now.plus(valid_for));
                events.push(Caused::system(Event::ActionApproved(concluded(&next))));
            }
            Ok(Moved::new(next, events))
        }
    }
}

/// What `action.approved` and `action.denied` say of the request a vote
/// decided.
fn concluded(decided: &Request) -> Concluded {
    Concluded { id: decided.id.clone(), reason: decided.reason.clone(), release_by: decided.release_by }
}

/// The requester withdraws a pending or approved request
/// (`action.cancelled`).
pub fn cancel(request: &Request, by: &PrincipalRef, now: Timestamp) -> Result<Moved, Refusal> {
    if by != &request.principal {
        return Err(Refusal::NotRequester);
    }
    if !request.status.is_open() {
        return Err(Refusal::NotOpen(request.status.as_str()));
    }
    let cancelled = close(request, Status::Cancelled, &format!("cancelled by {}", by.name), now);
    let event = Event::ActionCancelled(Cancelled { id: cancelled.id.clone() });
    Ok(Moved::new(cancelled, vec![Caused::by(by, event)]))
}

/// A policy change or identity revocation withdraws an open request
/// (`action.revoked`).
pub fn revoke(request: &Request, reason: &str, now: Timestamp) -> Result<Moved, Refusal> {
    if !request.status.is_open() {
        return Err(Refusal::NotOpen(request.status.as_str()));
    }
    let revoked = close(request, Status::Revoked, reason, now);
    let event = Event::ActionRevoked(Closed { id: revoked.id.clone(), reason: revoked.reason.clone() });
    Ok(Moved::new(revoked, vec![Caused::system(event)]))
}

/// The identities in `gone` were revoked: their votes on `request` stop
/// counting. An approved request whose approvals no longer meet its
/// requirements is revoked (the quorum it was approved on is gone; asking
/// again is the requester's call); a pending one keeps waiting for others.
/// `None` if no counted vote on an open request came from `gone`.
///
/// Events: `action.revoked` if it was revoked, else one `votes.withdrawn`
/// for each identity of `gone` whose votes stopped counting.
pub fn withdraw_votes(request: &Request, gone: &[PrincipalRef], now: Timestamp) -> Option<Moved> {
    if !request.status.is_open() || !request.counted_voters().any(|by| gone.contains(by)) {
        return None;
    }
    let withdrawn: Vec<&PrincipalRef> = gone.iter().filter(|g| request.counted_voters().any(|by| by == *g)).collect();
    let mut next = request.clone();
    for vote in next.votes.iter_mut().filter(|v| v.withdrawn_at.is_none() && gone.contains(&v.by)) {
        vote.withdrawn_at = Some(now);
    }
    let withdrawal = |by: &&PrincipalRef| {
        Caused::system(Event::VotesWithdrawn(VotesWithdrawn { id: request.id.clone(), by: by.to_string() }))
    };
    match next.status {
        Status::Approved if !next.quorum_met() => {
            let names: Vec<String> = gone.iter().map(|by| format!("`{by}`")).collect();
            let reason = format!("the approval of {} no longer counts: the identity was revoked", names.join(", "));
            let revoked = close(&next, Status::Revoked, &reason, now);
            let event = Event::ActionRevoked(Closed { id: revoked.id.clone(), reason: revoked.reason.clone() });
            Some(Moved::new(revoked, vec![Caused::system(event)]))
        }
        Status::Approved
        | Status::Pending
        | Status::Allowed
        | Status::Denied
        | Status::Released
        | Status::Expired
        | Status::Cancelled
        | Status::Revoked => {
            let events = withdrawn.iter().map(withdrawal).collect();
            Some(Moved::new(next, events))
        }
    }
}

/// The requester takes its approval (`action.released`). Single-use: a
/// second release is refused.
pub fn release(request: &Request, by: &PrincipalRef, now: Timestamp) -> Result<Moved, Refusal> {
    if by != &request.principal {
        return Err(Refusal::NotRequester);
    }
    match request.status {
        Status::Approved => {}
        Status::Released => return Err(Refusal::AlreadyReleased),
        Status::Allowed | Status::Denied | Status::Pending | Status::Expired | Status::Cancelled | Status::Revoked => {
            return Err(Refusal::NotApproved(request.status.as_str()))
        }
    }
    if settle_deadline(request, now).is_some() {
        return Err(Refusal::Expired);
    }
    let mut next = request.clone();
    next.status = Status::Released;
    next.reason = "approved and released to the requester".to_owned();
    next.released_at = Some(now);
    let event = Event::ActionReleased(Released { id: next.id.clone(), fingerprint: next.fingerprint.clone() });
    Ok(Moved::new(next, vec![Caused::by(by, event)]))
}

/// The requester reports how the action went (`outcome.reported`). Accepted
/// once, and only for an action that was allowed or released.
pub fn report_outcome(request: &Request, by: &PrincipalRef, outcome: Outcome) -> Result<Moved, Refusal> {
    if by != &request.principal {
        return Err(Refusal::NotRequester);
    }
    if !request.status.may_run() {
        return Err(Refusal::OutcomeNotAccepted(request.status.as_str()));
    }
    if request.outcome.is_some() {
        return Err(Refusal::OutcomeAlreadyReported);
    }
    let event = Event::OutcomeReported(OutcomeReported {
        id: request.id.clone(),
        fingerprint: request.fingerprint.clone(),
        outcome: outcome.clone(),
    });
    let mut next = request.clone();
    next.outcome = Some(outcome);
    Ok(Moved::new(next, vec![Caused::by(by, event)]))
}

/// Adds a comment (`comment.added`); comments never change the decision.
pub fn comment(request: &Request, by: &PrincipalRef, text: String, now: Timestamp) -> Moved {
    let event = Event::CommentAdded(CommentAdded { id: request.id.clone(), text: text.clone() });
    let mut next = request.clone();
    next.comments.push(Comment { by: by.clone(), text, at: now });
    Moved::new(next, vec![Caused::by(by, event)])
}

fn close(request: &Request, status: Status, reason: &str, now: Timestamp) -> Request {
    let mut next = request.clone();
    next.status = status;
    next.reason = reason.to_owned();
    next.closed_at = Some(now);
    next
}

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod step_up_tests;
#[cfg(test)]
mod tests;
