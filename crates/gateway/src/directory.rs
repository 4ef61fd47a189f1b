//! The directory of people and agents, and the one rule for finding a
//! person by email, used by every way in that names people by address:
//! console and API logins through the identity provider
//! (`countersign-identity`) and chat clicks from Slack and Teams
//! (`countersign-channels`).
//!
//! The rule ([`Directory::by_email`]):
//!
//! 1. **Only a verified address names anyone.** The source must vouch for
//!    it ([`EmailAssertion::verified`]): an OIDC token's `email_verified`
//!    is the JSON boolean `true` (or `[oidc] email_claim_verified = true`
//!    says the provider vouches for every address in `email_claim`), Slack
//!    says `is_email_confirmed: true`, or the address is the one the Teams
//!    tenant's directory holds for the member. Anything else (`"true"`,
//!    `"false"`, absent, a custom claim nobody vouched for) names nobody,
//!    so an address anyone could type cannot reach someone's user.
//! 2. **A user row belongs to one account per source.** The first time a
//!    source's account (its issuer and subject) is matched to a user, the
//!    pair is bound to that user (`identity.bound`, in the store's
//!    key-value area, shared by every replica). A later account of the same
//!    source with the same address but another subject is refused
//!    (`identity.binding_refused`) and never rewrites that user's groups or
//!    votes as them: a recycled address, or an account at the provider that
//!    someone made with a colleague's address, stays out. Accounts of other
//!    sources (the same person in Slack and at the provider) bind on their
//!    own. An administrator who must move a user to a new account deletes
//!    the binding (`identity.bindings` namespace, key `<user>|<source>`).
//! 3. **Addresses compare trimmed and case-insensitively**
//!    ([`countersign_core::PersonKey`]): `Alice@Corp.example ` is
//!    `alice@corp.example`.
//! 4. **Revoked users are never matched**; a person whose only user with
//!    that address is revoked is told so.

use std::sync::Arc;

use countersign_audit::AuditDraft;
use countersign_core::events::{BindingRefused, Bound, Event, IdentityRevoked};
use countersign_core::Request;
use countersign_store::{Agent, NewAgent, NewUser, Store, StoreError, User, UserProfile};

use crate::error::GatewayError;

/// The key-value namespace of bindings: `<user>|<source>` → subject.
pub const BINDINGS: &str = "identity.bindings";

/// What a source says about the person acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAssertion {
    /// Who says it: `oidc:<issuer>`, `slack:<team>`, `teams:<tenant>`.
    pub source: String,
    /// The source's stable id for the account (OIDC `sub`, Slack user id,
    /// Entra object id).
    pub subject: String,
    pub email: String,
    /// Whether the source vouches that the address belongs to the account.
    pub verified: bool,
}

/// Why nobody may be matched.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error("the email address `{0}` is not verified, so countersign cannot tell whose it is")]
    Unverified(String),
    #[error("your countersign account `{0}` was revoked; ask an administrator")]
    Revoked(String),
    #[error("the countersign user with the email address `{email}` belongs to another account; ask an administrator")]
    BoundToAnother { email: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// People and agents as the store holds them, looked up and enrolled under
/// the gateway's rules. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Arc<dyn Store>,
}

impl Directory {
    /// The directory on `store`. Integrations get it from
    /// [`crate::AppState::directory`]; authenticators, built before the
    /// gateway's state, make their own.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The live user that `assertion` names, if any, under the one rule
    /// (see the module); `prefer` picks among several users with the
    /// address (the first by name otherwise, so the choice is stable). The
    /// chosen user is bound to the account if it was not yet. `Ok(None)`:
    /// nobody has the address (a caller may create the user, then
    /// [`Directory::bind`] it).
    pub async fn by_email(
        &self,
        assertion: &EmailAssertion,
        prefer: impl Fn(&User) -> bool,
    ) -> Result<Option<User>, MatchError> {
        by_email(&self.store, assertion, prefer).await
    }

    /// Binds `user` to the account of `assertion` unless it already is;
    /// fails if another account of the same source won the binding (a race
    /// of two first logins).
    pub async fn bind(&self, assertion: &EmailAssertion, user: &User) -> Result<(), MatchError> {
        bind(&self.store, assertion, user).await
    }

