//! The audit log, streamed to SIEMs.
//!
//! Each `[[siem]]` sink is fed by the channels' durable outbox
//! ([`countersign_channels::outbox`]): every audit event in sequence order,
//! at least once, with a cursor in the store, exponential backoff, a lease
//! so one replica delivers, health on the console's admin page and
//! `countersign_channel_up` / `countersign_channel_deliveries_total` in
//! `/metrics` (label `siem-NAME`).
//!
//! - [`config`]: the `[[siem]]` sections.
//! - [`ocsf`]: every event kind mapped to an OCSF class (exhaustively).
//! - [`record`]: what every export carries: the event, its sequence number
//!   and hash, and the latest signed checkpoint.
//! - [`syslog`] (RFC 5424, CEF or JSON), [`hec`] (Splunk), [`otlp`]: formats.
//! - [`transport`]: TCP, TLS, UDP, HTTP and files.
//! - [`sink`]: a sink as the outbox sees it.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
pub mod hec;
pub mod ocsf;
pub mod otlp;
pub mod record;
pub mod sink;
pub mod syslog;
pub mod transport;

use std::sync::Arc;

use countersign_channels::health::Probe;
use countersign_channels::{OutboxOptions, Sink};
use countersign_gateway::AppState;

pub use config::{RawSiem, SiemConfig};
pub use sink::SiemSink;

/// Why the sinks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("`siem`: cannot set up TLS: {0}")]
    Tls(String),
    #[error("`siem`: cannot set up the HTTP client: {0}")]
    Http(String),
}

/// Every configured sink.
#[derive(Debug, Clone)]
pub struct Siem {
    state: AppState,
    sinks: Vec<Arc<SiemSink>>,
}

impl Siem {
    pub fn new(state: AppState, configs: &[SiemConfig]) -> Result<Self, SetupError> {
        let sinks =
            configs.iter().map(|c| SiemSink::new(state.clone(), c.clone()).map(Arc::new)).collect::<Result<_, _>>()?;
        Ok(Self { state, sinks })
    }

    fn as_sinks(&self) -> impl Iterator<Item = Arc<dyn Sink>> + '_ {
        self.sinks.iter().map(|s| s.clone() as Arc<dyn Sink>)
    }

    /// One health probe per sink, for the console's admin page.
    pub fn health(&self) -> Vec<Probe> {
        self.as_sinks().map(|s| Probe::new(self.state.clone(), s)).collect()
    }

    /// Starts one outbox worker per sink; they stop when the gateway does.
    pub fn spawn(&self, options: &OutboxOptions) -> Vec<tokio::task::JoinHandle<()>> {
        self.as_sinks()
            .map(|sink| tokio::spawn(countersign_channels::outbox::run(self.state.clone(), sink, options.clone())))
            .collect()
    }
}
