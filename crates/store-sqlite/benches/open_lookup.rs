//! The lookup behind `POST /v1/actions?reuse=open` when the caller already
//! has many open requests of the same kind on the same resource (other
//! payloads): `open_requests_by_fingerprint` (one range of the partial
//! index of open requests) against the scan it replaced (the caller's
//! 1,000 newest of that kind and resource per status, bodies decoded and
//! compared in memory). The request looked for is the oldest, as when an
//! agent resumes; past 1,000 the scan no longer finds it at all.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::sync::Arc;
use std::time::Duration;

use countersign_core::{testing, PrincipalRef, Request, Status, Timestamp};
use countersign_store::{RequestFilter, Store};
use countersign_store_sqlite::SqliteStore;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::json;

const T0: Timestamp = Timestamp(1_790_000_000_000);

fn restart(id: &str, unit: &str, millis: u64) -> Request {
    let action = testing::action("shell.exec", "prod-web", json!({"argv": ["systemctl", "restart", unit]}));
    let created = T0.plus(Duration::from_millis(millis));
    testing::pending(id, PrincipalRef::agent("bot"), action, vec![testing::requirement("sre", &["sre"], 1)], created)
}

/// A store where `bot` has the target (oldest) and `others` newer open
/// requests of the same kind on the same resource.
async fn store_with(dir: &std::path::Path, others: u64) -> (Arc<SqliteStore>, Request) {
    let store = Arc::new(SqliteStore::open(&dir.join(format!("bench-{others}.db"))).unwrap());
    let target = restart("target", "web", 0);
    store.insert_request(target.clone(), Vec::new()).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in (t..others).step_by(16) {
                store
                    .insert_request(restart(&format!("other-{i:06}"), &format!("unit-{i}"), 1 + i), Vec::new())
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (store, target)
}

/// What the gateway did before: up to 1,000 per status, compared in memory.
async fn scan(store: &SqliteStore, target: &Request, now: Timestamp) -> Option<Request> {
    for status in [Status::Approved, Status::Pending] {
        let filter = RequestFilter {
            status: Some(status),
            principal: Some(target.principal.clone()),
            kind: Some(target.action.kind.clone()),
            resource: Some(target.action.resource.clone()),
            limit: 1000,
            ..RequestFilter::default()
        };
        let found = store
            .list_requests(&filter)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .find(|r| r.fingerprint == target.fingerprint && r.deadline().is_none_or(|deadline| deadline > now));
        if found.is_some() {
            return found;
        }
    }
    None
}

fn bench_open_lookup(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let now = T0.plus(Duration::from_secs(60));
    let mut group = c.benchmark_group("reuse_open_lookup");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for others in [10u64, 1_000, 10_000] {
        let (store, target) = runtime.block_on(store_with(dir.path(), others));
        let found =
            runtime.block_on(store.open_requests_by_fingerprint(&target.principal, &target.fingerprint, now, 1));
        assert_eq!(found.unwrap().first().map(|r| r.id.as_str()), Some("target"));
        group.bench_with_input(BenchmarkId::new("by_fingerprint", others), &others, |b, _| {
            b.iter(|| {
                runtime
                    .block_on(store.open_requests_by_fingerprint(&target.principal, &target.fingerprint, now, 1))
                    .unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("old_scan", others), &others, |b, _| {
            b.iter(|| runtime.block_on(scan(&store, &target, now)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_open_lookup);
criterion_main!(benches);
