//! A [`Notifier`] as an outbox [`Sink`]: the audit events that change a
//! request become [`Change`]s, delivered with the request as it is now;
//! channels that show the current state get only the latest card change of
//! each request in a batch.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use countersign_audit::AuditEvent;
use countersign_gateway::AppState;

use crate::events::classify;
use crate::outbox::{DeliveryError, Notifier, Sink};

/// A chat channel or webhook, fed by the outbox.
#[derive(Debug, Clone)]
pub struct Notifying {
    state: AppState,
    notifier: Arc<dyn Notifier>,
}

impl Notifying {
    pub fn new(state: AppState, notifier: Arc<dyn Notifier>) -> Self {
        Self { state, notifier }
    }
}

#[async_trait]
impl Sink for Notifying {
    fn name(&self) -> String {
        self.notifier.name()
    }

    fn target(&self) -> String {
        self.notifier.target()
    }

    fn wants(&self, event: &AuditEvent) -> bool {
        classify(event).is_some_and(|c| self.notifier.wants(c.kind))
    }

    fn select(&self, events: Vec<AuditEvent>) -> Vec<AuditEvent> {
        let wanted =
            events.into_iter().filter_map(|e| classify(&e).filter(|c| self.notifier.wants(c.kind)).map(|c| (e, c)));
        if !self.notifier.coalesces() {
            return wanted.map(|(e, _)| e).collect();
        }
        let wanted: Vec<_> = wanted.collect();
        let mut seen = HashSet::new();
        let mut kept: Vec<AuditEvent> = wanted
            .into_iter()
            .rev()
            .filter(|(_, c)| !c.kind.shows_on_card() || seen.insert(c.request_id.clone()))
            .map(|(e, _)| e)
            .collect();
        kept.reverse();
        kept
    }

    fn max_attempts(&self) -> Option<u32> {
        self.notifier.max_attempts()
    }

    async fn deliver(&self, event: &AuditEvent, attempt: u32) -> Result<(), DeliveryError> {
        // `select` chose only changes; anything else has nothing to show.
        let Some(change) = classify(event) else { return Ok(()) };
        match self.state.request(&change.request_id).await {
            Ok(Some(request)) => self.notifier.deliver(&change, &request, attempt).await,
            Ok(None) => Err(DeliveryError::Permanent(format!("request `{}` does not exist", change.request_id))),
            Err(e) => Err(DeliveryError::from(e)),
        }
    }
}
