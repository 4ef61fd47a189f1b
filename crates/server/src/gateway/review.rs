//! Hold and decide by people: approvals, denials and comments, under the
//! rules of [`countersign_core::lifecycle`].

use countersign_audit::AuditDraft;
use countersign_core::lifecycle::{self, settle_deadline};
use countersign_core::{
    Approver, Assurance, Exclusions, PersonKey, Principal, PrincipalKind, Refusal, Request, Status, Timestamp, VoteKind,
};
use countersign_store::Update;
use serde_json::json;

use super::AppState;
use crate::auth::AuthContext;
use crate::error::ApiError;

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
    ) -> Result<Request, ApiError> {
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
    ) -> Result<Request, ApiError> {
        let person = human(caller)?;
        let assurance = match (auth, self.config.identity.step_up_max_age()) {
            (AuthContext::WebSession { auth_time }, Some(max_age)) => {
                Assurance::IdpLogin { auth_time: *auth_time, max_age }
            }
            (AuthContext::WebSession { .. }, None) | (AuthContext::Credential, _) => Assurance::Credential,
        };
        // Not `visible_request`: someone outside the approver groups is told
        // so (403, audited), as the approval rules require.
        let request = self.store.request(id).await?.ok_or_else(|| ApiError::not_found(id))?;
        let exclusions = self.exclusions_for(&request).await?;
        // Votes by identities revoked since do not count towards the quorum
        // (see `release`, which checks again).
        let gone = self.revoked_voters(&request).await?;
        let approver = Approver { principal: caller.reference(), person, groups: caller.groups.clone() };
        let now = Timestamp::now();
        let updated = self
            .update(
                id,
                Box::new(move |stored| {
                    if let Some(expired) = settle_deadline(stored, now) {
                        return expired_update(stored, expired, &approver, kind);
                    }
                    let withdrawn = lifecycle::withdraw_votes(stored, &gone, now);
                    match withdrawn {
                        Some(revoked) if revoked.status == Status::Revoked => revoked_update(&revoked, &approver, kind),
                        Some(_) | None => {
                            let current = withdrawn.as_ref().unwrap_or(stored);
                            vote_update(current, &approver, &exclusions, (kind, comment), now, assurance)
                        }
                    }
                }),
            )
            .await?;
        updated.result.map_err(ApiError::Refused)?;
        Ok(updated.request)
    }

    /// Adds a comment to a request the caller can see.
    pub async fn comment(&self, caller: &Principal, id: &str, text: String) -> Result<Request, ApiError> {
        if text.trim().is_empty() || text.chars().count() > 4096 {
            return Err(ApiError::bad_request("invalid_comment", "a comment needs 1 to 4096 characters"));
        }
        self.visible_request(caller, id).await?;
        let by = caller.reference();
        let now = Timestamp::now();
        let updated = self
            .update(
                id,
                Box::new(move |current| {
                    let next = lifecycle::comment(current, &by, text.clone(), now);
                    let event =
                        AuditDraft::new(by.to_string(), "comment.added", json!({"id": current.id, "text": text}));
                    Update { save: Some(next), events: vec![event], result: Ok(()) }
                }),
            )
            .await?;
        Ok(updated.request)
    }

    /// Everyone who may not approve `request`: the requester, the agent's
    /// owner (then and now), the user it acts for, and every identity that
    /// shares an email with one of them.
    pub async fn exclusions_for(&self, request: &Request) -> Result<Exclusions, ApiError> {
        let mut exclusions = Exclusions::default();
        exclusions.principal(request.principal.clone());
        let mut related_users = Vec::new();
        match request.principal.kind {
            PrincipalKind::User => related_users.push(request.principal.name.clone()),
            PrincipalKind::Agent => {
                if let Some(agent) = self.store.agent(&request.principal.name).await? {
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
                if let Some(user) = self.store.user(&spelling).await? {
                    exclusions.person(PersonKey::from_email(&user.email));
                }
            }
        }
        Ok(exclusions)
    }
}

