//! What an approver sees before deciding, channel-neutral: the chat
//! channels render it as Block Kit or an Adaptive Card, the web console as
//! HTML, and all of them show the same content with the same secrets hidden.
//!
//! - [`card`]: the review card and its builder (history from the store);
//! - [`redact`]: hiding credentials in payload text and JSON.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod card;
pub mod redact;

pub use card::{CardBuilder, ReviewCard};
pub use redact::{InvalidPattern, Redactor};
