//! Developer tasks for the countersign workspace.
//!
//! `cargo run --release -p xtask -- bench` measures a real gateway on
//! loopback and prints a markdown table for the README; `-- simulate`
//! records a million actions and times `policy simulate` over them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod bench;
mod checkpoints;
mod flood;
mod gateway;
mod http;
mod replicas;
mod simulate;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Developer tasks for countersign")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Load-test a gateway on loopback: /healthz, routine decisions,
    /// approve→release latency and audit verification, in one run.
    #[command(long_about = "Load-test a fresh gateway on loopback, in one run: \
        (1) GET /healthz rate and latency; (2) POST /v1/actions for routine actions (durable audit on); \
        (3) approve→waiter latency over N pending requests; (4) `audit verify` speed over the resulting log. \
        It starts `countersign serve` on a temporary data directory, stops it at the end, and prints a markdown table. \
        Build the binary first: cargo build --release -p countersign")]
    Bench(BenchArgs),
    /// Record N actions into a SQLite store and time `countersign policy simulate` over them.
    #[command(long_about = "Record N actions (default one million) into a fresh SQLite store through the store's \
        append path, decided by the starter policy, then time `countersign policy simulate` against a candidate \
        set that changes some decisions and against the set in force. Prints a markdown row per run. \
        Build the binary first: cargo build --release -p countersign")]
    Simulate(simulate::SimulateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent keep-alive connections for the throughput phases.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// How long each throughput phase runs, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Pending requests to approve in the latency phase.
    #[arg(long, default_value_t = 200)]
    pub approvals: usize,
    /// The countersign binary to benchmark.
    #[arg(long, default_value = "target/release/countersign")]
    pub binary: PathBuf,
    /// Benchmark PostgreSQL replicas on a throwaway cluster (initdb + pg_ctl,
    /// fsync on) instead of one gateway on SQLite.
    #[arg(long)]
    pub postgres: bool,
    /// Benchmark PostgreSQL replicas on this (empty, disposable) database instead.
    #[arg(long, value_name = "URL", conflicts_with = "postgres")]
    pub database: Option<String>,
    /// Replica counts to measure in turn with --postgres/--database, e.g. 1,2,3.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub replicas: Vec<usize>,
    /// Measure a flood of unauthenticated 65 KB-path calls instead: store
    /// growth per refused call, and agents' decision latency without and
    /// during the flood.
    #[arg(long, conflicts_with_all = ["postgres", "database"])]
    pub flood: bool,
    /// Measure routine decisions with signed audit checkpoints off and on,
    /// two gateways side by side, in alternating rounds.
    #[arg(long, conflicts_with_all = ["postgres", "database", "flood"])]
    pub checkpoints: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 10s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{text}` is not a duration such as 10s")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Task::Bench(args) => runtime.block_on(bench::run(args)),
        Task::Simulate(args) => runtime.block_on(simulate::run(args)),
    };
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x").is_err());
    }
}
