//! Every golden event (one of each kind and body shape) through the OCSF
//! file sink, validated against the OCSF 1.5.0 schema by the PyPI
//! `ocsf-json-schema` export and `jsonschema`.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::support::{self, assert_all_arrived, by_seq, python, script, wait_for};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Runs the OCSF validator on a file: (every event valid, its report).
fn check(file: &std::path::Path) -> (bool, Value) {
    let output = Command::new(python())
        .arg(script("ocsf_check.py"))
        .arg(file)
        .current_dir(script("ocsf_check.py").parent().unwrap())
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    });
    (output.status.success(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_kind_maps_to_a_valid_ocsf_event_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.ocsf.jsonl");
    let high = dir.path().join("high.ocsf.jsonl");
    let config = format!(
        "[[siem]]\nname = \"file\"\ntype = \"ocsf_file\"\npath = \"{}\"\n\n\
         [[siem]]\nname = \"high\"\ntype = \"ocsf_file\"\npath = \"{}\"\nrefusals_min_severity = \"high\"\n",
        file.display(),
        high.display()
    );
    let (gateway, _sinks) = support::gateway(&config).await;
    let mut events = support::append_golden(&gateway.state).await;
    // A kind this version cannot read (a newer replica's) is exported too.
    let draft = countersign_audit::AuditDraft::raw("system", "future.kind", serde_json::json!({"x": 1}));
    let seq = gateway.state.append_audit(vec![draft]).await.unwrap();
    events.extend(gateway.state.audit_events(seq - 1, 1).await.unwrap());
    wait_for("every event in the file", 60, || async {
        let seqs: BTreeSet<u64> = lines(&file).iter().filter_map(|e| e["metadata"]["sequence"].as_u64()).collect();
        events.iter().all(|e| seqs.contains(&e.seq))
    })
    .await;
    let written = lines(&file);
    let arrived = by_seq(
        written
            .iter()
            .map(|e| (e["metadata"]["sequence"].as_u64().unwrap(), e["metadata"]["uid"].as_str().unwrap().to_owned())),
    );
    assert_all_arrived(&arrived, &events);
    let kinds: BTreeSet<&str> = written.iter().map(|e| e["metadata"]["event_code"].as_str().unwrap()).collect();
    let mut all: BTreeSet<&str> = countersign_core::events::Event::KINDS.iter().copied().collect();
    all.insert("future.kind");
    assert_eq!(kinds, all, "every kind is in the file");

    let (ok, report) = check(&file);
    assert_eq!(report["checked"].as_u64().unwrap() as usize, written.len());
    assert_eq!(report["invalid"], serde_json::json!([]), "{report:#}");
    assert!(ok);
    // The second sink leaves out refusals below `high`, and nothing else.
    let first = events.first().unwrap().seq;
    let golden = |e: &&Value| e["metadata"]["sequence"].as_u64().unwrap() >= first;
    let kept: Vec<&Value> = written
        .iter()
        .filter(golden)
        .filter(|e| e["unmapped"]["countersign"]["refusal"] == false || e["severity_id"].as_u64().unwrap() >= 4)
        .collect();
    let last = events.last().unwrap().seq;
    wait_for("the filtered sink to reach the last kept event", 60, || async {
        lines(&high)
            .iter()
            .any(|e| e["metadata"]["sequence"].as_u64() == kept.last().and_then(|k| k["metadata"]["sequence"].as_u64()))
    })
    .await;
    let filtered: Vec<u64> = lines(&high)
        .iter()
        .filter_map(|e| e["metadata"]["sequence"].as_u64())
        .filter(|s| (first..=last).contains(s))
        .collect();
    let expected: Vec<u64> = kept.iter().filter_map(|e| e["metadata"]["sequence"].as_u64()).collect();
    assert_eq!(filtered, expected);
    assert!(filtered.len() < written.len(), "some refusals are below `high`");
    assert!(lines(&high).iter().any(|e| e["severity_id"] == 4 && e["status_id"] == 2), "high refusals pass");

    // Identity, authorization, application and API classes all occur.
    for class in ["3001", "3002", "3003", "3005", "6002", "6003"] {
        assert!(report["classes"][class].as_u64().unwrap() > 0, "{report}");
    }
}

#[test]
fn the_validator_refuses_an_event_that_breaks_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    // API Activity without `api`, `actor` or `src_endpoint`.
    let bad = r#"{"class_uid":6003,"category_uid":6,"activity_id":1,"type_uid":600301,"time":1,"severity_id":1,"metadata":{"version":"1.5.0","product":{"name":"x"}}}"#;
    std::fs::write(&file, format!("{bad}\n")).unwrap();
    let (ok, report) = check(&file);
    assert!(!ok);
    assert!(report["invalid"][0]["problems"].to_string().contains("api"), "{report}");
}
