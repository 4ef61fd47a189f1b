//! Kubernetes API requests (`k8s.request`, as the gateway's `/k8s/<cluster>`
//! proxy describes them: `{method, path, query?, body?, body_bytes}`):
//! the verb, API group, resource, namespace, name and subresource, read
//! from the URL the way the API server's request-info resolver reads it,
//! and dry-run from the query or, for a `DELETE` with a body, from the
//! `DeleteOptions` in the body (the API server then ignores the query).
//!
//! `exec` and `attach` are verbs of their own here (the API server calls
//! them `create`/`get` on a subresource): what they run is the `command`
//! query parameters, judged as a `shell.exec` argv.
//!
//! Anything the API server could read differently is a parse error: a
//! path with `%`, `.`/`..` or empty segments, a query with `;` or a bad
//! escape, an unknown method.

use serde_json::Value;

use crate::kubectl::{normalise_type, KubectlFacts};
use crate::shell::ShellFacts;

/// Subresources that open a stream into a container or a port; they are
/// verbs of their own.
const CONNECT: [&str; 3] = ["exec", "attach", "portforward"];

/// The facts of one API request: the kubectl record, and the shell record
/// of a command it runs in a container.
pub(crate) fn facts(payload: &Value) -> (KubectlFacts, Option<ShellFacts>) {
    let mut out = KubectlFacts::default();
    let method = payload.get("method").and_then(Value::as_str).unwrap_or_default();
    let path = payload.get("path").and_then(Value::as_str).unwrap_or_default();
    let query = match payload.get("query") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::String(q)) => parse_query(q),
        Some(_) => None,
    };
    let (Some(query), Some(info)) = (query, resolve(path)) else {
        out.parse_error = true;
        return (out, None);
    };
    let values = |key: &str| -> Vec<&str> { query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect() };
    // A request that asks to switch protocols opens a stream both ways
    // (a console, a tunnel): whatever the verb, it does not only read.
    let upgrade = payload.get("upgrade").is_some_and(|u| !u.is_null());
    let Some(resource) = info.resource else {
        // Discovery, `/version`, `/openapi/…`, `/healthz`: only reading
        // when the method only reads.
        let reads = matches!(method, "GET" | "HEAD");
        out.verbs.push(if reads { "get".to_owned() } else { method.to_ascii_lowercase() });
        out.resource_types.extend(info.other_path);
        out.read_only = reads && !upgrade;
        out.parse_error = !matches!(method, "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS");
        return (out, None);
    };
    let watch = values("watch").first().is_some_and(|v| matches!(*v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
    let subresource = info.subresource.clone().unwrap_or_default();
    let verb = if CONNECT.contains(&subresource.as_str()) {
        subresource.clone()
    } else if info.proxy || subresource == "proxy" {
        "proxy".to_owned()
    } else {
        match (method, info.name.is_some()) {
            ("GET" | "HEAD", _) if info.watch || watch => "watch".to_owned(),
            ("GET" | "HEAD", true) => "get".to_owned(),
            ("GET" | "HEAD", false) => "list".to_owned(),
            ("POST", _) => "create".to_owned(),
            ("PUT", _) => "update".to_owned(),
            ("PATCH", _) => "patch".to_owned(),
            ("DELETE", true) => "delete".to_owned(),
            ("DELETE", false) => "deletecollection".to_owned(),
            (other, _) => {
                out.parse_error = true;
                other.to_ascii_lowercase()
            }
        }
    };
    out.read_only = matches!(verb.as_str(), "get" | "list" | "watch") && !upgrade;
    out.verbs.push(verb.clone());
    out.resource_types.push(normalise_type(&resource));
    out.api_groups.push(info.group.clone());
    if let Some(ns) = &info.namespace {
        out.namespaces.push(ns.clone());
    } else if resource != "namespaces" && info.cluster_wide_list {
        // `/api/v1/pods`: every namespace's.
        out.all_namespaces = true;
    }
    if let Some(name) = &info.name {
        out.names.push(name.clone());
    } else if matches!(verb.as_str(), "list" | "watch") {
        // A list of one name is that object to the API server (and RBAC).
        if let Some(name) = values("fieldSelector").first().and_then(|s| selected_name(s)) {
            out.names.push(name);
        }
    }
    if !subresource.is_empty() {
        out.subresources.push(subresource.clone());
    }
    out.dry_run = dry_run(method, payload, &values("dryRun"));
    if out.read_only {
        out.dry_run = false;
    }
    let shell = matches!(verb.as_str(), "exec").then(|| {
        let argv: Vec<Value> = values("command").into_iter().map(|c| Value::String(c.to_owned())).collect();
        if argv.is_empty() {
            ShellFacts { parse_error: true, ..ShellFacts::default() }
        } else {
            crate::shell::from_payload(&serde_json::json!({ "argv": argv })).facts
        }
    });
    (out, shell)
}

/// The API server's dry-run: only `All` (anything else is refused), in
/// the body's `DeleteOptions` for a `DELETE` that has a body, in the
/// query otherwise.
fn dry_run(method: &str, payload: &Value, query: &[&str]) -> bool {
    let has_body = payload.get("body_bytes").and_then(Value::as_u64).unwrap_or(0) > 0;
    if method == "DELETE" && has_body {
        return match payload.get("body").and_then(|b| b.get("dryRun")) {
            Some(Value::Array(items)) => !items.is_empty() && items.iter().all(|v| v.as_str() == Some("All")),
            Some(_) | None => false,
        };
    }
    !query.is_empty() && query.iter().all(|v| *v == "All")
}

/// Where a request path lands, as the API server's request-info
/// resolver reads it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Info {
    group: String,
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    /// `/api/v1/watch/…` (the old spelling of `?watch=true`).
    watch: bool,
    /// `/api/v1/proxy/…`.
    proxy: bool,
    /// A collection without a namespace in the path.
    cluster_wide_list: bool,
    /// A non-resource path that is not discovery (`/logs`, `/metrics`,
    /// `/debug/…`, `/healthz`, …): its first segment.
    other_path: Option<String>,
}

