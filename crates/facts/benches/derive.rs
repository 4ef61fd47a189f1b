//! How long deriving facts adds to a decision, per parser, on payloads of
//! the size agents send: a shell pipeline with wrappers, a two-statement
//! SQL text, a kubectl call and a 50-change Terraform plan.

use std::hint::black_box;

use countersign_facts::derive;
use countersign_facts::sql::{analyse_as, Dialects};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

fn plan(changes: usize) -> Value {
    let actions = [vec!["create"], vec!["update"], vec!["delete"], vec!["delete", "create"], vec!["no-op"]];
    let changes: Vec<Value> = (0..changes)
        .map(|i| json!({"address": format!("aws_instance.n{i}"), "type": "aws_instance", "change": {"actions": actions[i % actions.len()]}}))
        .collect();
    json!({"format_version": "1.2", "resource_changes": changes})
}

fn bench(c: &mut Criterion) {
    let cases = [
        (
            "shell",
            "shell.exec",
            json!({"command": "cd /srv/app && sudo -u deploy env RAILS_ENV=production bundle exec rake db:migrate 2>&1 | tee -a /var/log/migrate.log"}),
        ),
        ("shell argv", "shell.exec", json!({"argv": ["sh", "-c", "find /tmp -name '*.tmp' -mtime +7 | xargs rm -f"]})),
        (
            "sql",
            "sql.execute",
            json!({"statement": "UPDATE orders SET status = 'shipped' WHERE id IN (SELECT order_id FROM shipments WHERE shipped_at > now() - interval '1 day'); SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id", "dialect": "postgres"}),
        ),
        (
            "kubectl",
            "k8s.apply",
            json!({"argv": ["kubectl", "--context", "prod", "-n", "web", "rollout", "restart", "deployment/api"]}),
        ),
        ("terraform 50 changes", "terraform.apply", json!({"plan": plan(50)})),
    ];
    for (name, kind, payload) in &cases {
        c.bench_function(&format!("derive {name}"), |b| b.iter(|| derive(black_box(kind), black_box(payload))));
    }
    // The same SQL when the gateway decides the dialect (one reading)
    // rather than taking the payload's claim (every common dialect).
    let statement = cases[2].2["statement"].as_str().unwrap_or_default().to_owned();
    c.bench_function("derive sql, dialect decided", |b| {
        b.iter(|| analyse_as(black_box(&statement), &Dialects::Decided("postgres")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
