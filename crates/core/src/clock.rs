//! Timestamps (milliseconds since the Unix epoch), human durations, and
//! the [`Clock`] the gateway reads them from.
//!
//! The state machine takes `now` as an argument instead of reading a clock,
//! and the gateway reads `now` from an injected [`Clock`], so that expiry
//! and validity windows are testable without sleeping.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
    }

    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `duration`, saturating at the far future.
    pub fn plus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-22T01:02:03.004Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }

    /// Parses an RFC 3339 timestamp.
    pub fn parse_rfc3339(text: &str) -> Result<Self, DurationError> {
        let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| DurationError::Timestamp(text.to_owned()))?;
        let millis = t.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).map(Self).map_err(|_| DurationError::Timestamp(text.to_owned()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// Where the gateway's time comes from: the wall clock when serving,
/// [`ManualClock`] in tests that move time by hand.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told, for tests (the `testing` feature).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::Mutex<i64>);

#[cfg(any(test, feature = "testing"))]
impl ManualClock {
    /// Stopped at `millis` since the epoch.
    pub fn at(millis: i64) -> Self {
        Self(std::sync::Mutex::new(millis))
    }

    /// Stopped at the wall clock's time now: what the gateway stamps looks
    /// current, and deadlines pass only when the test says so.
    pub fn starting_now() -> Self {
        Self::at(Timestamp::now().as_millis())
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now = now.saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(any(test, feature = "testing"))]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.lock().map_or(0, |now| *now))
    }
}

/// A duration or timestamp that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration `{0}`: expected a number followed by ms, s, m, h or d, e.g. `30m`")]
    Duration(String),
    #[error("invalid timestamp `{0}`: expected RFC 3339, e.g. `2026-01-02T03:04:05Z`")]
    Timestamp(String),
}

/// Parses durations such as `90s`, `30m`, `2h`, `1d`, `1h30m` or `250ms`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError::Duration(text.to_owned());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| err())?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err()),
        };
        total = number.checked_mul(millis_per_unit).and_then(|v| total.checked_add(v)).ok_or_else(err)?;
        rest = tail;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let mut secs = duration.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in ["", "m", "30", "30x", "-5m", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for d in [1, 59, 60, 3600, 5400, 86_400 + 61] {
            let d = Duration::from_secs(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp(1_790_000_000_123);
        let text = t.to_rfc3339();
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(Timestamp::parse_rfc3339(&text), Ok(t));
    }
}
