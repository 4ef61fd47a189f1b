//! What the console keeps in the store, without a browser or a provider:
//!
//! - a login writes the provider's current groups into the user row, and
//!   approvals are judged by them (also in a session started earlier);
//! - sessions expire in the store: logout deletes one at once, the purge
//!   deletes the rest, and the console starts purging on its own;
//! - the request page shows the review card the chat channels show: the
//!   payload with secrets hidden, and the facts parsed from it;
//! - the live queue of one gateway shows requests created and decided
//!   through another gateway on the same database: one SQLite file (the
//!   change counter), or one PostgreSQL database (its change feed; a
//!   throwaway cluster).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod forms;
mod support;

use std::sync::Arc;
use std::time::Duration;

use countersign_core::Timestamp;
use countersign_gateway::directory::Directory;
use countersign_identity::claims::UserClaims;
use countersign_identity::Accounts;
use countersign_store::Store;
use countersign_store_sqlite::SqliteStore;
use countersign_testkit::Cast;
use forms::{client, cookie_value, hidden};
use reqwest::header::{COOKIE, LOCATION};
use support::Gateway;

const POLICY: &str =
    "@id(\"prod\") @approvers(\"sre\") permit (principal, action, resource) when { resource.name like \"prod*\" };";

/// A gateway with its console on `store`, serving on a fresh port.
async fn serve(store: Arc<dyn Store>) -> Gateway {
    support::serve_console(POLICY, "", Cast::new(), Some(store)).await
}

/// Creates a user with a personal token; returns the token.
async fn add_user(store: &dyn Store, name: &str, groups: &[&str]) -> String {
    let tokens = Cast::new().user(name, &format!("{name}@example.com"), groups).enrol(store).await;
    tokens.get(name).to_owned()
}

/// Creates the agent `bot`; returns its key.
async fn add_agent(store: &dyn Store) -> String {
    Cast::new().agent("bot", None, &[]).enrol(store).await.get("bot").to_owned()
}

