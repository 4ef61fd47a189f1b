//! What only a file-backed store can promise: data survives a reopen, and
//! two stores on one file (the server and the CLI, say) extend one chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use countersign_audit::{AuditDraft, BreakReason, ChainVerifier};
use countersign_core::{testing, Action, PrincipalRef, Request, Status, Timestamp};
use countersign_store::{NewAgent, NewUser, RequestFilter, Store, Update};
use countersign_store_sqlite::{SqliteStore, VerifyError};
use serde_json::json;

const T0: Timestamp = Timestamp(1_790_000_000_000);

/// bot's pending request to restart nginx on alice's behalf; alice owns bot.
fn request(id: &str) -> Request {
    let action = Action {
        on_behalf_of: Some("alice".into()),
        ..testing::action("shell.exec", "web-1", json!({"argv": ["systemctl", "restart", "nginx"]}))
    };
    let requirements = vec![testing::requirement("p", &["ops"], 1)];
    Request {
        owner: Some("alice".into()),
        ..testing::pending(id, PrincipalRef::agent("bot"), action, requirements, T0)
    }
}

fn draft(n: usize) -> AuditDraft {
    AuditDraft::raw("system", "test.event", json!({"n": n}))
}

async fn all_events(store: &SqliteStore) -> Vec<countersign_audit::AuditEvent> {
    store.audit_events(0, usize::MAX).await.unwrap()
}

fn db_path(dir: &Path) -> std::path::PathBuf {
    dir.join("countersign.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let (users, agents, requests, events) = {
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_user(
                NewUser {
                    name: "alice".into(),
                    email: "alice@example.com".into(),
                    groups: vec!["ops".into()],
                    token_hash: "aa".repeat(32),
                    created_at: T0,
                },
                vec![AuditDraft::raw("system", "user.created", json!({"name": "alice"}))],
            )
            .await
            .unwrap();
        store
            .create_agent(
                NewAgent {
                    name: "bot".into(),
                    owner: Some("alice".into()),
                    groups: vec![],
                    token_hash: "bb".repeat(32),
                    created_at: T0,
                },
                vec![AuditDraft::raw("system", "agent.created", json!({"name": "bot"}))],
            )
            .await
            .unwrap();
        for i in 0..3 {
            store.insert_request(request(&format!("r{i}")), vec![draft(i)]).await.unwrap();
        }
        store
            .update_request(
                "r1",
                Box::new(|r: &Request| {
                    let mut next = r.clone();
                    next.status = Status::Cancelled;
                    next.closed_at = Some(T0);
                    Update { save: Some(next), events: vec![draft(99)], result: Ok(()) }
                }),
            )
            .await
            .unwrap();
        (
            store.list_users().await.unwrap(),
            store.list_agents().await.unwrap(),
            store.list_requests(&RequestFilter::default()).await.unwrap(),
            all_events(&store).await,
        )
    };
    assert_eq!(events.len(), 6);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.list_users().await.unwrap(), users);
    assert_eq!(store.list_agents().await.unwrap(), agents);
    assert_eq!(store.list_requests(&RequestFilter::default()).await.unwrap(), requests);
    assert_eq!(store.principal_by_token_hash(&"aa".repeat(32)).await.unwrap().map(|p| p.name), Some("alice".into()));
    assert_eq!(all_events(&store).await, events);
    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.count, 6);

    // The chain goes on where it stopped.
    assert_eq!(store.append_audit(vec![draft(7)]).await.unwrap(), 7);
    let after = all_events(&store).await;
    assert_eq!(after[6].prev_hash, events[5].hash);
    assert_eq!(store.verify_audit().await.unwrap().count, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let server = Arc::new(SqliteStore::open(&path).unwrap());
    let cli = Arc::new(SqliteStore::open(&path).unwrap());

    // Alternating: each must read the head the other just wrote.
    for i in 0..40 {
        let store = if i % 2 == 0 { &server } else { &cli };
        assert_eq!(store.append_audit(vec![draft(i)]).await.unwrap(), i as u64 + 1);
    }
    // At once: the two writers contend for the file lock.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = Arc::clone(if t % 2 == 0 { &server } else { &cli });
        tasks.push(tokio::spawn(async move {
            for k in 0..20 {
                store.append_audit(vec![draft(1000 * t + k), draft(1000 * t + k + 500)]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = 40 + 8 * 20 * 2;
    for store in [&server, &cli] {
        let verified = store.verify_audit().await.unwrap();
        assert_eq!(verified.count, total);
    }
    let mut verifier = ChainVerifier::new();
    for event in all_events(&cli).await {
        verifier.push(&event).unwrap();
    }
    assert_eq!(verifier.finish().count, total);

    // Each sees the other's rows and commits.
    let before = server.change_counter().await.unwrap();
    cli.insert_request(request("from-cli"), vec![draft(0)]).await.unwrap();
    assert!(server.request("from-cli").await.unwrap().is_some());
    assert_ne!(server.change_counter().await.unwrap(), before, "a commit by another store must move the counter");
}

#[tokio::test]
async fn verify_reports_where_the_log_was_altered() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let store = SqliteStore::open(&path).unwrap();
    // Several of verify_audit's chunks, so breaks past the first are found.
    store.append_audit((0..5000).map(draft).collect()).await.unwrap();
    assert_eq!(store.verify_audit().await.unwrap().count, 5000);

    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE audit SET body = '{\"n\":1000000}' WHERE seq = 3001", []).unwrap();
    let err = store.verify_audit().await.unwrap_err();
    assert!(matches!(&err, VerifyError::Broken(b) if b.seq == 3001 && b.reason == BreakReason::Content), "{err:?}");

    raw.execute("UPDATE audit SET body = '{\"n\":3000}' WHERE seq = 3001", []).unwrap();
    assert_eq!(store.verify_audit().await.unwrap().count, 5000);
    raw.execute("DELETE FROM audit WHERE seq = 7", []).unwrap();
    let err = store.verify_audit().await.unwrap_err();
    assert!(matches!(&err, VerifyError::Broken(b) if b.seq == 7), "{err:?}");
}

#[tokio::test]
async fn for_each_streams_every_event_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(dir.path())).unwrap();
    store.append_audit((0..5000).map(draft).collect()).await.unwrap();
    let mut seen = Vec::new();
    let count = store
        .for_each_audit_event(4000, |e| {
            seen.push(e.seq);
            Ok::<_, countersign_store::StoreError>(())
        })
        .unwrap();
    assert_eq!(count, 1000);
    assert_eq!(seen, (4001..=5000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_corrupt_request_is_reported_not_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let store = SqliteStore::open(&path).unwrap();
    store.insert_request(request("r1"), vec![]).await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE requests SET body = '{not json' WHERE id = 'r1'", []).unwrap();
    let err = store.request("r1").await.unwrap_err();
    assert!(matches!(err, countersign_store::StoreError::Corrupt(_)), "{err:?}");
}
