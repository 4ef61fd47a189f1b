//! The `[slack]`, `[teams]`, `[[webhooks]]` and `[channels]` sections: where
//! review cards go and how the chat platforms reach the gateway.
//!
//! Every secret may be given inline, in a file (`*_file`, so it can live in
//! a mounted secret), or by environment variable
//! (`COUNTERSIGN_SLACK_BOT_TOKEN`, …); the value is held as a [`Secret`] so
//! it never shows in `Debug` output or logs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use countersign_gateway::config::{duration, read_text_file, secret, ConfigError, Secret};

/// `[slack]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    /// The bot token (`xoxb-…`), for the Web API.
    pub bot_token: Option<String>,
    pub bot_token_file: Option<PathBuf>,
    /// Verifies that interactivity requests come from Slack.
    pub signing_secret: Option<String>,
    pub signing_secret_file: Option<PathBuf>,
    /// An app-level token (`xapp-…`): receive clicks over Socket Mode.
    pub app_token: Option<String>,
    pub app_token_file: Option<PathBuf>,
    /// Default `https://slack.com/api`; GovSlack: `https://slack-gov.com/api`.
    pub api_base_url: Option<String>,
    /// Where review cards go unless a policy names `@slack_channel`.
    pub channel: Option<String>,
    /// Slack user id → countersign user name, for people whose Slack email
    /// differs from their countersign email.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

/// `[teams]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeams {
    /// The bot's Microsoft App ID (the audience of incoming tokens).
    pub app_id: Option<String>,
    pub app_password: Option<String>,
    pub app_password_file: Option<PathBuf>,
    /// Instead of a password: a PEM certificate and its private key.
    pub certificate_file: Option<PathBuf>,
    pub private_key_file: Option<PathBuf>,
    /// The Entra ID tenant of the app registration. Default `botframework.com`
    /// (multi-tenant bots).
    pub tenant_id: Option<String>,
    /// Where the bot gets its own token. Default from `tenant_id`.
    pub token_url: Option<String>,
    /// Default `https://login.botframework.com/v1/.well-known/openidconfiguration`.
    pub openid_metadata_url: Option<String>,
    /// The Bot Connector service URL. Default `https://smba.trafficmanager.net/teams/`.
    pub service_url: Option<String>,
    /// The channel or chat conversation id review cards go to, unless a
    /// policy names `@teams_channel`.
    pub conversation: Option<String>,
    /// Entra ID object id → countersign user name, besides mapping by email/UPN.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

/// One `[[webhooks]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: Option<String>,
    /// Event types to send (`pending`, `approved`, …); default all.
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Give up on one delivery after this many attempts. Default 10.
    pub max_attempts: Option<u32>,
}

/// `[channels]`: what every channel shares.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannels {
    /// Regular expressions; matching text in payloads is shown as `[redacted]`.
    pub redact: Option<Vec<String>>,
    /// The longest wait between two delivery attempts. Default `5m`.
    pub max_backoff: Option<String>,
}

/// Slack, validated.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub bot_token: Secret,
    pub signing_secret: Option<Secret>,
    pub app_token: Option<Secret>,
    pub api_base_url: String,
    pub channel: Option<String>,
    pub users: BTreeMap<String, String>,
}

/// How the Teams bot proves who it is to the Bot Connector.
#[derive(Debug, Clone)]
pub enum TeamsCredential {
    Password(Secret),
    Certificate { certificate_pem: String, private_key_pem: Secret },
}

/// Microsoft Teams, validated.
#[derive(Debug, Clone)]
pub struct TeamsConfig {
    pub app_id: String,
    pub credential: TeamsCredential,
    pub token_url: String,
    pub openid_metadata_url: String,
    pub service_url: String,
    pub conversation: Option<String>,
    pub users: BTreeMap<String, String>,
}

/// A webhook, validated.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// Empty: every event.
    pub events: Vec<String>,
    pub secret: Secret,
    pub max_attempts: u32,
}

/// Everything about notification channels.
#[derive(Debug, Clone, Default)]
pub struct ChannelsConfig {
    pub slack: Option<SlackConfig>,
    pub teams: Option<TeamsConfig>,
    pub webhooks: Vec<WebhookConfig>,
    pub redact: Vec<String>,
    pub max_backoff: Duration,
}

/// The event types a webhook can filter on.
pub const WEBHOOK_EVENTS: [&str; 13] = [
    "pending",
    "allowed",
    "approval",
    "denial",
    "comment",
    "approved",
    "denied",
    "released",
    "expired",
    "cancelled",
    "revoked",
    "outcome",
    "escalated",
];

impl ChannelsConfig {
    /// Any channel configured at all.
    pub fn any(&self) -> bool {
        self.slack.is_some() || self.teams.is_some() || !self.webhooks.is_empty()
    }
}

