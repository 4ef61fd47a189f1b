//! Review: people decide a held request — approve, deny, comment — under
//! the rules of [`countersign_core::lifecycle`] (who may, how many
//! distinct people, deny is final, step-up). The policy's own decision is
//! [`crate::decide`]'s.

use countersign_audit::AuditDraft;
use countersign_core::events::{Attempt, Event};
use countersign_core::lifecycle::{self, settle_deadline};
use countersign_core::{
    Approver, Assurance, Exclusions, Moved, PersonKey, Principal, PrincipalKind, Refusal, Request, Status, Timestamp,
    VoteKind,
};
use countersign_store::Update;

use crate::error::GatewayError;
use crate::identify::AuthContext;
use crate::state::drafts;
use crate::AppState;

impl AppState {
    /// A human approves or denies with a credential (a token, a chat
    /// click): not a fresh login, so `@step_up` requirements refuse it with
    /// `step_up_required`. Every attempt, accepted or refused, is audited in
    /// the same transaction as the check.
    pub async fn vote(
        &self,
        caller: &Principal,
        id: &str,
        kind: VoteKind,
        comment: Option<String>,
    ) -> Result<Request, GatewayError> {
        self.vote_with_auth(caller, &AuthContext::Credential, id, kind, comment).await
    }

    /// As [`AppState::vote`], saying how the caller signed in: a web
    /// session with a recent identity-provider login may approve `@step_up`
    /// requirements.
    pub async fn vote_with_auth(
        &self,
        caller: &Principal,
        auth: &AuthContext,
        id: &str,
        kind: VoteKind,
        comment: Option<String>,
    ) -> Result<Request, GatewayError> {
        let person = human(caller)?;
        let assurance = match (auth, self.0.config.step_up_max_age) {
            (AuthContext::WebSession { auth_time }, Some(max_age)) => {
                Assurance::IdpLogin { auth_time: *auth_time, max_age }
            }
            (AuthContext::WebSession { .. }, None) | (AuthContext::Credential, _) => Assurance::Credential,
        };
        // Not `visible_request`: someone outside the approver groups is told
        // so (403, audited), as the approval rules require.
        let request = self.0.store.request(id).await?.ok_or_else(|| GatewayError::not_found(id))?;
        let exclusions = self.exclusions_for(&request).await?;
        // Votes by identities revoked since do not count towards the quorum
        // (see `release`, which checks again).
        let gone = self.revoked_voters(&request).await?;
        let approver = Approver { principal: caller.reference(), person, groups: caller.groups.clone() };
        let now = self.now();
        let updated = self
            .update(
                id,
                Box::new(move |stored| {
                    if let Some(expired) = settle_deadline(stored, now) {
                        return expired_update(stored, expired, &approver, kind);
                    }
                    // Only a revocation is recorded here: the votes' withdrawal
                    // is the store's to record, when it revokes their giver
                    // (`votes.withdrawn`); this move only stops counting them.
                    let withdrawn = lifecycle::withdraw_votes(stored, &gone, now);
                    match withdrawn {
                        Some(revoked) if revoked.request.status == Status::Revoked => {
                            revoked_update(revoked, &approver, kind)
                        }
                        Some(_) | None => {
                            let current = withdrawn.as_ref().map_or(stored, |w| &w.request);
                            vote_update(current, &approver, &exclusions, (kind, comment), now, assurance)
                        }
                    }
                }),
            )
            .await?;
        updated.result.map_err(GatewayError::Refused)?;
        Ok(updated.request)
    }

    /// Adds a comment to a request the caller can see.
    pub async fn comment(&self, caller: &Principal, id: &str, text: String) -> Result<Request, GatewayError> {
        if text.trim().is_empty() || text.chars().count() > 4096 {
            return Err(GatewayError::InvalidComment);
        }
        self.visible_request(caller, id).await?;
        let by = caller.reference();
        let now = self.now();
        let updated = self
            .update(
                id,
                Box::new(move |current| {
                    let commented = lifecycle::comment(current, &by, text, now);
                    Update { save: Some(commented.request), events: drafts(commented.events), result: Ok(()) }
                }),
            )
            .await?;
        Ok(updated.request)
    }

    /// Everyone who may not approve `request`: the requester, the agent's
    /// owner (then and now), the user it acts for, and every identity that
    /// shares an email with one of them.
    pub async fn exclusions_for(&self, request: &Request) -> Result<Exclusions, GatewayError> {
        let mut exclusions = Exclusions::default();
        exclusions.principal(request.principal.clone());
        let mut related_users = Vec::new();
        match request.principal.kind {
            PrincipalKind::User => related_users.push(request.principal.name.clone()),
            PrincipalKind::Agent => {
                if let Some(agent) = self.0.store.agent(&request.principal.name).await? {
                    related_users.extend(agent.owner);
                }
            }
        }
        related_users.extend(request.owner.clone());
        related_users.extend(request.action.on_behalf_of.clone());
        for name in related_users {
            exclusions.user_name(&name);
            // `Carol` named in a request is carol too (names compare folded).
            let folded = countersign_core::names::identity_key(&name);
            let spellings = if folded == name { vec![name] } else { vec![name, folded] };
            for spelling in spellings {
                if let Some(user) = self.0.store.user(&spelling).await? {
                    exclusions.person(PersonKey::from_email(&user.email));
                }
            }
        }
        Ok(exclusions)
    }
}

/// The caller as a person, or a refusal for agents.
fn human(caller: &Principal) -> Result<PersonKey, GatewayError> {
    match (caller.kind, caller.person()) {
        (PrincipalKind::User, Some(person)) => Ok(person),
        (PrincipalKind::User, None) => Err(GatewayError::NoEmail),
        (PrincipalKind::Agent, _) => Err(GatewayError::HumansOnly),
    }
}

fn vote_update(
    current: &Request,
    approver: &Approver,
    exclusions: &Exclusions,
    (kind, comment): (VoteKind, Option<String>),
    now: Timestamp,
    assurance: Assurance,
) -> Update {
    let actor = approver.principal.to_string();
    if let Some(expired) = settle_deadline(current, now) {
        return expired_update(current, expired, approver, kind);
    }
    match lifecycle::vote_with(current, approver, exclusions, kind, comment, now, assurance) {
        Ok(voted) => Update { save: Some(voted.request), events: drafts(voted.events), result: Ok(()) },
        Err(refusal) => Update {
            save: None,
            events: vec![refused_event(&actor, &current.id, Attempt::from(kind), &refusal)],
            result: Err(refusal),
        },
    }
}

fn expired_update(current: &Request, expired: Moved, approver: &Approver, kind: VoteKind) -> Update {
    let actor = approver.principal.to_string();
    let mut events = drafts(expired.events);
    events.push(refused_event(&actor, &current.id, Attempt::from(kind), &Refusal::Expired));
    Update { events, save: Some(expired.request), result: Err(Refusal::Expired) }
}

/// The approvals an approved request stood on were withdrawn (their givers
/// revoked): it is revoked, and this vote refused.
fn revoked_update(revoked: Moved, approver: &Approver, kind: VoteKind) -> Update {
    let refusal = Refusal::NotPending("revoked");
    let mut events = drafts(revoked.events);
    events.push(refused_event(&approver.principal.to_string(), &revoked.request.id, Attempt::from(kind), &refusal));
    Update { events, save: Some(revoked.request), result: Err(refusal) }
}

/// The audit record of a refused move.
pub(crate) fn refused_event(actor: &str, id: &str, attempt: Attempt, refusal: &Refusal) -> AuditDraft {
    AuditDraft::new(actor, Event::refused(id, attempt, refusal))
}