    /// The user named `name`, revoked or not.
    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.store.user(name).await
    }

    /// The user named `name` if it is not revoked.
    pub async fn live_user(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self.user(name).await?.filter(|u| u.revoked_at.is_none()))
    }

    /// Every user, revoked ones included, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.store.list_users().await
    }

    /// The agent named `name`, revoked or not.
    pub async fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        self.store.agent(name).await
    }

    /// Every agent, revoked ones included, by name.
    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.store.list_agents().await
    }

    /// Enrols a user, recording `events` with it.
    pub async fn create_user(&self, user: NewUser, events: Vec<AuditDraft>) -> Result<User, StoreError> {
        self.store.create_user(user, events).await
    }

    /// Enrols an agent, recording `events` with it.
    pub async fn create_agent(&self, agent: NewAgent, events: Vec<AuditDraft>) -> Result<Agent, StoreError> {
        self.store.create_agent(agent, events).await
    }

    /// Saves what an identity provider says of a user at login; the store
    /// records `events` only if something changed.
    pub async fn update_profile(
        &self,
        name: &str,
        profile: UserProfile,
        events: Vec<AuditDraft>,
    ) -> Result<User, StoreError> {
        self.store.update_user_profile(name, profile, events).await
    }

    /// Who, if anyone, holds the credential with this hash.
    pub async fn principal_by_token_hash(&self, hash: &str) -> Result<Option<countersign_core::Principal>, StoreError> {
        self.store.principal_by_token_hash(hash).await
    }
}

impl crate::AppState {
    /// The directory of people and agents.
    pub fn directory(&self) -> Directory {
        Directory::new(self.0.store.clone())
    }

    /// Revokes user `name` for `actor`: its credentials stop working at
    /// once, and in the same transaction its open requests are revoked and
    /// its votes on open requests withdrawn. Whoever follows those requests
    /// is told. Returns the requests it changed.
    pub async fn revoke_user(&self, name: &str, actor: &str) -> Result<Vec<Request>, GatewayError> {
        let event = AuditDraft::new(actor, Event::UserRevoked(IdentityRevoked { name: name.to_owned() }));
        let changed = self.0.store.revoke_user(name, self.now(), vec![event]).await?;
        self.announce_all(&changed);
        Ok(changed)
    }

    /// As [`crate::AppState::revoke_user`], for agent `name`.
    pub async fn revoke_agent(&self, name: &str, actor: &str) -> Result<Vec<Request>, GatewayError> {
        let event = AuditDraft::new(actor, Event::AgentRevoked(IdentityRevoked { name: name.to_owned() }));
        let changed = self.0.store.revoke_agent(name, self.now(), vec![event]).await?;
        self.announce_all(&changed);
        Ok(changed)
    }

    fn announce_all(&self, changed: &[Request]) {
        for request in changed {
            self.publish_change(request);
        }
    }
}

fn key(user: &str, source: &str) -> String {
    format!("{user}|{source}")
}

async fn by_email(
    store: &Arc<dyn Store>,
    assertion: &EmailAssertion,
    prefer: impl Fn(&User) -> bool,
) -> Result<Option<User>, MatchError> {
    if !assertion.verified {
        return Err(MatchError::Unverified(assertion.email.clone()));
    }
    let known = store.users_with_email(&assertion.email).await?;
    let mut live: Vec<User> = known.iter().filter(|u| u.revoked_at.is_none()).cloned().collect();
    if live.is_empty() {
        return match known.first() {
            Some(revoked) => Err(MatchError::Revoked(revoked.name.clone())),
            None => Ok(None),
        };
    }
    live.sort_by(|a, b| a.name.cmp(&b.name));
    // Users bound to another account of this source are not this person's.
    let mut mine = Vec::with_capacity(live.len());
    let mut refused = Vec::new();
    for user in live {
        match store.kv_get(BINDINGS, &key(&user.name, &assertion.source)).await? {
            Some(subject) if subject != assertion.subject => refused.push((user, subject)),
            Some(_) | None => mine.push(user),
        }
    }
    if mine.is_empty() {
        audit_refusals(store, assertion, &refused).await;
        return Err(MatchError::BoundToAnother { email: assertion.email.clone() });
    }
    let chosen = mine.iter().position(&prefer).unwrap_or(0);
    let user = mine.swap_remove(chosen);
    bind(store, assertion, &user).await?;
    Ok(Some(user))
}

async fn bind(store: &Arc<dyn Store>, assertion: &EmailAssertion, user: &User) -> Result<(), MatchError> {
    let key = key(&user.name, &assertion.source);
    let current = store.kv_get(BINDINGS, &key).await?;
    let bound = match current {
        Some(subject) => subject,
        None => {
            if store.kv_compare_and_set(BINDINGS, &key, None, Some(assertion.subject.clone())).await? {
                let bound = Bound {
                    name: user.name.clone(),
                    source: assertion.source.clone(),
                    subject: assertion.subject.clone(),
                };
                let event = AuditDraft::new("system", Event::IdentityBound(bound));
                if let Err(e) = store.append_audit(vec![event]).await {
                    tracing::warn!(error = %e, "cannot audit a new identity binding");
                }
                return Ok(());
            }
            store.kv_get(BINDINGS, &key).await?.unwrap_or_default()
        }
    };
    if bound == assertion.subject {
        return Ok(());
    }
    audit_refusals(store, assertion, &[(user.clone(), bound)]).await;
    Err(MatchError::BoundToAnother { email: assertion.email.clone() })
}

