//! Evidence packs for auditors: one pass over the audit log folds every
//! event of a period into a [`Report`] (the privileged actions with their
//! requesters and approvers, refused attempts, time to decision, expiries
//! and revocations, policy changes, and the log's own verification), which
//! renders as JSON or as one self-contained, printable HTML page.
//!
//! The report is built from the log alone, never from the request table:
//! the log is what the hash chain and the signed checkpoints protect, so
//! every figure in the pack can be re-derived by anyone holding the log.
//! Checks such as segregation of duties are recomputed from the events,
//! not copied from the gateway's own verdicts, so a gateway bug would show
//! up in the report rather than be repeated by it.
//!
//! [`controls`] says which evidence answers which control of SOC 2,
//! ISO 27001 and NIST 800-53.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod collect;
pub mod controls;
mod html;
mod report;

pub use collect::Collector;
pub use html::render_html;
pub use report::{
    ActionRecord, Bucket, CheckpointEvidence, Closure, Distribution, IdentityRevocation, Period, PolicyChange,
    Refusals, Report, Segregation, Totals, Verification, Violation, VoteRecord,
};
