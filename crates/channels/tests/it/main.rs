//! End-to-end tests of the Slack, Teams and webhook channels against local
//! stand-ins, with every payload checked by the vendors' own SDKs
//! (slack-sdk, adaptivecards, botframework-connector; see
//! tests/channels-peers and scripts/setup.d/channels.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cross_channel;
mod long_actions;
mod slack;
mod socket_mode;
mod standins;
mod support;
mod teams;
mod webhooks;
