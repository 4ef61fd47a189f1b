//! The writer's batching: a failing operation is undone alone, a panicking
//! transition fails alone, and the writer keeps going.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use countersign_audit::AuditDraft;
use countersign_core::{testing, Request, Timestamp};
use countersign_store::{Store, StoreError, Update};
use countersign_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

fn draft(id: &str) -> AuditDraft {
    AuditDraft::raw("system", "test.event", json!({"id": id}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operation_does_not_sink_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("c.db")).unwrap());
    // Half of these fail (they revoke an agent that does not exist) while
    // sharing batches with the half that succeed.
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store.append_audit(vec![draft(&format!("ok-{i}")), draft(&format!("ok-{i}-b"))]).await.map(|_| ())
            } else {
                store
                    .revoke_agent(&format!("ghost-{i}"), countersign_core::Timestamp(0), vec![draft("ghost")])
                    .await
                    .map(|_| ())
            }
        }));
    }
    let mut ok = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(()) => {
                assert_eq!(i % 2, 0);
                ok += 1;
            }
            Err(StoreError::NotFound { .. }) => assert_eq!(i % 2, 1),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ok, 200);
    let verified = store.verify_audit().await.unwrap();
    assert_eq!(verified.count, 400, "only the successful operations' events are kept");
    let events = store.audit_events(0, 1000).await.unwrap();
    assert!(events.iter().all(|e| !e.body.contains("ghost")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_operations_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("b.db")).unwrap());
    let before = store.change_counter().await.unwrap();
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append_audit(vec![draft(&format!("e{i}"))]).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // The counter moves once per commit (plus once for having seen the
    // file change); one commit per operation would move it 400 times.
    let commits = store.change_counter().await.unwrap() - before;
    assert!(commits < 200, "400 concurrent appends took {commits} commits");
    assert_eq!(store.verify_audit().await.unwrap().count, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_transition_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open_with(&dir.path().join("p.db"), SqliteOptions { max_batch: 8, ..SqliteOptions::default() })
            .unwrap();
    store.append_audit(vec![draft("before")]).await.unwrap();
    let action = testing::action("shell.exec", "r", json!(null));
    let request = Request {
        status: countersign_core::Status::Allowed,
        reason: "routine".into(),
        policy_hash: "h".into(),
        ..testing::pending("r1", countersign_core::PrincipalRef::agent("bot"), action, vec![], Timestamp(0))
    };
    store.insert_request(request.clone(), vec![]).await.unwrap();
    let err =
        store.update_request("r1", Box::new(|_: &Request| -> Update { panic!("a transition bug") })).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    // The writer is still there.
    store.ping().await.unwrap();
    assert_eq!(store.append_audit(vec![draft("after")]).await.unwrap(), 2);
    assert_eq!(store.request("r1").await.unwrap(), Some(request));
}

#[tokio::test]
async fn open_creates_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("countersign.db");
    let store = SqliteStore::open(&path).unwrap();
    store.ping().await.unwrap();
    assert!(path.exists());
    assert_eq!(store.path(), path);
}
