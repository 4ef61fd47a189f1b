//! Teams as an outbox channel: post the card to the conversation its
//! requirements name (`@teams_channel`, else `[teams] conversation`),
//! replace it as the request moves, DM the requester's owner once it is
//! decided, and post escalations to a Teams conversation
//! (`@escalate_to("teams:<conversation id>")`) or, for a group, to each
//! member whose Teams account is known ([`super::accounts`]).

use async_trait::async_trait;
use countersign_core::{PrincipalKind, Request, Status};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{card, Teams};
use crate::card::{CardBuilder, ReviewCard};
use crate::chat::Chat;
use crate::events::Change;
use crate::outbox::{DeliveryError, KV};

/// The prefix of an escalation target that names a Teams conversation.
pub const ESCALATION_PREFIX: &str = "teams:";

/// A posted card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Posted {
    pub(crate) conversation: String,
    pub(crate) service_url: String,
    pub(crate) activity: String,
    /// For escalations: what the copy says it is, and what it was posted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

#[async_trait]
impl Chat for Teams {
    fn name(&self) -> String {
        "teams".to_owned()
    }

    fn target(&self) -> String {
        crate::health::origin(&self.config.service_url)
    }

    fn cards(&self) -> &CardBuilder {
        &self.cards
    }

    /// Posts the card to every conversation not yet holding it, and replaces the rest.
    async fn show(&self, request: &Request, review: &ReviewCard) -> Result<(), DeliveryError> {
        let mut posted = self.posted(&request.id).await?;
        for copy in &posted {
            let activity = card::activity(&card::adaptive_card(review, copy.note.as_deref()), &review.headline());
            self.connector.update(&copy.service_url, &copy.conversation, &copy.activity, &activity).await?;
        }
        let mut targets: Vec<String> = Vec::new();
        for requirement in &request.requirements {
            if let Some(target) = requirement.routing.teams_channel.clone().or_else(|| self.config.conversation.clone())
            {
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
        if targets.is_empty() && posted.is_empty() {
            return Err(DeliveryError::Permanent(
                "no Teams conversation: set `[teams] conversation` or `@teams_channel` on the policy".to_owned(),
            ));
        }
        let activity = card::activity(&card::adaptive_card(review, None), &review.headline());
        for conversation in targets {
            if posted.iter().any(|p| p.target.is_none() && p.conversation == conversation) {
                continue;
            }
            let service_url = self.config.service_url.clone();
            let id = self.connector.send(&service_url, &conversation, &activity).await?;
            posted.push(Posted { conversation, service_url, activity: id, note: None, target: None });
            // Saved after each post, so a retry does not post twice.
            self.save_posted(&request.id, &posted).await?;
        }
        Ok(())
    }

    /// Once decided, a DM to the requester's owner (or the requesting
    /// user), if their Teams account is known.
    async fn tell_owner(&self, request: &Request, review: &ReviewCard) -> Result<(), DeliveryError> {
        if request.status == Status::Pending {
            return Ok(());
        }
        let key = format!("teams:dm:{}", request.id);
        let kv = self.state.key_values(KV);
        if kv.get(&key).await?.is_some() {
            return Ok(());
        }
        let owner = match request.principal.kind {
            PrincipalKind::Agent => request.owner.clone(),
            PrincipalKind::User => Some(request.principal.name.clone()),
        };
        if let Some(owner) = owner {
            match self.account(&owner).await? {
                Some(account) => {
                    let (service_url, conversation) = self.open_dm(&account).await?;
                    let result = review.result.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
                    let text = format!("Your request — {}{result}: {}", review.headline(), review.console_url);
                    let message = json!({"type": "message", "textFormat": "plain", "text": text,
                                         "summary": review.headline()});
                    self.connector.send(&service_url, &conversation, &message).await?;
                }
                None => tracing::debug!(user = %owner, "the owner has not used Teams with this bot yet; no DM"),
            }
        }
        kv.compare_and_set(&key, None, Some(request.status.as_str().to_owned())).await?;
        Ok(())
    }

    /// Posts the card, marked as escalated, to a Teams conversation
    /// (`teams:<id>`) or to each member of a group whose account is known.
    /// Slack channels are Slack's to handle.
    async fn escalate(&self, change: &Change, request: &Request, review: &ReviewCard) -> Result<(), DeliveryError> {
        if request.status != Status::Pending {
            return Ok(());
        }
        let to = change.details.get("to").and_then(Value::as_str).unwrap_or_default().to_owned();
        let key = format!("escalation:{to}:{}", change.seq);
        let targets: Vec<(String, String, String)> = if let Some(conversation) = to.strip_prefix(ESCALATION_PREFIX) {
            vec![(key.clone(), self.config.service_url.clone(), conversation.to_owned())]
        } else if to.starts_with('#') || to.is_empty() {
            return Ok(());
        } else {
            let mut dms = Vec::new();
            for user in self.state.directory().users().await? {
                if user.revoked_at.is_some() || !user.groups.contains(&to) {
                    continue;
                }
                if let Some(account) = self.account(&user.name).await? {
                    let (service_url, conversation) = self.open_dm(&account).await?;
                    dms.push((format!("{key}:{}", user.name), service_url, conversation));
                }
            }
            dms
        };
        let after = change.details.get("after").and_then(Value::as_str).unwrap_or("its deadline");
        let note = format!("⏰ Escalated: still waiting for approval after {after}");
        let activity = card::activity(&card::adaptive_card(review, Some(&note)), &review.headline());
        let mut posted = self.posted(&request.id).await?;
        for (target, service_url, conversation) in targets {
            if posted.iter().any(|p| p.target.as_deref() == Some(target.as_str())) {
                continue;
            }
            let id = self.connector.send(&service_url, &conversation, &activity).await?;
            posted.push(Posted {
                conversation,
                service_url,
                activity: id,
                note: Some(note.clone()),
                target: Some(target),
            });
            self.save_posted(&request.id, &posted).await?;
        }
        Ok(())
    }
}

impl Teams {
    pub(crate) async fn posted(&self, id: &str) -> Result<Vec<Posted>, DeliveryError> {
        let text = self.state.key_values(KV).get(&format!("teams:msg:{id}")).await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    async fn save_posted(&self, id: &str, posted: &[Posted]) -> Result<(), DeliveryError> {
        let key = format!("teams:msg:{id}");
        let value = serde_json::to_string(posted).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let kv = self.state.key_values(KV);
        for _ in 0..3 {
            let current = kv.get(&key).await?;
            if kv.compare_and_set(&key, current, Some(value.clone())).await? {
                return Ok(());
            }
        }
        Err(DeliveryError::Transient("the message list kept changing".to_owned()))
    }
}
