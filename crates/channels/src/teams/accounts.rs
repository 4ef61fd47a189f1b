//! The Teams accounts of countersign users, learned from their clicks.
//!
//! A bot can only message someone in Teams proactively if it knows their
//! member id, tenant and the service URL of their region; Teams tells the
//! bot all three in every activity the person sends. So each click by a
//! mapped user records them in the store's key-value area (durable, shared
//! by every replica), and the owner DM and group escalations use them to
//! open a 1:1 conversation through the Bot Connector.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Teams;
use crate::outbox::{DeliveryError, KV};

/// Where a countersign user can be reached in Teams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The Teams member id (`29:…`).
    pub member: String,
    /// The Entra ID object id, when Teams sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad_object_id: Option<String>,
    /// The Entra ID tenant, when Teams sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub service_url: String,
}

impl Account {
    /// What an activity says about its sender; `None` without a member id or service URL.
    pub fn from_activity(activity: &Value) -> Option<Self> {
        let text = |pointer: &str| {
            activity.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        Some(Self {
            member: text("/from/id")?,
            aad_object_id: text("/from/aadObjectId"),
            tenant: text("/conversation/tenantId").or_else(|| text("/channelData/tenant/id")),
            service_url: text("/serviceUrl")?,
        })
    }
}

fn key(user: &str) -> String {
    format!("teams:user:{user}")
}

impl Teams {
    /// Remembers where `user` is in Teams (only when it changed: one read per click).
    pub(crate) async fn learn(&self, user: &str, account: &Account) {
        let kv = self.state.key_values(KV);
        let Ok(value) = serde_json::to_string(account) else { return };
        let result = async {
            let current = kv.get(&key(user)).await?;
            if current.as_deref() == Some(value.as_str()) {
                return Ok(true);
            }
            kv.compare_and_set(&key(user), current, Some(value.clone())).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, user, "cannot remember a Teams account");
        }
    }

    /// Where `user` is in Teams, if they ever clicked there.
    pub async fn account(&self, user: &str) -> Result<Option<Account>, DeliveryError> {
        let text = self.state.key_values(KV).get(&key(user)).await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// A 1:1 conversation with `account` (created, or found, by the connector).
    pub(crate) async fn open_dm(&self, account: &Account) -> Result<(String, String), DeliveryError> {
        let id = self.connector.create_conversation(&account.service_url, account).await?;
        Ok((account.service_url.clone(), id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_account_is_read_from_an_activity() {
        let activity = json!({"serviceUrl": "https://smba.example/emea/", "from": {"id": "29:a", "aadObjectId": "o-1"},
                              "conversation": {"id": "19:x", "tenantId": "t-1"}});
        let account = Account::from_activity(&activity).unwrap();
        assert_eq!(account.member, "29:a");
        assert_eq!(account.aad_object_id.as_deref(), Some("o-1"));
        assert_eq!(account.tenant.as_deref(), Some("t-1"));
        let by_channel_data =
            json!({"serviceUrl": "s", "from": {"id": "29:a"}, "channelData": {"tenant": {"id": "t-2"}}});
        assert_eq!(Account::from_activity(&by_channel_data).unwrap().tenant.as_deref(), Some("t-2"));
        assert_eq!(Account::from_activity(&json!({"from": {"id": "29:a"}})), None, "no service URL");
    }
}
