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
//! Truncating the newest events, or rewriting a suffix and recomputing its
//! hashes, cannot be detected from the chain alone. The [`merkle`] tree
//! over the same canonical bytes, signed [`checkpoint`]s (C2SP signed
//! [`note`]s) and [`proof`]s close that gap: a saved checkpoint pins the
//! log's first `size` events, and a proof shows one event is among them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod chain;
pub mod checkpoint;
pub mod csv;
mod event;
pub mod merkle;
pub mod note;
pub mod proof;
mod refusal;

pub use chain::{verify_all, BreakReason, ChainBreak, ChainHead, ChainVerifier, Verified, GENESIS_HASH};
pub use event::{AuditDraft, AuditError, AuditEvent};
pub use refusal::{RefusalKind, RefusalRecord, MAX_REFUSAL_BODY_BYTES, MAX_TEXT_BYTES};
