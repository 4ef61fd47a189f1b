//! Who people and workloads are, as the organisation's identity systems
//! say: single sign-on with an OpenID Connect provider, the provider's JWTs
//! as API bearer tokens, and workload-identity tokens for agents.
//!
//! - [`oidc`]: the relying party (authorization code + PKCE, state, nonce,
//!   step-up through `max_age`, RP-initiated logout);
//! - [`verifier`]: one verifier for every JWT from outside (providers,
//!   workload issuers, the Bot Framework for Teams), built of [`discovery`],
//!   [`jwks`] (keys cached and fetched again on an unknown `kid`, one
//!   refetch policy) and [`jwt`] (signature, issuer, audience and expiry
//!   checks);
//! - [`workload`]: `[[workload_identity]]` issuers and claim-mapping rules;
//! - [`accounts`]: people the provider vouches for as countersign users,
//!   matched by email under the gateway's one rule
//!   ([`countersign_gateway::directory`]) or created at first login;
//! - [`config`]: the `[oidc]`, `[[workload_identity]]` and `[console]`
//!   sections;
//! - [`chain`]: the [`Authenticator`](countersign_gateway::identify::Authenticator)
//!   the gateway's API uses.
//!
//! [`Identity::from_config`] builds all of it; nothing touches the network
//! until a login or a token needs it, so the gateway starts while the
//! provider is down.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accounts;
pub mod chain;
pub mod claims;
pub mod config;
pub mod discovery;
pub mod http;
pub mod jwks;
pub mod jwt;
pub mod oidc;
pub mod verifier;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

use countersign_gateway::directory::Directory;
use countersign_gateway::identify::{Authenticator, LocalTokens};
use countersign_store::Store;

pub use accounts::Accounts;
pub use claims::UserClaims;
pub use config::IdentityConfig;
pub use http::{install_crypto_provider, FetchError};
pub use oidc::{Login, LoginError, OidcClient, PendingLogin};

/// The identity services of one gateway.
#[derive(Debug, Clone)]
pub struct Identity {
    pub oidc: Option<Arc<OidcClient>>,
    pub workloads: Vec<Arc<workload::WorkloadIssuer>>,
    pub accounts: Accounts,
    pub local_tokens_for_humans: bool,
    /// The `[oidc]`, `[[workload_identity]]` and `[console]` sections.
    pub config: IdentityConfig,
    store: Arc<dyn Store>,
}

impl Identity {
    /// Builds the services the configuration asks for.
    pub fn from_config(config: &IdentityConfig, store: Arc<dyn Store>) -> Result<Self, FetchError> {
        let needs_client = config.oidc.is_some() || !config.workload_identity.is_empty();
        let client = if needs_client { Some(http::client()?) } else { None };
        let oidc = match (&config.oidc, &client) {
            (Some(oidc), Some(client)) => Some(Arc::new(OidcClient::new(oidc.clone(), client.clone()))),
            (Some(_), None) | (None, _) => None,
        };
        let workloads = match &client {
            Some(client) => config
                .workload_identity
                .iter()
                .map(|w| Arc::new(workload::WorkloadIssuer::new(w.clone(), client.clone())))
                .collect(),
            None => Vec::new(),
        };
        Ok(Self {
            oidc,
            workloads,
            accounts: Accounts::new(Directory::new(store.clone())),
            local_tokens_for_humans: config.local_tokens_for_humans,
            config: config.clone(),
            store,
        })
    }

    /// The API's authenticator.
    pub fn authenticator(&self) -> Arc<dyn Authenticator> {
        Arc::new(chain::Chain {
            local: LocalTokens::new(self.store.clone()),
            local_tokens_for_humans: self.local_tokens_for_humans,
            oidc: self.oidc.clone(),
            accounts: self.accounts.clone(),
            workloads: self.workloads.clone(),
            directory: Directory::new(self.store.clone()),
        })
    }

    /// The state of every identity integration, for the admin page.
    pub async fn health(&self) -> Vec<Health> {
        let mut all = Vec::new();
        if let Some(oidc) = &self.oidc {
            all.push(oidc.health().await);
        }
        for workload in &self.workloads {
            all.push(workload.health().await);
        }
        all
    }
}

/// How one integration is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub name: String,
    pub target: String,
    pub ok: bool,
    pub detail: String,
}

impl Health {
    fn from_parts(
        name: &str,
        target: &str,
        discovery_error: Option<FetchError>,
        keys: Option<(usize, Option<Duration>, Option<String>)>,
    ) -> Self {
        let (ok, detail) = match (discovery_error, keys) {
            (Some(e), _) => (false, e.to_string()),
            (None, Some((_, _, Some(error)))) => (false, format!("cannot fetch signing keys: {error}")),
            (None, Some((count, Some(age), None))) => (
                true,
                format!("{count} signing keys, fetched {} ago", countersign_core::clock::format_duration(round(age))),
            ),
            (None, Some((_, None, None)) | None) => (true, "reachable; signing keys not fetched yet".to_owned()),
        };
        Self { name: name.to_owned(), target: target.to_owned(), ok, detail }
    }
}

fn round(age: Duration) -> Duration {
    Duration::from_secs(age.as_secs())
}
