//! The full authorization-code login against a real `oidc-provider`,
//! driven over HTTP without a browser (the provider's development login
//! form takes any password): a person whose groups change at the provider
//! between two logins is judged by the new groups, and their user row
//! follows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod forms;

mod support;

use std::collections::BTreeMap;

use forms::{client, hidden};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// A browser's cookies for one site, enough for this flow (every cookie is
/// sent on every request to the site; paths and expiry are ignored, except
/// that `Max-Age=0` deletes).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let (name, cookie) = value.split(';').next().unwrap().split_once('=').unwrap();
            let lower = value.to_ascii_lowercase();
            if cookie.is_empty() || lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), cookie.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no redirect: {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Follows redirects by hand, keeping each site's cookies, until the
/// response is not a redirect or it lands at `stop` (a prefix).
async fn follow(url: String, gateway: &str, jars: &mut (Jar, Jar), stop: Option<&str>) -> (String, reqwest::Response) {
    let mut url = url;
    for _ in 0..20 {
        let jar = if url.starts_with(gateway) { &mut jars.0 } else { &mut jars.1 };
        let response = client().get(&url).header(COOKIE, jar.header()).send().await.unwrap();
        jar.take(&response);
        if !response.status().is_redirection() || stop.is_some_and(|s| url.starts_with(s)) {
            return (url, response);
        }
        let next = location(&response);
        url = if next.starts_with("http") { next } else { format!("{}{next}", origin(&url)) };
    }
    panic!("too many redirects");
}

fn origin(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let host = rest.split('/').next().unwrap();
    format!("{}://{host}", url.split_once("://").unwrap().0)
}

/// Logs `user` in to the console through the provider; returns the
/// gateway's cookies (with the session).
async fn log_in(gateway: &str, user: &str) -> Jar {
    let mut jars = (Jar::default(), Jar::default());
    let start = format!("{gateway}/console/login/start?return_to=%2Fconsole%2F");
    // To the provider's login form.
    let (form_url, form) = follow(start, gateway, &mut jars, None).await;
    assert_eq!(form.status(), 200, "the provider's login form at {form_url}");
    let html = form.text().await.unwrap();
    assert!(html.contains("name=\"login\""), "a login form: {html}");
    let action = html.split("action=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let uid = html.split("name=\"uid\" value=\"").nth(1).map(|s| s.split('"').next().unwrap().to_owned());
    let mut fields = vec![("prompt", "login".to_owned()), ("login", user.to_owned()), ("password", "any".to_owned())];
    if let Some(uid) = uid {
        fields.push(("uid", uid));
    }
    let action = if action.starts_with("http") { action } else { format!("{}{action}", origin(&form_url)) };
    let post = client().post(&action).header(COOKIE, jars.1.header()).form(&fields).send().await.unwrap();
    jars.1.take(&post);
    assert!(post.status().is_redirection(), "the provider accepts the login: {}", post.status());
    let next = location(&post);
    let next = if next.starts_with("http") { next } else { format!("{}{next}", origin(&form_url)) };
    // Back through the provider to the callback, then to the console.
    let (landed, response) = follow(next, gateway, &mut jars, Some(&format!("{gateway}/console/callback"))).await;
    assert!(landed.starts_with(&format!("{gateway}/console/callback")), "at the callback: {landed}");
    assert_eq!(location(&response), "/console/", "the login completed");
    jars.0
}

async fn set_groups(issuer: &str, user: &str, groups: &str) {
    let r = client().post(format!("{issuer}/__test/groups?user={user}&groups={groups}")).send().await.unwrap();
    assert!(r.status().is_success());
}

/// Approves in the console; returns where it sent us.
async fn approve(gateway: &str, jar: &Jar, id: &str) -> String {
    let page = client().get(format!("{gateway}/console/")).header(COOKIE, jar.header()).send().await.unwrap();
    assert_eq!(page.status(), 200, "signed in");
    let csrf = hidden(&page.text().await.unwrap(), "_csrf");
    let r = client()
        .post(format!("{gateway}/console/requests/{id}/approve"))
        .header(COOKIE, jar.header())
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    location(&r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_change_at_the_provider_counts_from_the_next_login() {
    let (idp, gateway) = support::start("").await;
    let url = gateway.url.clone();

    // alice is no sre at the provider when she first logs in.
    set_groups(&idp.issuer, "alice", "dev").await;
    let first = log_in(&url, "alice").await;
    let user = gateway.state.store.user("alice@example.com").await.unwrap().unwrap();
    assert_eq!(user.groups, ["dev"]);
    assert_eq!(user.display_name.as_deref(), Some("Alice Approver"));
    let id = gateway.submit("prod-web", "restart").await;
    assert_eq!(approve(&url, &first, &id).await, format!("/console/requests/{id}?refused=not_an_approver"));

    // The provider makes her an sre; her next login brings that in.
    set_groups(&idp.issuer, "alice", "sre").await;
    let second = log_in(&url, "alice").await;
    let user = gateway.state.store.user("alice@example.com").await.unwrap().unwrap();
    assert_eq!(user.groups, ["sre"], "the user row follows the provider");
    assert_eq!(approve(&url, &second, &id).await, format!("/console/requests/{id}?done=approved"));
    assert_eq!(gateway.status_of(&id).await, "approved");

    // The change is audited.
    let events = gateway.state.store.audit_events(0, 10_000).await.unwrap();
    let update = events
        .iter()
        .find(|e| e.kind == "identity.user_updated" && e.body_value()["groups"] == serde_json::json!(["sre"]));
    let update = update.expect("the group change is audited");
    assert_eq!(update.body_value()["previous"]["groups"], serde_json::json!(["dev"]));
}
