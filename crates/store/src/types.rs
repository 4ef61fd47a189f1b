//! Records the store keeps besides requests, and the shapes of its calls.

use countersign_audit::AuditDraft;
use countersign_core::{Principal, PrincipalKind, PrincipalRef, Refusal, Request, Status, Timestamp};
use serde::{Deserialize, Serialize};

/// A human identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// The person's name as the identity provider last gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the person last signed in through the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Timestamp>,
}

impl User {
    pub fn principal(&self) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            name: self.name.clone(),
            email: Some(self.email.clone()),
            owner: None,
            groups: self.groups.clone(),
        }
    }
}

/// An automated actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub groups: Vec<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl Agent {
    pub fn principal(&self) -> Principal {
        Principal {
            kind: PrincipalKind::Agent,
            name: self.name.clone(),
            email: None,
            owner: self.owner.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// A user to create. Only the SHA-256 hex hash of its token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
    pub token_hash: String,
    pub created_at: Timestamp,
}

/// What the identity provider says about a person at a login; it replaces
/// the user's email, display name and groups (the provider is the source
/// of truth for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub email: String,
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    pub login_at: Timestamp,
}

impl UserProfile {
    /// Whether saving this profile changes anything but the login time.
    pub fn changes(&self, user: &User) -> bool {
        self.email != user.email || self.display_name != user.display_name || self.groups != user.groups
    }
}

/// An agent to create. Only the SHA-256 hex hash of its key is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub name: String,
    pub owner: Option<String>,
    pub groups: Vec<String>,
    pub token_hash: String,
    pub created_at: Timestamp,
}

/// Which requests to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub status: Option<Status>,
    pub principal: Option<PrincipalRef>,
    pub kind: Option<String>,
    pub resource: Option<String>,
    /// At most this many, newest first; 0 means the store's default (100).
    pub limit: usize,
}

/// What a transition decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The request to save, if it changed.
    pub save: Option<Request>,
    /// Events to append in the same transaction, whether or not it changed
    /// (a refused attempt is audited too).
    pub events: Vec<AuditDraft>,
    /// What the caller is told.
    pub result: Result<(), Refusal>,
}

/// A transition run inside the store's transaction.
pub type UpdateFn = Box<dyn FnOnce(&Request) -> Update + Send + 'static>;

/// The request after an update, and the transition's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    pub request: Request,
    pub result: Result<(), Refusal>,
}

/// What another process or replica committed, as [`crate::Store::change_feed`]
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This request changed (its status, votes, comments or outcome).
    Request(String),
    /// This key of the key-value area changed.
    Kv { namespace: String, key: String },
    /// Anything may have changed (the feed reconnected and may have missed
    /// notices): re-check everything.
    Unknown,
}
