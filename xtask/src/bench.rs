//! `xtask bench`: one run, four measurements, one markdown table.
//!
//! Everything runs on loopback against a fresh data directory, bounded in
//! time (the throughput phases) or count (the approval phase), and the
//! gateway is stopped at the end whatever happens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use hyper::StatusCode;

use crate::gateway::{add_identity, verify, Gateway, TempDir};
use crate::http::Conn;
use crate::stats::{ms, per_second, Samples};
use crate::BenchArgs;

/// The longest one approval round may take before it counts as failed.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.postgres || args.database.is_some() {
        return crate::replicas::run(args).await;
    }
    if args.flood {
        return crate::flood::run(args).await;
    }
    if args.checkpoints {
        return crate::checkpoints::run(args).await;
    }
    if !args.binary.is_file() {
        bail!("no binary at `{}`; build it with `cargo build --release -p countersign`", args.binary.display());
    }
    let connections = args.connections.clamp(1, 1024);
    let tmp = TempDir::new()?;
    let data = tmp.0.join("data");
    eprintln!("bench: data dir {}", tmp.0.display());
    let approver = add_identity(
        &args.binary,
        &data,
        &["users", "add", "bench-approver", "--email", "approver@bench.invalid", "--group", "sre"],
    )?;
    let agent = add_identity(&args.binary, &data, &["agents", "add", "bench-agent"])?;

    let gateway = Gateway::start(&args.binary, &tmp.0)?;
    let addr = gateway.addr;
    wait_healthy(addr).await?;
    eprintln!("bench: gateway on http://{addr}; {connections} connections, {:?} per phase", args.duration);

    let cpu_before = gateway.cpu();
    let health = throughput(&[addr], connections, args.duration, None, Phase::Health).await?;
    eprintln!("bench: /healthz done ({} requests)", health.0.count());
    let cpu_between = gateway.cpu();
    let decisions =
        throughput(&[addr], connections, args.duration, Some(Arc::from(agent.as_str())), Phase::Routine).await?;
    eprintln!("bench: POST /v1/actions done ({} decisions)", decisions.0.count());
    let cpu_after = gateway.cpu();
    let cpu = Cpu {
        health: cpu_per(cpu_before, cpu_between, health.0.count()),
        decision: cpu_per(cpu_between, cpu_after, decisions.0.count()),
    };
    let (woken, released) = approvals(addr, addr, &agent, &approver, args.approvals).await?;
    eprintln!("bench: approvals done ({} rounds)", woken.count());

    gateway.stop()?;
    let (events, verify_rate) = verify(&args.binary, &data)?;

    print_report(&args, connections, &health, &decisions, &woken, &released, events, verify_rate);
    print_cpu(&cpu, health.0.rate(health.1), decisions.0.rate(decisions.1));
    Ok(())
}

/// The gateway's CPU time per answered request in each throughput phase.
struct Cpu {
    health: Option<Duration>,
    decision: Option<Duration>,
}

fn cpu_per(from: Option<Duration>, to: Option<Duration>, requests: usize) -> Option<Duration> {
    let used = to?.checked_sub(from?)?;
    let requests = u32::try_from(requests).ok().filter(|n| *n > 0)?;
    Some(used / requests)
}

fn print_cpu(cpu: &Cpu, health_rate: f64, decision_rate: f64) {
    let micros = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| format!("{} µs", d.as_micros()));
    println!();
    println!(
        "Gateway CPU (user + system, from /proc) per answered request: `/healthz` {}, routine decision {}.",
        micros(cpu.health),
        micros(cpu.decision)
    );
    if health_rate > 0.0 {
        println!(
            "Routine decisions reached {:.1}% of `/healthz`'s throughput in this run.",
            100.0 * decision_rate / health_rate
        );
    }
}

pub(crate) async fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(mut conn) = Conn::open(addr, None).await {
            if let Ok((StatusCode::OK, _)) = conn.get("/healthz").await {
                return Ok(());
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("the gateway at {addr} did not become healthy");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    Health,
    Routine,
}

/// Drives `connections` keep-alive connections for `duration`, spread over
/// `addrs` in turn (several replicas); returns the samples and the measured
/// wall time.
pub(crate) async fn throughput(
    addrs: &[SocketAddr],
    connections: usize,
    duration: Duration,
    token: Option<Arc<str>>,
    phase: Phase,
) -> anyhow::Result<(Samples, Duration)> {
    let mut conns = Vec::with_capacity(connections);
    for n in 0..connections {
        let addr = addrs.get(n % addrs.len().max(1)).copied().context("no gateway address")?;
        conns.push(Conn::open(addr, token.as_deref()).await?);
    }
    if let Phase::Routine = phase {
        // One request first, to fail loudly if the policy does not treat
        // the benchmark's action as routine.
        let first = conns.first_mut().context("no connection")?;
        let (status, body) = first.post("/v1/actions", routine_body(0)).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != StatusCode::CREATED || answer["status"] != "allowed" {
            bail!("a routine action was not allowed at once: {status} {}", String::from_utf8_lossy(&body));
        }
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(n, mut conn)| {
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let result = match phase {
                        Phase::Health => conn.get("/healthz").await,
                        Phase::Routine => conn.post("/v1/actions", routine_body(n as u64 * 1_000_000 + i)).await,
                    };
                    i += 1;
                    let expected = match phase {
                        Phase::Health => StatusCode::OK,
                        Phase::Routine => StatusCode::CREATED,
                    };
                    match result {
                        Ok((status, _)) if status == expected => samples.push(sent.elapsed()),
                        Ok(_) => samples.errors += 1,
                        Err(_) => {
                            samples.errors += 1;
                            break;
                        }
                    }
                }
                samples
            })
        })
        .collect();
    let mut all = Samples::default();
    for task in tasks {
        all.merge(task.await.context("a load task failed")?);
    }
    Ok((all, started.elapsed()))
}

