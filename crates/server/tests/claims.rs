//! The kind, the resource and the identities an action names are the
//! submitter's claims: lookalike spellings are refused at the edge, an
//! identity named in a request cannot approve it under another spelling,
//! the starter never treats an unlisted kind as routine, and a policy file
//! that cannot be read is a load error, never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use countersign_testkit::fixtures::STARTER_POLICY;
use countersign_testkit::{gateway, gateway_with, sql, Builder};
use serde_json::{json, Value};

/// Everything is allowed, except production.
const PROD_IS_FORBIDDEN: &str = r#"
@id("all") permit(principal, action, resource);
@id("not-prod") forbid(principal, action, resource) when { resource.name like "prod*" };
"#;

async fn submit_raw(g: &countersign_testkit::Gateway, body: &Value) -> (StatusCode, Value) {
    g.call_raw("POST", "/v1/actions", Some(g.token("bot")), Some(body.to_string())).await
}

fn shell_on(resource: &str) -> Value {
    json!({"kind": "shell.exec", "resource": resource, "payload": {"argv": ["echo", "hi"]}})
}

/// A lookalike of `prod-web` by case, surrounding space, an invisible,
/// control, combining or non-ASCII character: each is refused with a JSON
/// error, and nothing is decided or stored for it.
#[tokio::test]
async fn lookalike_resources_are_refused_not_decided() {
    let g = gateway_with(PROD_IS_FORBIDDEN).await;
    let (status, body) = submit_raw(&g, &shell_on("prod-web")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::CREATED, Some("denied")), "{body}");
    let lookalikes = [
        "PROD-web",
        "Prod-web",
        " prod-web",
        "prod-web ",
        "\tprod-web",
        "prod-web\n",
        "prod\u{200b}-web",
        "\u{200b}prod-web",
        "\u{feff}prod-web",
        "\u{2060}prod-web",
        "\u{202e}prod-web",
        "\u{00a0}prod-web",
        "\u{3000}prod-web",
        "p\u{301}rod-web",
        "ｐrod-web",
        "ＰＲＯＤ-web",
        "рrod-web",
        "prοd-web",
        "ſtaging-web",
    ];
    for resource in lookalikes {
        let (status, body) = submit_raw(&g, &shell_on(resource)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{resource:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_action", "{resource:?}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("`resource`"), "{resource:?}: {body}");
    }
    let decided = g.audit().await.into_iter().filter(|e| e.kind == "action.decided").count();
    assert_eq!(decided, 1, "only the real prod-web request was decided");
}

