//! countersign's domain model, free of I/O.
//!
//! Everything that decides whether an approval counts, and what an approval
//! binds to, lives here so that it can be tested alone:
//! - [`action`]: what an actor asks to do, and its validation;
//! - [`fingerprint`]: the digest an approval authorises, and nothing else;
//! - [`json`]: strict reading of outside JSON (no repeated keys);
//! - [`names`]: the kind, resource and identities a submitter names, and
//!   their one accepted spelling;
//! - [`principal`]: who acts, and who counts as the same person;
//! - [`request`]: the stored approval request and its parts;
//! - [`lifecycle`]: the approval state machine (votes, release, expiry, …),
//!   each move returning the audit events it causes;
//! - [`events`]: every audit event, one enum variant with a typed body per
//!   kind, for producers to build and consumers to read back.
//! - [`text`]: cutting text to a size, the one rule every crate uses;
//! - `testing` (tests, and the `testing` feature): request fixtures.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod action;
pub mod clock;
pub mod events;
pub mod fingerprint;
pub mod json;
pub mod lifecycle;
pub mod names;
pub mod principal;
pub mod request;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;

pub use action::{Action, ActionError, GATEWAY_CONTEXT_KEYS};
pub use clock::{parse_duration, Clock, DurationError, SystemClock, Timestamp};
pub use fingerprint::Fingerprint;
pub use lifecycle::{Approver, Assurance, Exclusions, Moved, Refusal};
pub use names::NameError;
pub use principal::{PersonKey, Principal, PrincipalKind, PrincipalRef};
pub use request::{Comment, Outcome, OutcomeStatus, Request, Requirement, Routing, Status, Vote, VoteKind};
