//! The `[server]` section: where the gateway listens and keeps its data,
//! what the HTTP API accepts, the link base, and the refusal limits (which
//! the gateway's [`LimitsConfig`] checks).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use countersign_gateway::config::limits::{self, RawLimits};
use countersign_gateway::config::{duration, ConfigError, LimitsConfig};
use serde::Deserialize;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./countersign-data";
/// The most a client may wait in one call.
pub const MAX_WAIT_CEILING: Duration = Duration::from_secs(60);

/// `[server]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address to listen on. Default `127.0.0.1:8470`.
    pub listen: Option<String>,
    /// Where the SQLite store lives. Default `./countersign-data`.
    pub data_dir: Option<PathBuf>,
    /// Directory of `.cedar` files. Default `<data_dir>/policies`.
    pub policies: Option<PathBuf>,
    /// Largest request body accepted, in bytes. Default 1 MiB.
    pub body_limit_bytes: Option<u64>,
    /// Longest `?wait=` a client may ask for. Default and maximum `60s`.
    pub max_wait: Option<String>,
    /// The URL people use to reach this gateway, for links. Default from `listen`.
    pub public_url: Option<String>,
    /// Failed authentications one source may make at once. Default 30.
    pub unauthenticated_burst: Option<u64>,
    /// Failed authentications one source may make per minute. Default 60.
    pub unauthenticated_per_minute: Option<u64>,
    /// Refusals from one source within this window after the first are
    /// counted and recorded as one event. Default `60s`.
    pub refusal_window: Option<String>,
    /// Refusals of one source recorded one by one per window; the rest are
    /// counted. Default 10.
    pub refusals_recorded_per_window: Option<u64>,
    /// How many sources are remembered for limits and counts. Default 10000.
    pub tracked_sources: Option<u64>,
    /// How long a rate-limited call is held before its 429 is sent, so a
    /// flooding connection sends a few calls a second, not thousands.
    /// Default `250ms`; `0s` answers at once.
    pub rate_limited_delay: Option<String>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is
    /// believed. Default none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// What the HTTP API runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The largest request body accepted.
    pub body_limit_bytes: usize,
    /// The longest `?wait=` a client may ask for.
    pub max_wait: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
            body_limit_bytes: 1024 * 1024,
            max_wait: MAX_WAIT_CEILING,
        }
    }
}

/// The `[server]` section, validated: the API's own part, and what it says
/// for the gateway (policies, links, limits) and the store (data directory).
#[derive(Debug, Clone)]
pub struct ServerSection {
    pub http: ServerConfig,
    pub data_dir: PathBuf,
    pub policies_dir: PathBuf,
    /// True when the policy directory was not chosen explicitly.
    pub policies_defaulted: bool,
    /// No trailing `/`.
    pub public_url: String,
    pub limits: LimitsConfig,
}

impl RawServer {
    /// Checks every value and fills in defaults.
    pub fn validate(self) -> Result<ServerSection, ConfigError> {
        let limits = limits::validate(&RawLimits {
            unauthenticated_burst: self.unauthenticated_burst,
            unauthenticated_per_minute: self.unauthenticated_per_minute,
            refusal_window: self.refusal_window,
            refusals_recorded_per_window: self.refusals_recorded_per_window,
            tracked_sources: self.tracked_sources,
            rate_limited_delay: self.rate_limited_delay,
            trusted_proxies: self.trusted_proxies,
        })?;
        let listen_text = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            key: "server.listen",
            message: format!("`{listen_text}` is not an address such as `127.0.0.1:8470`"),
        })?;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let policies_defaulted = self.policies.is_none();
        let policies_dir = self.policies.unwrap_or_else(|| data_dir.join("policies"));
        let body_limit = self.body_limit_bytes.unwrap_or(1024 * 1024);
        if !(1024..=64 * 1024 * 1024).contains(&body_limit) {
            return Err(ConfigError::Invalid {
                key: "server.body_limit_bytes",
                message: format!("`{body_limit}` must be between 1024 and 67108864"),
            });
        }
        let max_wait = duration("server.max_wait", self.max_wait.as_deref(), MAX_WAIT_CEILING)?;
        if max_wait > MAX_WAIT_CEILING || max_wait.is_zero() {
            return Err(ConfigError::Invalid {
                key: "server.max_wait",
                message: "must be between 1s and 60s".to_owned(),
            });
        }
        let public_url = self.public_url.unwrap_or_else(|| format!("http://{listen}"));
        Ok(ServerSection {
            http: ServerConfig {
                listen,
                body_limit_bytes: usize::try_from(body_limit).unwrap_or(usize::MAX),
                max_wait,
            },
            data_dir,
            policies_dir,
            policies_defaulted,
            public_url: public_url.trim_end_matches('/').to_owned(),
            limits,
        })
    }
}
