//! People the identity provider vouches for, as countersign users.
//!
//! A person is matched by email: someone who already has a local identity
//! with that address keeps it (one person, one identity, so the
//! self-approval and distinct-quorum rules see them once); anyone else gets
//! a user named after their address at their first login. The account is a
//! real user row, so an admin can revoke it and the revocation holds at the
//! next request. The provider stays the source of truth for groups: the
//! principal carries the groups of the current token or login, and the
//! latest profile (name, groups, last login) is kept in the key-value area
//! for the admin page.

use std::sync::Arc;

use countersign_audit::AuditDraft;
use countersign_core::principal::valid_name;
use countersign_core::{Principal, PrincipalKind, Timestamp};
use countersign_server::auth::new_token;
use countersign_store::{NewUser, Store, StoreError, User};
use serde_json::json;

use crate::claims::UserClaims;

/// Key-value namespace of the profiles.
pub const PROFILES: &str = "identity.profiles";

/// Why a person cannot be let in.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("your countersign account `{0}` was revoked; ask an administrator")]
    Revoked(String),
    #[error("the user name `{0}` is taken by someone with another email address; ask an administrator")]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the admin page shows about a person who logged in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub subject: String,
    pub email: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    pub last_login: Timestamp,
}

/// The users table seen through the identity provider.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Arc<dyn Store>,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The principal for a person, creating their user at first sight.
    pub async fn principal(&self, person: &UserClaims) -> Result<Principal, DirectoryError> {
        let user = self.user_for(person).await?;
        Ok(Principal {
            kind: PrincipalKind::User,
            name: user.name,
            email: Some(user.email),
            owner: None,
            groups: person.groups.clone(),
        })
    }

    /// As [`Directory::principal`], and records the login in the profile.
    pub async fn login(&self, person: &UserClaims) -> Result<Principal, DirectoryError> {
        let principal = self.principal(person).await?;
        let profile = Profile {
            subject: person.subject.clone(),
            email: person.email.clone(),
            display_name: person.display_name.clone(),
            groups: person.groups.clone(),
            last_login: Timestamp::now(),
        };
        let value = serde_json::to_string(&profile).map_err(|e| StoreError::Internal(e.to_string()))?;
        // Last writer wins; a lost race only loses a login time.
        for _ in 0..3 {
            let current = self.store.kv_get(PROFILES, &principal.name).await?;
            if self.store.kv_compare_and_set(PROFILES, &principal.name, current, Some(value.clone())).await? {
                break;
            }
        }
        Ok(principal)
    }

    /// The profile recorded at the last login, if any.
    pub async fn profile(&self, name: &str) -> Result<Option<Profile>, StoreError> {
        Ok(self.store.kv_get(PROFILES, name).await?.and_then(|text| serde_json::from_str(&text).ok()))
    }

    async fn user_for(&self, person: &UserClaims) -> Result<User, DirectoryError> {
        let known = self.store.users_with_email(&person.email).await?;
        if let Some(live) = known.iter().find(|u| u.revoked_at.is_none()) {
            return Ok(live.clone());
        }
        if let Some(revoked) = known.first() {
            return Err(DirectoryError::Revoked(revoked.name.clone()));
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
        let event = AuditDraft::new(
            "system",
            "identity.user_created",
            json!({"name": name, "email": person.email, "groups": person.groups, "source": "oidc", "subject": person.subject}),
        );
        match self.store.create_user(new, vec![event]).await {
            Ok(user) => Ok(user),
            // Two first logins at once: the other one created it.
            Err(StoreError::AlreadyExists { .. }) => match self.store.user(&name).await? {
                Some(user) if user.email.eq_ignore_ascii_case(&person.email) && user.revoked_at.is_none() => Ok(user),
                Some(user) if user.email.eq_ignore_ascii_case(&person.email) => Err(DirectoryError::Revoked(user.name)),
                Some(_) | None => Err(DirectoryError::NameTaken(name)),
            },
            Err(e) => Err(e.into()),
        }
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
