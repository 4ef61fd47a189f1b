//! The events of identities: users and agents created, updated, revoked and
//! bound to their accounts, and console sign-ins.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// `identity.user_created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
    /// `oidc` for a user created at a first login (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The provider's id for the person, with `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// `identity.user_updated`: a login changed what the store knows of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub name: String,
    pub email: String,
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    /// What the store knew before.
    pub previous: Profile,
    pub source: String,
    pub subject: String,
}

/// What the store knows of a user from their logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub email: String,
    pub display_name: Option<String>,
    pub groups: Vec<String>,
}

/// `identity.agent_created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCreated {
    pub name: String,
    pub owner: Option<String>,
    pub groups: Vec<String>,
}

/// `identity.user_revoked` and `identity.agent_revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRevoked {
    pub name: String,
}

/// `identity.bound`: a user belongs to this account of `source` from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub name: String,
    pub source: String,
    pub subject: String,
}

/// `identity.binding_refused`: an account asserted the email of a user
/// bound to another account of the same source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRefused {
    pub name: String,
    pub email: String,
    pub source: String,
    pub subject: String,
    pub bound_subject: String,
}

/// `console.login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLogin {
    /// `oidc` or `token`.
    pub method: String,
    pub groups: Vec<String>,
    /// When the identity provider authenticated the person (`null` for a
    /// token).
    pub auth_time: Option<Timestamp>,
}

/// `console.logout` (an empty body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLogout {}