/// `None` when the path could be read two ways (`%`, dot or empty
/// segments, control characters).
fn resolve(path: &str) -> Option<Info> {
    if !path.starts_with('/')
        || path.bytes().any(|b| b == b'%' || b == b'\\' || b.is_ascii_control() || b == b'?' || b == b'#')
    {
        return None;
    }
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    if path.starts_with("//") {
        return None;
    }
    if trimmed.is_empty() {
        return Some(Info::default());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return None;
    }
    let mut info = Info::default();
    let rest: &[&str] = match parts.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => rest,
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => {
            info.group = (*group).to_owned();
            rest
        }
        // Discovery: what kinds of objects exist, never the objects.
        ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _] | ["version"] | ["openapi", ..] => {
            return Some(info)
        }
        // Every other non-resource path (the API server's own logs,
        // metrics, profiles, health) is named, so that no policy mistakes
        // it for discovery.
        [first, ..] => {
            info.other_path = Some(format!("/{first}"));
            return Some(info);
        }
        [] => return None,
    };
    let rest = match rest {
        ["watch", more @ ..] => {
            info.watch = true;
            more
        }
        ["proxy", more @ ..] => {
            info.proxy = true;
            more
        }
        other => other,
    };
    // The namespace is the one the path names, also when the object is
    // that namespace (`/namespaces/prod`, its `status` and `finalize`):
    // a delete of `kube-system` is in `kube-system`, as the API server's
    // resolver (and RBAC) reads it.
    let rest = match rest {
        ["namespaces", ns, more @ ..] => {
            info.namespace = Some((*ns).to_owned());
            if more.is_empty() || matches!(more.first(), Some(&("status" | "finalize"))) {
                rest
            } else {
                more
            }
        }
        other => other,
    };
    match rest {
        [] => return None,
        [resource] => {
            info.resource = Some((*resource).to_owned());
            info.cluster_wide_list = info.namespace.is_none();
        }
        [resource, name, tail @ ..] => {
            info.resource = Some((*resource).to_owned());
            info.name = Some((*name).to_owned());
            if let Some(sub) = tail.first() {
                info.subresource = Some((*sub).to_owned());
            }
        }
    }
    Some(info)
}

/// The name a field selector requires (`metadata.name=web-0`, or `==`),
/// as the API server's resolver takes it for a list's name; none when the
/// selector escapes anything (it is not guessed at) or the name could not
/// be a path segment.
fn selected_name(selector: &str) -> Option<String> {
    if selector.contains('\\') {
        return None;
    }
    selector.split(',').find_map(|term| {
        let term = term.trim();
        let value = term.strip_prefix("metadata.name==").or_else(|| term.strip_prefix("metadata.name="))?;
        let value = value.trim();
        let segment = !value.is_empty() && value != "." && value != ".." && !value.contains(['/', '%']);
        segment.then(|| value.to_owned())
    })
}

/// A query string as Go's `url.ParseQuery` reads it; `None` where Go
/// would drop a pair (a `;`, a bad escape) rather than guess.
fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    if query.contains(';') {
        return None;
    }
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((unescape(key)?, unescape(value)?));
        if out.len() > 4096 {
            return None;
        }
    }
    Some(out)
}

