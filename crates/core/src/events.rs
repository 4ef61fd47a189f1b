//! Every audit event the gateway records, as one enum with a typed body per
//! kind.
//!
//! The audit log is also how the gateway's parts hear of each other (the
//! outbox delivers request changes from it, the console browses it), so a
//! kind is a contract between crates. Producers build an [`Event`] variant
//! and never spell a kind; consumers read a stored event back with
//! [`Parsed::read`] and match every variant (no catch-all arm), so adding a
//! kind does not compile until each consumer has decided what to do with it.
//!
//! A body serialises to exactly the JSON the gateway stored and hashed
//! before this enum existed: the same field names, `null` where a value was
//! written as `null`, a field left out where it was left out. The hash
//! chain covers those bytes, so this is part of the audit format;
//! `tests/golden/events.jsonl` holds one example of every kind as that code
//! wrote it, and `tests/golden.rs` checks each reads into its variant and
//! serialises back to the same canonical bytes.
//!
//! Reading tolerates what a newer or an older version may have written: a
//! field this version does not know is ignored, and a kind it does not know,
//! or a body not in the shape it writes, is [`Parsed::Unknown`] (never a
//! panic), which each consumer handles deliberately.

mod channel;
mod database;
mod identity;
mod policy;
mod refusal;
mod request;

use std::fmt;

use serde_json::Value;

pub use channel::{ChannelClick, ChannelStarted, WebhookDelivery};
pub use database::{SessionClosed, SessionOpened};
pub use identity::{
    AgentCreated, BindingRefused, Bound, ConsoleLogin, ConsoleLogout, IdentityRevoked, Profile, UserCreated,
    UserUpdated,
};
pub use policy::{PolicyAdopted, PolicyLoadFailed, PolicyLoaded};
pub use refusal::{MessageRefusal, RefusalFields, RefusalsAggregated, Rejection};
pub use request::{
    Attempt, AttemptRefused, Cancelled, Closed, CommentAdded, Concluded, Decided, Escalated, Login, MoveRefused,
    OutcomeReported, Released, Submitted, VoteAccepted, VotesWithdrawn,
};

use crate::PrincipalRef;

/// Declares [`Event`] from one table of (variant, body, kind), so that the
/// kind names, the bodies and the parser cannot drift apart.
macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident($body:ty) = $kind:literal,)*) => {
        /// One audit event: its kind is the variant, its body the payload.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($(#[$doc])* $variant($body),)*
        }

        impl Event {
            /// Every kind, in declaration order.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            /// The stable name stored in the event's `type`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $kind,)*
                }
            }

            /// The body as the JSON that is stored (before canonicalisation).
            pub fn body(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(Self::$variant(body) => serde_json::to_value(body),)*
                }
            }

            /// The event of kind `kind` with this body; `Ok(None)` for a
            /// kind this version does not know.
            fn from_parts(kind: &str, body: &Value) -> Result<Option<Self>, serde_json::Error> {
                match kind {
                    $($kind => <$body as serde::Deserialize>::deserialize(body).map(|b| Some(Self::$variant(b))),)*
                    _ => Ok(None),
                }
            }
        }
    };
}

events! {
    // A request's life (see `crate::lifecycle`).
    /// An actor submitted an action.
    ActionSubmitted(Submitted) = "action.submitted",
    /// The policy set decided on a submitted action.
    ActionDecided(Decided) = "action.decided",
    /// An approver's approval was accepted.
    ApprovalAccepted(VoteAccepted) = "approval.accepted",
    /// An approver's denial was accepted.
    DenialAccepted(VoteAccepted) = "denial.accepted",
    /// The approvals met every requirement.
    ActionApproved(Concluded) = "action.approved",
    /// A denial ended the request.
    ActionDenied(Concluded) = "action.denied",
    /// The requester took its approval.
    ActionReleased(Released) = "action.released",
    /// The requester reported how the action went.
    OutcomeReported(OutcomeReported) = "outcome.reported",
    /// The requester withdrew its request.
    ActionCancelled(Cancelled) = "action.cancelled",
    /// The request reached its deadline.
    ActionExpired(Closed) = "action.expired",
    /// A policy change or an identity revocation withdrew the request.
    ActionRevoked(Closed) = "action.revoked",
    /// Votes on an open request stopped counting: their giver was revoked.
    VotesWithdrawn(VotesWithdrawn) = "votes.withdrawn",
    /// A requirement was still pending past its `@escalate_after`.
    ActionEscalated(Escalated) = "action.escalated",
    /// Someone commented on a request.
    CommentAdded(CommentAdded) = "comment.added",
    /// The state machine refused a move, or the console's login form a
    /// login.
    AttemptRefused(AttemptRefused) = "attempt.refused",

    // The policy set.
    /// A policy set was loaded and put in force.
    PolicyLoaded(PolicyLoaded) = "policy.loaded",
    /// A policy set did not load; the one in force stays.
    PolicyLoadFailed(PolicyLoadFailed) = "policy.load_failed",
    /// This replica put in force the set another replica loaded.
    PolicyAdopted(PolicyAdopted) = "policy.adopted",

    // Identities.
    /// A user was created.
    UserCreated(UserCreated) = "identity.user_created",
    /// A login changed what the store knows of a user.
    UserUpdated(UserUpdated) = "identity.user_updated",
    /// A user was revoked.
    UserRevoked(IdentityRevoked) = "identity.user_revoked",
    /// An agent was created.
    AgentCreated(AgentCreated) = "identity.agent_created",
    /// An agent was revoked.
    AgentRevoked(IdentityRevoked) = "identity.agent_revoked",
    /// A user was bound to an account at an identity source.
    IdentityBound(Bound) = "identity.bound",
    /// An account was refused a user bound to another account.
    IdentityBindingRefused(BindingRefused) = "identity.binding_refused",
    /// Someone signed in to the console.
    ConsoleLogin(ConsoleLogin) = "console.login",
    /// Someone signed out of the console.
    ConsoleLogout(ConsoleLogout) = "console.logout",

    // Refused calls.
    /// The HTTP API, the MCP endpoint or the console refused a call.
    RequestRejected(Rejection) = "request.rejected",
    /// A chat integration refused an inbound call.
    IntegrationRejected(RefusalFields) = "integration.rejected",
    /// Refusals from one source in one window, counted rather than recorded
    /// one by one.
    RefusalsAggregated(RefusalsAggregated) = "refusals.aggregated",
    /// The MCP proxy dropped a message from an upstream.
    McpUpstreamMessageDropped(MessageRefusal) = "mcp.upstream_message_dropped",

    // Channels.
    /// A channel's outbox started delivering, at the head of the log.
    ChannelStarted(ChannelStarted) = "channel.started",
    /// Someone clicked a button on a chat card.
    ChannelClick(ChannelClick) = "channel.click",
    /// One attempt to deliver a change to a webhook.
    WebhookDelivery(WebhookDelivery) = "webhook.delivery",

    // Database endpoints.
    /// A client opened a session with a database through the gateway.
    DatabaseSessionOpened(SessionOpened) = "database.session_opened",
    /// A database session ended.
    DatabaseSessionClosed(SessionClosed) = "database.session_closed",
}

