//! Upgrading a database made by an older build: migration 2 moves the
//! login profiles kept in the key-value area into the users table and
//! bounds the console sessions stored before entries could expire.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use countersign_core::Timestamp;
use countersign_store::Store;
use countersign_store_postgres::testing::TempCluster;
use countersign_store_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_2_moves_login_profiles_into_users_and_bounds_old_sessions() {
    let cluster = TempCluster::shared().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().await.expect("a fresh database");
    // The database as version 1 left it.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await
        .unwrap();
    client.batch_execute(include_str!("../migrations/0001_init.sql")).await.unwrap();
    client
        .batch_execute(
            r#"INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0);
               INSERT INTO users (name, email, email_key, groups, created_at) VALUES
                   ('dana@example.com', 'dana@example.com', 'dana@example.com', ARRAY['dev'], 1),
                   ('erin', 'erin@example.com', 'erin@example.com', ARRAY['ops'], 1);
               INSERT INTO kv (namespace, key, value, updated_at) VALUES
                   ('identity.profiles', 'dana@example.com',
                    '{"subject":"s","email":"dana@example.com","display_name":"Dana","groups":["sre","admin"],"last_login":"2026-01-01T00:00:00Z"}', 1),
                   ('console.sessions', 'abc', '{}', 1),
                   ('console.logins', 'def', '{}', 1),
                   ('countersign.policy', 'hash', 'sha256:not-json', 1);"#,
        )
        .await
        .unwrap();

    let store = PostgresStore::connect(&url).await.expect("connect and migrate");
    let dana = store.user("dana@example.com").await.unwrap().unwrap();
    assert_eq!(dana.groups, ["sre", "admin"]);
    assert_eq!(dana.display_name.as_deref(), Some("Dana"));
    assert_eq!(store.user("erin").await.unwrap().unwrap().groups, ["ops"], "no profile, no change");
    assert_eq!(store.kv_get("identity.profiles", "dana@example.com").await.unwrap(), None);

    // Old sessions and logins expire within 30 days; nothing else does.
    assert_eq!(store.kv_purge_expired(Timestamp::now().plus(Duration::from_secs(29 * 86_400))).await.unwrap(), 0);
    assert_eq!(store.kv_purge_expired(Timestamp::now().plus(Duration::from_secs(31 * 86_400))).await.unwrap(), 2);
    assert_eq!(store.kv_get("console.sessions", "abc").await.unwrap(), None);
    assert_eq!(store.kv_get("countersign.policy", "hash").await.unwrap().as_deref(), Some("sha256:not-json"));
}