async fn audit_refusals(store: &Arc<dyn Store>, assertion: &EmailAssertion, refused: &[(User, String)]) {
    let events: Vec<AuditDraft> = refused
        .iter()
        .map(|(user, bound)| {
            let refused = BindingRefused {
                name: user.name.clone(),
                email: assertion.email.clone(),
                source: assertion.source.clone(),
                subject: assertion.subject.clone(),
                bound_subject: bound.clone(),
            };
            AuditDraft::new("system", Event::IdentityBindingRefused(refused))
        })
        .collect();
    if let Err(e) = store.append_audit(events).await {
        tracing::warn!(error = %e, "cannot audit a refused identity binding");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::Timestamp;

    async fn store_with(users: &[(&str, &str, bool)]) -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(countersign_store_sqlite::SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
        for (name, email, revoked) in users {
            let new = NewUser {
                name: (*name).into(),
                email: (*email).into(),
                groups: vec!["admin".into()],
                token_hash: format!("hash-{name}"),
                created_at: Timestamp::now(),
            };
            store.create_user(new, vec![]).await.unwrap();
            if *revoked {
                store.revoke_user(name, Timestamp::now(), vec![]).await.unwrap();
            }
        }
        (dir, store)
    }

    fn says(source: &str, subject: &str, email: &str, verified: bool) -> EmailAssertion {
        EmailAssertion { source: source.into(), subject: subject.into(), email: email.into(), verified }
    }

    async fn kinds(store: &Arc<dyn Store>) -> Vec<String> {
        store.audit_events(0, 1000).await.unwrap().into_iter().map(|e| e.kind).collect()
    }

    #[tokio::test]
    async fn an_unverified_address_names_nobody() {
        let (_dir, store) = store_with(&[("root", "root@corp.example", false)]).await;
        let found = by_email(&store, &says("oidc:x", "attacker", "root@corp.example", false), |_| false).await;
        assert!(matches!(found, Err(MatchError::Unverified(_))));
        assert_eq!(store.kv_get(BINDINGS, "root|oidc:x").await.unwrap(), None, "nothing bound");
    }

    #[tokio::test]
    async fn the_first_account_binds_and_another_subject_is_refused_and_audited() {
        let (_dir, store) = store_with(&[("root", "root@corp.example", false)]).await;
        let first = by_email(&store, &says("oidc:x", "sub-1", "ROOT@corp.example", true), |_| false).await.unwrap();
        assert_eq!(first.unwrap().name, "root");
        // The same account again: fine.
        assert!(by_email(&store, &says("oidc:x", "sub-1", "root@corp.example", true), |_| false).await.is_ok());
        // Another account of the same source with the same address: refused.
        let other = by_email(&store, &says("oidc:x", "sub-2", "root@corp.example", true), |_| false).await;
        assert!(matches!(other, Err(MatchError::BoundToAnother { .. })), "{other:?}");
        let events = kinds(&store).await;
        assert_eq!(events.iter().filter(|k| *k == "identity.bound").count(), 1);
        assert_eq!(events.iter().filter(|k| *k == "identity.binding_refused").count(), 1);
        // Another source binds on its own.
        assert!(by_email(&store, &says("slack:T1", "U1", "root@corp.example", true), |_| false).await.is_ok());
        assert_eq!(store.kv_get(BINDINGS, "root|slack:T1").await.unwrap().as_deref(), Some("U1"));
    }

    #[tokio::test]
    async fn among_several_users_a_preferred_unbound_one_is_chosen() {
        let (_dir, store) = store_with(&[("a-ops", "p@corp.example", false), ("b-dba", "p@corp.example", false)]).await;
        let prefer_dba = |u: &User| u.name == "b-dba";
        let found = by_email(&store, &says("slack:T1", "U1", "p@corp.example", true), prefer_dba).await.unwrap();
        assert_eq!(found.unwrap().name, "b-dba");
        let found = by_email(&store, &says("slack:T1", "U1", "p@corp.example", true), |_| false).await.unwrap();
        assert_eq!(found.unwrap().name, "a-ops");
        // Both are now bound to U1: another Slack account gets neither.
        let other = by_email(&store, &says("slack:T1", "U2", "p@corp.example", true), |_| true).await;
        assert!(matches!(other, Err(MatchError::BoundToAnother { .. })));
    }

    #[tokio::test]
    async fn revoked_users_are_never_matched() {
        let (_dir, store) = store_with(&[("gone", "g@corp.example", true)]).await;
        let found = by_email(&store, &says("oidc:x", "s", "g@corp.example", true), |_| false).await;
        assert!(matches!(found, Err(MatchError::Revoked(name)) if name == "gone"));
        let nobody = by_email(&store, &says("oidc:x", "s", "new@corp.example", true), |_| false).await.unwrap();
        assert!(nobody.is_none());
    }
}
