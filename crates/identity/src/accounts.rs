//! People the identity provider vouches for, as countersign users.
//!
//! A person is matched by email under the gateway's one rule
//! ([`countersign_gateway::directory`]):
//! only an address the provider verified names anyone, and a user row
//! belongs to the provider account (issuer and subject) that first signed
//! in as it; a later account with the same address is refused. Someone who
//! already has a local identity with that address keeps it (one person, one
//! identity, so the self-approval and distinct-quorum rules see them once);
//! anyone else gets a user named after their address at their first login.
//! The account is a real user row, so an admin can revoke it and the
//! revocation holds at the next request.
//!
//! The provider is the source of truth for a person's email, name and
//! groups: every login writes them into the user row
//! ([`Directory::update_profile`], audited as `identity.user_updated` when
//! they changed), so everything that reads users — console sessions, chat
//! approvals, `on_behalf_of` in policies — judges the person by the groups
//! of their latest login. A bearer JWT carries its own groups and is judged
//! by them without touching the row.

use countersign_audit::AuditDraft;
use countersign_core::events::{Event, Profile, UserCreated, UserUpdated};
use countersign_core::principal::valid_name;
use countersign_core::{Principal, PrincipalKind, Timestamp};
use countersign_gateway::directory::{Directory, EmailAssertion, MatchError};
use countersign_gateway::identify::new_token;
use countersign_store::{NewUser, StoreError, User, UserProfile};

use crate::claims::UserClaims;

/// Why a person cannot be let in.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("your countersign account `{0}` was revoked; ask an administrator")]
    Revoked(String),
    #[error("the user name `{0}` is taken by someone with another email address; ask an administrator")]
    NameTaken(String),
    #[error(transparent)]
    Match(MatchError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The users table seen through the identity provider.
#[derive(Debug, Clone)]
pub struct Accounts {
    directory: Directory,
}

impl Accounts {
    pub fn new(directory: Directory) -> Self {
        Self { directory }
    }

    /// The principal for a person, creating their user at first sight.
    pub async fn principal(&self, person: &UserClaims) -> Result<Principal, AccountError> {
        let user = self.user_for(person).await?;
        Ok(Principal {
            kind: PrincipalKind::User,
            name: user.name,
            email: Some(user.email),
            owner: None,
            groups: person.groups.clone(),
        })
    }

    /// As [`Accounts::principal`], and saves the person's current email,
    /// name and groups into their user row.
    pub async fn login(&self, person: &UserClaims) -> Result<Principal, AccountError> {
        let user = self.user_for(person).await?;
        let profile = UserProfile {
            email: person.email.clone(),
            display_name: person.display_name.clone(),
            groups: person.groups.clone(),
            login_at: Timestamp::now(),
        };
        // The store appends it only if something changed, judged inside its
        // transaction; `previous` is what this login read just before.
        let updated = UserUpdated {
            name: user.name.clone(),
            email: person.email.clone(),
            display_name: person.display_name.clone(),
            groups: person.groups.clone(),
            previous: Profile {
                email: user.email.clone(),
                display_name: user.display_name.clone(),
                groups: user.groups.clone(),
            },
            source: "oidc".to_owned(),
            subject: person.subject.clone(),
        };
        let event = AuditDraft::new("system", Event::UserUpdated(updated));
        let saved = self.directory.update_profile(&user.name, profile, vec![event]).await?;
        // Revoked between the lookup and the update: still revoked.
        if saved.revoked_at.is_some() {
            return Err(AccountError::Revoked(saved.name));
        }
        Ok(saved.principal())
    }

    async fn user_for(&self, person: &UserClaims) -> Result<User, AccountError> {
        let assertion = assertion(person);
        if let Some(user) = self.directory.by_email(&assertion, |_| false).await.map_err(AccountError::from)? {
            return Ok(user);
        }
        let name = user_name(&person.email);
        // Nobody learns this token: the person signs in through the
        // provider, and the row exists so revocation and ownership work.
        let (_, token_hash) = new_token(PrincipalKind::User);
        let new = NewUser {
            name: name.clone(),
            email: person.email.clone(),
            groups: person.groups.clone(),
            token_hash,
            created_at: Timestamp::now(),
        };
        let created = UserCreated {
            name: name.clone(),
            email: person.email.clone(),
            groups: person.groups.clone(),
            source: Some("oidc".to_owned()),
            subject: Some(person.subject.clone()),
        };
        let event = AuditDraft::new("system", Event::UserCreated(created));
        let user = match self.directory.create_user(new, vec![event]).await {
            Ok(user) => user,
            // Two first logins at once: the other one created it.
            Err(StoreError::AlreadyExists { .. }) => match self.directory.user(&name).await? {
                Some(user) if user.email.eq_ignore_ascii_case(&person.email) && user.revoked_at.is_none() => user,
                Some(user) if user.email.eq_ignore_ascii_case(&person.email) => {
                    return Err(AccountError::Revoked(user.name))
                }
                Some(_) | None => return Err(AccountError::NameTaken(name)),
            },
            Err(e) => return Err(e.into()),
        };
        // The new user is this account's; a racing first login of another
        // account with the same address loses here.
        self.directory.bind(&assertion, &user).await?;
        Ok(user)
    }
}

impl From<MatchError> for AccountError {
    fn from(e: MatchError) -> Self {
        match e {
            MatchError::Revoked(name) => Self::Revoked(name),
            MatchError::Store(e) => Self::Store(e),
            MatchError::Unverified(_) | MatchError::BoundToAnother { .. } => Self::Match(e),
        }
    }
}

/// What a provider's claims assert about a person's address.
fn assertion(person: &UserClaims) -> EmailAssertion {
    EmailAssertion {
        source: format!("oidc:{}", person.issuer),
        subject: person.subject.clone(),
        email: person.email.clone(),
        verified: person.email_verified,
    }
}

/// A user name from an email address: lower-cased, with characters that
/// names cannot hold replaced by `-`.
pub fn user_name(email: &str) -> String {
    let mut name: String = email
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-') { c } else { '-' })
        .take(64)
        .collect();
    if !valid_name(&name) {
        name = format!("u{}", &name[..name.len().min(63)]);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_emails_are_valid() {
        assert_eq!(user_name("Alice@Example.com"), "alice@example.com");
        assert_eq!(user_name("a+tag@example.com"), "a-tag@example.com");
        assert!(valid_name(&user_name("_x@example.com")));
        assert!(valid_name(&user_name(&format!("{}@example.com", "a".repeat(80)))));
    }
}
