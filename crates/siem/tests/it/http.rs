//! OTLP logs, Splunk HEC and OCSF over HTTP into the Python receiver: every
//! request decodes with the OpenTelemetry protobuf definitions, matches
//! Splunk's documented HEC format, or validates against the OCSF schema;
//! a receiver that fails or is down delays delivery and loses nothing.

use countersign_audit::AuditEvent;
use serde_json::Value;

use crate::support::{self, assert_all_arrived, by_seq, wait_for, Receiver, CHECKPOINT, HEC_TOKEN};

fn config(port: u16) -> String {
    format!(
        "[[siem]]\nname = \"otlp\"\ntype = \"otlp\"\nurl = \"http://127.0.0.1:{port}\"\n\n\
         [[siem]]\nname = \"hec\"\ntype = \"splunk_hec\"\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"{HEC_TOKEN}\"\nindex = \"audit\"\n\n\
         [[siem]]\nname = \"ocsf\"\ntype = \"ocsf_http\"\nurl = \"http://127.0.0.1:{port}/ocsf\"\n"
    )
}

fn otlp_seqs(receiver: &Receiver) -> Vec<(u64, String)> {
    receiver
        .via("otlp")
        .iter()
        .map(|r| {
            let attributes = r["event"]["attributes"].as_array().unwrap();
            let attr = |key: &str| attributes.iter().find(|a| a["key"] == key).map(|a| a["value"].clone()).unwrap();
            // protobuf's JSON mapping writes 64-bit integers as strings.
            let seq = attr("countersign.seq")["intValue"].as_str().unwrap().parse().unwrap();
            (seq, attr("countersign.hash")["stringValue"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn hec_seqs(receiver: &Receiver) -> Vec<(u64, String)> {
    receiver
        .via("hec")
        .iter()
        .map(|r| {
            (r["event"]["event"]["seq"].as_u64().unwrap(), r["event"]["event"]["hash"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn ocsf_seqs(receiver: &Receiver) -> Vec<(u64, String)> {
    receiver
        .via("ocsf")
        .iter()
        .map(|r| {
            (
                r["event"]["metadata"]["sequence"].as_u64().unwrap(),
                r["event"]["metadata"]["uid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn all_arrived(receiver: &Receiver, events: &[AuditEvent]) {
    let has_all = |copies: Vec<(u64, String)>| {
        let arrived = by_seq(copies);
        events.iter().all(|e| arrived.contains_key(&e.seq))
    };
    wait_for("every event at every sink", 120, || async {
        has_all(otlp_seqs(receiver)) && has_all(hec_seqs(receiver)) && has_all(ocsf_seqs(receiver))
    })
    .await;
    assert!(receiver.via("ocsf-invalid").is_empty(), "{:#?}", receiver.via("ocsf-invalid"));
    assert_all_arrived(&by_seq(otlp_seqs(receiver)), events);
    assert_all_arrived(&by_seq(hec_seqs(receiver)), events);
    assert_all_arrived(&by_seq(ocsf_seqs(receiver)), events);
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_hec_and_ocsf_receive_every_event_with_its_chain_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // The first requests fail as an overloaded receiver's would.
    let receiver = Receiver::start(dir.path(), 0, &["--fail-first", "5"]);
    let (gateway, _sinks) = support::gateway(&config(receiver.port)).await;
    let events = support::append_golden(&gateway.state).await;
    all_arrived(&receiver, &events).await;

    // In order: each sink's first copies come in sequence order.
    for seqs in [otlp_seqs(&receiver), hec_seqs(&receiver), ocsf_seqs(&receiver)] {
        let firsts: Vec<u64> = seqs.iter().map(|(s, _)| *s).fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    }

    let hec = receiver.via("hec");
    let first = &hec[0]["event"];
    assert_eq!(first["sourcetype"], "countersign:audit");
    assert_eq!(first["source"], "countersign");
    assert_eq!(first["index"], "audit");
    assert!(first["time"].as_f64().unwrap() > 1.7e9, "{first}");
    assert_eq!(first["event"]["checkpoint"], CHECKPOINT);

    let otlp = receiver.via("otlp");
    let log = &otlp[0];
    assert_eq!(log["scope"], "countersign.audit");
    assert!(log["resource"]["attributes"].as_array().unwrap().iter().any(|a| a["key"] == "service.name"));
    let body: Value = serde_json::from_str(log["event"]["body"]["stringValue"].as_str().unwrap()).unwrap();
    assert_eq!(body["checkpoint"], CHECKPOINT);
    assert_eq!(log["event"]["eventName"], body["type"]);

    let ocsf = receiver.via("ocsf");
    assert_eq!(ocsf[0]["event"]["unmapped"]["countersign"]["checkpoint"], CHECKPOINT);

    // The body in every copy hashes back to the event's hash.
    for record in &hec {
        let copy = &record["event"]["event"];
        let seq = copy["seq"].as_u64().unwrap();
        // The other sinks' `channel.started` come before the golden events.
        let Some(original) = events.iter().find(|e| e.seq == seq) else { continue };
        // Rebuilt from the copy alone: the body's canonical JSON is the
        // text that was hashed.
        let rebuilt = AuditEvent {
            seq,
            time: serde_json::from_value(copy["time"].clone()).unwrap(),
            actor: copy["actor"].as_str().unwrap().to_owned(),
            kind: copy["type"].as_str().unwrap().to_owned(),
            body: serde_json_canonicalizer::to_string(&copy["body"]).unwrap(),
            prev_hash: copy["prev_hash"].as_str().unwrap().to_owned(),
            hash: String::new(),
        };
        assert_eq!(rebuilt.compute_hash(), copy["hash"].as_str().unwrap());
        assert_eq!(rebuilt.compute_hash(), original.hash);
    }
    let metrics = gateway.state.metrics().render();
    let last = events.last().unwrap().seq;
    for sink in ["siem-otlp", "siem-hec", "siem-ocsf"] {
        assert!(metrics.contains(&format!("countersign_channel_up{{channel=\"{sink}\"}} 1")), "{metrics}");
        assert!(metrics.contains(&format!("countersign_siem_exported_seq{{channel=\"{sink}\"}} {last}")), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let (gateway, sinks) = support::gateway(&config(port)).await;
    let events = support::append_golden(&gateway.state).await;
    // Nothing listens: every sink fails, retries, and says so.
    wait_for("the sinks to report the receiver down", 60, || async {
        let metrics = gateway.state.metrics().render();
        ["siem-otlp", "siem-hec", "siem-ocsf"]
            .iter()
            .all(|s| metrics.contains(&format!("countersign_channel_up{{channel=\"{s}\"}} 0")))
    })
    .await;
    let health = sinks.health();
    let snapshot = health[1].snapshot(countersign_core::Timestamp::now()).await;
    wait_for("the admin page to show the failure", 30, || async {
        let s = health[1].snapshot(countersign_core::Timestamp::now()).await;
        !s.up && s.detail.contains("cannot reach")
    })
    .await;
    assert_eq!(snapshot.name, "siem-hec");
    assert!(snapshot.target.starts_with("Splunk HEC http://127.0.0.1"), "{}", snapshot.target);
    let receiver = Receiver::start(dir.path(), port, &[]);
    all_arrived(&receiver, &events).await;
    let s = health[1].snapshot(countersign_core::Timestamp::now()).await;
    assert!(s.up && s.detail.contains("backlog 0"), "{}", s.detail);
}