/// The caller as a person, or a refusal for agents.
fn human(caller: &Principal) -> Result<PersonKey, ApiError> {
    match (caller.kind, caller.person()) {
        (PrincipalKind::User, Some(person)) => Ok(person),
        (PrincipalKind::User, None) => {
            Err(ApiError::forbidden("no_email", "your identity has no email, so it cannot vote"))
        }
        (PrincipalKind::Agent, _) => {
            Err(ApiError::forbidden("humans_only", "only people can approve or deny; agents cannot"))
        }
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
    let attempt = attempt_name(kind);
    let actor = approver.principal.to_string();
    if let Some(expired) = settle_deadline(current, now) {
        return expired_update(current, expired, approver, kind);
    }
    match lifecycle::vote_with(current, approver, exclusions, kind, comment.clone(), now, assurance) {
        Ok(next) => {
            let event_kind = match kind {
                VoteKind::Approve => "approval.accepted",
                VoteKind::Deny => "denial.accepted",
            };
            let mut events = vec![AuditDraft::new(
                actor,
                event_kind,
                json!({
                    "id": current.id,
                    "fingerprint": current.fingerprint,
                    "person": approver.person,
                    "groups": approver.groups,
                    "comment": comment,
                    "login": login_description(assurance),
                }),
            )];
            if next.status != current.status {
                events.push(AuditDraft::new(
                    "system",
                    format!("action.{}", next.status.as_str()),
                    json!({"id": next.id, "reason": next.reason, "release_by": next.release_by}),
                ));
            }
            Update { save: Some(next), events, result: Ok(()) }
        }
        Err(refusal) => Update {
            save: None,
            events: vec![refused_event(&actor, &current.id, attempt, &refusal)],
            result: Err(refusal),
        },
    }
}

fn attempt_name(kind: VoteKind) -> &'static str {
    match kind {
        VoteKind::Approve => "approve",
        VoteKind::Deny => "deny",
    }
}

fn expired_update(current: &Request, expired: Request, approver: &Approver, kind: VoteKind) -> Update {
    let actor = approver.principal.to_string();
    Update {
        events: vec![
            expired_event(&expired),
            refused_event(&actor, &current.id, attempt_name(kind), &Refusal::Expired),
        ],
        save: Some(expired),
        result: Err(Refusal::Expired),
    }
}

/// The approvals an approved request stood on were withdrawn (their givers
/// revoked): it is revoked, and this vote refused.
fn revoked_update(revoked: &Request, approver: &Approver, kind: VoteKind) -> Update {
    let refusal = Refusal::NotPending("revoked");
    Update {
        events: vec![
            AuditDraft::new("system", "action.revoked", json!({"id": revoked.id, "reason": revoked.reason})),
            refused_event(&approver.principal.to_string(), &revoked.id, attempt_name(kind), &refusal),
        ],
        save: Some(revoked.clone()),
        result: Err(refusal),
    }
}

/// How the voter signed in, for the audit record.
fn login_description(assurance: Assurance) -> serde_json::Value {
    match assurance {
        Assurance::Credential => json!({"method": "credential"}),
        Assurance::IdpLogin { auth_time, .. } => json!({"method": "idp_session", "auth_time": auth_time}),
    }
}

/// The audit record of a refused move.
pub(crate) fn refused_event(actor: &str, id: &str, attempt: &str, refusal: &Refusal) -> AuditDraft {
    AuditDraft::new(
        actor,
        "attempt.refused",
        json!({"id": id, "attempt": attempt, "code": refusal.code(), "message": refusal.to_string()}),
    )
}

/// The audit record of a request reaching its deadline.
pub(crate) fn expired_event(expired: &Request) -> AuditDraft {
    AuditDraft::new("system", "action.expired", json!({"id": expired.id, "reason": expired.reason}))
}
