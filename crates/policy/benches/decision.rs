//! Decision latency on a realistic policy set: 20 action kinds × 10
//! resources, each pair with its own `when` clause, plus forbids, approval
//! permits and wildcard-action policies (214 policies in all).
//!
//! Compares the production path (`decide`, sliced) with `decide_unsliced`
//! and with Cedar's raw `is_authorized` over the whole set on a prebuilt
//! request, and measures request construction alone.

use std::hint::black_box;
use std::time::Duration;

use cedar_policy::Authorizer;
use countersign_core::{Action, Principal, PrincipalKind};
use countersign_policy::{request, Defaults, PolicyEngine, PolicySource, Verdict};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

const KINDS: [&str; 20] = [
    "shell.exec",
    "sql.execute",
    "http.request",
    "mcp.tool_call",
    "k8s.apply",
    "k8s.delete",
    "terraform.apply",
    "git.push",
    "s3.put",
    "s3.delete",
    "dns.update",
    "iam.grant",
    "vault.read",
    "queue.purge",
    "cache.flush",
    "deploy.rollout",
    "deploy.rollback",
    "db.migrate",
    "ticket.update",
    "email.send",
];

const RESOURCES: [&str; 10] = [
    "prod-db",
    "prod-web",
    "prod-k8s",
    "prod-network",
    "staging-db",
    "staging-web",
    "staging-k8s",
    "dev-db",
    "dev-web",
    "ci",
];

fn policy_text() -> String {
    let mut text = String::new();
    for (k, kind) in KINDS.iter().enumerate() {
        for (r, resource) in RESOURCES.iter().enumerate() {
            let condition = match (k + r) % 4 {
                0 => format!("principal in Group::\"team-{resource}\" && context.labels.contains(\"routine\")"),
                1 => "context has justification && context.context has confidence \
                      && context.context.confidence.greaterThan(decimal(\"0.8\"))"
                    .to_owned(),
                2 => "principal has owner && principal.owner == \"alice\" && !context.labels.contains(\"pii\")"
                    .to_owned(),
                _ => "context.payload has statement && context.payload.statement like \"SELECT*\"".to_owned(),
            };
            text.push_str(&format!(
                "@id(\"{kind}@{resource}\")\npermit(principal, action == Action::\"{kind}\", resource == Resource::\"{resource}\")\n  when {{ {condition} }};\n"
            ));
        }
    }
    for kind in ["sql.execute", "k8s.delete", "terraform.apply", "s3.delete", "queue.purge"] {
        text.push_str(&format!(
            "@id(\"no-destructive-{kind}\")\nforbid(principal is Agent, action == Action::\"{kind}\", resource)\n  \
             when {{ resource.name like \"prod*\" && context.labels.contains(\"destructive\") }}\n  \
             unless {{ principal in Group::\"break-glass\" }};\n"
        ));
    }
    for kind in ["sql.execute", "iam.grant", "db.migrate", "dns.update", "deploy.rollout"] {
        text.push_str(&format!(
            "@id(\"approve-{kind}\") @approvers(\"sre,dba\") @quorum(\"2\") @timeout(\"30m\") @valid_for(\"10m\")\n\
             permit(principal, action == Action::\"{kind}\", resource)\n  when {{ resource.name like \"prod*\" }};\n"
        ));
    }
    text.push_str(
        "@id(\"sre-anything-nonprod\")\npermit(principal in Group::\"sre\", action, resource) when { !(resource.name like \"prod*\") };\n\
         @id(\"freeze\")\nforbid(principal, action, resource) when { context.labels.contains(\"frozen\") };\n\
         @id(\"low-confidence-prod\")\nforbid(principal is Agent, action, resource)\n  \
           when { resource.name like \"prod*\" && context.context has confidence && context.context.confidence.lessThan(decimal(\"0.5\")) };\n\
         @id(\"auditors-read\")\npermit(principal in Group::\"auditor\", action in [Action::\"vault.read\", Action::\"ticket.update\"], resource);\n",
    );
    text
}

fn inputs() -> (PolicyEngine, Principal, Action) {
    let defaults = Defaults { timeout: Duration::from_secs(3600), valid_for: Duration::from_secs(600) };
    let sources = vec![PolicySource { file: "bench.cedar".to_owned(), text: policy_text() }];
    let engine = match PolicyEngine::from_sources(sources, None, defaults) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("benchmark policies do not load:\n{}", e.problems().join("\n"));
            std::process::exit(1);
        }
    };
    let principal = Principal {
        kind: PrincipalKind::Agent,
        name: "report-bot".to_owned(),
        email: None,
        owner: Some("alice".to_owned()),
        groups: vec!["team-prod-db".to_owned(), "analytics".to_owned()],
    };
    let action: Action = match serde_json::from_value(json!({
        "kind": "sql.execute",
        "resource": "prod-db",
        "payload": {"statement": "SELECT email FROM users WHERE id = 7", "database": "main"},
        "justification": "ticket OPS-42",
        "labels": ["routine", "pii"],
        "context": {"confidence": 0.92, "model": "agent-7", "attempt": 1}
    })) {
        Ok(action) => action,
        Err(e) => {
            eprintln!("benchmark action does not parse: {e}");
            std::process::exit(1);
        }
    };
    (engine, principal, action)
}

fn bench(c: &mut Criterion) {
    let (engine, principal, action) = inputs();
    let decision = engine.decide(&principal, &action);
    if decision != engine.decide_unsliced(&principal, &action)
        || !matches!(decision.verdict, Verdict::RequireApproval(_))
    {
        eprintln!("unexpected benchmark decision: {decision:?}");
        std::process::exit(1);
    }
    eprintln!("{} policies, {} slices; decision: {}", engine.policy_count(), engine.slice_count(), decision.reason);

    c.bench_function("decide (sliced)", |b| b.iter(|| engine.decide(black_box(&principal), black_box(&action))));
    c.bench_function("decide_unsliced", |b| {
        b.iter(|| engine.decide_unsliced(black_box(&principal), black_box(&action)))
    });
    let prebuilt = match request::build(&principal, &action, countersign_facts::Bound::default()) {
        Ok(prebuilt) => prebuilt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let authorizer = Authorizer::new();
    c.bench_function("cedar is_authorized (whole set, prebuilt request)", |b| {
        b.iter(|| authorizer.is_authorized(black_box(&prebuilt.request), engine.cedar_policies(), &prebuilt.entities))
    });
    c.bench_function("request::build", |b| b.iter(|| request::build(black_box(&principal), black_box(&action), countersign_facts::Bound::default())));
}

criterion_group!(benches, bench);
criterion_main!(benches);
