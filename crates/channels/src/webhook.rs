//! Signed webhooks: every change of a request, POSTed as a CloudEvents 1.0
//! structured-mode JSON event, for PagerDuty, Opsgenie or in-house bots.
//!
//! Each POST carries `X-Countersign-Signature: t=<unix>,v1=<hex>` where hex
//! is the HMAC-SHA256 of `"<t>.<body>"` under the webhook's secret; a
//! receiver recomputes it, compares in constant time, and rejects old `t`.
//! The event `id` is the audit event's hash, stable across retries, so
//! receivers can drop duplicates. `data.event` says what happened;
//! `data.request` is the request as it stands at delivery. Failed
//! deliveries are retried with exponential backoff (see [`crate::outbox`])
//! and every attempt is audited (`webhook.delivery`).

use crate::config::WebhookConfig;
use async_trait::async_trait;
use countersign_audit::AuditDraft;
use countersign_core::events::{Event, WebhookDelivery};
use countersign_core::{Request, Timestamp, VoteKind};
use countersign_gateway::AppState;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::card::CardBuilder;
use crate::events::{Change, ChangeKind};
use crate::outbox::{DeliveryError, Notifier};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-countersign-signature";
/// CloudEvents `type` prefix; the change kind follows.
pub const TYPE_PREFIX: &str = "dev.countersign.request.";

/// One `[[webhooks]]` receiver.
#[derive(Debug)]
pub struct Webhook {
    state: AppState,
    name: String,
    config: WebhookConfig,
    http: reqwest::Client,
    cards: CardBuilder,
}

impl Webhook {
    pub(crate) fn new(
        state: AppState,
        index: usize,
        config: WebhookConfig,
        http: reqwest::Client,
        cards: CardBuilder,
    ) -> Self {
        Self { state, name: format!("webhook-{index}"), config, http, cards }
    }

    /// The CloudEvent for `change`, with `request` as it stands.
    pub fn event(&self, change: &Change, request: &Request) -> Value {
        let redactor = self.cards.redactor();
        let base = &self.state.config().public_url;
        let votes = |kind: VoteKind| -> Vec<Value> {
            request
                .votes
                .iter()
                .filter(|v| v.kind == kind)
                .map(|v| json!({"by": v.by.to_string(), "at": v.at, "comment": v.comment.as_deref().map(|c| redactor.text(c))}))
                .collect()
        };
        json!({
            "specversion": "1.0",
            "id": change.hash,
            "source": format!("{base}/v1/actions"),
            "type": format!("{TYPE_PREFIX}{}", change.kind.as_str()),
            "subject": request.id,
            "time": change.time,
            "datacontenttype": "application/json",
            "data": {
                "event": change.kind.as_str(),
                "seq": change.seq,
                "actor": change.actor,
                "details": redactor.json(&change.details),
                "request": {
                    "id": request.id,
                    "status": request.status.as_str(),
                    "reason": request.reason,
                    "kind": request.action.kind,
                    "resource": request.action.resource,
                    "payload": redactor.json(&request.action.payload),
                    "fingerprint": request.fingerprint.to_string(),
                    "requester": request.principal.to_string(),
                    "owner": request.owner,
                    "on_behalf_of": request.action.on_behalf_of,
                    "justification": request.action.justification.as_deref().map(|j| redactor.text(j)),
                    "labels": request.action.labels,
                    "requirements": request.requirements.iter().map(|r| json!({
                        "policy": r.policy, "groups": r.groups, "quorum": r.quorum, "approvals": request.approvals_for(r),
                    })).collect::<Vec<_>>(),
                    "approvals": votes(VoteKind::Approve),
                    "denials": votes(VoteKind::Deny),
                    "created_at": request.created_at,
                    "expires_at": request.expires_at,
                    "closed_at": request.closed_at,
                    "url": format!("{base}/v1/actions/{}", request.id),
                },
            },
        })
    }

    /// Where the webhook points, without path or query (they may hold tokens).
    fn target(&self) -> String {
        let url = &self.config.url;
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        rest.split(['/', '?', '#']).next().unwrap_or_default().rsplit('@').next().unwrap_or_default().to_owned()
    }

    async fn audit_attempt(&self, change: &Change, attempt: u32, result: &Result<u16, String>) {
        let (ok, status, error) = match result {
            Ok(status) => ((200..300).contains(status), Some(*status), None),
            Err(e) => (false, None, Some(e.clone())),
        };
        let delivery = WebhookDelivery {
            webhook: self.name.clone(),
            target: self.target(),
            event_id: change.hash.clone(),
            event: change.kind.as_str().to_owned(),
            request: change.request_id.clone(),
            attempt,
            ok,
            status,
            error,
        };
        let event = AuditDraft::new("system", Event::WebhookDelivery(delivery));
        if let Err(e) = self.state.audit(vec![event]).await {
            tracing::warn!(webhook = %self.name, error = %e, "cannot audit a webhook delivery attempt");
        }
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let digest = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => String::new(),
    };
    format!("t={t},v1={digest}")
}

#[async_trait]
impl Notifier for Webhook {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn target(&self) -> String {
        crate::health::origin(&self.config.url)
    }

    fn wants(&self, kind: ChangeKind) -> bool {
        self.config.events.is_empty() || self.config.events.iter().any(|e| e == kind.as_str())
    }

    fn coalesces(&self) -> bool {
        false
    }

    fn max_attempts(&self) -> Option<u32> {
        Some(self.config.max_attempts)
    }

    async fn deliver(&self, change: &Change, request: &Request, attempt: u32) -> Result<(), DeliveryError> {
        let body = self.event(change, request).to_string();
        let t = Timestamp::now().as_millis() / 1000;
        let sent = self
            .http
            .post(&self.config.url)
            .header("content-type", "application/cloudevents+json; charset=utf-8")
            .header(SIGNATURE_HEADER, signature(self.config.secret.expose().as_bytes(), t, body.as_bytes()))
            .body(body)
            .send()
            .await;
        let result = match sent {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) => Err(if e.is_timeout() { "timed out".to_owned() } else { "connection failed".to_owned() }),
        };
        self.audit_attempt(change, attempt, &result).await;
        match result {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            Ok(status) => Err(DeliveryError::Transient(format!("the receiver answered HTTP {status}"))),
            Err(e) => Err(DeliveryError::Transient(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_scheme() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec
        let sig = signature(b"whsec", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(sig, "t=1700000000,v1=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032");
    }
}
