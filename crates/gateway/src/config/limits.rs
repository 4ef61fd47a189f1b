//! `[server]` keys that bound what refused callers cost: the rate limit on
//! unauthenticated callers, the window in which refusals from one source are
//! counted rather than recorded one by one (after the first few), how many sources are tracked,
//! and which proxies may say who the client is.

use std::net::IpAddr;
use std::time::Duration;

use super::{duration, ConfigError};

/// Failed authentications a source may make at once before it is limited.
pub const DEFAULT_UNAUTHENTICATED_BURST: u32 = 30;
/// Failed authentications a source may make per minute, sustained.
pub const DEFAULT_UNAUTHENTICATED_PER_MINUTE: u32 = 60;
/// How long refusals from one source are counted before the count is recorded.
pub const DEFAULT_REFUSAL_WINDOW: Duration = Duration::from_secs(60);
/// How many refusals of one source (and actor) are recorded one by one per
/// window before the rest are only counted.
pub const DEFAULT_RECORDED_PER_WINDOW: u32 = 10;
/// How many sources the limiter and the refusal counter remember at most.
pub const DEFAULT_TRACKED_SOURCES: usize = 10_000;
/// How long a rate-limited call waits for its 429.
pub const DEFAULT_RATE_LIMITED_DELAY: Duration = Duration::from_millis(250);

/// The validated limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub unauthenticated_burst: u32,
    pub unauthenticated_per_minute: u32,
    pub refusal_window: Duration,
    pub recorded_per_window: u32,
    pub tracked_sources: usize,
    /// How long a rate-limited call is held before it is answered: the
    /// cost of a flood is in reading and answering its calls, and a held
    /// connection sends no more of them.
    pub rate_limited_delay: Duration,
    /// Peers whose `X-Forwarded-For` names the client. Empty: the peer
    /// address is the client, whatever the header says.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            unauthenticated_burst: DEFAULT_UNAUTHENTICATED_BURST,
            unauthenticated_per_minute: DEFAULT_UNAUTHENTICATED_PER_MINUTE,
            refusal_window: DEFAULT_REFUSAL_WINDOW,
            recorded_per_window: DEFAULT_RECORDED_PER_WINDOW,
            tracked_sources: DEFAULT_TRACKED_SOURCES,
            rate_limited_delay: DEFAULT_RATE_LIMITED_DELAY,
            trusted_proxies: Vec::new(),
        }
    }
}

/// An address or a network in CIDR notation (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

/// The `[server]` keys of the limits, as written; the server's section
/// reads them and hands them over.
#[derive(Debug, Clone, Default)]
pub struct RawLimits {
    pub unauthenticated_burst: Option<u64>,
    pub unauthenticated_per_minute: Option<u64>,
    pub refusal_window: Option<String>,
    pub refusals_recorded_per_window: Option<u64>,
    pub tracked_sources: Option<u64>,
    pub rate_limited_delay: Option<String>,
    pub trusted_proxies: Vec<String>,
}

/// The limits, checked, with defaults filled in.
pub fn validate(server: &RawLimits) -> Result<LimitsConfig, ConfigError> {
    let burst = server.unauthenticated_burst.unwrap_or(DEFAULT_UNAUTHENTICATED_BURST.into());
    if !(1..=100_000).contains(&burst) {
        return Err(ConfigError::Invalid {
            key: "server.unauthenticated_burst",
            message: format!("`{burst}` must be between 1 and 100000"),
        });
    }
    let per_minute = server.unauthenticated_per_minute.unwrap_or(DEFAULT_UNAUTHENTICATED_PER_MINUTE.into());
    if !(1..=6_000_000).contains(&per_minute) {
        return Err(ConfigError::Invalid {
            key: "server.unauthenticated_per_minute",
            message: format!("`{per_minute}` must be between 1 and 6000000"),
        });
    }
    let window = duration("server.refusal_window", server.refusal_window.as_deref(), DEFAULT_REFUSAL_WINDOW)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&window) {
        return Err(ConfigError::Invalid {
            key: "server.refusal_window",
            message: "must be between 1s and 1h".to_owned(),
        });
    }
    let recorded = server.refusals_recorded_per_window.unwrap_or(DEFAULT_RECORDED_PER_WINDOW.into());
    if !(1..=1000).contains(&recorded) {
        return Err(ConfigError::Invalid {
            key: "server.refusals_recorded_per_window",
            message: format!("`{recorded}` must be between 1 and 1000"),
        });
    }
    let tracked = server.tracked_sources.unwrap_or(DEFAULT_TRACKED_SOURCES as u64);
    if !(16..=10_000_000).contains(&tracked) {
        return Err(ConfigError::Invalid {
            key: "server.tracked_sources",
            message: format!("`{tracked}` must be between 16 and 10000000"),
        });
    }
    let delay =
        duration("server.rate_limited_delay", server.rate_limited_delay.as_deref(), DEFAULT_RATE_LIMITED_DELAY)?;
    if delay > Duration::from_secs(10) {
        return Err(ConfigError::Invalid {
            key: "server.rate_limited_delay",
            message: "must be at most 10s".to_owned(),
        });
    }
    let trusted_proxies = server
        .trusted_proxies
        .iter()
        .map(|text| {
            IpNet::parse(text).ok_or_else(|| ConfigError::Invalid {
                key: "server.trusted_proxies",
                message: format!("`{text}` is not an address or a network such as `10.0.0.0/8`"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LimitsConfig {
        unauthenticated_burst: u32::try_from(burst).unwrap_or(u32::MAX),
        unauthenticated_per_minute: u32::try_from(per_minute).unwrap_or(u32::MAX),
        refusal_window: window,
        recorded_per_window: u32::try_from(recorded).unwrap_or(u32::MAX),
        tracked_sources: usize::try_from(tracked).unwrap_or(usize::MAX),
        rate_limited_delay: delay,
        trusted_proxies,
    })
}
