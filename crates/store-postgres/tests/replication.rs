//! What only a shared database can show: notices from one store reach the
//! others (and not itself), and a database restart fails calls closed and
//! heals by itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use countersign_audit::{AuditDraft, ChainVerifier};
use countersign_core::{testing, PrincipalRef, Request, Status, Timestamp};
use countersign_store::{Change, Store, StoreError, Update};
use countersign_store_postgres::testing::TempCluster;
use countersign_store_postgres::{PostgresOptions, PostgresStore};
use serde_json::json;
use tokio::sync::broadcast;

fn request(id: &str) -> Request {
    let action = testing::action("shell.exec", "prod-web", json!({"argv": ["systemctl", "restart", "web"]}));
    testing::pending(id, PrincipalRef::agent("bot"), action, Vec::new(), Timestamp::now())
}

fn cancel() -> countersign_store::UpdateFn {
    Box::new(|r: &Request| {
        let mut next = r.clone();
        next.status = Status::Cancelled;
        next.closed_at = Some(Timestamp::now());
        Update {
            save: Some(next),
            events: vec![AuditDraft::raw("system", "test.cancelled", json!({}))],
            result: Ok(()),
        }
    })
}

/// Waits for the next change that is not `Unknown` (connects announce one).
async fn next_known(feed: &mut broadcast::Receiver<Change>) -> Change {
    loop {
        let change = tokio::time::timeout(Duration::from_secs(5), feed.recv()).await.expect("a notice").unwrap();
        if change != Change::Unknown {
            return change;
        }
    }
}

