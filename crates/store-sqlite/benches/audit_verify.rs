//! End-to-end speed of `countersign audit verify`: fill a database with a
//! million events through the writer, then read and verify them three
//! ways (the pipelined `verify_audit`, a streaming scan on one thread, and
//! 10 000-event pages through the `Store` trait), printing events/s.
//!
//! `cargo bench -p countersign-store-sqlite --bench audit_verify`; set
//! `AUDIT_EVENTS` to change the count. Under `cargo test` it runs a small
//! smoke version.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::sync::Arc;
use std::time::Instant;

use countersign_audit::{AuditDraft, ChainVerifier};
use countersign_store::Store;
use countersign_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

const BATCH: usize = 1000;

fn rate(count: u64, secs: f64) -> String {
    format!("{:>10.0} events/s", count as f64 / secs)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let total: u64 = std::env::var("AUDIT_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(if benching {
        1_000_000
    } else {
        20_000
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store =
        Arc::new(SqliteStore::open_with(&path, SqliteOptions { max_batch: 64, ..SqliteOptions::default() }).unwrap());

    // Fill through the writer in big batches, from several tasks.
    let start = Instant::now();
    runtime.block_on(async {
        let calls = total.div_ceil(BATCH as u64);
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for call in (t..calls).step_by(8) {
                    let first = call * BATCH as u64;
                    let drafts: Vec<AuditDraft> = (first..(first + BATCH as u64).min(total))
                        .map(|i| {
                            AuditDraft::raw(
                                "agent:deploy-bot",
                                "action.decided",
                                json!({
                                    "id": format!("01JC{i:020}"), "kind": "sql.execute", "resource": "prod-db",
                                    "status": "allowed", "fingerprint": format!("sha256:{i:064x}"),
                                    "policies": ["routine-nonprod"],
                                }),
                            )
                        })
                        .collect();
                    store.append_audit(drafts).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let fill = start.elapsed().as_secs_f64();
    println!("append  {total} events: {:>7.2} s {}", fill, rate(total, fill));

    let start = Instant::now();
    let verified = runtime.block_on(store.verify_audit()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(verified.count, total);
    println!("verify_audit (pipelined):      {:>7.2} s {}", secs, rate(total, secs));

    let start = Instant::now();
    let mut verifier = ChainVerifier::new();
    let count = store
        .for_each_audit_event(0, |e| {
            verifier.push(&e).unwrap();
            Ok::<_, countersign_store::StoreError>(())
        })
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, total);
    println!("for_each + verify (1 thread):  {:>7.2} s {}", secs, rate(total, secs));

    let start = Instant::now();
    let count = runtime.block_on(async {
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = store.audit_events(after, 10_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                verifier.push(e).unwrap();
            }
        }
        verifier.finish().count
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, total);
    println!("audit_events pages of 10 000:  {:>7.2} s {}", secs, rate(total, secs));

    let start = Instant::now();
    let mut n = 0u64;
    store
        .for_each_audit_event(0, |_| {
            n += 1;
            Ok::<_, countersign_store::StoreError>(())
        })
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!("read only (for_each):          {:>7.2} s {}", secs, rate(n, secs));
}
