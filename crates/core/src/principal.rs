//! Who acts: agents (keys, workload tokens) and users (humans).
//!
//! A human may hold several identities (say, a local token and an IdP login)
//! that share one email address. Rules about *people* — no self-approval,
//! distinct-person quorums — therefore compare [`PersonKey`]s, never names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a principal is an automated actor or a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    Agent,
    User,
}

impl PrincipalKind {
    /// The Cedar entity type for this kind of principal.
    pub fn cedar_type(self) -> &'static str {
        match self {
            Self::Agent => "Agent",
            Self::User => "User",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::User => "user",
        }
    }
}

/// A reference to a principal by kind and name, e.g. `agent:deploy-bot`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrincipalRef {
    pub kind: PrincipalKind,
    pub name: String,
}

impl PrincipalRef {
    pub fn agent(name: impl Into<String>) -> Self {
        Self { kind: PrincipalKind::Agent, name: name.into() }
    }

    pub fn user(name: impl Into<String>) -> Self {
        Self { kind: PrincipalKind::User, name: name.into() }
    }
}

impl fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.name)
    }
}

/// The identity of a human being, across all their accounts: the
/// lower-cased email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonKey(String);

impl PersonKey {
    pub fn from_email(email: &str) -> Self {
        Self(email.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An authenticated principal with the attributes policy and approval
/// rules need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub name: String,
    /// Users only: the email that identifies the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Agents only: the user responsible for the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Principal {
    pub fn reference(&self) -> PrincipalRef {
        PrincipalRef { kind: self.kind, name: self.name.clone() }
    }

    /// The person behind a user identity; agents are not people.
    pub fn person(&self) -> Option<PersonKey> {
        match self.kind {
            PrincipalKind::User => self.email.as_deref().map(PersonKey::from_email),
            PrincipalKind::Agent => None,
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    pub fn is_user(&self) -> bool {
        self.kind == PrincipalKind::User
    }

    /// Members of `admin` manage identities and policies.
    pub fn is_admin(&self) -> bool {
        self.is_user() && self.in_group(ADMIN_GROUP)
    }

    /// Members of `auditor` (and admins) read the audit log.
    pub fn is_auditor(&self) -> bool {
        self.is_user() && (self.in_group(AUDITOR_GROUP) || self.in_group(ADMIN_GROUP))
    }
}

/// The group whose members administer the gateway.
pub const ADMIN_GROUP: &str = "admin";
/// The group whose members may read the audit log.
pub const AUDITOR_GROUP: &str = "auditor";

/// Checks a user, agent or group name: 1–64 characters of
/// `[A-Za-z0-9._@-]`, starting with an alphanumeric.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 64
        && first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Checks an email address loosely: one `@` with text on both sides and no
/// whitespace. Real verification belongs to the identity provider.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_key_ignores_case_and_space() {
        assert_eq!(PersonKey::from_email(" Alice@Example.COM "), PersonKey::from_email("alice@example.com"));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("deploy-bot"));
        assert!(valid_name("alice.smith@corp"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name("has space"));
        assert!(!valid_name(&"a".repeat(65)));
    }

    #[test]
    fn emails_are_checked() {
        assert!(valid_email("a@b.c"));
        assert!(!valid_email("a@"));
        assert!(!valid_email("@b"));
        assert!(!valid_email("a b@c"));
        assert!(!valid_email("a@b@c"));
    }
}
