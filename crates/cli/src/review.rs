//! The reviewer's commands: `pending`, `approve`, `deny` and `show`.

use countersign_core::Timestamp;
use serde_json::{json, Value};

use crate::cli::{PendingArgs, ShowArgs, VoteArgs};
use crate::client::Client;
use crate::exit::Exit;
use crate::output::{short_duration, table, Output};
use crate::view::{parse_time, until, RequestView};

/// Requests asked for per page.
const PAGE: usize = 500;
/// Pages followed at most; past them the list says more are waiting.
const MAX_PAGES: usize = 10;

/// Every pending request the caller may decide (or sees), following the
/// gateway's pages: the raw entries, and the cursor where it stopped if
/// more were left.
async fn pending_pages(client: &Client) -> anyhow::Result<(Vec<Value>, Option<String>)> {
    let mut actions = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let path = match &cursor {
            None => format!("/v1/actions?status=pending&limit={PAGE}"),
            Some(c) => format!("/v1/actions?status=pending&limit={PAGE}&cursor={}", path_segment(c)),
        };
        let answer = client.get(&path, None).await?;
        if let Some(Value::Array(list)) = answer.get("actions") {
            actions.extend(list.iter().cloned());
        }
        cursor = answer.get("next_cursor").and_then(Value::as_str).map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok((actions, cursor))
}

pub async fn pending(args: PendingArgs, output: Output) -> anyhow::Result<Exit> {
    let client = Client::new(&args.client)?;
    let (actions, more) = pending_pages(&client).await?;
    if output.is_json() {
        let mut answer = json!({ "actions": actions });
        if let Some(cursor) = &more {
            answer["next_cursor"] = json!(cursor);
        }
        println!("{answer}");
        return Ok(Exit::OK);
    }
    let actions: Vec<RequestView> = serde_json::from_value(Value::Array(actions))?;
    if actions.is_empty() {
        println!("nothing is waiting for you");
        return Ok(Exit::OK);
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = actions
        .iter()
        .map(|a| {
            let age = parse_time(a.created_at.as_deref())
                .map_or_else(|| "-".to_owned(), |created| short_duration(until(now, created)));
            let requirements = a.requirements.iter().map(|r| r.describe()).collect::<Vec<_>>().join("; ");
            vec![a.id.clone(), a.kind.clone(), a.resource.clone(), a.requester(), age, requirements]
        })
        .collect();
    print!("{}", table(&["ID", "KIND", "RESOURCE", "REQUESTER", "AGE", "REQUIREMENTS"], &rows));
    if more.is_some() {
        println!("more… (only the newest {} are listed; see the console for the rest)", actions.len());
    }
    Ok(Exit::OK)
}

#[derive(Debug, Clone, Copy)]
pub enum Vote {
    Approve,
    Deny,
}

pub async fn vote(args: VoteArgs, vote: Vote, output: Output) -> anyhow::Result<Exit> {
    let client = Client::new(&args.client)?;
    let verb = match vote {
        Vote::Approve => "approve",
        Vote::Deny => "deny",
    };
    let body = match &args.comment {
        Some(comment) => json!({ "comment": comment }),
        None => json!({}),
    };
    let answer = client.post(&format!("/v1/actions/{}/{verb}", path_segment(&args.id)), &body, None).await?;
    if output.is_json() {
        println!("{answer}");
        return Ok(Exit::OK);
    }
    let view: RequestView = serde_json::from_value(answer)?;
    match (vote, view.status.as_str()) {
        (Vote::Approve, "pending") => {
            let (have, need) = view.progress();
            println!("approval recorded for {}; still pending ({have}/{need} approvals)", view.id);
        }
        (Vote::Approve, status) => println!("approved {}: now {status}", view.id),
        (Vote::Deny, status) => println!("denied {}: now {status}", view.id),
    }
    Ok(Exit::OK)
}

pub async fn show(args: ShowArgs, output: Output) -> anyhow::Result<Exit> {
    let client = Client::new(&args.client)?;
    let answer = client.get(&format!("/v1/actions/{}", path_segment(&args.id)), None).await?;
    if output.is_json() {
        println!("{answer}");
        return Ok(Exit::OK);
    }
    let view: RequestView = serde_json::from_value(answer)?;
    print!("{}", describe(&view));
    Ok(Exit::OK)
}

/// A request, for a reviewer to read.
fn describe(v: &RequestView) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| out.push_str(&format!("{label:<14}{value}\n"));
    line("id", &v.id);
    line("status", &v.status);
    line("kind", &v.kind);
    line("resource", &v.resource);
    line("requester", &v.requester());
    if let Some(obo) = &v.on_behalf_of {
        line("on behalf of", obo);
    }
    if let Some(j) = &v.justification {
        line("justification", j);
    }
    if !v.labels.is_empty() {
        line("labels", &v.labels.join(", "));
    }
    line("payload", &pretty(&v.payload));
    if let Some(f) = &v.fingerprint {
        line("fingerprint", f);
    }
    if let Some(reason) = &v.reason {
        line("reason", reason);
    }
    if !v.policies.is_empty() {
        line("policies", &v.policies.join(", "));
    }
    for r in &v.requirements {
        line("requires", &r.describe());
    }
    for (label, votes) in [("approved by", &v.approvals), ("denied by", &v.denials), ("comment", &v.comments)] {
        for vote in votes {
            let at = vote.at.as_deref().unwrap_or("-");
            let note = vote.note().map(|n| format!(": {n}")).unwrap_or_default();
            line(label, &format!("{} at {at}{note}", vote.who()));
        }
    }
    if let Some(t) = &v.created_at {
        line("created", t);
    }
    if let Some(t) = &v.expires_at {
        line("expires", t);
    }
    if let Some(t) = &v.release_by {
        line("release by", t);
    }
    if !v.outcome.is_null() {
        let o = &v.outcome;
        let text = |key: &str| o.get(key).and_then(Value::as_str).unwrap_or("-").to_owned();
        line("outcome", &format!("{} ({}) at {}", text("status"), text("summary"), text("reported_at")));
        if let Some(digest) = o.get("output_sha256").and_then(Value::as_str) {
            line("output sha256", digest);
        }
    }
    out
}

