//! The full authorization-code login against a real `oidc-provider`,
//! driven over HTTP without a browser (the provider's development login
//! form takes any password): a person whose groups change at the provider
//! between two logins is judged by the new groups, and their user row
//! follows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod forms;

mod support;

use std::collections::BTreeMap;

use countersign_testkit::Cast;
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
    let landed = log_in_at(gateway, "/console/login/start?return_to=%2Fconsole%2F", user, &mut jars).await;
    assert_eq!(landed, "/console/", "the login completed");
    jars.0
}

/// Starts a login at `start` (a gateway path) with the browser's cookies
/// `jars` (gateway, provider), types `user`'s password at the provider's
/// form, and follows back to the callback; returns where the callback
/// sent the browser.
async fn log_in_at(gateway: &str, start: &str, user: &str, jars: &mut (Jar, Jar)) -> String {
    // To the provider's login form.
    let (form_url, form) = follow(format!("{gateway}{start}"), gateway, jars, None).await;
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
    callback(gateway, next, jars).await
}

/// Follows `url` to the gateway's callback (no form on the way: the
/// provider's session answers); returns where the callback sent the browser.
async fn callback(gateway: &str, url: String, jars: &mut (Jar, Jar)) -> String {
    let (landed, response) = follow(url, gateway, jars, Some(&format!("{gateway}/console/callback"))).await;
    assert!(landed.starts_with(&format!("{gateway}/console/callback")), "at the callback: {landed}");
    let to = location(&response);
    jars.0.take(&response);
    to
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
    let user = gateway.store.user("alice@example.com").await.unwrap().unwrap();
    assert_eq!(user.groups, ["dev"]);
    assert_eq!(user.display_name.as_deref(), Some("Alice Approver"));
    let id = gateway.submit("prod-web", "restart").await;
    assert_eq!(approve(&url, &first, &id).await, format!("/console/requests/{id}?refused=not_an_approver"));

    // The provider makes her an sre; her next login brings that in.
    set_groups(&idp.issuer, "alice", "sre").await;
    let second = log_in(&url, "alice").await;
    let user = gateway.store.user("alice@example.com").await.unwrap().unwrap();
    assert_eq!(user.groups, ["sre"], "the user row follows the provider");
    assert_eq!(approve(&url, &second, &id).await, format!("/console/requests/{id}?done=approved"));
    assert_eq!(gateway.status_of(&id).await, "approved");

    // The change is audited.
    let events = gateway.store.audit_events(0, 10_000).await.unwrap();
    let update = events
        .iter()
        .find(|e| e.kind == "identity.user_updated" && e.body_value()["groups"] == serde_json::json!(["sre"]));
    let update = update.expect("the group change is audited");
    assert_eq!(update.body_value()["previous"]["groups"], serde_json::json!(["dev"]));
}

/// `@step_up` needs a login the provider dates (`auth_time`) within the
/// step-up age. oidc-provider leaves `auth_time` out of an ordinary login's
/// ID token, so a silent re-login on a long-lived provider session (no
/// password) is not fresh: the approval asks for a step-up login, which
/// sends `max_age`, makes the provider ask for the password again, and
/// then counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_single_sign_on_is_not_a_fresh_login() {
    let (_idp, gateway) = support::start("step_up_max_age = \"4s\"").await;
    let url = gateway.url.clone();
    let mut jars = (Jar::default(), Jar::default());
    assert_eq!(log_in_at(&url, "/console/login/start?return_to=%2Fconsole%2F", "alice", &mut jars).await, "/console/");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    // A new console login rides on the provider's session: no password.
    let start = format!("{url}/console/login/start?return_to=%2Fconsole%2F");
    assert_eq!(callback(&url, start, &mut jars).await, "/console/", "a silent re-login");
    let id = gateway.submit("vault-keys", "rotate the signing key").await;
    let asked = approve(&url, &jars.0, &id).await;
    assert!(asked.starts_with("/console/login/start?step_up=1"), "a step-up login is asked for, not counted: {asked}");
    assert_eq!(gateway.status_of(&id).await, "pending");
    // The step-up login: the provider asks for the password again.
    let landed = log_in_at(&url, &asked, "alice", &mut jars).await;
    assert_eq!(landed, format!("/console/requests/{id}"));
    assert_eq!(approve(&url, &jars.0, &id).await, format!("/console/requests/{id}?done=approved"));
    assert_eq!(gateway.status_of(&id).await, "approved");
    let events = gateway.store.audit_events(0, 10_000).await.unwrap();
    let logins: Vec<serde_json::Value> =
        events.iter().filter(|e| e.kind == "console.login").map(|e| e.body_value()).collect();
    assert_eq!(logins.len(), 3);
    assert!(logins[0]["auth_time"].is_null() && logins[1]["auth_time"].is_null(), "undated: {logins:?}");
    assert!(logins[2]["auth_time"].is_string(), "the step-up login is dated: {logins:?}");
}

/// A local admin, `root@example.com`, before anyone logs in.
async fn local_root(gateway: &support::Gateway) {
    Cast::new().user("root", "root@example.com", &["admin"]).enrol(gateway.store.as_ref()).await;
}

async fn root_groups(gateway: &support::Gateway) -> Vec<String> {
    gateway.store.user("root").await.unwrap().unwrap().groups
}

