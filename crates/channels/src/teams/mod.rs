//! Microsoft Teams: a Bot Framework bot posts an Adaptive Card (schema
//! 1.5, `Action.Execute` with `Action.Submit` as the fallback) to a
//! configured channel or chat, updates it as the request moves, and takes
//! clicks at `POST /v1/integrations/teams/messages` ([`invoke`]) after
//! validating the Bot Framework JWT ([`jwt`]).

pub mod accounts;
pub mod card;
pub mod connector;
pub mod invoke;
pub mod jwt;
mod notifier;

pub use notifier::ESCALATION_PREFIX;

use crate::config::TeamsConfig;
use countersign_core::Request;
use countersign_gateway::AppState;
use countersign_store::User;

use countersign_gateway::directory::{EmailAssertion, MatchError};

use crate::card::CardBuilder;
use crate::identity;
use crate::SetupError;

/// The Teams integration.
#[derive(Debug)]
pub struct Teams {
    pub(crate) state: AppState,
    pub config: TeamsConfig,
    pub connector: connector::Connector,
    pub auth: jwt::BotAuth,
    pub(crate) cards: CardBuilder,
}

/// Why a Teams account cannot act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmapped {
    #[error("no countersign user has the email or sign-in name `{0}`; ask an admin to add you")]
    Unknown(String),
    #[error("Teams did not say who you are; ask an admin to map your account in `[teams] users`")]
    Anonymous,
    #[error("`[teams] users` maps your account to `{0}`, which does not exist or was revoked")]
    UnknownMapping(String),
    #[error("cannot look up your Teams account right now; try again")]
    Unavailable,
    #[error("{0}")]
    Refused(String),
}

impl Teams {
    pub(crate) fn new(
        state: AppState,
        config: TeamsConfig,
        http: reqwest::Client,
        cards: CardBuilder,
    ) -> Result<Self, SetupError> {
        let connector = connector::Connector::new(http.clone(), &config)?;
        let auth = jwt::BotAuth::new(http, config.openid_metadata_url.clone(), config.app_id.clone());
        Ok(Self { state, config, connector, auth, cards })
    }

    /// The countersign user behind the Teams account that clicked: by
    /// `[teams] users` (Entra object id), else by the email or UPN the Bot
    /// Connector reports for the conversation member, under the one rule of
    /// [`countersign_gateway::directory`].
    pub async fn user_for(
        &self,
        service_url: &str,
        conversation: &str,
        member: &str,
        aad_object_id: Option<&str>,
        tenant: Option<&str>,
        request: Option<&Request>,
    ) -> Result<User, Unmapped> {
        if let Some(name) = aad_object_id.and_then(|id| self.config.users.get(id)) {
            return match identity::by_name(&self.state, name).await {
                Ok(Some(user)) => Ok(user),
                Ok(None) => Err(Unmapped::UnknownMapping(name.clone())),
                Err(_) => Err(Unmapped::Unavailable),
            };
        }
        if member.is_empty() {
            return Err(Unmapped::Anonymous);
        }
        let found = self.connector.member(service_url, conversation, member).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read the Teams member");
            Unmapped::Unavailable
        })?;
        // The address and sign-in name come from the tenant's directory,
        // through the Bot Connector: the tenant vouches for them. The
        // account is the Entra object id (else the member id) in its tenant.
        let subject = found.aad_object_id.clone().or_else(|| aad_object_id.map(str::to_owned));
        let subject = subject.unwrap_or_else(|| member.to_owned());
        let source = format!("teams:{}", tenant.unwrap_or_default());
        for address in [found.email, found.user_principal_name].into_iter().flatten() {
            let assertion =
                EmailAssertion { source: source.clone(), subject: subject.clone(), email: address, verified: true };
            match identity::by_email(&self.state, &assertion, request).await {
                Ok(Some(user)) => return Ok(user),
                Ok(None) => {}
                Err(MatchError::Store(_)) => return Err(Unmapped::Unavailable),
                Err(e @ (MatchError::Unverified(_) | MatchError::Revoked(_) | MatchError::BoundToAnother { .. })) => {
                    return Err(Unmapped::Refused(e.to_string()))
                }
            }
        }
        Err(Unmapped::Unknown(found.display))
    }
}
