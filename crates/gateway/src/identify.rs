//! Who is calling: bearer credentials turned into a [`Principal`].
//!
//! Identity sits behind [`Authenticator`] so that IdP-issued JWTs for humans
//! and workload tokens for agents can be added beside the local tokens.
//! Local tokens are 256-bit random strings; only their SHA-256 is stored,
//! and every call looks the hash up afresh, so a revocation takes effect on
//! the next request.

use std::sync::Arc;

use async_trait::async_trait;
use countersign_core::{Principal, PrincipalKind};
use countersign_store::{Store, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::directory::Directory;

/// Why a caller could not be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing `Authorization: Bearer <token>` header")]
    Missing,
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the token is unknown or revoked")]
    Rejected,
    #[error("identity lookup failed: {0}")]
    Store(#[from] StoreError),
}

/// Turns a bearer credential into a principal.
#[async_trait]
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError>;
}

/// How a caller proved who they are, for rules that care (step-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthContext {
    /// A bearer token, an API key, a chat account: no fresh login.
    Credential,
    /// A web-console session; `auth_time` is when the identity provider
    /// last authenticated the person.
    WebSession { auth_time: countersign_core::Timestamp },
}

/// The personal tokens and agent keys issued by `users add` / `agents add`.
#[derive(Debug, Clone)]
pub struct LocalTokens {
    directory: Directory,
}

impl LocalTokens {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::of(Directory::new(store))
    }

    /// The tokens of the people and agents in `directory`.
    pub fn of(directory: Directory) -> Self {
        Self { directory }
    }
}

#[async_trait]
impl Authenticator for LocalTokens {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        if !looks_like_token(bearer) {
            return Err(AuthError::Malformed);
        }
        self.directory.principal_by_token_hash(&hash_token(bearer)).await?.ok_or(AuthError::Rejected)
    }
}

/// The prefix of a user's personal token.
pub const USER_TOKEN_PREFIX: &str = "csu_";
/// The prefix of an agent's key.
pub const AGENT_TOKEN_PREFIX: &str = "csa_";

/// A fresh random credential for a principal of `kind`, and its hash.
pub fn new_token(kind: PrincipalKind) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let prefix = match kind {
        PrincipalKind::User => USER_TOKEN_PREFIX,
        PrincipalKind::Agent => AGENT_TOKEN_PREFIX,
    };
    let token = format!("{prefix}{}", hex::encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// The SHA-256 hex digest under which a credential is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn looks_like_token(token: &str) -> bool {
    (token.starts_with(USER_TOKEN_PREFIX) || token.starts_with(AGENT_TOKEN_PREFIX))
        && token.len() == 4 + 64
        && token[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token(PrincipalKind::Agent);
        let (b, _) = new_token(PrincipalKind::Agent);
        assert_ne!(a, b);
        assert!(a.starts_with("csa_"));
        assert!(looks_like_token(&a));
        assert_eq!(ha, hash_token(&a));
        assert_ne!(ha, a);
        assert!(!looks_like_token("csa_xyz"));
    }
}