async fn wait_listening(store: &PostgresStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.is_listening() {
        assert!(Instant::now() < deadline, "the change feed never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_other_replicas_only() {
    let cluster = TempCluster::shared().unwrap();
    let url = cluster.create_database().await.unwrap();
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url).await.unwrap();
    let mut a_feed = a.change_feed().unwrap();
    let mut b_feed = b.change_feed().unwrap();
    wait_listening(&a).await;
    wait_listening(&b).await;

    a.insert_request(request("r1"), Vec::new()).await.unwrap();
    let started = Instant::now();
    a.update_request("r1", cancel()).await.unwrap();
    assert_eq!(next_known(&mut b_feed).await, Change::Request("r1".into()));
    let latency = started.elapsed();
    assert!(latency < Duration::from_secs(1), "the notice took {latency:?}");

    assert!(a.kv_compare_and_set("ns", "k", None, Some("v".into())).await.unwrap());
    assert_eq!(next_known(&mut b_feed).await, Change::Kv { namespace: "ns".into(), key: "k".into() });

    // The notice's own latency: from A's commit returning to B hearing it.
    let mut latencies = Vec::new();
    for n in 0..200 {
        let id = format!("lat-{n}");
        a.insert_request(request(&id), Vec::new()).await.unwrap();
        a.update_request(&id, cancel()).await.unwrap();
        let committed = Instant::now();
        assert_eq!(next_known(&mut b_feed).await, Change::Request(id));
        latencies.push(committed.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (latencies[100], latencies[197]);
    eprintln!("NOTIFY across stores: p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(100), "notices must beat the 200 ms poll by far: p99 {p99:?}");

    // B's own change reaches A, and A never heard of its own.
    b.insert_request(request("r2"), Vec::new()).await.unwrap();
    b.update_request("r2", cancel()).await.unwrap();
    assert_eq!(next_known(&mut a_feed).await, Change::Request("r2".into()));
    let idle = tokio::time::timeout(Duration::from_millis(200), next_known(&mut a_feed)).await;
    assert!(idle.is_err(), "a store must not hear its own notices: {idle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_fails_closed_and_heals() {
    // Its own cluster: stopping the shared one would break other tests.
    let cluster = tokio::task::spawn_blocking(TempCluster::start).await.unwrap().unwrap();
    let url = cluster.create_database().await.unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();
    let mut feed = store.change_feed().unwrap();
    wait_listening(&store).await;
    store.insert_request(request("before"), vec![AuditDraft::raw("system", "test.before", json!({}))]).await.unwrap();
    let counter = store.change_counter().await.unwrap();

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop().unwrap();
        cluster
    })
    .await
    .unwrap();
    // Every call now fails, as unavailable: nothing is half-done or assumed.
    let insert = store.insert_request(request("during"), Vec::new()).await;
    assert!(matches!(insert, Err(StoreError::Unavailable(_))), "{insert:?}");
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.request("before").await, Err(StoreError::Unavailable(_))));
    assert!(store.change_counter().await.is_err());

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_again().unwrap();
        cluster
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the store did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.insert_request(request("after"), vec![AuditDraft::raw("system", "test.after", json!({}))]).await.unwrap();
    assert!(store.change_counter().await.unwrap() > counter);
    assert!(store.request("during").await.unwrap().is_none(), "the failed insert must not have happened");
    // The listener came back, and said that it may have missed something.
    let mut heard_unknown = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !heard_unknown && Instant::now() < deadline {
        if let Ok(Ok(change)) = tokio::time::timeout(Duration::from_millis(200), feed.recv()).await {
            heard_unknown = change == Change::Unknown;
        }
    }
    assert!(heard_unknown, "a reconnected feed must announce Unknown");
    let events = store.audit_events(0, 100).await.unwrap();
    let mut verifier = ChainVerifier::new();
    for event in &events {
        verifier.push(event).unwrap();
    }
    assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["test.before", "test.after"]);
    drop(store);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_used_and_verified_when_the_url_asks() {
    let cluster = match tokio::task::spawn_blocking(TempCluster::start_with_tls).await.unwrap() {
        Ok(cluster) => cluster,
        Err(e) => panic!("a TLS cluster (needs openssl): {e}"),
    };
    let url = cluster.create_database().await.unwrap();
    let ca = cluster.ca_file().unwrap();
    let options = |ca_file| PostgresOptions { ca_file, ..PostgresOptions::default() };
    let secure = format!("{url}?sslmode=require");

    // Trusting the cluster's CA: connected, and over TLS.
    let store = PostgresStore::connect_with(&secure, options(Some(ca.clone()))).await.unwrap();
    store.insert_request(request("tls"), Vec::new()).await.unwrap();
    assert!(store.request("tls").await.unwrap().is_some());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    let rows = client
        .query("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND datname = current_database()", &[])
        .await
        .unwrap();
    let encrypted: i64 = rows[0].get(0);
    assert!(encrypted >= 2, "the store's sessions must use TLS, found {encrypted}");
    drop(store);

    // An unknown CA is refused: the certificate is verified, not just used.
    let refused = PostgresStore::connect_with(&secure, options(None)).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    // libpq's spelling, as managed databases hand it out, means the same.
    let verify_full = format!("{url}?sslmode=verify-full");
    let store = PostgresStore::connect_with(&verify_full, options(Some(ca.clone()))).await.unwrap();
    assert!(store.request("tls").await.unwrap().is_some());
    drop(store);
    let refused = PostgresStore::connect_with(&verify_full, options(None)).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    // No sslmode: plain TCP, as before.
    let plain = PostgresStore::connect_with(&url, options(None)).await.unwrap();
    assert!(plain.request("tls").await.unwrap().is_some());
    drop(plain);
    drop(client);
    driver.abort();
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_fails_calls_in_bounded_time() {
    let cluster = tokio::task::spawn_blocking(TempCluster::start).await.unwrap().unwrap();
    let url = cluster.create_database().await.unwrap();
    let options = PostgresOptions {
        statement_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(&url, options).await.unwrap();
    store.insert_request(request("before"), Vec::new()).await.unwrap();

    cluster.freeze().unwrap();
    // Connections stay open but nothing answers: readiness and writes must
    // still answer, with an error, within their bounds.
    let started = Instant::now();
    let ping = store.ping().await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "ping took {:?}", started.elapsed());
    let started = Instant::now();
    let insert = store.insert_request(request("during"), Vec::new()).await;
    assert!(matches!(insert, Err(StoreError::Unavailable(_))), "{insert:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "the write took {:?}", started.elapsed());
    let started = Instant::now();
    let read = store.request("before").await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "the read took {:?}", started.elapsed());
    cluster.thaw().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while store.insert_request(request("after"), Vec::new()).await.is_err() {
        assert!(Instant::now() < deadline, "the store did not recover after the database woke up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.ping().await.is_ok());
    assert!(store.request("during").await.unwrap().is_none(), "the write that timed out must not have happened");
    drop(store);
    drop(cluster);
}
