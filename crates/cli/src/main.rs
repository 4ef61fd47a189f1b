//! The `countersign` binary: parses the command line, runs the command on
//! a tokio runtime, and turns its result into an exit code (documented in
//! `countersign --help`). Errors are printed as one `error: …` line.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod audit_cmd;
mod audit_proof_cmd;
mod bind;
mod cli;
mod client;
mod config_cmd;
mod exec;
mod exit;
mod hook;
mod identity;
mod kubeconfig_cmd;
mod local;
mod mcp_cmd;
mod output;
mod policy_cmd;
mod review;
mod run;
mod serve;
mod simulate_cmd;
mod view;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

// See the workspace manifest for why: the request path is allocation-heavy.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any HTTP client exists (`exec`, `approve`, identity providers).
    countersign_identity::install_crypto_provider();
    // clap prints its own usage errors and exits 2.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            output::print_error(&format!("cannot start the async runtime: {e}"));
            return Exit::ERROR.into();
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // Waiting on stdin readers or slow children must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(exit) => exit.into(),
        Err(error) => {
            output::print_error(&format!("{error:#}"));
            exit::code_of(&error).into()
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let output = cli.output;
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Users(command) => identity::users(command, output).await,
        Command::Agents(command) => identity::agents(command, output).await,
        Command::Policy(command) => policy_cmd::run_command(command, output).await,
        Command::Audit(command) => audit_cmd::run(command, output).await,
        Command::Config(command) => config_cmd::run(command, output),
        Command::Exec(args) => exec::exec(args).await,
        Command::Pending(args) => review::pending(args, output).await,
        Command::Approve(args) => review::vote(args, review::Vote::Approve, output).await,
        Command::Deny(args) => review::vote(args, review::Vote::Deny, output).await,
        Command::Show(args) => review::show(args, output).await,
        Command::Mcp(args) => mcp_cmd::mcp(args).await,
        Command::Kubeconfig(args) => kubeconfig_cmd::kubeconfig(&args),
        Command::Hook(command) => hook::run(command).await,
    }
}
