//! Slack as an outbox channel: post the card where its requirements say
//! (`@slack_channel`, else `[slack] channel`), update every copy as the
//! request moves, DM the requester's owner once it is decided, and post
//! escalations to a channel or to each member of a group (a `teams:`
//! target is left to Teams).

use async_trait::async_trait;
use countersign_core::{PrincipalKind, Request, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{blocks, Slack};
use crate::card::{CardBuilder, ReviewCard};
use crate::chat::Chat;
use crate::events::Change;
use crate::outbox::{DeliveryError, KV};

/// A posted copy of a request's card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Posted {
    /// The channel as configured (`#ops`), or `dm:<user>` / `escalation:<to>`.
    target: String,
    /// Slack's channel id and the message timestamp, for `chat.update`.
    channel: String,
    ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[async_trait]
impl Chat for Slack {
    fn name(&self) -> String {
        "slack".to_owned()
    }

    fn target(&self) -> String {
        crate::health::origin(&self.config.api_base_url)
    }

    fn cards(&self) -> &CardBuilder {
        &self.cards
    }

    /// Posts the card to every target not yet holding it, and updates the rest.
    async fn show(&self, request: &Request, card: &ReviewCard) -> Result<(), DeliveryError> {
        let mut posted = self.posted(&request.id).await?;
        for copy in &posted {
            let (text, blocks) = blocks::message(card, copy.note.as_deref());
            self.api.update(&copy.channel, &copy.ts, &text, &blocks).await?;
        }
        let targets = self.targets(request);
        if targets.is_empty() && posted.is_empty() {
            return Err(DeliveryError::Permanent(
                "no Slack channel: set `[slack] channel` or `@slack_channel` on the policy".to_owned(),
            ));
        }
        for target in targets {
            if posted.iter().any(|p| p.target == target) {
                continue;
            }
            let (text, blocks) = blocks::message(card, None);
            let (channel, ts) = self.api.post_message(&target, &text, &blocks).await?;
            posted.push(Posted { target, channel, ts, note: None });
            // Saved after each post, so a retry after a failure half-way does
            // not post the card twice to the channels that already have it.
            self.save_posted(&request.id, &posted).await?;
        }
        Ok(())
    }

    /// Once decided, a DM to the requester's owner (or the requesting user).
    async fn tell_owner(&self, request: &Request, card: &ReviewCard) -> Result<(), DeliveryError> {
        if request.status == Status::Pending {
            return Ok(());
        }
        let key = format!("slack:dm:{}", request.id);
        let kv = self.state.key_values(KV);
        if kv.get(&key).await?.is_some() {
            return Ok(());
        }
        let owner = match request.principal.kind {
            PrincipalKind::Agent => request.owner.clone(),
            PrincipalKind::User => Some(request.principal.name.clone()),
        };
        let user = match owner {
            Some(name) => self.state.directory().user(&name).await?,
            None => None,
        };
        if let Some(user) = user {
            match self.api.user_by_email(&user.email).await? {
                Some(account) => {
                    let channel = self.api.open_dm(&account).await?;
                    let text = blocks::summary(card);
                    let blocks = vec![
                        serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}),
                        serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn",
                            "text": format!("<{}|Open in the API> · <{}|Console>", card.api_url, card.console_url)}]}),
                    ];
                    self.api.post_message(&channel, &text, &blocks).await?;
                }
                None => tracing::debug!(user = %user.name, "the owner has no Slack account with their email; no DM"),
            }
        }
        kv.compare_and_set(&key, None, Some(request.status.as_str().to_owned())).await?;
        Ok(())
    }

    /// Posts the card, marked as escalated, to a channel or to each member of a group.
    async fn escalate(&self, change: &Change, request: &Request, card: &ReviewCard) -> Result<(), DeliveryError> {
        if request.status != Status::Pending {
            return Ok(());
        }
        let to = change.details.get("to").and_then(Value::as_str).unwrap_or_default().to_owned();
        if to.starts_with(crate::teams::ESCALATION_PREFIX) {
            // A Teams conversation: Teams posts it.
            return Ok(());
        }
        let after = change.details.get("after").and_then(Value::as_str).unwrap_or("its deadline");
        let note = format!("⏰ Escalated: still waiting for approval after {after}");
        let mut posted = self.posted(&request.id).await?;
        let key = format!("escalation:{to}:{}", change.seq);
        let targets: Vec<(String, String)> = if is_channel(&to) {
            vec![(key.clone(), to.clone())]
        } else {
            let mut dms = Vec::new();
            for user in self.state.directory().users().await? {
                if user.revoked_at.is_some() || !user.groups.contains(&to) {
                    continue;
                }
                if let Some(account) = self.api.user_by_email(&user.email).await? {
                    dms.push((format!("{key}:{}", user.name), self.api.open_dm(&account).await?));
                }
            }
            dms
        };
        if targets.is_empty() {
            return Err(DeliveryError::Permanent(format!("no Slack account for anyone in group `{to}`")));
        }
        for (target, channel) in targets {
            if posted.iter().any(|p| p.target == target) {
                continue;
            }
            let (text, blocks) = blocks::message(card, Some(&note));
            let (channel, ts) = self.api.post_message(&channel, &format!("{note}: {text}"), &blocks).await?;
            posted.push(Posted { target, channel, ts, note: Some(note.clone()) });
            self.save_posted(&request.id, &posted).await?;
        }
        Ok(())
    }
}

impl Slack {
    /// The channels a request's card goes to.
    fn targets(&self, request: &Request) -> Vec<String> {
        let mut targets: Vec<String> = Vec::new();
        for requirement in &request.requirements {
            let target = requirement.routing.slack_channel.clone().or_else(|| self.config.channel.clone());
            if let Some(target) = target {
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
        targets
    }

    async fn posted(&self, id: &str) -> Result<Vec<Posted>, DeliveryError> {
        let text = self.state.key_values(KV).get(&format!("slack:msg:{id}")).await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    async fn save_posted(&self, id: &str, posted: &[Posted]) -> Result<(), DeliveryError> {
        let key = format!("slack:msg:{id}");
        let kv = self.state.key_values(KV);
        let value = serde_json::to_string(posted).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        // One worker holds the channel, so this loop ends at once unless the
        // value changed under us; then the newest list wins.
        for _ in 0..3 {
            let current = kv.get(&key).await?;
            if kv.compare_and_set(&key, current, Some(value.clone())).await? {
                return Ok(());
            }
        }
        Err(DeliveryError::Transient("the message list kept changing".to_owned()))
    }
}

/// `#name`, or a Slack channel id (`C…`, `G…`).
fn is_channel(target: &str) -> bool {
    target.starts_with('#')
        || ((target.starts_with('C') || target.starts_with('G'))
            && target.len() >= 9
            && target.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_groups_are_told_apart() {
        assert!(is_channel("#prod-approvals"));
        assert!(is_channel("C0123456789"));
        assert!(!is_channel("sre-leads"));
        assert!(!is_channel("Carol"));
    }
}
