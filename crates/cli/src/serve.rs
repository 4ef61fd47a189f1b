//! `countersign serve`: configuration, logging, the store, the policy set,
//! the listener, and the signals that reload (SIGHUP) or stop (SIGINT,
//! SIGTERM) the gateway.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use countersign_server::config::{Config, LogFormat, Overrides, ProcessEnv};
use countersign_server::{AppState, StartError};
use countersign_store::Store;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

use crate::cli::ServeArgs;
use crate::exit::Exit;
use crate::output::{shell_quote, stderr_color};

pub async fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        policies: args.policies,
        config_file: args.config.clone(),
        database: args.database.clone(),
    };
    let config = Config::load(&overrides, &ProcessEnv)?;
    init_tracing(&config)?;

    // The data directory holds the default policies even when the store is
    // PostgreSQL.
    let store: Arc<dyn Store> = crate::local::open_store(&config, crate::local::Open::Create).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("cannot read the listening address")?;
    let identity = countersign_identity::Identity::from_config(&config, store.clone())
        .context("cannot set up the identity provider client")?;
    let state = match AppState::with_authenticator(config.clone(), store, identity.authenticator()).await {
        Ok(state) => state,
        Err(StartError::Policy { dir, problems }) => {
            // One problem a line, as `policy check` prints them.
            for problem in problems.lines() {
                eprintln!("{problem}");
            }
            anyhow::bail!("the policies in `{dir}` do not load; fix them (see `countersign policy check {dir}`)");
        }
        Err(e) => return Err(e.into()),
    };

    // Signal handlers go in before the banner: whoever reads "listening on"
    // may send SIGHUP at once, and an unhandled SIGHUP would kill us.
    let hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let shutdown = stop_signal()?;
    tokio::spawn(reload_on_sighup(state.clone(), hangup));
    banner(&config, &state, addr);

    let mcp = countersign_mcp::router(state.clone());
    let console = countersign_console::router(state.clone(), identity, countersign_console::Options::default());
    let channels = countersign_channels::Channels::new(state.clone())?;
    channels.spawn();
    countersign_server::serve_with(state, console.merge(mcp).merge(channels.router()), listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(Exit::OK)
}

fn init_tracing(config: &Config) -> anyhow::Result<()> {
    // RUST_LOG, when set, wins over the configured level, so one run can be
    // debugged without editing the config.
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => EnvFilter::try_new(&config.log_level)
            .map_err(|e| anyhow::anyhow!("`log.level`: `{}` is not a log filter: {e}", config.log_level))?,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.with_ansi(stderr_color()).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// What a new user needs: where it listens, where data and policies live,
/// and copy-pasteable next steps. The `listening on` line is also what
/// tests and tools parse to find the port.
fn banner(config: &Config, state: &AppState, addr: SocketAddr) {
    let policy = state.policy();
    let url = format!("http://{}", client_addr(addr));
    // Absolute, so the commands work from any directory.
    let data_dir = std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let data_flag = match config.database.postgres_url() {
        // The URL may carry a password: the commands read it from the
        // environment (or config) rather than have it pasted from here.
        Some(_) => " --database \"$COUNTERSIGN_DATABASE_URL\"".to_owned(),
        None => format!(" --data-dir {}", shell_quote(&data_dir.display().to_string())),
    };
    let store_line = match config.database.postgres_url() {
        Some(url) => format!("database:     PostgreSQL {}\n", countersign_store_postgres::describe_url(url)),
        None => String::new(),
    };
    let server_env =
        if url == "http://127.0.0.1:8470" { String::new() } else { format!("  export COUNTERSIGN_SERVER={url}\n") };
    let plural = if policy.engine.policy_count() == 1 { "policy" } else { "policies" };
    let text = format!(
        "countersign gateway\n\
         listening on {url}\n\
         data dir:     {data}\n\
         {store_line}\
         policies:     {policies} ({count} {plural}, {hash})\n\
         \n\
         Next steps, in another terminal:\n\
         \n\
         # 1. a human approver (prints their personal token)\n\
         \x20 countersign users add alice --email alice@example.com --group sre{data_flag}\n\
         # 2. an agent (prints its API key); add `--owner USER` to name who answers\n\
         #    for it (an owner may not approve its requests)\n\
         \x20 countersign agents add deploy-bot{data_flag}\n\
         # 3. act as the agent: routine work runs at once, prod waits for an sre\n\
         {server_env}\
         \x20 export COUNTERSIGN_TOKEN=<the agent key from step 2>\n\
         \x20 countersign exec --kind shell.exec --resource staging-web -- echo hello\n\
         \x20 countersign exec --kind shell.exec --resource prod-web -- echo hello\n\
         # 4. as alice (another terminal), approve it\n\
         {server_env}\
         \x20 COUNTERSIGN_TOKEN=<alice's token> countersign pending\n\
         \x20 COUNTERSIGN_TOKEN=<alice's token> countersign approve <id>\n\
         \n\
         SIGHUP reloads the policies; Ctrl-C stops the gateway.\n",
        data = data_dir.display(),
        policies = config.policies_dir.display(),
        count = policy.engine.policy_count(),
        hash = policy.engine.hash(),
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// The address a client on this machine should use: a wildcard listen
/// address is reached through loopback.
fn client_addr(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        let loopback = match addr {
            SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        addr.set_ip(loopback);
    }
    addr
}

async fn reload_on_sighup(state: AppState, mut hangup: tokio::signal::unix::Signal) {
    while hangup.recv().await.is_some() {
        match state.reload_policies("system:sighup").await {
            Ok(hash) => tracing::info!(%hash, "SIGHUP: policies reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: policy reload failed; the previous set stays in force")
            }
        }
    }
}

/// Completes on the first SIGINT or SIGTERM.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
