//! The policies page's simulation: an admin pastes a candidate set and sees
//! what it would change in the recorded log; others cannot; the form needs
//! its CSRF token, refuses a paste over the limit, and reports a set that
//! does not load with `pasted.cedar:line:col`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod forms;
mod support;

use countersign_testkit::Cast;
use forms::{client, cookie_value, hidden};
use reqwest::header::COOKIE;
use support::Gateway;

const POLICY: &str =
    "@id(\"prod\") @approvers(\"sre\") permit (principal, action, resource) when { resource.name like \"prod*\" };\n\
@id(\"routine\") permit (principal, action, resource) when { !(resource.name like \"prod*\") };";

async fn start() -> Gateway {
    let cast = Cast::new()
        .user("adam", "adam@example.com", &["admin"])
        .user("ann", "ann@example.com", &["auditor"])
        .user("alice", "alice@example.com", &["sre"])
        .agent("deploy-bot", None, &[]);
    support::serve_console(POLICY, "", cast, None).await
}

/// Signs in with a personal token; returns the session cookie header.
async fn session(g: &Gateway, who: &str) -> String {
    let login = client().get(format!("{}/console/login", g.url)).send().await.unwrap();
    let pre = cookie_value(&login, "cs_pre").unwrap();
    let csrf = hidden(&login.text().await.unwrap(), "_csrf");
    let r = client()
        .post(format!("{}/console/login/token", g.url))
        .header(COOKIE, format!("cs_pre={pre}"))
        .form(&[("_csrf", csrf.as_str()), ("token", g.token(who)), ("return_to", "/console/")])
        .send()
        .await
        .unwrap();
    format!("__Host-cs_session={}", cookie_value(&r, "__Host-cs_session").unwrap())
}

async fn page(g: &Gateway, session: &str) -> (u16, String) {
    let r = client().get(format!("{}/console/policies", g.url)).header(COOKIE, session).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(g: &Gateway, session: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let r = client()
        .post(format!("{}/console/policies/simulate", g.url))
        .header(COOKIE, session)
        .form(fields)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn an_admin_sees_what_a_pasted_set_would_change() {
    let g = start().await;
    let prod = g.submit("prod-web", "restart").await;
    g.submit("staging-web", "restart").await;

    let admin = session(&g, "adam").await;
    let (status, body) = page(&g, &admin).await;
    assert_eq!(status, 200);
    assert!(body.contains("Simulate a policy set against the log"), "{body}");
    assert!(
        body.contains("@id(&quot;prod&quot;)") || body.contains("@id(\"prod\")"),
        "prefilled with the set in force"
    );
    let csrf = hidden(&body, "_csrf");

    // Production is forbidden outright in the candidate.
    let candidate = "@id(\"routine\") permit (principal, action, resource) when { !(resource.name like \"prod*\") };\n\
                     @id(\"prod-frozen\") forbid (principal, action, resource) when { resource.name like \"prod*\" };";
    let (status, body) = post(&g, &admin, &[("_csrf", &csrf), ("policies", candidate), ("days", "7")]).await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"simulate-changed\">1<"), "{body}");
    assert!(body.contains("pending → denied"), "{body}");
    assert!(body.contains("prod-frozen"), "{body}");
    assert!(body.contains(&format!("/console/requests/{prod}")), "the example links the request");
    assert!(body.contains("deploy-bot"), "{body}");
    // The paste comes back in the form, to edit further.
    assert!(body.contains("prod-frozen") && body.contains("name=\"policies\""));

    // The set in force changes nothing.
    let same = POLICY;
    let (_, body) = post(&g, &admin, &[("_csrf", &csrf), ("policies", same), ("days", "")]).await;
    assert!(body.contains("id=\"simulate-changed\">0<"), "{body}");

    // A set that does not load: file:line:col problems, nothing simulated.
    let (_, body) =
        post(&g, &admin, &[("_csrf", &csrf), ("policies", "permit(principal, action, resource);\npermit(oops);")])
            .await;
    assert!(body.contains("id=\"simulate-problems\""), "{body}");
    assert!(body.contains("pasted.cedar:2:"), "{body}");
    assert!(!body.contains("simulate-result"));

    // Too big, a bad window, an empty paste.
    let huge = format!("// {}\npermit(principal, action, resource);", "x".repeat(300 * 1024));
    let (status, body) = post(&g, &admin, &[("_csrf", &csrf), ("policies", &huge)]).await;
    assert_eq!(status, 200);
    assert!(body.contains("larger than 256 KiB"), "refused");
    assert!(!body.contains(&"x".repeat(1000)), "an oversized paste is not echoed back");
    let (_, body) = post(&g, &admin, &[("_csrf", &csrf), ("policies", same), ("days", "9999")]).await;
    assert!(body.contains("from 1 to 365"), "{body}");
    let (_, body) = post(&g, &admin, &[("_csrf", &csrf), ("policies", "  ")]).await;
    assert!(body.contains("Paste a policy set"), "{body}");

    // Without the session's CSRF token nothing runs.
    let (_, body) = post(&g, &admin, &[("_csrf", "forged"), ("policies", candidate)]).await;
    assert!(body.contains("The form expired"), "{body}");
    assert!(!body.contains("simulate-result"));
}

#[tokio::test]
async fn only_admins_simulate() {
    let g = start().await;
    g.submit("prod-web", "restart").await;
    let auditor = session(&g, "ann").await;
    let (status, body) = page(&g, &auditor).await;
    assert_eq!(status, 200, "auditors see the policies page");
    assert!(!body.contains("Simulate a policy set"), "but not the simulation");
    let csrf = hidden(&body, "_csrf");
    let (status, body) = post(&g, &auditor, &[("_csrf", &csrf), ("policies", POLICY)]).await;
    assert_eq!(status, 403);
    assert!(!body.contains("simulate-result"));

    let approver = session(&g, "alice").await;
    let (status, _) = post(&g, &approver, &[("_csrf", &csrf), ("policies", POLICY)]).await;
    assert_eq!(status, 403);
}
