//! What formatting costs per event, over the golden events (one of every
//! kind and body shape): the OCSF mapping and JSON, a syslog message in CEF
//! and in JSON, the HEC envelope, and the encoded OTLP request.
//!
//! `cargo bench -p countersign-siem --bench format`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_audit::AuditEvent;
use countersign_core::Timestamp;
use countersign_siem::config::SyslogFormat;
use countersign_siem::record::Exported;
use countersign_siem::{hec, ocsf, otlp, syslog};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;

const GOLDEN: &str = include_str!("../../core/tests/golden/events.jsonl");

fn events() -> Vec<AuditEvent> {
    let mut prev = "0".repeat(64);
    GOLDEN
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let record: Value = serde_json::from_str(line).unwrap();
            let mut event = AuditEvent {
                seq: n as u64 + 1,
                time: Timestamp::from_millis(1_765_000_000_000 + n as i64),
                actor: record["actor"].as_str().unwrap().to_owned(),
                kind: record["type"].as_str().unwrap().to_owned(),
                body: serde_json_canonicalizer::to_string(&record["body"]).unwrap(),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            event.hash = event.compute_hash();
            prev = event.hash.clone();
            event
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = events();
    let checkpoint = Some("countersign.example/audit\n42\nqUX4ZvV2Jq1pFq8mN1gD1Yb2c0F5aHfOe7m3CqkzHq0=\n\n— countersign.example/audit Az3grlgtzZ0Fz1gN6zW1Gg==\n".to_owned());
    let records: Vec<Exported> = events.iter().map(|e| Exported::new(e.clone(), checkpoint.clone(), "gw1")).collect();
    let mut group = c.benchmark_group("format");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("read_and_map", |b| {
        b.iter(|| events.iter().map(|e| Exported::new(e.clone(), checkpoint.clone(), "gw1")).count())
    });
    group.bench_function("ocsf_json", |b| {
        b.iter(|| records.iter().map(|r| ocsf::event(r, &r.mapping).to_string().len()).sum::<usize>())
    });
    group.bench_function("syslog_cef", |b| {
        b.iter(|| records.iter().map(|r| syslog::message(r, SyslogFormat::Cef).len()).sum::<usize>())
    });
    group.bench_function("syslog_json", |b| {
        b.iter(|| records.iter().map(|r| syslog::message(r, SyslogFormat::Json).len()).sum::<usize>())
    });
    group.bench_function("hec", |b| {
        b.iter(|| records.iter().map(|r| hec::envelope(r, None).to_string().len()).sum::<usize>())
    });
    group.bench_function("otlp", |b| b.iter(|| records.iter().map(|r| otlp::request(r).len()).sum::<usize>()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