/// A kind in any other spelling than lowercase ASCII `family.verb` is
/// refused, so it cannot slip past `action == Action::"shell.exec"`.
#[tokio::test]
async fn kinds_in_other_spellings_are_refused() {
    let g = gateway().await;
    for kind in ["SHELL.EXEC", "Shell.exec", "sql.Execute", "shell.exec\u{200b}", "shell..exec", ".shell", "shell exec"]
    {
        let body = json!({"kind": kind, "resource": "staging-web", "payload": {"argv": ["ls"]}});
        let (status, reply) = submit_raw(&g, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{kind:?}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_action", "{kind:?}: {reply}");
    }
    let (status, reply) = submit_raw(&g, &shell_on("staging-web")).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

/// `on_behalf_of` follows the rules of identity names; a spelling that
/// differs only in case still names the same person for self-approval.
#[tokio::test]
async fn on_behalf_of_is_an_identity_name_and_cannot_self_approve() {
    let g = gateway().await;
    for obo in ["carol ", " carol", "carol\u{200b}", "carol\n", "cаrol", "ｃarol", "carol\u{301}", "-carol"] {
        let mut action = sql("DELETE FROM users WHERE id = 7");
        action["on_behalf_of"] = json!(obo);
        let (status, reply) = submit_raw(&g, &action).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{obo:?}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_action", "{obo:?}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains("`on_behalf_of`"), "{obo:?}: {reply}");
    }
    // carol is a dba, and prod-db needs two: she may not be one of them
    // for an action done for her, however the request spells her name.
    for obo in ["carol", "Carol", "CAROL"] {
        let mut action = sql(&format!("DELETE FROM users WHERE id = {}", obo.len()));
        action["on_behalf_of"] = json!(obo);
        action["justification"] = json!(obo);
        let id = g.submit("bot", action).await["id"].as_str().unwrap().to_owned();
        let (status, body) = g.approve("carol", &id).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{obo}: {body}");
        assert_eq!(body["error"]["code"], "self_approval", "{obo}: {body}");
        let (status, body) = g.approve("dave", &id).await;
        assert_eq!(status, StatusCode::OK, "{obo}: {body}");
    }
}

fn status_of(body: &Value) -> &str {
    body["status"].as_str().unwrap_or("?")
}

/// With the starter policy, an unlisted kind is never routine, whatever
/// its payload: `run` with `rm -rf` or with a script outside production
/// waits for an SRE; the README's quick start still behaves.
#[tokio::test]
async fn the_starter_never_treats_an_unlisted_kind_as_routine() {
    let g = gateway_with(STARTER_POLICY).await;
    let cases = [
        json!({"kind": "run", "resource": "staging-web", "payload": {"argv": ["rm", "-rf", "/srv"]}}),
        json!({"kind": "run", "resource": "staging-web", "payload": {"argv": ["bash", "payload.sh"]}}),
        json!({"kind": "shell.run", "resource": "staging-web", "payload": {"argv": ["echo", "hello"]}}),
        json!({"kind": "deploy", "resource": "dev-web", "payload": {"command": "make deploy"}}),
        json!({"kind": "run", "resource": "prod-web", "payload": {"argv": ["rm", "-rf", "/srv"]}}),
    ];
    for action in cases {
        let body = g.submit("bot", action.clone()).await;
        assert!(matches!(status_of(&body), "pending" | "denied"), "{action}: {body}");
    }
    let hello = json!({"kind": "shell.exec", "resource": "staging-web", "payload": {"argv": ["echo", "hello"]}});
    assert_eq!(status_of(&g.submit("bot", hello).await), "allowed");
    let prod = json!({"kind": "shell.exec", "resource": "prod-web", "payload": {"argv": ["echo", "hello"]}});
    assert_eq!(status_of(&g.submit("bot", prod).await), "pending");
    let drop =
        json!({"kind": "shell.exec", "resource": "prod-db", "payload": {"argv": ["psql", "-c", "DROP TABLE users"]}});
    assert_eq!(status_of(&g.submit("bot", drop).await), "denied");
}

/// A `*.cedar` entry that cannot be read fails a reload: the previous set
/// (with its `forbid`) stays in force, and the problem names the file.
#[tokio::test]
async fn an_unreadable_policy_file_fails_reload_and_keeps_the_old_set() {
    let g = gateway_with(PROD_IS_FORBIDDEN).await;
    let policies = g.dir.path().join("policies");
    let hash = g.state.policy().engine.hash().to_owned();
    // Move the forbid into its own file, reached through a symlink that
    // then dangles: the set without it would allow production.
    std::fs::write(policies.join("test.cedar"), r#"@id("all") permit(principal, action, resource);"#).unwrap();
    std::os::unix::fs::symlink(policies.join("gone.cedar"), policies.join("forbid.cedar")).unwrap();
    let err = g.state.reload_policies("test").await.unwrap_err().to_string();
    assert!(err.contains("`forbid.cedar`"), "{err}");
    assert_eq!(g.state.policy().engine.hash(), hash);
    let (_, body) = submit_raw(&g, &shell_on("prod-web")).await;
    assert_eq!(status_of(&body), "denied", "{body}");

    std::fs::remove_file(policies.join("forbid.cedar")).unwrap();
    std::fs::create_dir(policies.join("forbid.cedar")).unwrap();
    let err = g.state.reload_policies("test").await.unwrap_err().to_string();
    assert!(err.contains("`forbid.cedar`"), "{err}");
    assert_eq!(g.state.policy().engine.hash(), hash);
    let failed = g.audit().await.into_iter().filter(|e| e.kind == "policy.load_failed").count();
    assert_eq!(failed, 2);
}

/// The same at startup: a gateway whose policy directory holds a dangling
/// `*.cedar` symlink does not start.
#[tokio::test]
async fn an_unreadable_policy_file_stops_startup() {
    let gateway = Builder::new(r#"@id("all") permit(principal, action, resource);"#).prepare().await;
    let policies = &gateway.config.policies_dir;
    std::os::unix::fs::symlink(gateway.dir.path().join("elsewhere.cedar"), policies.join("deny.cedar")).unwrap();
    let Err(err) = countersign_gateway::AppState::new(gateway.config.gateway(), gateway.store).await else {
        panic!("a gateway with an unreadable policy file started")
    };
    assert!(err.to_string().contains("`deny.cedar`"), "{err}");
}

/// What only the gateway's own endpoints say (a database's impact preview,
/// shown to reviewers as the database's estimate) cannot be claimed through
/// the API, on any resource; a lookalike key is just a key no reader reads.
#[tokio::test]
async fn a_submitter_cannot_speak_for_the_gateway() {
    let g = gateway_with(PROD_IS_FORBIDDEN).await;
    let forged = json!({"source": "EXPLAIN", "plan": "Index Scan on orders", "estimated_rows": 1});
    for key in countersign_core::GATEWAY_CONTEXT_KEYS {
        for resource in ["prod-db", "dev-db"] {
            let mut body = json!({"kind": "sql.execute", "resource": resource,
                                  "payload": {"statement": "DELETE FROM orders"}, "context": {}});
            body["context"][key] = forged.clone();
            let (status, error) = submit_raw(&g, &body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{key} on {resource}: {error}");
            assert_eq!(error["error"]["code"], "invalid_action", "{error}");
            assert!(error["error"]["message"].as_str().unwrap().contains(key), "{error}");
        }
    }
    let (_, list) = g.call_raw("GET", "/v1/actions", Some(g.token("bot")), None).await;
    assert_eq!(list["actions"].as_array().map(Vec::len), Some(0), "nothing was decided or stored: {list}");
    let lookalike = json!({"kind": "sql.execute", "resource": "dev-db", "payload": {"statement": "SELECT 1"},
                           "context": {"Impact_Preview": forged}});
    let (status, body) = submit_raw(&g, &lookalike).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