/// One key or value of a query, unescaped as Go's `url.QueryUnescape`
/// reads it (`+` is a space); `None` for a bad escape or bytes that are
/// not UTF-8. The endpoint's dry-run rewrite reads keys with it too, so
/// the facts and the rewrite cannot disagree on what `dryRun` is.
pub fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(method: &str, path: &str, query: Option<&str>) -> KubectlFacts {
        facts(&json!({"method": method, "path": path, "query": query, "body_bytes": 0})).0
    }

    #[test]
    fn verbs_resources_and_namespaces_as_the_api_server_reads_them() {
        let f = of("GET", "/api/v1/namespaces/prod/pods", Some("limit=500"));
        assert_eq!(
            (f.verbs, f.resource_types, f.namespaces),
            (vec!["list".into()], vec!["pods".into()], vec!["prod".into()])
        );
        assert!(f.read_only && !f.all_namespaces);
        let f = of("GET", "/api/v1/pods", None);
        assert!(f.all_namespaces && f.read_only);
        let f = of("GET", "/api/v1/namespaces/prod/pods", Some("watch=true&resourceVersion=1"));
        assert_eq!(f.verbs, ["watch"]);
        let f = of("GET", "/api/v1/watch/namespaces/prod/pods", None);
        assert_eq!(f.verbs, ["watch"]);
        let f = of("DELETE", "/api/v1/namespaces/prod", None);
        assert_eq!(
            (f.verbs, f.resource_types, f.names),
            (vec!["delete".into()], vec!["namespaces".into()], vec!["prod".into()])
        );
        // In itself, as the API server's resolver reads it.
        assert_eq!(f.namespaces, ["prod"]);
        let f = of("PUT", "/api/v1/namespaces/prod/finalize", None);
        assert_eq!((f.resource_types, f.subresources), (vec!["namespaces".into()], vec!["finalize".into()]));
        let f = of("DELETE", "/apis/apps/v1/namespaces/web/deployments", None);
        assert_eq!((f.verbs, f.api_groups), (vec!["deletecollection".into()], vec!["apps".into()]));
        let f = of("PATCH", "/apis/apps/v1/namespaces/web/deployments/api", Some("fieldManager=kubectl"));
        assert_eq!((f.verbs, f.names), (vec!["patch".into()], vec!["api".into()]));
        assert!(!f.read_only && !f.dry_run);
        let f = of("GET", "/api/v1/namespaces/web/pods/api-0/log", Some("follow=true"));
        assert_eq!((f.verbs, f.subresources), (vec!["get".into()], vec!["log".into()]));
        assert!(f.read_only);
        for discovery in ["/api", "/apis", "/version", "/openapi/v2", "/apis/apps/v1", "/api/v1"] {
            let f = of("GET", discovery, None);
            assert!(f.read_only && !f.parse_error && f.resource_types.is_empty(), "{discovery}");
        }
        assert!(!of("POST", "/version", None).read_only);
        // Not discovery: named by their first segment, so a rule keyed on
        // "no resource types" never lets them through as discovery.
        for (path, named) in [
            ("/logs/kube-apiserver.log", "/logs"),
            ("/metrics", "/metrics"),
            ("/debug/pprof/heap", "/debug"),
            ("/readyz", "/readyz"),
            ("/api/v1/../../logs", ""),
        ] {
            let f = of("GET", path, None);
            if named.is_empty() {
                assert!(f.parse_error, "{path}");
            } else {
                assert_eq!(f.resource_types, [named], "{path}");
                assert!(f.read_only && !f.parse_error, "{path}");
            }
        }
    }

    #[test]
    fn a_namespace_and_a_selected_name_as_the_api_server_resolves_them() {
        // The namespace object is in itself: a policy on `kube-system`
        // sees its delete, its update and its finalizers' removal.
        for (method, path, verb, sub) in [
            ("DELETE", "/api/v1/namespaces/kube-system", "delete", None),
            ("PUT", "/api/v1/namespaces/kube-system", "update", None),
            ("PUT", "/api/v1/namespaces/kube-system/finalize", "update", Some("finalize")),
            ("PATCH", "/api/v1/namespaces/kube-system/status", "patch", Some("status")),
        ] {
            let f = of(method, path, None);
            assert_eq!(f.namespaces, ["kube-system"], "{path}");
            assert_eq!(
                (f.verbs, f.resource_types, f.names),
                (vec![verb.into()], vec!["namespaces".into()], vec!["kube-system".into()]),
                "{path}"
            );
            assert_eq!(f.subresources, sub.into_iter().map(str::to_owned).collect::<Vec<_>>(), "{path}");
        }
        let f = of("GET", "/api/v1/namespaces", None);
        assert!(f.namespaces.is_empty() && !f.all_namespaces && f.verbs == ["list"]);
        // A list with a field selector on the name is that object.
        for query in [
            "fieldSelector=metadata.name%3Ddb-root",
            "fieldSelector=metadata.name==db-root,type=Opaque",
            "watch=1&fieldSelector=type%3DOpaque,metadata.name%3Ddb-root",
        ] {
            let f = of("GET", "/api/v1/namespaces/prod/secrets", Some(query));
            assert_eq!(f.names, ["db-root"], "{query}");
        }
        for query in [
            "fieldSelector=metadata.name!%3Ddb-root",
            "fieldSelector=metadata.name%3Ddb%5C,root",
            "fieldSelector=metadata.name%3D..",
        ] {
            assert!(of("GET", "/api/v1/namespaces/prod/secrets", Some(query)).names.is_empty(), "{query}");
        }
    }

    #[test]
    fn a_stream_opened_by_an_upgrade_never_only_reads() {
        // KubeVirt's `console` (or any streaming subresource the verbs do
        // not name) is a GET that switches to a stream both ways.
        let console = "/apis/subresources.kubevirt.io/v1/namespaces/web/virtualmachineinstances/vm/console";
        let f = facts(&json!({"method": "GET", "path": console, "upgrade": "websocket", "body_bytes": 0})).0;
        assert!(!f.read_only && !f.parse_error && f.subresources == ["console"], "{f:?}");
        assert!(of("GET", console, None).read_only);
        let f =
            facts(&json!({"method": "GET", "path": "/api/v1/namespaces/web/pods/web-0/log", "upgrade": "SPDY/3.1"})).0;
        assert!(!f.read_only);
        let f = facts(&json!({"method": "GET", "path": "/version", "upgrade": "websocket"})).0;
        assert!(!f.read_only);
    }

    #[test]
    fn exec_is_its_own_verb_and_its_command_a_shell_command() {
        let (k, shell) = facts(&json!({"method": "POST", "path": "/api/v1/namespaces/prod/pods/db-0/exec",
            "query": "command=sh&command=-c&command=rm+-rf+%2Fdata&stdin=true", "body_bytes": 0}));
        assert_eq!((k.verbs, k.subresources), (vec!["exec".into()], vec!["exec".into()]));
        let shell = shell.unwrap();
        assert!(shell.destructive, "{shell:?}");
        let (k, shell) = facts(&json!({"method": "GET", "path": "/api/v1/namespaces/p/pods/x/exec", "body_bytes": 0}));
        assert!(!k.read_only && shell.unwrap().parse_error);
        let (k, shell) = facts(
            &json!({"method": "POST", "path": "/api/v1/namespaces/p/pods/x/portforward", "query": "ports=80", "body_bytes": 0}),
        );
        assert_eq!(k.verbs, ["portforward"]);
        assert!(shell.is_none() && !k.read_only);
    }

    #[test]
    fn dry_run_where_the_api_server_reads_it() {
        assert!(of("POST", "/api/v1/namespaces/a/configmaps", Some("dryRun=All")).dry_run);
        assert!(!of("POST", "/api/v1/namespaces/a/configmaps", Some("dryRun=All&dryRun=None")).dry_run);
        assert!(!of("POST", "/api/v1/namespaces/a/configmaps", Some("dryRun=all")).dry_run);
        // A DELETE with a body takes its options from the body alone.
        let body = |b: Value| json!({"method": "DELETE", "path": "/api/v1/namespaces/x", "query": "dryRun=All", "body": b, "body_bytes": 20});
        assert!(!facts(&body(json!({"kind": "DeleteOptions"}))).0.dry_run);
        assert!(facts(&body(json!({"dryRun": ["All"]}))).0.dry_run);
        assert!(of("DELETE", "/api/v1/namespaces/x", Some("dryRun=All")).dry_run);
    }

    #[test]
    fn ambiguous_requests_are_parse_errors() {
        for path in [
            "/api/v1/namespaces/a/pods/..",
            "/api/v1/namespaces/a%2Fb/pods",
            "/api//v1/pods",
            "//api/v1/pods",
            "api/v1/pods",
            "/api/v1/./pods",
            "/api/v1/pods\n",
        ] {
            assert!(of("GET", path, None).parse_error, "{path}");
        }
        assert!(of("GET", "/api/v1/pods", Some("watch=true;x=1")).parse_error);
        assert!(of("GET", "/api/v1/pods", Some("watch=%zz")).parse_error);
        assert!(of("BREW", "/api/v1/namespaces/a/pods/x", None).parse_error);
        assert!(facts(&json!({"method": "GET", "path": "/api/v1/pods", "query": 3})).0.parse_error);
    }
}