async fn attempt(url: &str, user: &str) -> String {
    let mut jars = (Jar::default(), Jar::default());
    log_in_at(url, "/console/login/start?return_to=%2Fconsole%2F", user, &mut jars).await
}

/// Only a provider account whose address is verified (`email_verified`
/// the boolean `true`) is matched by email to a local user, and only the
/// first such account: the others never sign in as that user, and never
/// rewrite its groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_or_second_account_never_takes_over_a_local_user() {
    let (_idp, gateway) = support::start("").await;
    let url = gateway.url.clone();
    local_root(&gateway).await;
    for mallory in ["mallory-string", "mallory-string-true", "mallory-absent"] {
        assert_eq!(attempt(&url, mallory).await, "/console/login?error=unverified", "{mallory}");
        assert_eq!(root_groups(&gateway).await, ["admin"], "{mallory} changed nothing");
    }
    // The address's owner signs in as root, and is bound to it.
    assert_eq!(attempt(&url, "root").await, "/console/");
    // Another verified account with the same address is refused and audited.
    assert_eq!(attempt(&url, "mallory-verified").await, "/console/login?error=bound");
    assert_eq!(root_groups(&gateway).await, ["admin"]);
    let users = gateway.store.users_with_email("root@example.com").await.unwrap();
    assert_eq!(users.len(), 1, "no second user either");
    let events = gateway.store.audit_events(0, 10_000).await.unwrap();
    let refused = events.iter().find(|e| e.kind == "identity.binding_refused").expect("the refusal is audited");
    assert_eq!(refused.body_value()["subject"], "mallory-verified");
    assert_eq!(refused.body_value()["bound_subject"], "root");
    // A bearer token of the second account is refused by the API too.
    let token = _idp.id_token(("countersign", "console-secret"), "mallory-verified").await;
    assert_eq!(gateway.whoami(&token).await.0, 401);
    let token = _idp.id_token(("countersign", "console-secret"), "root").await;
    assert_eq!(gateway.whoami(&token).await.0, 200);
    // The page explains.
    let page = client().get(format!("{url}/console/login?error=unverified")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("verified"));
}

/// A custom `email_claim` is not what `email_verified` speaks about: its
/// address names a local user only when it is the verified `email`, or
/// when the configuration says the provider vouches for that claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_email_claim_is_verified_only_when_said_so() {
    let (_idp, gateway) = support::start("email_claim = \"upn\"").await;
    let url = gateway.url.clone();
    local_root(&gateway).await;
    // mallory's verified `email` is her own; her `upn` says root's address.
    assert_eq!(attempt(&url, "mallory-upn").await, "/console/login?error=unverified");
    assert_eq!(root_groups(&gateway).await, ["admin"]);
    // root's `upn` is his verified `email`.
    assert_eq!(attempt(&url, "root").await, "/console/");
    drop(gateway);

    let (_idp, gateway) = support::start("email_claim = \"upn\"\nemail_claim_verified = true").await;
    local_root(&gateway).await;
    assert_eq!(attempt(&gateway.url, "mallory-upn").await, "/console/", "the configuration vouches for `upn`");
}

/// Someone the provider releases no groups for (the login does not ask
/// for the `groups` scope) is told why the queue is empty, and where
/// groups come from; the admin page says the same about them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_without_groups_is_told_why_nothing_is_theirs() {
    let (_idp, gateway) = support::start("scopes = [\"openid\", \"email\", \"profile\"]").await;
    let url = gateway.url.clone();
    let alice = log_in(&url, "alice").await;
    let user = gateway.store.user("alice@example.com").await.unwrap().unwrap();
    assert!(user.groups.is_empty(), "no groups claim: {:?}", user.groups);
    let page = client().get(format!("{url}/console/")).header(COOKIE, alice.header()).send().await.unwrap();
    let body = page.text().await.unwrap();
    assert!(body.contains("id=\"no-approver-group\""), "{body}");
    for said in ["You belong to no group", "<code>sre</code>", "<code>groups</code> claim", "groups_claim", "scopes"] {
        assert!(body.contains(said), "the queue says `{said}`: {body}");
    }
    // carol (an admin) sees alice marked on the admin page.
    let carol = log_in(&url, "carol").await;
    let carol_row = gateway.store.user("carol@example.com").await.unwrap().unwrap();
    assert!(carol_row.groups.is_empty());
    // carol's groups did not come either: an admin grants her the role locally.
    let admin = countersign_store::UserProfile {
        email: carol_row.email.clone(),
        display_name: None,
        groups: vec!["admin".into()],
        login_at: countersign_core::Timestamp::now(),
    };
    gateway.store.update_user_profile("carol@example.com", admin, vec![]).await.unwrap();
    let page = client().get(format!("{url}/console/admin")).header(COOKIE, carol.header()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("id=\"no-approver-group\"") && body.contains("alice@example.com"), "{body}");
    assert!(body.contains("(no approver group)"), "{body}");
    // With the groups scope, an sre sees no such hint.
    drop(gateway);
    let (_idp, gateway) = support::start("").await;
    let alice = log_in(&gateway.url, "alice").await;
    let page = client().get(format!("{}/console/", gateway.url)).header(COOKIE, alice.header()).send().await.unwrap();
    assert!(!page.text().await.unwrap().contains("no-approver-group"));
}
