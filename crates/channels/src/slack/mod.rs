//! Slack: a Block Kit review card per request, updated with `chat.update`
//! as approvals arrive and when it ends; Approve / Approve with comment /
//! Deny buttons (the last two open a modal asking for a reason); a DM to
//! the requester's owner once it is decided; clicks over HTTP
//! ([`interactions`]) or Socket Mode ([`socket`]).

pub mod api;
pub mod blocks;
pub mod interactions;
mod notifier;
pub mod signature;
pub mod socket;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::SlackConfig;
use countersign_core::Request;
use countersign_gateway::AppState;
use countersign_store::User;

use countersign_gateway::directory::{EmailAssertion, MatchError};

use crate::card::CardBuilder;
use crate::identity;

/// How long a Slack user's email is trusted before `users.info` is asked again.
const EMAIL_TTL: Duration = Duration::from_secs(600);

/// The Slack integration.
#[derive(Debug)]
pub struct Slack {
    pub(crate) state: AppState,
    pub config: SlackConfig,
    pub api: api::SlackApi,
    pub(crate) cards: CardBuilder,
    emails: Mutex<HashMap<String, (Option<api::SlackEmail>, Instant)>>,
}

/// Why a Slack account cannot act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmapped {
    #[error("your Slack account has no email countersign can see; ask an admin to map `{0}` in `[slack] users`")]
    NoEmail(String),
    #[error("no countersign user has the email `{0}` of your Slack account; ask an admin to add you")]
    UnknownEmail(String),
    #[error("{0}; ask an admin to map `{1}` in `[slack] users`")]
    Refused(String, String),
    #[error("`[slack] users` maps your Slack account to `{0}`, which does not exist or was revoked")]
    UnknownMapping(String),
    #[error("cannot look up your Slack account right now; try again")]
    Unavailable,
}

impl Slack {
    pub(crate) fn new(state: AppState, config: SlackConfig, http: reqwest::Client, cards: CardBuilder) -> Self {
        let api = api::SlackApi::new(http, config.api_base_url.clone(), config.bot_token.clone());
        Self { state, config, api, cards, emails: Mutex::new(HashMap::new()) }
    }

    /// The countersign user behind Slack account `account`, preferring an
    /// identity that can decide `request`.
    pub async fn user_for(&self, account: &str, request: Option<&Request>) -> Result<User, Unmapped> {
        if let Some(name) = self.config.users.get(account) {
            return match identity::by_name(&self.state, name).await {
                Ok(Some(user)) => Ok(user),
                Ok(None) => Err(Unmapped::UnknownMapping(name.clone())),
                Err(_) => Err(Unmapped::Unavailable),
            };
        }
        let found = self.email_of(account).await?.ok_or_else(|| Unmapped::NoEmail(account.to_owned()))?;
        let assertion = EmailAssertion {
            source: format!("slack:{}", found.team),
            subject: account.to_owned(),
            email: found.email.clone(),
            verified: found.confirmed,
        };
        match identity::by_email(&self.state, &assertion, request).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(Unmapped::UnknownEmail(found.email)),
            Err(MatchError::Store(_)) => Err(Unmapped::Unavailable),
            Err(e @ (MatchError::Unverified(_) | MatchError::Revoked(_) | MatchError::BoundToAnother { .. })) => {
                Err(Unmapped::Refused(e.to_string(), account.to_owned()))
            }
        }
    }

    async fn email_of(&self, account: &str) -> Result<Option<api::SlackEmail>, Unmapped> {
        if let Ok(cache) = self.emails.lock() {
            if let Some((email, at)) = cache.get(account) {
                if at.elapsed() < EMAIL_TTL {
                    return Ok(email.clone());
                }
            }
        }
        let email = self.api.user_email(account).await.map_err(|e| {
            tracing::warn!(error = %e, "users.info failed");
            Unmapped::Unavailable
        })?;
        if let Ok(mut cache) = self.emails.lock() {
            cache.retain(|_, (_, at)| at.elapsed() < EMAIL_TTL);
            cache.insert(account.to_owned(), (email.clone(), Instant::now()));
        }
        Ok(email)
    }
}
