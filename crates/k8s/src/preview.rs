//! The impact preview of a write that will wait for people: before the
//! request is filed, the gateway asks the API server, with its own
//! credential, for a server-side dry run of exactly that request
//! (`dryRun=All` in the query and, for a delete, in the `DeleteOptions`
//! body too: the API server reads a delete's options from its body alone
//! when it has one) and for the object as it is now. What would change
//! ([`crate::diff`]) goes on the action's context as `impact_preview`,
//! which the review cards (console, chat) show.
//!
//! Only a write the policy would hold is previewed, under the cluster's
//! `preview_timeout`: an allowed or refused write is not delayed. A
//! preview that cannot be made says why (`unavailable`) and the request is
//! held and decided as any other. Nothing here can write: the only
//! requests sent are `GET`s and the dry run, whose query keeps no
//! `dryRun` of the client's and ends with `dryRun=All`; requests that the
//! API server passes to something else (`exec`, `attach`, `portforward`,
//! `proxy`, subresources other than `status` and `scale`) are never sent.

use axum::http::{header, HeaderName, HeaderValue, Method};
use bytes::Bytes;
use countersign_core::{Action, Principal};
use countersign_gateway::AppState;
use countersign_http::request::Incoming;
use countersign_policy::Verdict;
use serde_json::{json, Map, Value};

use crate::diff::{self, cut};
use crate::upstream::Upstream;

/// Largest answer read from the API server for a preview.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Change lines kept on the action; the rest is counted.
pub const MAX_LINES: usize = 20;
/// Characters of the API server's own message kept when it refuses.
const MAX_MESSAGE_CHARS: usize = 160;
/// Subresources whose dry run the API server handles like the object's.
const PREVIEWED_SUBRESOURCES: [&str; 2] = ["status", "scale"];

/// API groups whose objects are questions answered, not stored (token
/// and access reviews): their "dry run" would answer with the gateway's
/// rights and put that answer on the card.
const UNPREVIEWED_GROUPS: [&str; 2] = ["authentication.k8s.io", "authorization.k8s.io"];

/// The verbs a preview is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }
}

/// What is previewed: the verb and the object as the URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    verb: Verb,
    /// `configmaps prod/app`, `namespaces web`, `deployments prod/*`.
    object: String,
    /// The resource type (`secrets`: values hidden).
    resource: String,
}

/// Whether `action` (a `k8s.request`) is a write worth previewing:
/// `None` for reads, streams, proxies and the client's own dry runs;
/// `Some(Err)` for a write that cannot be previewed safely, with why.
pub fn plan(action: &Action) -> Option<Result<Plan, String>> {
    let facts = countersign_facts::derive(crate::KIND, &action.payload).kubectl?;
    let method = action.payload.get("method").and_then(Value::as_str).unwrap_or_default();
    if facts.parse_error && !matches!(method, "GET" | "HEAD") {
        return Some(Err("the request cannot be read unambiguously, so no dry run was asked".to_owned()));
    }
    let verb = match facts.verbs.first().map(String::as_str) {
        Some("create") => Verb::Create,
        Some("update") => Verb::Update,
        Some("patch") => Verb::Patch,
        Some("delete") => Verb::Delete,
        Some("deletecollection") => Verb::DeleteCollection,
        Some(_) | None => return None,
    };
    if facts.dry_run {
        return None;
    }
    if facts.parse_error {
        return Some(Err("the request cannot be read unambiguously, so no dry run was asked".to_owned()));
    }
    if let Some(group) = facts.api_groups.iter().find(|g| UNPREVIEWED_GROUPS.contains(&g.as_str())) {
        return Some(Err(format!(
            "a request to `{group}` is answered with the gateway's rights, not stored: it is not previewed"
        )));
    }
    if let Some(sub) = facts.subresources.iter().find(|s| !PREVIEWED_SUBRESOURCES.contains(&s.as_str())) {
        return Some(Err(format!("a write to the `{sub}` subresource is not previewed")));
    }
    let resource = facts.resource_types.first().cloned().unwrap_or_default();
    let name = facts.names.first().map_or("*", String::as_str);
    let object = match facts.namespaces.first() {
        // A namespace is in itself: `namespaces web`, not `namespaces web/web`.
        Some(ns) if resource != "namespaces" => format!("{resource} {ns}/{name}"),
        Some(_) | None => format!("{resource} {name}"),
    };
    Some(Ok(Plan { verb, object, resource }))
}

