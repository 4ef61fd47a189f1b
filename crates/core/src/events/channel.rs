//! The events of the chat and webhook channels: outboxes starting, clicks on
//! cards, webhook delivery attempts.

use serde::{Deserialize, Serialize};

/// `channel.started`: a channel's outbox starts at this point of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStarted {
    pub channel: String,
}

/// `channel.click`: a click on a chat card, accepted or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelClick {
    /// `slack` or `teams`.
    pub channel: String,
    /// The chat account.
    pub account: String,
    /// The countersign user it mapped to, if any.
    pub user: Option<String>,
    /// The request clicked on.
    pub request: String,
    pub action: String,
    /// Why the click was refused, if it was.
    pub refused: Option<String>,
}

/// `webhook.delivery`: one attempt to deliver a change to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub webhook: String,
    /// The receiver's host and port (never its path or query).
    pub target: String,
    /// The delivered audit event's hash.
    pub event_id: String,
    /// The change, as webhooks name it (`approved`, `comment`, …).
    pub event: String,
    pub request: String,
    pub attempt: u32,
    pub ok: bool,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
}
