//! Throughput of recorded decisions: 64 concurrent tasks each calling
//! `insert_request` with two audit drafts (submitted + decided), as the
//! gateway does per action, with `synchronous=FULL`. The group commit is
//! what makes this more than one fsync's worth per second.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign_audit::AuditDraft;
use countersign_core::{testing, Action, PrincipalRef, Request, Status, Timestamp};
use countersign_store::Store;
use countersign_store_sqlite::SqliteStore;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

const TASKS: u64 = 64;

fn template() -> Request {
    let action = Action {
        on_behalf_of: Some("alice@example.com".into()),
        justification: Some("nightly cleanup, ticket OPS-1234".into()),
        labels: vec!["cleanup".into()],
        ..testing::action(
            "sql.execute",
            "prod-db",
            json!({"statement": "DELETE FROM sessions WHERE expires_at < now() - interval '30 days'"}),
        )
    };
    let requirements = vec![testing::requirement("needs-dba", &["dba"], 1)];
    Request {
        owner: Some("alice".into()),
        status: Status::Allowed,
        reason: "routine: permitted by routine-nonprod".into(),
        policies: vec!["routine-nonprod".into()],
        policy_hash: format!("sha256:{:064x}", 7),
        expires_at: None,
        ..testing::pending("", PrincipalRef::agent("deploy-bot"), action, requirements, Timestamp::now())
    }
}

async fn insert_many(store: &Arc<SqliteStore>, next_id: &Arc<AtomicU64>, total: u64) -> Duration {
    let template = Arc::new(template());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let n = total / TASKS + u64::from(t < total % TASKS);
        let (store, next_id, template) = (Arc::clone(store), Arc::clone(next_id), Arc::clone(&template));
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                let mut request = (*template).clone();
                request.id = format!("01J{:023}", next_id.fetch_add(1, Ordering::Relaxed));
                let events = vec![
                    AuditDraft::raw(
                        "agent:deploy-bot",
                        "action.submitted",
                        json!({
                            "id": request.id, "kind": request.action.kind, "resource": request.action.resource,
                            "fingerprint": request.fingerprint,
                        }),
                    ),
                    AuditDraft::raw(
                        "system",
                        "action.decided",
                        json!({
                            "id": request.id, "status": "allowed", "policies": request.policies,
                            "policy_hash": request.policy_hash,
                        }),
                    ),
                ];
                store.insert_request(request, events).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

fn bench_group_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
    let next_id = Arc::new(AtomicU64::new(0));

    let mut group = c.benchmark_group("group_commit");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("insert_request_64_tasks", |b| {
        b.iter_custom(|iters| runtime.block_on(insert_many(&store, &next_id, iters)))
    });
    group.finish();
}

criterion_group!(benches, bench_group_commit);
criterion_main!(benches);
