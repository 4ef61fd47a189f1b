//! Teams as an outbox channel: post the card to the conversation its
//! requirements name (`@teams_channel`, else `[teams] conversation`) and
//! replace it as the request moves.

use async_trait::async_trait;
use countersign_core::Request;
use serde::{Deserialize, Serialize};

use super::{card, Teams};
use crate::events::{Change, ChangeKind};
use crate::outbox::{DeliveryError, Notifier, KV};

/// A posted card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Posted {
    pub(crate) conversation: String,
    pub(crate) service_url: String,
    pub(crate) activity: String,
}

#[async_trait]
impl Notifier for Teams {
    fn name(&self) -> String {
        "teams".to_owned()
    }

    fn wants(&self, kind: ChangeKind) -> bool {
        kind.shows_on_card()
    }

    fn coalesces(&self) -> bool {
        true
    }

    fn max_attempts(&self) -> Option<u32> {
        None
    }

    async fn deliver(&self, _change: &Change, request: &Request, _attempt: u32) -> Result<(), DeliveryError> {
        if request.requirements.is_empty() {
            return Ok(());
        }
        let review = self.cards.build(request).await;
        let activity = card::activity(&card::adaptive_card(&review, None), &review.headline());
        let mut posted = self.posted(&request.id).await?;
        for copy in &posted {
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
        for conversation in targets {
            if posted.iter().any(|p| p.conversation == conversation) {
                continue;
            }
            let service_url = self.config.service_url.clone();
            let id = self.connector.send(&service_url, &conversation, &activity).await?;
            posted.push(Posted { conversation, service_url, activity: id });
            self.save_posted(&request.id, &posted).await?;
        }
        Ok(())
    }
}

impl Teams {
    pub(crate) async fn posted(&self, id: &str) -> Result<Vec<Posted>, DeliveryError> {
        let text = self.state.store.kv_get(KV, &format!("teams:msg:{id}")).await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    async fn save_posted(&self, id: &str, posted: &[Posted]) -> Result<(), DeliveryError> {
        let key = format!("teams:msg:{id}");
        let value = serde_json::to_string(posted).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let store = &self.state.store;
        for _ in 0..3 {
            let current = store.kv_get(KV, &key).await?;
            if store.kv_compare_and_set(KV, &key, current, Some(value.clone())).await? {
                return Ok(());
            }
        }
        Err(DeliveryError::Transient("the message list kept changing".to_owned()))
    }
}
