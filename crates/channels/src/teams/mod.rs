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

use countersign_core::Request;
use countersign_server::config::TeamsConfig;
use countersign_server::AppState;
use countersign_store::User;

use crate::identity;
use crate::review::CardBuilder;
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
    /// Connector reports for the conversation member.
    pub async fn user_for(
        &self,
        service_url: &str,
        conversation: &str,
        member: &str,
        aad_object_id: Option<&str>,
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
        for address in [found.email, found.user_principal_name].into_iter().flatten() {
            match identity::by_email(&self.state, &address, request).await {
                Ok(Some(user)) => return Ok(user),
                Ok(None) => {}
                Err(_) => return Err(Unmapped::Unavailable),
            }
        }
        Err(Unmapped::Unknown(found.display))
    }
}
