//! The API's authenticator chain: local tokens (`csu_…`, `csa_…`) first,
//! then JWTs, routed by their (unverified) issuer to the identity provider
//! (people) or to a workload-identity issuer (agents). A JWT from any other
//! issuer is refused without a network call.

use std::sync::Arc;

use async_trait::async_trait;
use countersign_core::Principal;
use countersign_gateway::directory::Directory;
use countersign_gateway::identify::{AuthError, Authenticator, LocalTokens, AGENT_TOKEN_PREFIX, USER_TOKEN_PREFIX};

use crate::accounts::{AccountError, Accounts};
use crate::jwt;
use crate::oidc::{LoginError, OidcClient};
use crate::workload::{WorkloadError, WorkloadIssuer};

/// Every way an API caller can prove who they are.
#[derive(Debug)]
pub struct Chain {
    pub(crate) local: LocalTokens,
    pub(crate) local_tokens_for_humans: bool,
    pub(crate) oidc: Option<Arc<OidcClient>>,
    pub(crate) accounts: Accounts,
    pub(crate) workloads: Vec<Arc<WorkloadIssuer>>,
    pub(crate) directory: Directory,
}

#[async_trait]
impl Authenticator for Chain {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        if bearer.starts_with(USER_TOKEN_PREFIX) || bearer.starts_with(AGENT_TOKEN_PREFIX) {
            let principal = self.local.authenticate(bearer).await?;
            if principal.is_user() && !self.local_tokens_for_humans {
                tracing::info!(user = %principal.name, "refused a personal token: people sign in through the identity provider");
                return Err(AuthError::Rejected);
            }
            return Ok(principal);
        }
        let iss = jwt::peek_issuer(bearer).ok_or(AuthError::Malformed)?;
        let issuer = iss.trim_end_matches('/');
        if let Some(oidc) = self.oidc.as_ref().filter(|o| o.issuer() == issuer) {
            let person = oidc.verify_bearer(bearer).await.map_err(|e| {
                log_refusal("identity provider", &e);
                AuthError::Rejected
            })?;
            return self.accounts.principal(&person).await.map_err(|e| match e {
                AccountError::Store(e) => AuthError::Store(e),
                AccountError::Revoked(_) | AccountError::NameTaken(_) | AccountError::Match(_) => {
                    tracing::info!(error = %e, "refused an identity-provider token");
                    AuthError::Rejected
                }
            });
        }
        if let Some(workload) = self.workloads.iter().find(|w| w.issuer() == issuer) {
            return workload.authenticate(bearer, &iss, &self.directory).await.map_err(|e| match e {
                WorkloadError::Store(e) => AuthError::Store(e),
                WorkloadError::Token(_) | WorkloadError::NoRule(_) | WorkloadError::UnknownAgent(_) => {
                    tracing::info!(issuer = %workload.name(), error = %e, "refused a workload token");
                    AuthError::Rejected
                }
            });
        }
        tracing::info!(issuer = %iss.chars().take(200).collect::<String>(), "refused a token from an untrusted issuer");
        Err(AuthError::Rejected)
    }
}

fn log_refusal(source: &str, error: &LoginError) {
    match error {
        LoginError::Provider(e) => tracing::warn!(source, error = %e, "cannot check a bearer token"),
        LoginError::State | LoginError::Refused(_) | LoginError::Token(_) | LoginError::Claims(_) => {
            tracing::info!(source, error = %error, "refused a bearer token")
        }
    }
}