/// Whether the policy in force would hold `action` (so a preview is
/// worth its round trips). The decision that counts is made again when
/// the action is filed.
pub fn would_hold(state: &AppState, principal: &Principal, action: &Action) -> bool {
    match state.policy().engine.decide(principal, action).verdict {
        Verdict::RequireApproval(_) => true,
        Verdict::Allow | Verdict::Deny => false,
    }
}

/// The preview of `incoming` under `plan`, as `impact_preview` holds it;
/// never an error: what went wrong is said in `unavailable`.
pub async fn preview(upstream: &Upstream, incoming: &Incoming, plan: &Plan) -> Value {
    let timeout = upstream.config.preview_timeout;
    let made = tokio::time::timeout(timeout, changes(upstream, incoming, plan)).await;
    let result = match made {
        Ok(result) => result,
        Err(_) => Err(format!("the API server did not answer the dry run within {}ms", timeout.as_millis())),
    };
    let mut out = Map::new();
    out.insert("source".to_owned(), json!("dry-run"));
    out.insert("verb".to_owned(), json!(plan.verb.as_str()));
    out.insert("object".to_owned(), json!(plan.object));
    match result {
        Ok((lines, more)) => {
            out.insert("changes".to_owned(), json!(lines));
            out.insert("more".to_owned(), json!(more));
        }
        Err(why) => {
            out.insert("unavailable".to_owned(), json!(why));
        }
    }
    Value::Object(out)
}

/// The preview of a write that cannot be made, with why.
pub fn unavailable(why: &str) -> Value {
    json!({"source": "dry-run", "unavailable": why})
}

/// The change lines (at most [`MAX_LINES`]) and how many more there are.
async fn changes(upstream: &Upstream, incoming: &Incoming, plan: &Plan) -> Result<(Vec<String>, usize), String> {
    let dry = dry_run_of(incoming, plan.verb)?;
    let current = matches!(plan.verb, Verb::Update | Verb::Patch | Verb::Delete).then(|| current_of(incoming));
    let (answer, before) = match current {
        Some(get) => {
            let (answer, before) = tokio::join!(ask(upstream, &dry), ask(upstream, &get));
            (answer?, Some(before?))
        }
        None => (ask(upstream, &dry).await?, None),
    };
    let secret = plan.resource == "secrets";
    let (found, truncated) = match plan.verb {
        Verb::Create => diff::changes(None, Some(&answer), secret),
        Verb::Update | Verb::Patch => diff::changes(before.as_ref(), Some(&answer), secret),
        // What goes: the object as it is now (the dry run said it may go).
        Verb::Delete => diff::changes(before.as_ref().or(Some(&answer)), None, secret),
        Verb::DeleteCollection => return Ok(removed_items(&answer)),
    };
    let mut lines: Vec<String> = found.iter().take(MAX_LINES).map(diff::Change::line).collect();
    let more = found.len().saturating_sub(MAX_LINES);
    if lines.is_empty() {
        lines.push("no change: the object would stay as it is".to_owned());
    }
    if truncated {
        lines.push(format!("(the object is larger than the {} fields compared)", diff::MAX_LEAVES));
    }
    Ok((lines, more))
}

/// `- ConfigMap web/a`, one line an object a delete of a collection would
/// remove.
fn removed_items(list: &Value) -> (Vec<String>, usize) {
    let items = list.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let kind = list.get("kind").and_then(Value::as_str).and_then(|k| k.strip_suffix("List")).unwrap_or("object");
    let mut lines: Vec<String> = items
        .iter()
        .take(MAX_LINES)
        .map(|item| {
            let meta = item.get("metadata");
            let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str);
            let name = cut(field("name").unwrap_or("?"), 80);
            match field("namespace") {
                Some(ns) => format!("- {kind} {}/{name}", cut(ns, 80)),
                None => format!("- {kind} {name}"),
            }
        })
        .collect();
    if items.is_empty() {
        lines.push("no object matches: nothing would be removed".to_owned());
    }
    (lines, items.len().saturating_sub(MAX_LINES))
}

fn accept_json() -> (HeaderName, HeaderValue) {
    (header::ACCEPT, HeaderValue::from_static("application/json"))
}

