//! `xtask bench --flood`: what a flood of refused calls costs.
//!
//! In one run, against one gateway on a fresh data directory:
//! 1. a flood of unauthenticated calls with a 65 KB path, alone: the growth
//!    of the SQLite file plus its WAL, per refused call (the gateway is
//!    stopped gracefully before measuring, so counts it flushes at
//!    shutdown are included);
//! 2. authenticated agents' routine decisions without a flood, then the
//!    same during the flood, from the same address as the flood (the worst
//!    case for a per-address limiter): p50/p99 side by side.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::bench::{throughput, wait_healthy, Phase};
use crate::gateway::{add_identity, verify, Gateway, TempDir};
use crate::http::Conn;
use crate::stats::{ms, per_second};
use crate::BenchArgs;

/// Connections the attacker opens.
const FLOOD_CONNECTIONS: usize = 32;
/// Connections of authenticated agents measured during the flood.
const AGENT_CONNECTIONS: usize = 4;

/// What the flood sent and how it was answered.
#[derive(Debug, Default)]
struct Flood {
    sent: u64,
    by_status: BTreeMap<u16, u64>,
    failed: u64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.binary.is_file() {
        bail!("no binary at `{}`; build it with `cargo build --release -p countersign`", args.binary.display());
    }
    let tmp = TempDir::new()?;
    let data = tmp.0.join("data");
    eprintln!("flood: data dir {}", tmp.0.display());
    let agent = add_identity(&args.binary, &data, &["agents", "add", "flood-agent"])?;

    // 1. The flood alone, for the store's growth.
    let gateway = Gateway::start(&args.binary, &tmp.0)?;
    wait_healthy(gateway.addr).await?;
    let (events_before, _) = verify(&args.binary, &data)?;
    let before = store_bytes(&data);
    let alone = flood(gateway.addr, args.duration).await?;
    gateway.stop()?;
    let after = store_bytes(&data);
    let (events_after, _) = verify(&args.binary, &data)?;
    eprintln!("flood: {} refused calls, store {} → {} bytes", alone.sent, before, after);

    // 2. Agents without, then with, the flood.
    let gateway = Gateway::start(&args.binary, &tmp.0)?;
    let addr = gateway.addr;
    wait_healthy(addr).await?;
    let token: Arc<str> = Arc::from(agent.as_str());
    let quiet = throughput(&[addr], AGENT_CONNECTIONS, args.duration, Some(token.clone()), Phase::Routine).await?;
    let attacker = tokio::spawn(flood(addr, args.duration));
    let loud = throughput(&[addr], AGENT_CONNECTIONS, args.duration, Some(token), Phase::Routine).await?;
    let during = attacker.await.context("the flood task failed")??;
    gateway.stop()?;

    let growth = after.saturating_sub(before);
    println!();
    println!(
        "Measured with `cargo run --release -p xtask -- bench --flood --duration {:?}` on {} cores (nproc), loopback; \
         flood: {FLOOD_CONNECTIONS} connections of unauthenticated `GET /v1/<65 KB path>`, agents: {AGENT_CONNECTIONS} \
         connections of routine `POST /v1/actions` from the same address.",
        args.duration,
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
    println!();
    println!("| Flood alone | value |");
    println!("|---|---|");
    #[allow(clippy::cast_precision_loss)]
    let rate = alone.sent as f64 / args.duration.as_secs_f64();
    println!("| refused calls sent | {} ({}) |", alone.sent, per_second(rate));
    println!("| answers by status | {} |", statuses(&alone));
    println!("| audit events written | {} |", events_after.saturating_sub(events_before));
    println!("| store growth (SQLite file + WAL) | {growth} bytes |");
    #[allow(clippy::cast_precision_loss)]
    let per_call = if alone.sent == 0 { 0.0 } else { growth as f64 / alone.sent as f64 };
    println!("| store growth per refused call | {per_call:.1} bytes |");
    println!();
    println!("| Agents' routine decisions | decisions/s | p50 | p99 | max | errors |");
    println!("|---|---|---|---|---|---|");
    for (name, (samples, wall)) in [("without flood", &quiet), ("during flood", &loud)] {
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            per_second(samples.rate(*wall)),
            ms(samples.percentile(50.0)),
            ms(samples.percentile(99.0)),
            ms(samples.max()),
            samples.errors
        );
    }
    println!("| (flood during that phase) | {} calls, {} | - | - | - | - |", during.sent, statuses(&during));
    Ok(())
}

fn statuses(flood: &Flood) -> String {
    let mut parts: Vec<String> = flood.by_status.iter().map(|(status, n)| format!("{status}: {n}")).collect();
    if flood.failed > 0 {
        parts.push(format!("no answer: {}", flood.failed));
    }
    parts.join(", ")
}

fn store_bytes(data: &Path) -> u64 {
    ["countersign.db", "countersign.db-wal"]
        .iter()
        .map(|name| std::fs::metadata(data.join(name)).map_or(0, |m| m.len()))
        .sum()
}

/// Unauthenticated calls with a 65 KB path on every connection, as fast as
/// answers come, ignoring `Retry-After` as an attacker would.
async fn flood(addr: SocketAddr, duration: Duration) -> anyhow::Result<Flood> {
    let path: Arc<str> = Arc::from(format!("/v1/{}", "a".repeat(65_000)).as_str());
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut flood = Flood::default();
                let mut conn = None;
                while Instant::now() < deadline {
                    if conn.is_none() {
                        conn = Conn::open(addr, None).await.ok();
                    }
                    let Some(open) = conn.as_mut() else {
                        flood.failed += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    flood.sent += 1;
                    match open.get(&path).await {
                        Ok((status, _)) => *flood.by_status.entry(status.as_u16()).or_insert(0) += 1,
                        Err(_) => {
                            flood.failed += 1;
                            conn = None;
                        }
                    }
                }
                flood
            })
        })
        .collect();
    let mut all = Flood::default();
    for task in tasks {
        let one = task.await.context("a flood task failed")?;
        all.sent += one.sent;
        all.failed += one.failed;
        for (status, n) in one.by_status {
            *all.by_status.entry(status).or_insert(0) += n;
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_listed_in_order() {
        let flood = Flood { sent: 5, by_status: BTreeMap::from([(429, 3), (401, 1)]), failed: 1 };
        assert_eq!(statuses(&flood), "401: 1, 429: 3, no answer: 1");
    }
}
