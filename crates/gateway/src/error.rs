//! What can go wrong in a gateway operation, in the gateway's own terms.
//!
//! Every operation of [`super::AppState`] returns [`GatewayError`]; it says
//! what happened (not found, refused by the state machine, rate limited,
//! store unavailable, …) and nothing of HTTP. The API turns it into a
//! status and a body in one place (`countersign_server::error`); chat channels, the
//! console and the MCP proxy match its variants to say it their own way.
//!
//! Every variant keeps the stable `code` that API clients already read.
//! Messages are safe to show: a store failure says only that the store
//! failed, and its detail ([`GatewayError::detail`]) goes to the log.

use countersign_core::fingerprint::FingerprintError;
use countersign_core::{ActionError, Refusal};
use countersign_store::StoreError;

use crate::identify::AuthError;

/// The code of a call refused because its source is rate-limited; the
/// refusal path holds such calls (see `AppState::refuse`).
pub const RATE_LIMITED: &str = "rate_limited";

/// Why a gateway operation did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The caller could not be identified.
    #[error("{}", unauthenticated(.0))]
    Unauthenticated(#[from] AuthError),
    /// There is no such thing, or the caller may not see it (ids leak
    /// nothing).
    #[error("{what} `{id}` was not found")]
    NotFound { what: &'static str, id: String },
    /// The thing to create exists already.
    #[error("{what} `{name}` already exists")]
    AlreadyExists { what: &'static str, name: String },
    /// An agent tried to approve or deny.
    #[error("only people can approve or deny; agents cannot")]
    HumansOnly,
    /// A person without an email tried to vote: nothing tells who they are.
    #[error("your identity has no email, so it cannot vote")]
    NoEmail,
    /// The state machine refused the move (not pending, expired,
    /// self-approval, already decided, …); already audited in the store.
    #[error(transparent)]
    Refused(Refusal),
    /// The action is not one the gateway accepts.
    #[error(transparent)]
    InvalidAction(#[from] ActionError),
    /// The action could not be fingerprinted.
    #[error("{0}")]
    Unfingerprintable(#[from] FingerprintError),
    /// A comment that is empty or too long.
    #[error("a comment needs 1 to 4096 characters")]
    InvalidComment,
    /// A reloaded policy set does not load; the previous one stays.
    #[error("policy reload failed; the previous policy set stays in force: {0}")]
    PolicyInvalid(String),
    /// The source failed authentication too often.
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    /// The gateway is shutting down; waiters are answered with this.
    #[error("the gateway is shutting down; retry shortly")]
    ShuttingDown,
    /// The store did not answer; nothing was changed. The detail is for
    /// the log only.
    #[error("the store is unavailable; nothing was changed")]
    Unavailable(String),
    /// The store failed in a way it should not (corrupt, a bug). The
    /// detail is for the log only.
    #[error("internal error")]
    Internal(String),
}

/// A source that failed authentication too often, and how long until it
/// may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts from this address; retry in {retry_after_secs}s")]
pub struct RateLimited {
    pub retry_after_secs: u64,
}

impl RateLimited {
    /// The stable error code API clients read.
    pub fn code(&self) -> &'static str {
        RATE_LIMITED
    }
}

/// Whose doing an error is: the first thing every channel, the console and
/// the MCP proxy need to know, decided here once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The caller did not prove who it is.
    Unauthenticated,
    /// No such request, or not one the caller may see.
    NotFound,
    /// The caller's move was refused (by the state machine, a rule, a limit).
    Caller,
    /// The gateway could not do it (store, shutdown): not the caller's doing.
    Gateway,
}

impl GatewayError {
    /// Whose doing this is.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Unauthenticated(AuthError::Missing | AuthError::Malformed | AuthError::Rejected) => {
                Blame::Unauthenticated
            }
            Self::NotFound { .. } => Blame::NotFound,
            Self::AlreadyExists { .. }
            | Self::HumansOnly
            | Self::NoEmail
            | Self::Refused(_)
            | Self::InvalidAction(_)
            | Self::Unfingerprintable(_)
            | Self::InvalidComment
            | Self::PolicyInvalid(_)
            | Self::RateLimited(_) => Blame::Caller,
            Self::Unauthenticated(AuthError::Store(_))
            | Self::ShuttingDown
            | Self::Unavailable(_)
            | Self::Internal(_) => Blame::Gateway,
        }
    }

    /// The stable error code API clients read.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(AuthError::Store(_)) | Self::Unavailable(_) => "store_unavailable",
            Self::Unauthenticated(AuthError::Missing | AuthError::Malformed | AuthError::Rejected) => "unauthenticated",
            Self::NotFound { .. } => "not_found",
            Self::AlreadyExists { .. } => "already_exists",
            Self::HumansOnly => "humans_only",
            Self::NoEmail => "no_email",
            Self::Refused(refusal) => refusal.code(),
            Self::InvalidAction(ActionError::TooDeep { .. }) => "payload_too_deep",
            Self::InvalidAction(ActionError::TooManyValues) => "payload_too_complex",
            Self::InvalidAction(_) | Self::Unfingerprintable(_) => "invalid_action",
            Self::InvalidComment => "invalid_comment",
            Self::PolicyInvalid(_) => "policy_invalid",
            Self::RateLimited(_) => RATE_LIMITED,
            Self::ShuttingDown => "shutting_down",
            Self::Internal(_) => "internal",
        }
    }

    /// What went wrong inside, for the log; `None` when the message says
    /// it all.
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::Unavailable(detail) | Self::Internal(detail) => Some(detail.clone()),
            Self::Unauthenticated(AuthError::Store(e)) => Some(e.to_string()),
            Self::Unauthenticated(AuthError::Missing | AuthError::Malformed | AuthError::Rejected)
            | Self::NotFound { .. }
            | Self::AlreadyExists { .. }
            | Self::HumansOnly
            | Self::NoEmail
            | Self::Refused(_)
            | Self::InvalidAction(_)
            | Self::Unfingerprintable(_)
            | Self::InvalidComment
            | Self::PolicyInvalid(_)
            | Self::RateLimited(_)
            | Self::ShuttingDown => None,
        }
    }

    /// No action `id` the caller may see.
    pub fn not_found(id: &str) -> Self {
        Self::NotFound { what: "action", id: id.to_owned() }
    }
}

/// Why a caller is not identified, without the store's detail.
fn unauthenticated(error: &AuthError) -> String {
    match error {
        AuthError::Store(_) => "identity lookup failed: the store is unavailable".to_owned(),
        AuthError::Missing | AuthError::Malformed | AuthError::Rejected => error.to_string(),
    }
}

impl From<StoreError> for GatewayError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what, name } => Self::NotFound { what, id: name },
            StoreError::AlreadyExists { what, name } => Self::AlreadyExists { what, name },
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Corrupt(detail) | StoreError::Internal(detail) => Self::Internal(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_detail_stays_out_of_the_message() {
        let e = GatewayError::from(StoreError::Unavailable("disk I/O error at /data".into()));
        assert!(!e.to_string().contains("/data"));
        assert_eq!(e.detail().as_deref(), Some("disk I/O error at /data"));
        let e = GatewayError::from(StoreError::Internal("SELECT * FROM secret_table".into()));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.code(), "internal");
    }

    #[test]
    fn refusals_keep_their_codes() {
        assert_eq!(GatewayError::Refused(Refusal::SelfApproval).code(), "self_approval");
        assert_eq!(GatewayError::RateLimited(RateLimited { retry_after_secs: 3 }).code(), "rate_limited");
    }
}
