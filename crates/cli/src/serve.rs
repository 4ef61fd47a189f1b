//! `countersign serve`: configuration, logging, the store, the policy set,
//! the listener, and the signals that reload (SIGHUP) or stop (SIGINT,
//! SIGTERM) the gateway.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use countersign::config::{Config, LogFormat, Overrides, ProcessEnv};
use countersign_gateway::{AppState, StartError};
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
    let identity = countersign_identity::Identity::from_config(&config.identity, store.clone())
        .context("cannot set up the identity provider client")?;
    let state = match AppState::with_authenticator(config.gateway(), store, identity.authenticator()).await {
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
    let replicated = config.database.postgres_url().is_some();
    match countersign_gateway::checkpoints::start(&state, &config.audit, &config.data_dir, replicated)? {
        Some(verifier) => eprintln!("audit key:    {} (checkpoints signed every second)", verifier.vkey()),
        None => eprintln!("audit:        signed checkpoints are off (`[audit] checkpoints = false`)"),
    }

    let hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let shutdown = stop_signal()?;
    tokio::spawn(reload_on_sighup(state.clone(), hangup));
    banner(&config, &state, addr);

    let (routes, channels, siem) = routes(&state, &config, identity)?;
    channels.spawn();
    siem.spawn(&siem_options(&config));
    start_databases(&state, &config).await?;
    countersign_server::serve_with(state, config.server(), routes, listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(Exit::OK)
}

/// The PostgreSQL endpoints: each listens until the gateway shuts down.
async fn start_databases(state: &AppState, config: &Config) -> anyhow::Result<()> {
    for database in &config.postgres {
        let listener = tokio::net::TcpListener::bind(database.listen).await.with_context(|| {
            format!("cannot listen for PostgreSQL clients of `{}` on {}", database.resource, database.listen)
        })?;
        eprintln!(
            "postgres:     `{}` on {} (clients log in with their countersign key)",
            database.resource, database.listen
        );
        let shutdown = {
            let state = state.clone();
            async move { state.stopped().await }
        };
        tokio::spawn(countersign_databases::postgres::serve(
            state.clone(),
            Arc::new(database.clone()),
            listener,
            shutdown,
        ));
    }
    Ok(())
}

/// The SIEM sinks' delivery timings: the outbox's, with the channels'
/// `max_backoff`.
fn siem_options(config: &Config) -> countersign_channels::OutboxOptions {
    let mut options = countersign_channels::OutboxOptions::default();
    options.max_backoff = options.max_backoff.min(config.channels.max_backoff);
    options
}

/// The console, MCP, HTTP API and channel routes, the channels and the SIEM sinks
/// (whose workers the caller starts). The console's admin page shows each
/// channel's and sink's health.
fn routes(
    state: &AppState,
    config: &Config,
    identity: countersign_identity::Identity,
) -> anyhow::Result<(countersign_server::Router, countersign_channels::Channels, countersign_siem::Siem)> {
    let channels = countersign_channels::Channels::new(state.clone(), &config.channels)?;
    let siem = countersign_siem::Siem::new(state.clone(), &config.siem)?;
    let channel_probes = channels.health().into_iter().map(|probe| (probe, "channel"));
    let sink_probes = siem.health().into_iter().map(|probe| (probe, "SIEM sink"));
    let integrations = channel_probes
        .chain(sink_probes)
        .map(|(probe, what)| Arc::new(ChannelHealth(probe, what)) as Arc<dyn countersign_console::IntegrationHealth>)
        .collect();
    let options = countersign_console::Options {
        integrations,
        redact: config.channels.redact.clone(),
        store_target: config.database_path().display().to_string(),
    };
    let console = countersign_console::router(state.clone(), identity, options);
    let mcp = countersign_mcp::router(state.clone(), config.mcp.clone(), config.body_limit_bytes);
    for api in &config.http {
        eprintln!(
            "http:         `{}` at {}/http/{} (agents call it with their countersign key)",
            api.resource,
            config.public_url.trim_end_matches('/'),
            api.name
        );
    }
    let http = countersign_http::router(state.clone(), config.http.clone());
    for cluster in &config.kubernetes {
        eprintln!(
            "kubernetes:   `{}` at {}/k8s/{} (`countersign kubeconfig {}` prints a kubeconfig)",
            cluster.resource,
            config.public_url.trim_end_matches('/'),
            cluster.name,
            cluster.name
        );
    }
    let k8s = countersign_k8s::router(state.clone(), config.kubernetes.clone());
    Ok((console.merge(mcp).merge(http).merge(k8s).merge(channels.router()), channels, siem))
}

/// A channel's or SIEM sink's health in the console's terms. The adapter lives here, in
/// the binary that wires both, so that neither the console nor the
/// channels depend on the other: both depend only on the gateway below
/// them, and the console stays free of Slack and Teams code.
#[derive(Debug)]
struct ChannelHealth(countersign_channels::health::Probe, &'static str);

#[async_trait::async_trait]
impl countersign_console::IntegrationHealth for ChannelHealth {
    async fn health(&self) -> countersign_identity::Health {
        let snapshot = self.0.snapshot(countersign_core::Timestamp::now()).await;
        countersign_identity::Health {
            name: format!("{} {}", self.1, snapshot.name),
            target: snapshot.target,
            ok: snapshot.up,
            detail: snapshot.detail,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use countersign::config::MapEnv;
    use countersign_core::{PrincipalKind, Timestamp};
    use countersign_store::NewUser;
    use reqwest::header::{COOKIE, SET_COOKIE};

    fn cookie(response: &reqwest::Response, name: &str) -> String {
        response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').next()?.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .unwrap()
    }

    /// A Slack that cannot be reached shows as failing on the admin page,
    /// with the reason; the webhook and the SIEM sink that work show as OK.
    #[tokio::test]
    async fn the_admin_page_shows_a_down_slack_as_down() {
        countersign_identity::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(
            policies.join("p.cedar"),
            "@id(\"prod\") @approvers(\"sre\") permit (principal, action, resource);",
        )
        .unwrap();
        // Nothing listens on a port just released: Slack is down.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
        // A webhook receiver that answers every request with 204.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            while let Ok((mut socket, _)) = hook.accept().await {
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 65536];
                    let mut seen = Vec::new();
                    // Read the headers and the body the Content-Length announces.
                    loop {
                        let Ok(n) = socket.read(&mut buffer).await else { return };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buffer[..n]);
                        let text = String::from_utf8_lossy(&seen).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                                })
                                .and_then(|v| v.parse::<usize>().ok())
                                .unwrap_or(0);
                            if body.len() >= length {
                                let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config_file = dir.path().join("countersign.toml");
        std::fs::write(
            &config_file,
            format!(
                "[server]\npublic_url = {url:?}\n\n[slack]\nbot_token = \"xoxb-t\"\nsigning_secret = \"s\"\n\
                 api_base_url = \"http://{dead}/api\"\nchannel = \"#approvals\"\n\n\
                 [[webhooks]]\nurl = {hook_url:?}\nsecret = \"w\"\n\n[channels]\nmax_backoff = \"1s\"\n\n\
                 [[siem]]\nname = \"file\"\ntype = \"ocsf_file\"\npath = {ocsf:?}\n",
                ocsf = dir.path().join("audit.ocsf.jsonl")
            ),
        )
        .unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            policies: Some(policies),
            config_file: Some(config_file),
            ..Overrides::default()
        };
        let config = Config::load(&overrides, &MapEnv::new([("UNUSED", "")])).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(countersign_store_sqlite::SqliteStore::open(&config.database_path()).unwrap());
        let mut tokens = Vec::new();
        for (name, group) in [("ada", "admin"), ("bob", "sre")] {
            let (token, hash) = countersign_gateway::identify::new_token(PrincipalKind::User);
            let user = NewUser {
                name: name.into(),
                email: format!("{name}@example.com"),
                groups: vec![group.into()],
                token_hash: hash,
                created_at: Timestamp::now(),
            };
            store.create_user(user, vec![]).await.unwrap();
            tokens.push(token);
        }
        let identity = countersign_identity::Identity::from_config(&config.identity, store.clone()).unwrap();
        let kv = store.clone();
        let state = AppState::with_authenticator(config.gateway(), store, identity.authenticator()).await.unwrap();
        let (routes, channels, siem) = routes(&state, &config, identity).unwrap();
        channels.spawn();
        siem.spawn(&siem_options(&config));
        tokio::spawn(countersign_server::serve_with(state, config.server(), routes, listener, std::future::pending()));
        // The workers start at the head of the log: wait until they have.
        for channel in ["slack", "webhook-0", "siem-file"] {
            while kv.kv_get("channels", &format!("cursor:{channel}")).await.unwrap().is_none() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }

        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        // A request for approval gives both channels something to deliver.
        let submitted = http
            .post(format!("{url}/v1/actions"))
            .bearer_auth(&tokens[1])
            .json(&serde_json::json!({"kind": "shell.exec", "resource": "prod-web", "payload": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(submitted.status(), 201);

        let login = http.get(format!("{url}/console/login")).send().await.unwrap();
        let pre = cookie(&login, "cs_pre");
        let page = login.text().await.unwrap();
        let csrf = page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let signed_in = http
            .post(format!("{url}/console/login/token"))
            .header(COOKIE, format!("cs_pre={pre}"))
            .form(&[("_csrf", csrf.as_str()), ("token", tokens[0].as_str()), ("return_to", "/console/admin")])
            .send()
            .await
            .unwrap();
        let session = format!("__Host-cs_session={}", cookie(&signed_in, "__Host-cs_session"));

        let row = |html: &str, name: &str| -> Option<String> {
            html.split("<tr>").find(|r| r.contains(&format!(">{name}<"))).map(str::to_owned)
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let html = http
                .get(format!("{url}/console/admin"))
                .header(COOKIE, &session)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let slack = row(&html, "channel slack").unwrap_or_else(|| panic!("no Slack row: {html}"));
            let hook = row(&html, "channel webhook-0").unwrap_or_else(|| panic!("no webhook row: {html}"));
            // The backlog is counted apart from the delivery record, so a
            // page may show the delivery a moment before the empty backlog.
            let sink = row(&html, "SIEM sink siem-file").unwrap_or_else(|| panic!("no SIEM sink row: {html}"));
            let settled = slack.contains("health-bad")
                && slack.contains("backlog 1")
                && hook.contains("last delivery")
                && hook.contains("backlog 0")
                && sink.contains("last delivery")
                && sink.contains("backlog 0");
            if settled {
                assert!(slack.contains("Failing") && slack.contains("failing, retrying"), "{slack}");
                assert!(slack.contains(&format!("http://{dead}")), "the target: {slack}");
                assert!(slack.contains("backlog 1"), "{slack}");
                assert!(hook.contains("health-ok") && hook.contains("backlog 0"), "{hook}");
                assert!(row(&html, "channel teams").is_none(), "Teams is not configured");
                assert!(sink.contains("health-ok") && sink.contains("OCSF file"), "{sink}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the admin page never showed Slack down: {slack}\n{hook}\n{sink}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