/// JSON on one line when short, indented (and aligned under the label) when long.
fn pretty(value: &Value) -> String {
    let compact = value.to_string();
    if compact.len() <= 100 {
        return compact;
    }
    serde_json::to_string_pretty(value).unwrap_or(compact).replace('\n', &format!("\n{:<14}", ""))
}

/// Ids are opaque; escape anything that would change the URL's shape.
pub fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in gateway that serves `pages` pages of `/v1/actions`, one
    /// action each, linked by `next_cursor`; returns its URL and the paths
    /// it was asked for.
    async fn paging_gateway(pages: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut buffer = vec![0u8; 8192];
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(path.clone());
                let page: usize = path.split("cursor=c").nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                let mut body = json!({"actions": [{
                    "id": format!("r{page}"), "status": "pending", "kind": "shell.exec", "resource": "prod-web",
                    "payload": {}, "requester": "agent:bot"
                }]});
                if page + 1 < pages {
                    body["next_cursor"] = json!(format!("c{}", page + 1));
                }
                let body = body.to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (url, asked)
    }

    fn client_for(url: &str) -> Client {
        Client::new(&crate::cli::ClientArgs {
            server: url.to_owned(),
            token: Some("csu_test".to_owned()),
            ca_file: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn pending_follows_the_cursor_to_the_last_page() {
        let (url, asked) = paging_gateway(3).await;
        let (actions, more) = pending_pages(&client_for(&url)).await.unwrap();
        let ids: Vec<&str> = actions.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["r0", "r1", "r2"]);
        assert_eq!(more, None);
        let asked = asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 3);
        assert!(asked[0].starts_with("/v1/actions?status=pending") && !asked[0].contains("cursor"), "{asked:?}");
        assert!(asked[2].ends_with("&cursor=c2"), "{asked:?}");
    }

    #[tokio::test]
    async fn pending_stops_after_its_page_budget_and_says_more() {
        let (url, _) = paging_gateway(MAX_PAGES + 5).await;
        let (actions, more) = pending_pages(&client_for(&url)).await.unwrap();
        assert_eq!(actions.len(), MAX_PAGES);
        assert_eq!(more, Some(format!("c{MAX_PAGES}")));
    }

    #[test]
    fn ids_cannot_escape_the_path() {
        assert_eq!(path_segment("01JABC-x"), "01JABC-x");
        assert_eq!(path_segment("../admin?x"), "..%2Fadmin%3Fx");
    }

    #[test]
    fn describes_a_request() {
        let view: RequestView = serde_json::from_value(serde_json::json!({
            "id": "r1", "status": "pending", "kind": "shell.exec", "resource": "prod-web",
            "payload": {"argv": ["ls"]}, "requester": "agent:bot",
            "approvals": [{"by": "user:alice", "at": "t", "comment": "ok"}]
        }))
        .unwrap();
        let text = describe(&view);
        assert!(text.contains("approved by   user:alice at t: ok"), "{text}");
        assert!(text.contains("payload       {\"argv\":[\"ls\"]}"), "{text}");
    }
}
