//! `xtask bench --checkpoints`: the cost of signed audit checkpoints on
//! the append path. Two gateways run side by side on fresh data
//! directories, one with `[audit] checkpoints = false`, one with them on
//! (signing every second), and routine decisions (each one an appended,
//! group-committed audit event) are driven at one, then the other, in
//! alternating rounds, so both see the same machine. Prints decisions/s
//! and p50/p99 latency per side, and the ratio.

use std::ffi::OsString;
use std::sync::Arc;

use anyhow::bail;

use crate::bench::{throughput, wait_healthy, Phase};
use crate::gateway::{add_identity, verify, Gateway, TempDir};
use crate::stats::{ms, per_second, Samples};
use crate::BenchArgs;

/// Rounds of (off, on): drift in the machine's load spreads over both.
const ROUNDS: usize = 3;

struct Side {
    name: &'static str,
    tmp: TempDir,
    gateway: Gateway,
    agent: String,
    samples: Samples,
    elapsed: std::time::Duration,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.binary.is_file() {
        bail!("no binary at `{}`; build it with `cargo build --release -p countersign`", args.binary.display());
    }
    let connections = args.connections.clamp(1, 1024);
    let mut sides = Vec::new();
    for (name, on) in [("checkpoints off", false), ("checkpoints on", true)] {
        let tmp = TempDir::new()?;
        let data = tmp.0.join("data");
        let agent = add_identity(&args.binary, &data, &["agents", "add", "bench-agent"])?;
        let config = tmp.0.join("audit.toml");
        std::fs::write(&config, format!("[audit]\ncheckpoints = {on}\n"))?;
        let gateway =
            Gateway::start_with(&args.binary, &tmp.0, &[OsString::from("--config"), config.into_os_string()])?;
        wait_healthy(gateway.addr).await?;
        eprintln!("bench: {name}: gateway on http://{}", gateway.addr);
        sides.push(Side { name, tmp, gateway, agent, samples: Samples::default(), elapsed: Default::default() });
    }
    for round in 1..=ROUNDS {
        for side in &mut sides {
            let token = Some(Arc::from(side.agent.as_str()));
            let (samples, elapsed) =
                throughput(&[side.gateway.addr], connections, args.duration, token, Phase::Routine).await?;
            eprintln!("bench: round {round}, {}: {} decisions", side.name, samples.count());
            side.samples.merge(samples);
            side.elapsed += elapsed;
        }
    }
    println!(
        "| {} connections, {ROUNDS} × {:?} each, alternating | decisions/s | p50 | p99 | errors | audit events |",
        connections, args.duration
    );
    println!("|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    for side in sides {
        let rate = side.samples.rate(side.elapsed);
        rates.push(rate);
        let data = side.tmp.0.join("data");
        side.gateway.stop()?;
        let (events, _) = verify(&args.binary, &data)?;
        println!(
            "| {} | {} | {} | {} | {} | {events} |",
            side.name,
            per_second(rate),
            ms(side.samples.percentile(50.0)),
            ms(side.samples.percentile(99.0)),
            side.samples.errors,
        );
    }
    if let [off, on] = rates[..] {
        if off > 0.0 {
            println!();
            println!("With checkpoints on, throughput is {:.1}% of checkpoints off.", 100.0 * on / off);
        }
    }
    Ok(())
}