impl Event {
    /// The request this event moved or annotated (its body's `id`). Events
    /// that only mention a request (a chat click, a webhook delivery) name
    /// it in another field and give `None`: they are not part of the
    /// request's own history.
    pub fn request(&self) -> Option<&str> {
        match self {
            Self::ActionSubmitted(b) => Some(&b.id),
            Self::ActionDecided(b) => Some(&b.id),
            Self::ApprovalAccepted(b) | Self::DenialAccepted(b) => Some(&b.id),
            Self::ActionApproved(b) | Self::ActionDenied(b) => Some(&b.id),
            Self::ActionReleased(b) => Some(&b.id),
            Self::OutcomeReported(b) => Some(&b.id),
            Self::ActionCancelled(b) => Some(&b.id),
            Self::ActionExpired(b) | Self::ActionRevoked(b) => Some(&b.id),
            Self::VotesWithdrawn(b) => Some(&b.id),
            Self::ActionEscalated(b) => Some(&b.id),
            Self::CommentAdded(b) => Some(&b.id),
            Self::AttemptRefused(AttemptRefused::Move(b)) => Some(&b.id),
            Self::AttemptRefused(AttemptRefused::Record(_))
            | Self::PolicyLoaded(_)
            | Self::PolicyLoadFailed(_)
            | Self::PolicyAdopted(_)
            | Self::UserCreated(_)
            | Self::UserUpdated(_)
            | Self::UserRevoked(_)
            | Self::AgentCreated(_)
            | Self::AgentRevoked(_)
            | Self::IdentityBound(_)
            | Self::IdentityBindingRefused(_)
            | Self::ConsoleLogin(_)
            | Self::ConsoleLogout(_)
            | Self::RequestRejected(_)
            | Self::IntegrationRejected(_)
            | Self::RefusalsAggregated(_)
            | Self::McpUpstreamMessageDropped(_)
            | Self::ChannelStarted(_)
            | Self::ChannelClick(_)
            | Self::WebhookDelivery(_)
            | Self::DatabaseSessionOpened(_)
            | Self::DatabaseSessionClosed(_) => None,
        }
    }
}

/// A stored event, read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Known(Event),
    /// An event this version cannot read: see [`Unknown`].
    Unknown(Unknown),
}

/// A stored event this version cannot read into an [`Event`]: a kind it
/// does not know (a newer version wrote it), or a body not in the shape it
/// writes (an older version, or a hand-made log). Kept as it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Unknown {
    pub kind: String,
    /// The body, or `null` if it is not JSON.
    pub body: Value,
    pub why: Unreadable,
}

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// No variant has this kind.
    Kind,
    /// The kind is known, its body does not fit.
    Body(String),
}

impl Parsed {
    /// Reads a stored event from its `type` and body text.
    pub fn read(kind: &str, body: &str) -> Self {
        let value = match serde_json::from_str::<Value>(body) {
            Ok(value) => value,
            Err(e) => {
                let why = Unreadable::Body(e.to_string());
                return Self::Unknown(Unknown { kind: kind.to_owned(), body: Value::Null, why });
            }
        };
        match Event::from_parts(kind, &value) {
            Ok(Some(event)) => Self::Known(event),
            Ok(None) => Self::Unknown(Unknown { kind: kind.to_owned(), body: value, why: Unreadable::Kind }),
            Err(e) => {
                Self::Unknown(Unknown { kind: kind.to_owned(), body: value, why: Unreadable::Body(e.to_string()) })
            }
        }
    }
}

/// Who caused an event: a principal, or the gateway itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    System,
    Principal(PrincipalRef),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::Principal(principal) => principal.fmt(f),
        }
    }
}

/// An event a transition causes, and who caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Caused {
    pub actor: Actor,
    pub event: Event,
}

impl Caused {
    /// An event the gateway itself causes.
    pub fn system(event: Event) -> Self {
        Self { actor: Actor::System, event }
    }

    /// An event `principal` causes.
    pub fn by(principal: &PrincipalRef, event: Event) -> Self {
        Self { actor: Actor::Principal(principal.clone()), event }
    }
}

#[cfg(test)]
mod tests;
