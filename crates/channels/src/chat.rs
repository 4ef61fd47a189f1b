//! What Slack and Teams share as outbox channels: both take every change a
//! review card shows and every escalation, coalesce a request's changes
//! into its latest card, retry without limit, and do the same three things
//! with a change. A chat channel says how to do each; this module says
//! when, once, for both.

use async_trait::async_trait;
use countersign_core::Request;

use crate::card::{CardBuilder, ReviewCard};
use crate::events::{CardMove, Change, ChangeKind};
use crate::outbox::{DeliveryError, Notifier};

/// A chat channel: where the card goes and how it is shown there.
#[async_trait]
pub(crate) trait Chat: Send + Sync + std::fmt::Debug {
    fn name(&self) -> String;
    /// Where it delivers (an origin, never a path that may hold a token).
    fn target(&self) -> String;
    fn cards(&self) -> &CardBuilder;
    /// Posts the card where it is not yet and updates it where it is.
    async fn show(&self, request: &Request, card: &ReviewCard) -> Result<(), DeliveryError>;
    /// Tells the requester's owner, once, that the request was decided.
    async fn tell_owner(&self, request: &Request, card: &ReviewCard) -> Result<(), DeliveryError>;
    /// Notifies the escalation target of a requirement still pending.
    async fn escalate(&self, change: &Change, request: &Request, card: &ReviewCard) -> Result<(), DeliveryError>;
}

#[async_trait]
impl<C: Chat> Notifier for C {
    fn name(&self) -> String {
        Chat::name(self)
    }

    fn target(&self) -> String {
        Chat::target(self)
    }

    fn wants(&self, kind: ChangeKind) -> bool {
        kind.card_move().is_some()
    }

    fn coalesces(&self) -> bool {
        true
    }

    fn max_attempts(&self) -> Option<u32> {
        None
    }

    async fn deliver(&self, change: &Change, request: &Request, _attempt: u32) -> Result<(), DeliveryError> {
        // A routine decision has no card and nobody to ask.
        if request.requirements.is_empty() {
            return Ok(());
        }
        let card = self.cards().build(request).await;
        match change.kind.card_move() {
            Some(CardMove::Escalate) => self.escalate(change, request, &card).await,
            Some(CardMove::Show) => {
                self.show(request, &card).await?;
                self.tell_owner(request, &card).await
            }
            None => Ok(()),
        }
    }
}