/// The dry run of `incoming`: the same method, path and body, JSON asked
/// for, the client's `dryRun` replaced by `dryRun=All`; a delete's
/// options carry `dryRun: ["All"]` too.
fn dry_run_of(incoming: &Incoming, verb: Verb) -> Result<Incoming, String> {
    let query = dry_run_query(incoming.query.as_deref())?;
    let mut headers: Vec<(HeaderName, HeaderValue)> =
        incoming.headers.iter().filter(|(n, _)| *n == header::CONTENT_TYPE).cloned().collect();
    headers.push(accept_json());
    let body = match verb {
        Verb::Delete | Verb::DeleteCollection => {
            headers.retain(|(n, _)| *n != header::CONTENT_TYPE);
            headers.push((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
            Bytes::from(dry_run_options(&incoming.body)?)
        }
        Verb::Create | Verb::Update | Verb::Patch => incoming.body.clone(),
    };
    Ok(Incoming { method: incoming.method.clone(), path: incoming.path.clone(), query: Some(query), headers, body })
}

/// `GET` of the object a write names.
fn current_of(incoming: &Incoming) -> Incoming {
    Incoming {
        method: Method::GET,
        path: incoming.path.clone(),
        query: None,
        headers: vec![accept_json()],
        body: Bytes::new(),
    }
}

/// The client's query without any `dryRun` (however escaped), then
/// `dryRun=All`. A query the API server could read otherwise (`;`, a bad
/// escape) is not rewritten.
pub fn dry_run_query(query: Option<&str>) -> Result<String, String> {
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            return Err("the query holds `;`, so no dry run was asked".to_owned());
        }
        let key = pair.split('=').next().unwrap_or_default();
        let decoded = countersign_facts::kubernetes_query_unescape(key)
            .ok_or_else(|| "the query holds a bad escape, so no dry run was asked".to_owned())?;
        if decoded != "dryRun" {
            kept.push(pair);
        }
    }
    kept.push("dryRun=All");
    Ok(kept.join("&"))
}

/// A delete's `DeleteOptions` with `dryRun: ["All"]`: the client's own
/// (propagation policy, preconditions) kept.
fn dry_run_options(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut options = if body.iter().all(u8::is_ascii_whitespace) {
        json!({"kind": "DeleteOptions", "apiVersion": "v1"})
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) | Err(_) => {
                return Err("the delete's options are not a JSON object, so no dry run was asked".to_owned())
            }
        }
    };
    if let Some(object) = options.as_object_mut() {
        object.insert("dryRun".to_owned(), json!(["All"]));
    }
    serde_json::to_vec(&options).map_err(|_| "the delete's options cannot be written".to_owned())
}

