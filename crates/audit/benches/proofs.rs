//! Merkle proofs over the audit log: appending leaves, the root, inclusion
//! and consistency proofs made and checked, and a checkpoint signed and
//! opened, on a tree of one million events.

use countersign_audit::checkpoint::Checkpoint;
use countersign_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion, Tree};
use countersign_audit::note::NoteSigner;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const SIZE: u64 = 1_000_000;

fn tree(n: u64) -> Tree {
    let mut tree = Tree::new();
    for i in 0..n {
        tree.push(leaf_hash(&i.to_be_bytes()));
    }
    tree
}

fn bench_proofs(c: &mut Criterion) {
    let t = tree(SIZE);
    let root = t.root(SIZE).unwrap_or_default();
    let mut group = c.benchmark_group("merkle");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("append_leaf", |b| {
        b.iter_batched(
            || tree(1000),
            |mut t| {
                t.push(leaf_hash(b"event"));
                t
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("root_1m", |b| b.iter(|| t.root(SIZE - 1)));
    group.bench_function("inclusion_proof_1m", |b| {
        b.iter(|| {
            i = (i + 7919) % SIZE;
            t.inclusion_proof(i, SIZE)
        })
    });
    let index = 123_457;
    let proof = t.inclusion_proof(index, SIZE).unwrap_or_default();
    let leaf = t.leaf(index).unwrap_or_default();
    group.bench_function("inclusion_verify_1m", |b| b.iter(|| verify_inclusion(index, SIZE, &leaf, &proof, &root)));
    group.bench_function("consistency_proof_1m", |b| b.iter(|| t.consistency_proof(654_321, SIZE)));
    let first_root = t.root(654_321).unwrap_or_default();
    let consistency = t.consistency_proof(654_321, SIZE).unwrap_or_default();
    group.bench_function("consistency_verify_1m", |b| {
        b.iter(|| verify_consistency(654_321, SIZE, &consistency, &first_root, &root))
    });
    if let Ok(signer) = NoteSigner::new("bench.example/audit", [1; 32]) {
        let checkpoint = Checkpoint { origin: "bench.example/audit".into(), size: SIZE, root, extensions: vec![] };
        group.bench_function("checkpoint_sign", |b| b.iter(|| checkpoint.sign(&signer)));
        let verifier = signer.verifier();
        if let Ok(note) = checkpoint.sign(&signer) {
            group.bench_function("checkpoint_open", |b| b.iter(|| Checkpoint::open(&note, &verifier)));
        }
    }
    group.finish();
}

criterion_group!(benches, bench_proofs);
criterion_main!(benches);