/// Signs in to the console with a personal token; returns the session
/// cookie's value.
async fn sign_in(g: &Gateway, token: &str) -> String {
    let login = client().get(format!("{}/console/login", g.url)).send().await.unwrap();
    let pre = cookie_value(&login, "cs_pre").unwrap();
    let csrf = hidden(&login.text().await.unwrap(), "_csrf");
    let r = client()
        .post(format!("{}/console/login/token", g.url))
        .header(COOKIE, format!("cs_pre={pre}"))
        .form(&[("_csrf", csrf.as_str()), ("token", token), ("return_to", "/console/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/console/", "signed in");
    cookie_value(&r, "__Host-cs_session").unwrap()
}

fn session_cookie(id: &str) -> String {
    format!("__Host-cs_session={id}")
}

/// Submits a prod action (which needs an sre) as the agent; returns its id.
async fn submit(g: &Gateway, agent_key: &str, resource: &str) -> String {
    let r = client()
        .post(format!("{}/v1/actions", g.url))
        .bearer_auth(agent_key)
        .json(&serde_json::json!({"kind": "shell.exec", "resource": resource, "payload": {"argv": ["true"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    body["id"].as_str().unwrap().to_owned()
}

/// Approves through the console's form; returns where it sent us (or the
/// status, if it did not redirect).
async fn approve_in_console(g: &Gateway, (session, csrf): &(String, String), id: &str) -> String {
    let r = client()
        .post(format!("{}/console/requests/{id}/approve", g.url))
        .header(COOKIE, session)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    match r.headers().get(LOCATION) {
        Some(location) => location.to_str().unwrap().to_owned(),
        None => r.status().as_u16().to_string(),
    }
}

/// Whether the viewer's queue and request page show the request.
async fn sees(g: &Gateway, (session, _): &(String, String), id: &str) -> bool {
    let page = client().get(format!("{}/console/requests/{id}", g.url)).header(COOKIE, session).send().await.unwrap();
    let queue = queue_fragment(g, session).await;
    assert_eq!(page.status() == 200, queue.contains(id), "the page and the queue agree");
    page.status() == 200
}

fn claims(groups: &[&str]) -> UserClaims {
    UserClaims {
        issuer: "https://idp.example".into(),
        subject: "idp-subject-dana".into(),
        email: "dana@example.com".into(),
        email_verified: true,
        display_name: Some("Dana Approver".into()),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// A console session for `principal` as the OIDC callback starts one.
async fn oidc_session(store: &dyn Store, principal: countersign_core::Principal) -> (String, String) {
    let now = Timestamp::now();
    let record = countersign_console::session::Record {
        principal,
        display_name: None,
        method: countersign_console::session::Method::Oidc,
        auth_time: Some(now),
        id_token: None,
        csrf: countersign_console::session::new_csrf(),
        created_at: now,
        expires_at: now.plus(Duration::from_secs(3600)),
    };
    let id = countersign_identity::oidc::random_token();
    let key = countersign_console::session::key_of(&id);
    let value = serde_json::to_string(&record).unwrap();
    let sessions = countersign_console::session::SESSIONS;
    assert!(store
        .kv_compare_and_set_expiring(sessions, &key, None, Some(value), Some(record.expires_at))
        .await
        .unwrap());
    (session_cookie(&id), record.csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_follow_the_identity_provider_at_each_login() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let agent_key = add_agent(&*store).await;
    let g = serve(store.clone()).await;
    let accounts = Accounts::new(Directory::new(store.clone()));

    // First login: the provider says dana is in `dev` only.
    let first = accounts.login(&claims(&["dev"])).await.unwrap();
    assert_eq!(first.groups, ["dev"]);
    let session = oidc_session(&*store, first).await;
    let id = submit(&g, &agent_key, "prod-db").await;
    assert!(!sees(&g, &session, &id).await, "not an sre at the first login");
    assert_eq!(
        approve_in_console(&g, &session, &id).await,
        format!("/console/requests/{id}?refused=not_an_approver"),
        "not an sre at the first login"
    );

    // Second login: the provider now puts dana in `sre`. The row follows,
    // and every session of hers (this older one too) is judged by it.
    let second = accounts.login(&claims(&["sre"])).await.unwrap();
    assert_eq!(second.groups, ["sre"]);
    let user = store.user(&second.name).await.unwrap().unwrap();
    assert_eq!(user.groups, ["sre"]);
    assert_eq!(user.display_name.as_deref(), Some("Dana Approver"));
    assert!(user.last_login.is_some());
    assert!(sees(&g, &session, &id).await, "an sre now");
    assert_eq!(approve_in_console(&g, &session, &id).await, format!("/console/requests/{id}?done=approved"));
    assert_eq!(g.store.request(&id).await.unwrap().unwrap().status.as_str(), "approved");

    // And back: removed from `sre` at the provider, refused again, also
    // through a brand-new session.
    let third = accounts.login(&claims(&["dev"])).await.unwrap();
    let fresh = oidc_session(&*store, third).await;
    let other = submit(&g, &agent_key, "prod-web").await;
    for session in [&session, &fresh] {
        assert!(!sees(&g, session, &other).await, "no longer an sre");
        assert_eq!(
            approve_in_console(&g, session, &other).await,
            format!("/console/requests/{other}?refused=not_an_approver"),
            "no longer an sre"
        );
    }

    // Each change of groups is audited; the logins that changed nothing
    // else are not. (The first login created the user; the second and
    // third changed its groups.)
    let events = store.audit_events(0, 1000).await.unwrap();
    let updates: Vec<serde_json::Value> =
        events.iter().filter(|e| e.kind == "identity.user_updated").map(|e| e.body_value()["groups"].clone()).collect();
    assert_eq!(updates, vec![serde_json::json!(["dev"]), serde_json::json!(["sre"]), serde_json::json!(["dev"])]);
    accounts.login(&claims(&["dev"])).await.unwrap();
    let after = store.audit_events(0, 1000).await.unwrap();
    assert_eq!(
        after.iter().filter(|e| e.kind == "identity.user_updated").count(),
        3,
        "a login that changes nothing is not an identity change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_deleted_at_logout_and_purged_when_expired() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let token = add_user(&*store, "alice", &["sre"]).await;
    // Left behind by an earlier run: one session long expired, one live.
    let sessions = countersign_console::session::SESSIONS;
    let past = Timestamp::from_millis(Timestamp::now().as_millis() - 60_000);
    let future = Timestamp::now().plus(Duration::from_secs(3600));
    store.kv_compare_and_set_expiring(sessions, "stale", None, Some("{}".into()), Some(past)).await.unwrap();
    store.kv_compare_and_set_expiring(sessions, "live", None, Some("{}".into()), Some(future)).await.unwrap();

    // The gateway purges on its own, starting at once.
    let g = serve(store.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.kv_get(sessions, "stale").await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the gateway never purged the expired session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.kv_get(sessions, "live").await.unwrap().is_some(), "a live session is kept");

    // A session expires in the store when its cookie does.
    let id = sign_in(&g, &token).await;
    let key = countersign_console::session::key_of(&id);
    assert!(store.kv_get(sessions, &key).await.unwrap().is_some());
    assert_eq!(store.kv_purge_expired(Timestamp::now()).await.unwrap(), 0);
    let r = client().get(format!("{}/console/", g.url)).header(COOKIE, session_cookie(&id)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ttl = g.kit.config.identity.console.session_ttl;
    let later = Timestamp::now().plus(ttl + Duration::from_secs(1));
    assert!(store.kv_purge_expired(later).await.unwrap() >= 1);
    assert_eq!(store.kv_get(sessions, &key).await.unwrap(), None, "purged once expired");
    let r = client().get(format!("{}/console/", g.url)).header(COOKIE, session_cookie(&id)).send().await.unwrap();
    assert_eq!(r.status(), 303, "a purged session is gone");

    // Logout deletes the session from the store at once.
    let id = sign_in(&g, &token).await;
    let key = countersign_console::session::key_of(&id);
    let page = client().get(format!("{}/console/", g.url)).header(COOKIE, session_cookie(&id)).send().await.unwrap();
    let csrf = hidden(&page.text().await.unwrap(), "_csrf");
    let r = client()
        .post(format!("{}/console/logout", g.url))
        .header(COOKIE, session_cookie(&id))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/console/login?logged_out=1");
    assert_eq!(store.kv_get(sessions, &key).await.unwrap(), None, "logout deletes the session");
}

/// Reads server-sent events until a `change` event whose data is `want`
/// (a precise report, not an `unknown` that would be sent anyway), or
/// fails after `within`.
async fn next_change(stream: &mut reqwest::Response, buffer: &mut String, want: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let is_change = event.lines().any(|l| l == "event: change");
            let data = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or_default().to_owned();
            if is_change && data == want {
                return;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{want}` change on the stream within {within:?}"))
            .unwrap()
            .expect("the stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn queue_fragment(g: &Gateway, session: &str) -> String {
    let r = client().get(format!("{}/console/fragments/queue", g.url)).header(COOKIE, session).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_queue_shows_changes_made_through_another_gateway_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Each gateway with its own store handle on one database file, as two
    // processes would have.
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    live_queue_across(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_queue_shows_changes_made_through_another_replica_on_postgres() {
    use countersign_store_postgres::{testing::TempCluster, PostgresStore};
    let cluster = TempCluster::shared().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().await.expect("a fresh database");
    let a: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    live_queue_across(a, b).await;
}

/// Gateway A's live queue follows what is done through gateway B.
async fn live_queue_across(store_a: Arc<dyn Store>, store_b: Arc<dyn Store>) {
    let token = add_user(&*store_a, "alice", &["sre"]).await;
    let agent_key = add_agent(&*store_a).await;
    let a = serve(store_a).await;
    let b = serve(store_b).await;

    let session = session_cookie(&sign_in(&a, &token).await);
    let mut stream = client()
        .get(format!("{}/console/events", a.url))
        .header(COOKIE, &session)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut buffer = String::new();
    // Let gateway A take its first look at the store.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Created through B: A's stream says so and A's queue shows it.
    let id = submit(&b, &agent_key, "prod-db").await;
    next_change(&mut stream, &mut buffer, "pending", Duration::from_secs(3)).await;
    assert!(queue_fragment(&a, &session).await.contains(&id), "the new request is in A's queue");

    // Decided through B: A's stream says so and it leaves A's queue.
    let r = client()
        .post(format!("{}/v1/actions/{id}/approve", b.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"comment": "via b"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "approve through B: {}", r.status());
    next_change(&mut stream, &mut buffer, "approved", Duration::from_secs(3)).await;
    assert!(!queue_fragment(&a, &session).await.contains(&id), "the decided request left A's queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_page_shows_the_redacted_review_card_with_parsed_facts() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let token = add_user(&*store, "alice", &["sre"]).await;
    let agent = add_agent(&*store).await;
    let g = serve(store.clone()).await;
    let action = serde_json::json!({
        "kind": "shell.exec",
        "resource": "prod-db",
        "payload": {"command": "mysql --password=hunter2 -e 'DELETE FROM orders'"},
        "justification": "clean up, token=abc123secret",
    });
    let r = client().post(format!("{}/v1/actions", g.url)).bearer_auth(&agent).json(&action).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let session = sign_in(&g, &token).await;
    let page = client()
        .get(format!("{}/console/requests/{id}", g.url))
        .header(COOKIE, session_cookie(&session))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("hunter2") && !page.contains("abc123secret"), "a secret reached the page: {page}");
    assert!(page.contains("[redacted]"), "{page}");
    // Facts the gateway read from the payload, SQL inside the shell command included.
    assert!(page.contains("<dt>Facts</dt>"), "{page}");
    assert!(page.contains("DELETE without WHERE on `orders`"), "{page}");
    assert!(page.contains("shell programs: mysql"), "{page}");
}

/// Issue 9 §10: 1,000 newer pending requests for another group (`dba`)
/// do not push an SRE's decidable request out of the queue: the store
/// filters by what the viewer may see before the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_for_another_group_does_not_hide_my_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("c.db")).unwrap());
    let g = serve(store.clone()).await;
    let alice = add_user(&*store, "alice", &["sre"]).await;
    let key = add_agent(&*store).await;
    let mine = submit(&g, &key, "prod-web").await;
    let template = store.request(&mine).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (store, template) = (store.clone(), template.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t..1000).step_by(8) {
                let mut flood = template.clone();
                flood.id = format!("flood-{i:04}");
                flood.created_at = template.created_at.plus(Duration::from_millis(1 + i));
                for requirement in &mut flood.requirements {
                    requirement.groups = vec!["dba".to_owned()];
                }
                store.insert_request(flood, vec![]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let session = session_cookie(&sign_in(&g, &alice).await);
    let queue = queue_fragment(&g, &session).await;
    assert!(queue.contains(&mine), "the SRE's request is in the queue: {queue}");
    assert!(queue.contains(">1 waiting<"), "only what alice may decide: {queue}");
    assert!(!queue.contains("flood-"), "{queue}");
}
