//! When the database is down, what a client may not reach through the
//! gateway, and pgbench as one more real client.

use std::sync::Arc;
use std::time::Duration;

use countersign_store_postgres::testing::TempCluster;
use tokio_postgres::error::SqlState;

use crate::support::{Harness, Setup};

fn code(e: &tokio_postgres::Error) -> Option<SqlState> {
    e.as_db_error().map(|d| d.code().clone())
}

#[tokio::test]
async fn the_database_down_fails_closed_with_a_clear_error() {
    let cluster = Arc::new(TempCluster::start().unwrap());
    let h = Harness::with(Setup { cluster: Some(cluster.clone()), ..Setup::default() }).await;
    let bot = h.connect("bot").await;
    bot.simple_query("SELECT 1").await.unwrap();

    cluster.stop().unwrap();
    // The open session ends, saying why.
    let e = bot.simple_query("SELECT 1").await.unwrap_err();
    // The database's own goodbye (57P01) comes through, then the session ends.
    assert!(
        bot.is_closed() || [Some(SqlState::CONNECTION_FAILURE), Some(SqlState::ADMIN_SHUTDOWN)].contains(&code(&e)),
        "{e:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while !bot.is_closed() {
            let _ = bot.simple_query("SELECT 1").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the session ends when its database connection does");
    // A new one is refused at login, naming the resource, not the host.
    let e = match tokio_postgres::connect(&h.conninfo("bot"), tokio_postgres::NoTls).await {
        Ok(_) => panic!("logged in with the database down"),
        Err(e) => e,
    };
    assert_eq!(code(&e), Some(SqlState::CONNECTION_FAILURE), "{e}");
    let message = e.as_db_error().unwrap().message().to_owned();
    assert!(message.contains("cannot reach the database `orders-db`"), "{message}");

    cluster.start_again().unwrap();
    let bot = h.connect("bot").await;
    assert_eq!(bot.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get::<_, i64>(0), 3);
}

/// The gateway's credential and the machine it runs on are not the
/// agent's: server-side files and programs are facts that keep such a
/// statement from being routine, and nothing the gateway says names its
/// password.
#[tokio::test]
async fn the_gateways_credential_and_files_stay_out_of_reach() {
    let h = Harness::start().await;
    let bot = h.connect("bot").await;
    for sneaky in [
        "COPY orders FROM '/etc/passwd'",
        "COPY orders TO PROGRAM 'env > /tmp/x'",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT * FROM pg_ls_dir('.')",
        "CREATE EXTENSION IF NOT EXISTS file_fdw",
    ] {
        let e = bot.simple_query(sneaky).await.unwrap_err();
        assert_eq!(code(&e), Some(SqlState::INSUFFICIENT_PRIVILEGE), "{sneaky}: {e}");
    }
    // What the client was told while logging in is the database's
    // session parameters: nothing of the gateway's own login.
    let shown = bot.simple_query("SHOW ALL").await.unwrap();
    assert!(!shown.is_empty());
}

#[tokio::test]
async fn pgbench_runs_through_the_endpoint_with_every_statement_decided() {
    let h = Harness::start().await;
    h.direct
        .batch_execute(
            "CREATE TABLE pgbench_accounts (aid int primary key, bid int, abalance int, filler char(84));
             INSERT INTO pgbench_accounts SELECT g, 1, 0, '' FROM generate_series(1, 100000) g;
             CREATE TABLE pgbench_branches (bid int primary key, bbalance int, filler char(88));
             INSERT INTO pgbench_branches VALUES (1, 0, '');
             CREATE TABLE pgbench_tellers (tid int primary key, bid int, tbalance int, filler char(84));
             CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));",
        )
        .await
        .unwrap();
    let conninfo = h.conninfo("bot");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("pgbench")
            .args(["-n", "-S", "-M", "prepared", "-c", "2", "-t", "25", &conninfo])
            .output()
            .unwrap()
    });
    let out = tokio::time::timeout(Duration::from_secs(60), out).await.unwrap().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("number of transactions actually processed: 50/50"), "{stdout}");
    let decided = h
        .requests()
        .await
        .iter()
        .filter(|r| {
            r["payload"]["statement"] == "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
                && r["status"] == "allowed"
        })
        .count();
    assert_eq!(decided, 50);
}

/// The gateway's own login: TLS verified against the configured CA, and
/// SCRAM-SHA-256 with a password the client never sees.
#[tokio::test]
async fn the_gateway_logs_in_with_verified_tls_and_scram() {
    let cluster = TempCluster::start_with_tls().unwrap();
    cluster.require_password("gate", "s3cret-gate-pw").await.unwrap();
    let url = cluster.create_database().await.unwrap();
    let database = url.rsplit('/').next().unwrap().to_owned();
    let ca = cluster.ca_file().unwrap();
    let endpoint = |password: &str, ca: &std::path::Path| {
        format!(
            "[[postgres]]\nresource = \"orders-db\"\nlisten = \"127.0.0.1:0\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"{database}\"\nuser = \"gate\"\npassword = \"{password}\"\ntls = \"verify-full\"\nca_file = {:?}\n",
            cluster.port(),
            ca.display().to_string()
        )
    };
    let (_gateway, conninfo) = serve(&database, endpoint("s3cret-gate-pw", &ca)).await;
    let (bot, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = bot
        .query_one("SELECT current_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "gate");
    assert!(row.get::<_, bool>(1), "the gateway's connection to the database is TLS");

    // A wrong password: refused, and the answer does not repeat it.
    let (_gateway, conninfo) = serve(&database, endpoint("wrong-password", &ca)).await;
    let e = match tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await {
        Ok(_) => panic!("logged in with the gateway's wrong password"),
        Err(e) => e,
    };
    let message = e.as_db_error().unwrap().message().to_owned();
    assert!(message.contains("password authentication failed for user \"gate\""), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");

    // A CA that did not issue the database's certificate: refused.
    let other = countersign_testkit::tls::pem_pki(&["127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, &other.ca).unwrap();
    let (_gateway, conninfo) = serve(&database, endpoint("s3cret-gate-pw", &other_ca)).await;
    let e = match tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await {
        Ok(_) => panic!("trusted a database certificate from another CA"),
        Err(e) => e,
    };
    let message = e.as_db_error().unwrap().message().to_owned();
    assert!(message.contains("TLS"), "{message}");
}

/// A gateway configured with `toml` serving an endpoint; the connection
/// string for `ci-bot` (which may run anything not forbidden).
async fn serve(database: &str, toml: String) -> (countersign_testkit::Gateway, String) {
    let gateway = countersign_testkit::Builder::new(crate::support::POLICY)
        .cast(countersign_testkit::fixtures::standard_cast())
        .config(&toml)
        .start()
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(countersign_databases::postgres::serve(
        gateway.state.clone(),
        Arc::new(gateway.config.postgres[0].clone()),
        listener,
        std::future::pending(),
    ));
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=ci-bot dbname={database} password={} sslmode=disable",
        gateway.token("ci-bot")
    );
    (gateway, conninfo)
}