/// Migration 3 indexes who may see the requests stored before it, so lists
/// filtered by audience find them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_3_indexes_who_may_see_the_requests_already_stored() {
    use countersign_core::{PrincipalRef, Request, Status};
    use countersign_store::{Audience, RequestFilter};

    let cluster = TempCluster::shared().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().await.expect("a fresh database");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await
        .unwrap();
    client.batch_execute(include_str!("../migrations/0001_init.sql")).await.unwrap();
    client.batch_execute(include_str!("../migrations/0002_profiles_expiry.sql")).await.unwrap();
    client.batch_execute("INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0), (2, 0)").await.unwrap();
    let request = |id: &str, status: &str, groups: serde_json::Value| -> Request {
        serde_json::from_value(serde_json::json!({
            "id": id, "fingerprint": "sha256:00", "principal": {"kind": "agent", "name": "bot"},
            "action": {"kind": "k", "resource": "r", "payload": {}},
            "status": status, "reason": "", "policies": [], "policy_hash": "",
            "requirements": [{"policy": "p", "groups": groups, "quorum": 1, "timeout": 1, "valid_for": 1}],
            "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    };
    let stored = [
        request("r1", "pending", serde_json::json!(["dba", "sre"])),
        request("r2", "denied", serde_json::json!(["web"])),
    ];
    for r in &stored {
        let body = serde_json::to_string(r).unwrap();
        client
            .execute(
                "INSERT INTO requests (id, status, principal_kind, principal_name, kind, resource, created_at, body)
                 VALUES ($1, $2, 'agent', 'bot', 'k', 'r', $3, $4)",
                &[&r.id, &r.status.as_str(), &r.created_at.as_millis(), &body],
            )
            .await
            .unwrap();
    }

    let store = PostgresStore::connect(&url).await.expect("connect and migrate");
    let list = |groups: &[&str], principal: Option<PrincipalRef>, status: Option<Status>| {
        let filter = RequestFilter {
            status,
            visible_to: Some(Audience { principal, groups: groups.iter().map(|g| (*g).to_owned()).collect() }),
            ..RequestFilter::default()
        };
        let store = &store;
        async move { store.list_requests(&filter).await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>() }
    };
    assert_eq!(list(&["sre"], None, Some(Status::Pending)).await, ["r1"]);
    assert_eq!(list(&["web"], None, None).await, ["r2"]);
    assert!(list(&["web"], None, Some(Status::Pending)).await.is_empty());
    assert!(list(&["ops"], None, None).await.is_empty());
    let mut own = list(&[], Some(PrincipalRef::agent("bot")), None).await;
    own.sort();
    assert_eq!(own, ["r1", "r2"]);
}

/// Migration 4 copies the fingerprint of the requests stored before it, so
/// `?reuse=open` finds an open request made by an older build, and the
/// lookup can be answered from the partial index of open requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_4_copies_the_fingerprints_already_stored() {
    use countersign_core::{Fingerprint, PrincipalRef, Request};
    use countersign_store_postgres::testing::OPEN_BY_FINGERPRINT;

    let cluster = TempCluster::shared().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().await.expect("a fresh database");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await
        .unwrap();
    client.batch_execute(include_str!("../migrations/0001_init.sql")).await.unwrap();
    client.batch_execute(include_str!("../migrations/0002_profiles_expiry.sql")).await.unwrap();
    client.batch_execute(include_str!("../migrations/0003_request_audience.sql")).await.unwrap();
    client
        .batch_execute("INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0), (2, 0), (3, 0)")
        .await
        .unwrap();
    let request = |id: &str, status: &str, created: &str| -> Request {
        serde_json::from_value(serde_json::json!({
            "id": id, "fingerprint": "sha256:aa", "principal": {"kind": "agent", "name": "bot"},
            "action": {"kind": "k", "resource": "r", "payload": {}},
            "status": status, "reason": "", "policies": [], "policy_hash": "",
            "requirements": [{"policy": "p", "groups": ["sre"], "quorum": 1, "timeout": 1, "valid_for": 1}],
            "created_at": created
        }))
        .unwrap()
    };
    let stored = [
        request("r1", "pending", "2026-01-01T00:00:02Z"),
        request("r2", "pending", "2026-01-01T00:00:01Z"),
        request("r3", "released", "2026-01-01T00:00:00Z"),
    ];
    for r in &stored {
        let body = serde_json::to_string(r).unwrap();
        client
            .execute(
                "INSERT INTO requests (id, status, principal_kind, principal_name, kind, resource, created_at, body)
                 VALUES ($1, $2, 'agent', 'bot', 'k', 'r', $3, $4)",
                &[&r.id, &r.status.as_str(), &r.created_at.as_millis(), &body],
            )
            .await
            .unwrap();
    }
    // A row whose body has no string fingerprint keeps none.
    client
        .execute(
            "INSERT INTO requests (id, status, principal_kind, principal_name, kind, resource, created_at, body)
             VALUES ('r4', 'pending', 'agent', 'bot', 'k', 'r', 0, '{\"fingerprint\": 7}')",
            &[],
        )
        .await
        .unwrap();

    let store = PostgresStore::connect(&url).await.expect("connect and migrate");
    let copied: Vec<(String, Option<String>)> = client
        .query("SELECT id, fingerprint FROM requests ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let aa = Some("sha256:aa".to_owned());
    assert_eq!(
        copied,
        vec![("r1".into(), aa.clone()), ("r2".into(), aa.clone()), ("r3".into(), aa), ("r4".into(), None)]
    );
    let fingerprint = Fingerprint::from_stored("sha256:aa".to_owned());
    let found = store.open_requests_by_fingerprint(&PrincipalRef::agent("bot"), &fingerprint, Timestamp(0), 0).await;
    let ids: Vec<String> = found.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["r2", "r1"], "the open ones stored before the migration, oldest first");

    // The lookup can be answered from the partial index alone (the planner
    // may prefer a scan of a table this small, so scans are ruled out to
    // ask whether the index applies at all).
    client.batch_execute("SET enable_seqscan = off; SET enable_bitmapscan = off").await.unwrap();
    let limit: i64 = 1;
    let plan: Vec<String> = client
        .query(&format!("EXPLAIN {OPEN_BY_FINGERPRINT}"), &[&"sha256:aa", &"agent", &"bot", &0i64, &limit])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let scans: Vec<&String> = plan.iter().filter(|line| line.contains(" on requests")).collect();
    assert_eq!(scans.len(), 2, "{plan:#?}");
    assert!(scans.iter().all(|line| line.contains("Index Scan using requests_open_fingerprint")), "{plan:#?}");
    // Each range is read in index order; only the two bounded halves are
    // merged.
    assert_eq!(plan.iter().filter(|line| line.contains("Sort  (")).count(), 1, "{plan:#?}");
}
