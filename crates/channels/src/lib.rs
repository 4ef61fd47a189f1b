//! Approvals where teams already work: Slack, Microsoft Teams and signed
//! webhooks.
//!
//! - [`outbox`]: the durable delivery worker. The audit log is the outbox:
//!   every change of a request is an audit event committed in the same
//!   transaction as the change, so a notification can never be lost or
//!   announce a change that did not happen. Each channel keeps its own
//!   cursor in the store's key-value area and retries with backoff, so a
//!   channel that is down delays only itself.
//! - [`Notifier`]: what a channel implements ([`slack`], [`teams`],
//!   [`webhook`]).
//! - [`card`]: the review card every channel shows (what, who, why,
//!   risk, history, links), with secrets redacted ([`redact`]).
//! - [`slack::interactions`] and [`teams::invoke`]: clicks coming back.
//!   They authenticate by Slack signature or Bot Framework JWT, not by the
//!   gateway's bearer tokens, and then go through
//!   [`countersign_gateway::AppState::vote`], so every approval rule and the
//!   audit apply unchanged.
//!
//! - [`config`]: the `[slack]`, `[teams]`, `[[webhooks]]` and `[channels]`
//!   sections.
//! - [`health`]: up/down, last error, last delivery and backlog of each
//!   channel, for the console's admin page.
//!
//! [`Channels::new`] builds everything from the channels' config sections;
//! [`Channels::router`] is merged into the gateway's routes and
//! [`Channels::spawn`] starts the workers.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod chat;
pub mod config;
pub mod escalation;
pub mod events;
pub mod health;
mod http;
pub mod identity;
mod inbound;
pub mod notifying;
pub mod outbox;
pub mod slack;
pub mod teams;
pub mod webhook;

// The card every channel renders lives in its own crate so the console
// shows the same content; these names keep the channels' paths short.
pub use countersign_cards::{card, redact};

use std::sync::Arc;

use axum::Router;
use countersign_gateway::AppState;

pub use config::ChannelsConfig;
pub use events::{Change, ChangeKind};
pub use outbox::{DeliveryError, Notifier, OutboxOptions, Sink};

impl From<redact::InvalidPattern> for SetupError {
    fn from(e: redact::InvalidPattern) -> Self {
        Self::Redact { pattern: e.pattern, reason: e.reason }
    }
}

/// Why the channels could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("`channels.redact`: `{pattern}` is not a regular expression: {reason}")]
    Redact { pattern: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    #[error("`teams`: {0}")]
    Teams(String),
}

/// Every configured channel: the notifiers, the click handlers, and the
/// workers that feed them.
#[derive(Debug, Clone)]
pub struct Channels {
    state: AppState,
    slack: Option<Arc<slack::Slack>>,
    teams: Option<Arc<teams::Teams>>,
    webhooks: Vec<Arc<webhook::Webhook>>,
    options: OutboxOptions,
}

impl Channels {
    /// Builds the channels `config` names (none is fine).
    pub fn new(state: AppState, config: &ChannelsConfig) -> Result<Self, SetupError> {
        Self::with_options(state, config, OutboxOptions::default())
    }

    /// As [`Channels::new`], with delivery timings chosen by the caller (tests).
    pub fn with_options(
        state: AppState,
        config: &ChannelsConfig,
        mut options: OutboxOptions,
    ) -> Result<Self, SetupError> {
        options.max_backoff = options.max_backoff.min(config.max_backoff);
        let redactor = Arc::new(redact::Redactor::new(&config.redact)?);
        let http = http::client()?;
        let cards = card::CardBuilder::new(state.request_reader(), state.config().public_url.clone(), redactor)
            .with_sql_dialects(state.config().sql_dialects.clone());
        let slack =
            config.slack.clone().map(|c| Arc::new(slack::Slack::new(state.clone(), c, http.clone(), cards.clone())));
        let teams = config
            .teams
            .clone()
            .map(|c| teams::Teams::new(state.clone(), c, http.clone(), cards.clone()).map(Arc::new))
            .transpose()?;
        let webhooks = config
            .webhooks
            .iter()
            .enumerate()
            .map(|(index, c)| {
                Arc::new(webhook::Webhook::new(state.clone(), index, c.clone(), http.clone(), cards.clone()))
            })
            .collect();
        Ok(Self { state, slack, teams, webhooks, options })
    }

    /// The integration routes. They carry their own authentication (Slack
    /// signatures, Bot Framework JWTs) and never the gateway's bearer auth.
    pub fn router(&self) -> Router {
        let mut router = Router::new();
        if let Some(slack) = &self.slack {
            router = router.merge(slack::interactions::router(slack.clone()));
        }
        if let Some(teams) = &self.teams {
            router = router.merge(teams::invoke::router(teams.clone()));
        }
        router
    }

    /// Every notifier, as the outbox sees them.
    pub fn notifiers(&self) -> Vec<Arc<dyn Notifier>> {
        let mut all: Vec<Arc<dyn Notifier>> = Vec::new();
        if let Some(slack) = &self.slack {
            all.push(slack.clone());
        }
        if let Some(teams) = &self.teams {
            all.push(teams.clone());
        }
        all.extend(self.webhooks.iter().map(|w| w.clone() as Arc<dyn Notifier>));
        all
    }

    /// Every notifier as an outbox sink.
    fn sinks(&self) -> Vec<Arc<dyn Sink>> {
        self.notifiers()
            .into_iter()
            .map(|n| Arc::new(notifying::Notifying::new(self.state.clone(), n)) as Arc<dyn Sink>)
            .collect()
    }

    /// One health probe per channel, for the console's admin page.
    pub fn health(&self) -> Vec<health::Probe> {
        self.sinks().into_iter().map(|s| health::Probe::new(self.state.clone(), s)).collect()
    }

    /// Starts one delivery worker per channel, the escalation scanner, and
    /// Socket Mode when Slack has an app token. They stop when the gateway
    /// shuts down.
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let sinks = self.sinks();
        if sinks.is_empty() {
            return tasks;
        }
        for sink in sinks {
            tasks.push(tokio::spawn(outbox::run(self.state.clone(), sink, self.options.clone())));
        }
        tasks.push(tokio::spawn(escalation::run(self.state.clone(), self.options.clone())));
        if let Some(slack) = &self.slack {
            if slack.config.app_token.is_some() {
                tasks.push(tokio::spawn(slack::socket::run(slack.clone())));
            }
        }
        tasks
    }
}

/// The integration routes `config` asks for (empty if none).
pub fn router(state: AppState, config: &ChannelsConfig) -> Result<Router, SetupError> {
    Ok(Channels::new(state, config)?.router())
}
