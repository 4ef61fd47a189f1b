//! Latency samples and the summary figures the report prints.

use std::time::Duration;

/// Latencies in microseconds, in any order.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u64>,
    pub errors: u64,
}

impl Samples {
    pub fn push(&mut self, latency: Duration) {
        self.micros.push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
    }

    pub fn count(&self) -> usize {
        self.micros.len()
    }

    /// The `p`th percentile (nearest rank), or zero without samples.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        let index = rank.clamp(1, sorted.len()) - 1;
        Duration::from_micros(sorted.get(index).copied().unwrap_or(0))
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.micros.iter().copied().max().unwrap_or(0))
    }

    /// Completed requests per second over `elapsed`.
    pub fn rate(&self, elapsed: Duration) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let count = self.micros.len() as f64;
        count / elapsed.as_secs_f64().max(1e-9)
    }
}

/// `0.42 ms`, `12.3 ms`, `1.20 s`.
pub fn ms(d: Duration) -> String {
    let millis = d.as_secs_f64() * 1000.0;
    if millis >= 1000.0 {
        format!("{:.2} s", millis / 1000.0)
    } else if millis >= 10.0 {
        format!("{millis:.1} ms")
    } else {
        format!("{millis:.2} ms")
    }
}

/// `12,345/s`
pub fn per_second(rate: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = rate.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for i in 1..=100 {
            s.push(Duration::from_micros(i));
        }
        assert_eq!(s.percentile(50.0), Duration::from_micros(50));
        assert_eq!(s.percentile(99.0), Duration::from_micros(99));
        assert_eq!(s.max(), Duration::from_micros(100));
        assert_eq!(Samples::default().percentile(99.0), Duration::ZERO);
    }

    #[test]
    fn formatting() {
        assert_eq!(per_second(12345.4), "12,345/s");
        assert_eq!(per_second(999.0), "999/s");
        assert_eq!(ms(Duration::from_micros(420)), "0.42 ms");
        assert_eq!(ms(Duration::from_millis(1200)), "1.20 s");
    }
}