/// Sends `request` and reads a JSON answer, bounded; an error names the
/// API server's refusal.
async fn ask(upstream: &Upstream, request: &Incoming) -> Result<Value, String> {
    let mut response =
        upstream.send(request).await.map_err(|e| format!("the API server could not be asked for a dry run: {e}"))?;
    let status = response.status();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!("the API server's answer is larger than {MAX_ANSWER_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Err("the API server's answer broke off".to_owned()),
        }
    }
    let value: Option<Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        let said = value
            .as_ref()
            .and_then(|v| Some((v.get("reason")?.as_str()?.to_owned(), v.get("message")?.as_str()?.to_owned())));
        let what = if request.method == Method::GET { "reading the object" } else { "the dry run" };
        return Err(match said {
            Some((reason, message)) => format!(
                "the API server refused {what}: {} {reason}: {}",
                status.as_u16(),
                cut(&message, MAX_MESSAGE_CHARS)
            ),
            None => format!("the API server refused {what}: {}", status.as_u16()),
        });
    }
    match value {
        Some(value @ Value::Object(_)) => Ok(value),
        Some(_) | None => Err("the API server's answer is not a JSON object".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(method: &str, path: &str, query: Option<&str>) -> Action {
        let mut payload = json!({"method": method, "path": path, "headers": {}, "body_bytes": 0});
        if let Some(q) = query {
            payload["query"] = json!(q);
        }
        serde_json::from_value(json!({"kind": "k8s.request", "resource": "prod", "payload": payload})).unwrap()
    }

    #[test]
    fn only_writes_are_previewed_and_never_streams_or_proxies() {
        let planned = |m: &str, p: &str, q: Option<&str>| plan(&action(m, p, q));
        let p = planned("PATCH", "/api/v1/namespaces/prod/configmaps/app", None).unwrap().unwrap();
        assert_eq!((p.verb, p.object.as_str()), (Verb::Patch, "configmaps prod/app"));
        let p = planned("DELETE", "/apis/apps/v1/namespaces/prod/deployments", None).unwrap().unwrap();
        assert_eq!((p.verb, p.object.as_str()), (Verb::DeleteCollection, "deployments prod/*"));
        let p = planned("DELETE", "/api/v1/namespaces/web", None).unwrap().unwrap();
        assert_eq!((p.verb, p.object.as_str()), (Verb::Delete, "namespaces web"));
        assert!(planned("PUT", "/apis/apps/v1/namespaces/prod/deployments/api/scale", None).unwrap().is_ok());
        assert!(planned("GET", "/api/v1/namespaces/prod/configmaps/app", None).is_none());
        assert!(planned("POST", "/api/v1/namespaces/prod/configmaps", Some("dryRun=All")).is_none());
        assert!(planned("POST", "/api/v1/namespaces/prod/pods/api-0/exec", Some("command=ls")).is_none());
        let review = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
        assert!(planned("POST", review, None).unwrap().unwrap_err().contains("not previewed"));
        let refused = planned("POST", "/api/v1/namespaces/prod/pods/api-0/eviction", None).unwrap().unwrap_err();
        assert!(refused.contains("`eviction`"), "{refused}");
        assert!(planned("POST", "/api/v1/namespaces/prod/services/s/proxy/x", None).is_none());
        assert!(planned("POST", "/api/v1/namespaces/prod/configmaps", Some("a=1;dryRun=All")).unwrap().is_err());
    }

    #[test]
    fn the_dry_run_query_keeps_no_dry_run_of_the_clients() {
        assert_eq!(dry_run_query(None).unwrap(), "dryRun=All");
        assert_eq!(
            dry_run_query(Some("fieldManager=kubectl&dryRun=&dry%52un=None&dryRun")).unwrap(),
            "fieldManager=kubectl&dryRun=All"
        );
        assert_eq!(dry_run_query(Some("dry+Run=x")).unwrap(), "dry+Run=x&dryRun=All");
        assert!(dry_run_query(Some("a=1;dryRun=None")).is_err());
        assert!(dry_run_query(Some("dry%5=x")).is_err());
        assert!(dry_run_query(Some("%ff%fe=1")).is_err());
    }

    #[test]
    fn a_deletes_options_ask_for_a_dry_run_too() {
        let options: Value = serde_json::from_slice(&dry_run_options(b"").unwrap()).unwrap();
        assert_eq!(options["dryRun"], json!(["All"]));
        assert_eq!(options["kind"], "DeleteOptions");
        let body = br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background","dryRun":[]}"#;
        let options: Value = serde_json::from_slice(&dry_run_options(body).unwrap()).unwrap();
        assert_eq!(options["dryRun"], json!(["All"]));
        assert_eq!(options["propagationPolicy"], "Background");
        assert!(dry_run_options(b"[1]").is_err());
        assert!(dry_run_options(b"\x00protobuf").is_err());
        let incoming = Incoming {
            method: Method::DELETE,
            path: "/api/v1/namespaces/prod/configmaps/app".to_owned(),
            query: Some("gracePeriodSeconds=0&dryRun=None".to_owned()),
            headers: vec![(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.kubernetes.protobuf"))],
            body: Bytes::new(),
        };
        let dry = dry_run_of(&incoming, Verb::Delete).unwrap();
        assert_eq!(dry.query.as_deref(), Some("gracePeriodSeconds=0&dryRun=All"));
        let content_types: Vec<&HeaderValue> =
            dry.headers.iter().filter(|(n, _)| *n == header::CONTENT_TYPE).map(|(_, v)| v).collect();
        assert_eq!(content_types, [&HeaderValue::from_static("application/json")]);
    }

    #[test]
    fn a_collection_delete_lists_what_goes_bounded() {
        let items: Vec<Value> =
            (0..30).map(|i| json!({"metadata": {"name": format!("cm{i}"), "namespace": "web"}})).collect();
        let (lines, more) = removed_items(&json!({"kind": "ConfigMapList", "items": items}));
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0], "- ConfigMap web/cm0");
        assert_eq!(more, 10);
        let (lines, more) = removed_items(&json!({"kind": "ConfigMapList", "items": []}));
        assert_eq!((lines[0].as_str(), more), ("no object matches: nothing would be removed", 0));
    }
}
