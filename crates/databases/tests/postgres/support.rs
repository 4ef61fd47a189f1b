//! A gateway with a PostgreSQL endpoint in front of a fresh database.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use countersign_store_postgres::testing::TempCluster;
use countersign_testkit::{fixtures::standard_cast, Builder, Gateway};
use serde_json::Value;

/// Reads are routine; a delete without a filter needs a dba; dropping a
/// table is forbidden; `ci` agents may do the rest.
pub const POLICY: &str = r#"
@id("routine-reads")
permit(principal, action == Action::"sql.execute", resource == Resource::"orders-db")
when { context.facts has sql && context.facts.sql.is_read_only };

@id("ci-writes")
permit(principal in Group::"ci", action == Action::"sql.execute", resource == Resource::"orders-db");

@id("deletes-need-a-dba")
@approvers("dba")
permit(principal, action == Action::"sql.execute", resource == Resource::"orders-db")
when { context.facts has sql && context.facts.sql.delete_without_where };

@id("no-drop")
forbid(principal, action == Action::"sql.execute", resource)
when { context.facts has sql && context.facts.sql.statement_kinds.contains("drop_table") };
"#;

/// How the endpoint is set up.
#[derive(Debug, Clone)]
pub struct Setup {
    /// A cluster of the test's own (to stop it), instead of the shared one.
    pub cluster: Option<Arc<TempCluster>>,
    /// The gateway's clock, to move deadlines by hand.
    pub clock: Option<Arc<countersign_testkit::ManualClock>>,
    /// Serve TLS (`tls_cert_file`, `tls_key_file`) with a certificate for
    /// `localhost`, `127.0.0.1` and `ip`.
    pub tls: bool,
    /// The address the endpoint listens on.
    pub ip: IpAddr,
    /// More lines for the `[[postgres]]` section.
    pub extra: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Self { cluster: None, clock: None, tls: false, ip: IpAddr::V4(Ipv4Addr::LOCALHOST), extra: "" }
    }
}

/// The endpoint's TLS files.
pub struct Tls {
    /// The CA that issued the endpoint's certificate, for clients to trust.
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

pub struct Harness {
    pub gateway: Gateway,
    /// Where clients connect.
    pub ip: IpAddr,
    pub port: u16,
    /// The database's own name (the endpoint serves only it).
    pub database: String,
    /// The database, reached directly (as its owner), for setup and checks.
    pub direct: tokio_postgres::Client,
    /// Set when the endpoint serves TLS.
    pub tls: Option<Tls>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(Setup::default()).await
    }

    pub async fn with(setup: Setup) -> Self {
        let cluster: &TempCluster = match &setup.cluster {
            Some(own) => own,
            None => TempCluster::shared().unwrap(),
        };
        let url = cluster.create_database().await.unwrap();
        let database = url.rsplit('/').next().unwrap().to_owned();
        let (direct, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        direct
            .batch_execute("CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, 'apple'), (2, 'pear'), (3, 'fig'); ANALYZE orders;")
            .await
            .unwrap();

        let tls = setup.tls.then(|| {
            let ip = setup.ip.to_string();
            let pki = countersign_testkit::tls::pem_pki(&["localhost", "127.0.0.1", &ip]);
            let dir = tempfile::tempdir().unwrap();
            for (name, pem) in [("ca.pem", &pki.ca), ("server.pem", &pki.cert), ("server.key", &pki.key)] {
                std::fs::write(dir.path().join(name), pem).unwrap();
            }
            Tls { ca: dir.path().join("ca.pem"), _dir: dir }
        });
        // Configured as `countersign serve` reads it, so the gateway knows
        // `orders-db` speaks PostgreSQL; the test binds the listener itself.
        let mut toml = format!(
            "[[postgres]]\nresource = \"orders-db\"\nlisten = \"127.0.0.1:0\"\nport = {}\ndatabase = \"{database}\"\nuser = \"postgres\"\ntls = \"disable\"\n",
            cluster.port()
        );
        toml += setup.extra;
        if let Some(tls) = &tls {
            let file = |name: &str| tls.ca.with_file_name(name).display().to_string();
            toml += &format!("tls_cert_file = {:?}\ntls_key_file = {:?}\n", file("server.pem"), file("server.key"));
        }
        let mut builder = Builder::new(POLICY).cast(standard_cast()).config(&toml);
        if let Some(clock) = &setup.clock {
            builder = builder.clock(clock.clone());
        }
        let gateway = builder.start().await;
        let listener = tokio::net::TcpListener::bind((setup.ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = gateway.config.postgres[0].clone();
        tokio::spawn(countersign_databases::postgres::serve(
            gateway.state.clone(),
            Arc::new(config),
            listener,
            std::future::pending(),
        ));
        Self { gateway, ip: setup.ip, port, database, direct, tls }
    }

    /// A connection string for `who`, logging in with their countersign token.
    pub fn conninfo(&self, who: &str) -> String {
        format!(
            "host={} port={} user={who} dbname={} password={} sslmode=disable",
            self.ip,
            self.port,
            self.database,
            self.gateway.token(who)
        )
    }

    /// The same as a URL, for clients that take only URLs (asyncpg,
    /// node-postgres): without TLS, or with TLS verified against the test
    /// CA for `localhost` when the endpoint serves it.
    pub fn url(&self, who: &str) -> String {
        let token = self.gateway.token(who);
        assert!(
            token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "a token to escape: {token}"
        );
        match &self.tls {
            None => format!(
                "postgresql://{who}:{token}@{}/{}?sslmode=disable",
                SocketAddr::new(self.ip, self.port),
                self.database
            ),
            Some(tls) => format!(
                "postgresql://{who}:{token}@localhost:{}/{}?sslmode=verify-full&sslrootcert={}",
                self.port,
                self.database,
                tls.ca.display()
            ),
        }
    }

    pub async fn connect(&self, who: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.conninfo(who), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub async fn count(&self) -> i64 {
        self.direct.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0)
    }

    /// The requests on `orders-db`, newest first.
    pub async fn requests(&self) -> Vec<Value> {
        let (_, body) = self.gateway.call("GET", "/v1/actions?limit=100", Some("adam"), None).await;
        body["actions"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until a pending request for `statement` shows up; its id.
    pub async fn pending(&self, statement: &str) -> String {
        for _ in 0..200 {
            let found = self
                .requests()
                .await
                .into_iter()
                .find(|r| r["status"] == "pending" && r["payload"]["statement"] == statement);
            if let Some(r) = found {
                return r["id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("no pending request for `{statement}`");
    }
}
