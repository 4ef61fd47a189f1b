//! Throughput of chain verification (the CPU side of `audit verify`).

use countersign_audit::{AuditDraft, ChainHead, ChainVerifier};
use countersign_core::Timestamp;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

fn bench_verify(c: &mut Criterion) {
    let mut head = ChainHead::default();
    let events: Vec<_> = (0..10_000i64)
        .filter_map(|i| {
            let body = json!({"id": format!("01JC{i:020}"), "kind": "sql.execute", "resource": "prod-db",
                "status": "allowed", "fingerprint": format!("sha256:{:064x}", i), "policies": ["routine-nonprod"]});
            head.seal(&AuditDraft::raw("agent:deploy-bot", "action.decided", body), Timestamp(1_790_000_000_000 + i))
                .ok()
        })
        .collect();
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("verify_10k_events", |b| {
        b.iter(|| {
            let mut v = ChainVerifier::new();
            for e in &events {
                if v.push(e).is_err() {
                    return 0;
                }
            }
            v.finish().count
        })
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
