//! From a Slack click to the waiting agent holding its released approval:
//! the agent long-polls `GET /v1/actions/{id}?wait=30`, an approver clicks
//! Approve (a signed interactivity POST), the agent is woken, calls
//! `/release`, and the clock stops when that answers. Everything runs on
//! loopback against the Slack stand-in and a SQLite store with fsync, with
//! every channel (Slack, Teams, a webhook) delivering the changes meanwhile.
//!
//! `cargo bench -p countersign-channels --bench click_to_release`
//! (`CLICKS=N` sets the number of rounds; default 300).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/it/standins.rs"]
mod standins;
#[path = "../tests/it/support.rs"]
mod support;

use std::time::{Duration, Instant};

use countersign_channels::slack::blocks::APPROVE;
use support::{click, gateway, shell};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let rounds: usize = std::env::var("CLICKS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let gw = gateway().await;
    let approvers = ["UALICE", "UBOB"];
    // Warm up: the first click of each approver looks them up in Slack (users.info, then cached).
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds + 10 {
        let id = gw.submit(shell("prod-web")).await;
        let http = gw.http.clone();
        let wait_url = format!("{}/v1/actions/{id}?wait=30", gw.url);
        let release_url = format!("{}/v1/actions/{id}/release", gw.url);
        let token = gw.token("bot").to_owned();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Instant>();
        let agent = tokio::spawn(async move {
            let waited = http.get(wait_url).bearer_auth(&token).send().await.unwrap();
            let body: serde_json::Value = waited.json().await.unwrap();
            assert_eq!(body["status"], "approved", "{body}");
            let released = http.post(release_url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(released.status(), 200);
            let done = Instant::now();
            done - started_rx.await.unwrap()
        });
        // As in life, the approver clicks on a card that is already posted,
        // after the notifications for the new request went out.
        gw.eventually("card posted", || async {
            let carded = gw.slack.calls("chat.postMessage").iter().any(|m| m["blocks"].to_string().contains(&id));
            carded && gw.hook.state.received.lock().unwrap().iter().any(|(_, _, body)| body.contains(&id))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let payload = click(approvers[round % 2], APPROVE, &id, "C1");
        started_tx.send(Instant::now()).unwrap();
        let response = gw.slack_post(&payload).await;
        assert_eq!(response.status(), 200);
        let elapsed = agent.await.unwrap();
        if round >= 10 {
            samples.push(elapsed);
        }
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "click → release over {} rounds: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(at(0.50)),
        ms(at(0.90)),
        ms(at(0.99)),
        ms(samples[samples.len() - 1])
    );
}
