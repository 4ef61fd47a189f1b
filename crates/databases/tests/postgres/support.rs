//! A gateway with a PostgreSQL endpoint in front of a fresh database.

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

pub struct Harness {
    pub gateway: Gateway,
    /// Where clients connect.
    pub port: u16,
    /// The database's own name (the endpoint serves only it).
    pub database: String,
    /// The database, reached directly (as its owner), for setup and checks.
    pub direct: tokio_postgres::Client,
}

impl Harness {
    pub async fn start() -> Self {
        let cluster = TempCluster::shared().unwrap();
        let url = cluster.create_database().await.unwrap();
        let database = url.rsplit('/').next().unwrap().to_owned();
        let (direct, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        direct
            .batch_execute("CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, 'apple'), (2, 'pear'), (3, 'fig'); ANALYZE orders;")
            .await
            .unwrap();

        // Configured as `countersign serve` reads it, so the gateway knows
        // `orders-db` speaks PostgreSQL; the test binds the listener itself.
        let toml = format!(
            "[[postgres]]\nresource = \"orders-db\"\nlisten = \"127.0.0.1:0\"\nport = {}\ndatabase = \"{database}\"\nuser = \"postgres\"\ntls = \"disable\"\n",
            cluster.port()
        );
        let gateway = Builder::new(POLICY).cast(standard_cast()).config(&toml).start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = gateway.config.postgres[0].clone();
        tokio::spawn(countersign_databases::postgres::serve(
            gateway.state.clone(),
            Arc::new(config),
            listener,
            std::future::pending(),
        ));
        Self { gateway, port, database, direct }
    }

    /// A connection string for `who`, logging in with their countersign token.
    pub fn conninfo(&self, who: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={who} dbname={} password={} sslmode=disable",
            self.port,
            self.database,
            self.gateway.token(who)
        )
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