fn routine_body(n: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"kind":"sql.execute","resource":"staging-db","payload":{{"statement":"SELECT * FROM orders WHERE id = {n}"}},"labels":[],"context":{{}}}}"#
    ))
}

/// Approves `rounds` pending requests one after another, each with an
/// agent already long-polling for it on `addr` while the approver calls
/// `approve_addr` (another replica, or the same gateway). Returns
/// approve→waiter-woken and approve→released latencies.
pub(crate) async fn approvals(
    addr: SocketAddr,
    approve_addr: SocketAddr,
    agent: &str,
    approver: &str,
    rounds: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let mut submit = Conn::open(addr, Some(agent)).await?;
    let mut approve = Conn::open(approve_addr, Some(approver)).await?;
    let mut woken = Samples::default();
    let mut released = Samples::default();
    for round in 0..rounds {
        let body = format!(
            r#"{{"kind":"sql.execute","resource":"prod-db","payload":{{"statement":"UPDATE t SET n = {round} WHERE id = 1"}},"justification":"bench"}}"#
        );
        let (status, answer) = submit.post("/v1/actions", Bytes::from(body)).await?;
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        if status != StatusCode::CREATED || answer["status"] != "pending" {
            bail!("a prod-db action did not become pending: {status} {answer}");
        }
        let id = answer["id"].as_str().context("no id")?.to_owned();

        let mut waiter = Conn::open(addr, Some(agent)).await?;
        let wait_path = format!("/v1/actions/{id}?wait=30");
        let wait = tokio::spawn(async move {
            let result = waiter.get(&wait_path).await;
            (Instant::now(), result, waiter)
        });
        // Let the long poll reach the gateway and park before approving,
        // so the measurement is of the wake-up, not of a plain read.
        tokio::time::sleep(Duration::from_millis(20)).await;

        let t0 = Instant::now();
        let (status, _) = approve.post(&format!("/v1/actions/{id}/approve"), Bytes::from_static(b"{}")).await?;
        if status != StatusCode::OK {
            bail!("approve answered {status}");
        }
        let Ok(joined) = tokio::time::timeout(ROUND_TIMEOUT, wait).await else {
            woken.errors += 1;
            continue;
        };
        let (arrived, result, mut waiter) = joined.context("the waiter task failed")?;
        let (status, body) = result?;
        let view: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != StatusCode::OK || view["status"] != "approved" {
            woken.errors += 1;
            continue;
        }
        woken.push(arrived.saturating_duration_since(t0));
        let (status, _) = waiter.post(&format!("/v1/actions/{id}/release"), Bytes::from_static(b"{}")).await?;
        if status == StatusCode::OK {
            released.push(t0.elapsed());
        } else {
            released.errors += 1;
        }
    }
    Ok((woken, released))
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    args: &BenchArgs,
    connections: usize,
    health: &(Samples, Duration),
    decisions: &(Samples, Duration),
    woken: &Samples,
    released: &Samples,
    events: u64,
    verify_rate: f64,
) {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    println!();
    println!("Measured with `cargo run --release -p xtask -- bench` on {cores} cores (nproc), loopback, client and gateway on the same machine.");
    println!();
    println!("| Measurement | Throughput | p50 | p99 | max | errors |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| `GET /healthz`, {connections} connections, {:?} | {} | {} | {} | {} | {} |",
        args.duration,
        per_second(health.0.rate(health.1)),
        ms(health.0.percentile(50.0)),
        ms(health.0.percentile(99.0)),
        ms(health.0.max()),
        health.0.errors
    );
    println!(
        "| `POST /v1/actions` routine decision (durable audit), {connections} connections, {:?} | {} | {} | {} | {} | {} |",
        args.duration,
        per_second(decisions.0.rate(decisions.1)),
        ms(decisions.0.percentile(50.0)),
        ms(decisions.0.percentile(99.0)),
        ms(decisions.0.max()),
        decisions.0.errors
    );
    println!(
        "| approve → waiting agent woken, n={} | - | {} | {} | {} | {} |",
        woken.count(),
        ms(woken.percentile(50.0)),
        ms(woken.percentile(99.0)),
        ms(woken.max()),
        woken.errors
    );
    println!(
        "| approve → released (woken + `POST release`), n={} | - | {} | {} | {} | {} |",
        released.count(),
        ms(released.percentile(50.0)),
        ms(released.percentile(99.0)),
        ms(released.max()),
        released.errors
    );
    println!("| `countersign audit verify`, {events} events | {} | - | - | - | 0 |", per_second(verify_rate));
}
