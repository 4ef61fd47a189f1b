//! The one outbound HTTP client every channel shares.

use std::time::Duration;

use crate::SetupError;

/// Short timeouts: a slow chat platform must not hold a delivery worker or
/// a click handler for long; the outbox retries.
pub(crate) fn client() -> Result<reqwest::Client, SetupError> {
    // rustls needs a process-wide crypto provider; another component may
    // have installed it already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SetupError::Http(e.to_string()))
}
