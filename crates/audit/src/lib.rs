//! The tamper-evident audit log, as pure data: event encoding, the SHA-256
//! hash chain, and its verification.
//!
//! Each event's `hash` is the hex SHA-256 of the RFC 8785 (JCS) canonical
//! JSON of `{actor, body, prev_hash, seq, time, type}`, and `prev_hash` is
//! the previous event's `hash` (64 zeros for the first event). Changing,
//! removing or reordering any event therefore breaks the chain at that
//! event, which [`ChainVerifier`] reports by sequence number. Anyone can
//! re-check the chain with a JCS library and SHA-256; nothing here is secret.
//!
//! What an event says is a [`countersign_core::events::Event`]: a draft is
//! made from one ([`AuditDraft::new`]), and a sealed event reads back into
//! one ([`AuditEvent::parsed`]).
//!
//! [`csv`] is the one CSV writer of every export (formula cells defused).
//!
//! Truncating the newest events cannot be detected from the chain alone;
//! signed checkpoints (a later addition) close that gap.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod chain;
pub mod csv;
mod event;
mod refusal;

pub use chain::{verify_all, BreakReason, ChainBreak, ChainHead, ChainVerifier, Verified, GENESIS_HASH};
pub use event::{AuditDraft, AuditError, AuditEvent};
pub use refusal::{RefusalKind, RefusalRecord, MAX_REFUSAL_BODY_BYTES, MAX_TEXT_BYTES};
