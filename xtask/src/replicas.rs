//! `xtask bench --postgres` / `--database URL`: several gateway replicas
//! on one PostgreSQL.
//!
//! For each replica count asked for (default 1, 2, 3): a fresh database
//! (on the throwaway cluster) or fresh identities (on a given database),
//! that many `countersign serve --database …` processes, routine decisions
//! from `--connections` connections spread over the replicas, then
//! approvals where the agent waits on one replica and the approver calls
//! another, and `audit verify` over the resulting chain. The gateways (and
//! the throwaway cluster) are stopped at the end whatever happens.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use countersign_store_postgres::testing::{Durability, TempCluster};

use crate::bench::{approvals, throughput, wait_healthy, Phase};
use crate::gateway::{add_identity_to, verify_store, Gateway, TempDir};
use crate::stats::{ms, per_second, Samples};
use crate::BenchArgs;

/// What one replica count measured.
struct Row {
    replicas: usize,
    decisions: (Samples, Duration),
    woken: Samples,
    released: Samples,
    events: u64,
    verify_rate: f64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.binary.is_file() {
        bail!("no binary at `{}`; build it with `cargo build --release -p countersign`", args.binary.display());
    }
    let counts: Vec<usize> = args.replicas.iter().copied().filter(|n| (1..=16).contains(n)).collect();
    if counts.is_empty() {
        bail!("--replicas wants counts between 1 and 16, e.g. 1,2,3");
    }
    // Durable: the figures must include the WAL flush every commit waits for.
    let cluster = match &args.database {
        Some(_) => None,
        None => Some(
            tokio::task::spawn_blocking(|| TempCluster::start_with(Durability::Durable))
                .await
                .context("the cluster task failed")?
                .context("cannot start a throwaway PostgreSQL cluster")?,
        ),
    };
    let mut rows = Vec::new();
    for (run, &replicas) in counts.iter().enumerate() {
        let url = match (&cluster, &args.database) {
            (Some(cluster), _) => cluster.create_database().await.context("cannot create a database")?,
            (None, Some(url)) => url.clone(),
            (None, None) => bail!("no database"),
        };
        rows.push(measure(&args, &url, replicas, run).await?);
    }
    drop(cluster);
    print_report(&args, &rows);
    Ok(())
}

async fn measure(args: &BenchArgs, url: &str, replicas: usize, run: usize) -> anyhow::Result<Row> {
    let connections = args.connections.clamp(1, 1024);
    let store = [OsString::from("--database"), OsString::from(url)];
    let approver = add_identity_to(
        &args.binary,
        &store,
        &[
            "users",
            "add",
            &format!("bench-approver-{run}"),
            "--email",
            &format!("approver{run}@bench.invalid"),
            "--group",
            "sre",
        ],
    )?;
    let agent = add_identity_to(&args.binary, &store, &["agents", "add", &format!("bench-agent-{run}")])?;

    let tmp = TempDir::new()?;
    let mut gateways = Vec::new();
    for n in 0..replicas {
        let dir = tmp.0.join(format!("replica-{n}"));
        std::fs::create_dir_all(&dir)?;
        gateways.push(Gateway::start_with(&args.binary, &dir, &store)?);
    }
    let addrs: Vec<_> = gateways.iter().map(|g| g.addr).collect();
    for addr in &addrs {
        wait_healthy(*addr).await?;
    }
    eprintln!("bench: {replicas} replica(s) on PostgreSQL; {connections} connections, {:?}", args.duration);
    // Latency first, on idle replicas: right after the throughput phase,
    // PostgreSQL's autovacuum and checkpointer compete for the same two
    // cores, and that is what a p99 measured then would show.
    // The agent waits on the first replica; the approver calls the last.
    let (first, last) = (addrs[0], addrs[addrs.len() - 1]);
    let (woken, released) = approvals(first, last, &agent, &approver, args.approvals).await?;
    eprintln!("bench: {} approvals", woken.count());
    let decisions =
        throughput(&addrs, connections, args.duration, Some(Arc::from(agent.as_str())), Phase::Routine).await?;
    eprintln!("bench: {} decisions", decisions.0.count());
    for gateway in gateways {
        gateway.stop()?;
    }
    let (events, verify_rate) = verify_store(&args.binary, &store)?;
    Ok(Row { replicas, decisions, woken, released, events, verify_rate })
}

fn print_report(args: &BenchArgs, rows: &[Row]) {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let connections = args.connections.clamp(1, 1024);
    println!();
    println!(
        "Measured with `cargo run --release -p xtask -- bench --postgres` on {cores} cores (nproc): PostgreSQL {}, \
         replicas, load generator all on one machine, loopback.",
        if args.database.is_some() { "as given" } else { "15 throwaway cluster, fsync on" }
    );
    println!();
    println!("| Measurement | Throughput | p50 | p99 | max | errors |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let n = row.replicas;
        let plural = if n == 1 { "replica" } else { "replicas" };
        let (samples, elapsed) = &row.decisions;
        println!(
            "| `POST /v1/actions` routine decision, PostgreSQL, {n} {plural}, {connections} connections | {} | {} | {} | {} | {} |",
            per_second(samples.rate(*elapsed)),
            ms(samples.percentile(50.0)),
            ms(samples.percentile(99.0)),
            ms(samples.max()),
            samples.errors
        );
        let across = if n == 1 { "same replica" } else { "waiter on replica 1, approver on another" };
        println!(
            "| approve → waiting agent woken ({across}), n={} | - | {} | {} | {} | {} |",
            row.woken.count(),
            ms(row.woken.percentile(50.0)),
            ms(row.woken.percentile(99.0)),
            ms(row.woken.max()),
            row.woken.errors
        );
        println!(
            "| approve → released ({across}), n={} | - | {} | {} | {} | {} |",
            row.released.count(),
            ms(row.released.percentile(50.0)),
            ms(row.released.percentile(99.0)),
            ms(row.released.max()),
            row.released.errors
        );
        println!(
            "| `countersign audit verify --database`, {} events | {} | - | - | - | 0 |",
            row.events,
            per_second(row.verify_rate)
        );
    }
}