pub fn validate(
    slack: Option<RawSlack>,
    teams: Option<RawTeams>,
    webhooks: Vec<RawWebhook>,
    channels: RawChannels,
) -> Result<ChannelsConfig, ConfigError> {
    let max_backoff = duration("channels.max_backoff", channels.max_backoff.as_deref(), Duration::from_secs(300))?;
    if max_backoff < Duration::from_secs(1) {
        return Err(ConfigError::Invalid { key: "channels.max_backoff", message: "must be at least 1s".to_owned() });
    }
    Ok(ChannelsConfig {
        slack: slack.map(validate_slack).transpose()?,
        teams: teams.map(validate_teams).transpose()?,
        webhooks: webhooks.into_iter().map(validate_webhook).collect::<Result<_, _>>()?,
        redact: channels.redact.unwrap_or_default(),
        max_backoff,
    })
}

fn validate_slack(raw: RawSlack) -> Result<SlackConfig, ConfigError> {
    let bot_token = secret("slack.bot_token", raw.bot_token, raw.bot_token_file.as_deref())?
        .ok_or_else(|| missing("slack.bot_token", "set it, `bot_token_file`, or `COUNTERSIGN_SLACK_BOT_TOKEN`"))?;
    let signing_secret = secret("slack.signing_secret", raw.signing_secret, raw.signing_secret_file.as_deref())?;
    let app_token = secret("slack.app_token", raw.app_token, raw.app_token_file.as_deref())?;
    if signing_secret.is_none() && app_token.is_none() {
        return Err(missing(
            "slack.signing_secret",
            "clicks need `signing_secret` (HTTP interactivity) or `app_token` (Socket Mode)",
        ));
    }
    let api_base_url = url("slack.api_base_url", raw.api_base_url, "https://slack.com/api")?;
    Ok(SlackConfig {
        bot_token,
        signing_secret,
        app_token,
        api_base_url: api_base_url.trim_end_matches('/').to_owned(),
        channel: raw.channel.filter(|c| !c.trim().is_empty()),
        users: raw.users,
    })
}

fn validate_teams(raw: RawTeams) -> Result<TeamsConfig, ConfigError> {
    let app_id = raw
        .app_id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| missing("teams.app_id", "the bot's Microsoft App ID"))?;
    let password = secret("teams.app_password", raw.app_password, raw.app_password_file.as_deref())?;
    let credential = match (password, raw.certificate_file, raw.private_key_file) {
        (Some(password), None, None) => TeamsCredential::Password(password),
        (None, Some(certificate), Some(key)) => TeamsCredential::Certificate {
            certificate_pem: read_file("teams.certificate_file", &certificate)?,
            private_key_pem: Secret::new(read_file("teams.private_key_file", &key)?),
        },
        (None, None, None) => {
            return Err(missing("teams.app_password", "set it, or `certificate_file` with `private_key_file`"))
        }
        (Some(_), _, _) | (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(ConfigError::Invalid {
                key: "teams.app_password",
                message: "use either `app_password` or `certificate_file` with `private_key_file`".to_owned(),
            })
        }
    };
    let tenant = raw.tenant_id.unwrap_or_else(|| "botframework.com".to_owned());
    let token_url = url(
        "teams.token_url",
        raw.token_url,
        &format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
    )?;
    let openid_metadata_url = url(
        "teams.openid_metadata_url",
        raw.openid_metadata_url,
        "https://login.botframework.com/v1/.well-known/openidconfiguration",
    )?;
    let service_url = url("teams.service_url", raw.service_url, "https://smba.trafficmanager.net/teams/")?;
    Ok(TeamsConfig {
        app_id,
        credential,
        token_url,
        openid_metadata_url,
        service_url,
        conversation: raw.conversation.filter(|c| !c.trim().is_empty()),
        users: raw.users,
    })
}

fn validate_webhook(raw: RawWebhook) -> Result<WebhookConfig, ConfigError> {
    let url = raw.url.ok_or_else(|| missing("webhooks.url", "each `[[webhooks]]` entry needs a `url`"))?;
    let url = self::url("webhooks.url", Some(url), "")?;
    let secret = secret("webhooks.secret", raw.secret, raw.secret_file.as_deref())?
        .ok_or_else(|| missing("webhooks.secret", "set `secret` or `secret_file`; receivers check the signature"))?;
    let events = raw.events.unwrap_or_default();
    if let Some(unknown) = events.iter().find(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
        return Err(ConfigError::Invalid {
            key: "webhooks.events",
            message: format!("`{unknown}` is not one of {}", WEBHOOK_EVENTS.join(", ")),
        });
    }
    let max_attempts = raw.max_attempts.unwrap_or(10);
    if max_attempts == 0 {
        return Err(ConfigError::Invalid { key: "webhooks.max_attempts", message: "must be at least 1".to_owned() });
    }
    Ok(WebhookConfig { url, events, secret, max_attempts })
}

fn missing(key: &'static str, hint: &str) -> ConfigError {
    ConfigError::Invalid { key, message: format!("missing: {hint}") }
}

fn read_file(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    read_text_file(path).map_err(|e| ConfigError::Invalid { key, message: e.to_string() })
}

fn url(key: &'static str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    let ok = rest.is_some_and(|rest| !rest.is_empty()) && !value.chars().any(char::is_whitespace);
    if ok {
        Ok(value)
    } else {
        Err(ConfigError::Invalid { key, message: format!("`{value}` is not an http(s) URL") })
    }
}
