//! Polling until something holds, within a deadline; past it, the test
//! fails saying what it waited for.

use std::future::Future;
use std::time::{Duration, Instant};

/// Waits (up to 10 s, every 25 ms) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Calls `attempt` every `every` until it gives a value, for up to
/// `within`; past that, fails with what the last attempt said.
pub fn until<T>(within: Duration, every: Duration, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(why) => assert!(started.elapsed() < within, "{why}"),
        }
        std::thread::sleep(every);
    }
}
