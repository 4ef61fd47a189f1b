//! `kubectl` calls: the verbs, namespaces and resource types they touch,
//! and whether they only look or only pretend (`--dry-run`).
//!
//! Flags are read the way kubectl reads them — anywhere on the line, as
//! `-n ns`, `-nns`, `--namespace ns` or `--namespace=ns` — so a namespace
//! or verb cannot hide behind flag order. Calls come from a shell
//! command's analysis (every `kubectl` in the pipeline, wrappers
//! unwrapped) or from a payload's `args` list.

use serde::{Deserialize, Serialize};

/// One word of a `kubectl` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KubectlArg {
    pub text: String,
    /// Only known at run time (`-n $NS`).
    pub dynamic: bool,
}

/// One `kubectl` call: its arguments, without the program name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KubectlCall {
    pub args: Vec<KubectlArg>,
}

/// What the `kubectl` calls of an action do, all calls together.
///
/// Serialised as the `kubectl` record of the facts; field names are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubectlFacts {
    /// Each call's verb (`get`, `apply`, `delete`, `rollout`, …), in order
    /// of first appearance. A set rather than one verb, so a harmless
    /// first call cannot hide a `delete` after `&&`.
    pub verbs: Vec<String>,
    /// The namespaces named with `-n`/`--namespace`. Empty when none is
    /// named: kubectl then uses the kubeconfig's namespace.
    pub namespaces: Vec<String>,
    /// Some call has `-A`/`--all-namespaces`.
    pub all_namespaces: bool,
    /// The resource types named, normalised to kubectl's plural names
    /// (`po`, `pod`, `pods/web` → `pods`; `deploy` → `deployments`;
    /// `deployments.apps` → `deployments`). Types in `-f` files are not
    /// read. For an API request on a non-resource path other than
    /// discovery, the path's first segment (`/logs`, `/metrics`); empty
    /// for discovery alone (`/api`, `/apis/…`, `/version`, `/openapi/…`).
    pub resource_types: Vec<String>,
    /// Every call is `--dry-run` (`client` or `server`), so nothing changes.
    pub dry_run: bool,
    /// Every verb only reads (`get`, `describe`, `logs`, `top`, `explain`,
    /// `diff`, `version`, `api-resources`, `api-versions`, `cluster-info`,
    /// `auth`, `events`, `wait`).
    pub read_only: bool,
    /// Some call names files (`-f`/`--filename`/`-k`), whose contents the
    /// facts do not describe.
    pub uses_files: bool,
    /// No call could be read: no `kubectl` where one was expected, a call
    /// without a verb, or a verb, namespace or type only known at run time.
    pub parse_error: bool,
    /// API requests (`k8s.request`) only: the API groups (`""` is the
    /// core group, `apps`, …), object names and subresources (`log`,
    /// `status`, `exec`, `scale`, …) in the URL. Empty for kubectl calls.
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub subresources: Vec<String>,
}

/// Flags that take a value (so the value is not taken for a verb or type).
const VALUE_FLAGS: [&str; 48] = [
    "v",
    "vmodule",
    "log-dir",
    "log-file-max-size",
    "log-flush-frequency",
    "log-backtrace-at",
    "stderrthreshold",
    "password",
    "username",
    "chunk-size",
    "namespace",
    "context",
    "cluster",
    "user",
    "kubeconfig",
    "server",
    "token",
    "as",
    "as-group",
    "as-uid",
    "cache-dir",
    "certificate-authority",
    "client-certificate",
    "client-key",
    "request-timeout",
    "tls-server-name",
    "profile",
    "profile-output",
    "filename",
    "kustomize",
    "selector",
    "field-selector",
    "output",
    "container",
    "image",
    "patch",
    "type",
    "replicas",
    "timeout",
    "grace-period",
    "from-literal",
    "from-file",
    "label-columns",
    "template",
    "field-manager",
    "for",
    "overrides",
    "log-file",
];
/// One-letter flags that take a value.
const VALUE_SHORT: &str = "nflocpskLv";

/// kubectl's global flags that take no value; every other global flag
/// takes one, so before the verb an unknown `--flag` is taken to have a
/// value (`kubectl --some-flag x delete ns prod` is still a `delete`).
const GLOBAL_BOOLS: [&str; 14] = [
    "insecure-skip-tls-verify",
    "match-server-version",
    "warnings-as-errors",
    "disable-compression",
    "alsologtostderr",
    "logtostderr",
    "one-output",
    "skip-headers",
    "skip-log-headers",
    "add-dir-header",
    "all-namespaces",
    "dry-run",
    "help",
    "profile-mutex",
];

/// kubectl's built-in subcommands other than the read-only ones (a word
/// outside both lists is a plugin or unknown).
const OTHER_BUILTIN_VERBS: [&str; 32] = [
    "create",
    "apply",
    "delete",
    "edit",
    "patch",
    "label",
    "annotate",
    "scale",
    "autoscale",
    "expose",
    "set",
    "rollout",
    "run",
    "exec",
    "debug",
    "attach",
    "cp",
    "port-forward",
    "proxy",
    "replace",
    "drain",
    "cordon",
    "uncordon",
    "taint",
    "certificate",
    "config",
    "kustomize",
    "completion",
    "options",
    "help",
    "alpha",
    "plugin",
];

/// A kubectl built-in subcommand, read-only or not.
pub(crate) fn is_builtin_verb(verb: &str) -> bool {
    READ_ONLY_VERBS.contains(&verb) || OTHER_BUILTIN_VERBS.contains(&verb)
}

/// Verbs that only read. (`auth` only with `can-i` or `whoami`; any
/// other verb, a plugin or an unknown word is not read-only.)
pub const READ_ONLY_VERBS: [&str; 13] = [
    "get",
    "describe",
    "logs",
    "top",
    "explain",
    "diff",
    "version",
    "api-resources",
    "api-versions",
    "cluster-info",
    "auth",
    "events",
    "wait",
];

/// Verbs whose first operand is a resource type (or `TYPE/NAME`).
const TYPE_VERBS: [&str; 14] = [
    "get",
    "describe",
    "delete",
    "edit",
    "patch",
    "label",
    "annotate",
    "scale",
    "autoscale",
    "expose",
    "wait",
    "explain",
    "set",
    "rollout",
];

/// Verbs with a subcommand before the type (`rollout restart deploy/x`,
/// `set image deploy/x`).
const SUBCOMMAND_VERBS: [&str; 2] = ["set", "rollout"];

#[derive(Debug, Default)]
struct Call {
    positionals: Vec<KubectlArg>,
    namespaces: Vec<KubectlArg>,
    all_namespaces: bool,
    dry_run: bool,
    files: bool,
}

fn read(call: &KubectlCall) -> Call {
    let mut out = Call::default();
    let mut i = 0;
    let args = &call.args;
    while let Some(arg) = args.get(i) {
        i += 1;
        let t = arg.text.as_str();
        if t == "--" {
            // What follows runs in a container; it is not kubectl's.
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let value = |i: &mut usize| -> Option<KubectlArg> {
                match inline {
                    Some(v) => Some(KubectlArg { text: v.to_owned(), dynamic: arg.dynamic }),
                    None => {
                        let v = args.get(*i).cloned();
                        *i += 1;
                        v
                    }
                }
            };
            match name {
                "namespace" => out.namespaces.extend(value(&mut i)),
                "all-namespaces" => out.all_namespaces = inline.is_none_or(|v| v != "false"),
                // `--dry-run` alone is `client`; `none` really runs.
                "dry-run" => out.dry_run = inline.is_none_or(|v| v != "none" && v != "false"),
                "filename" | "kustomize" => {
                    out.files = true;
                    value(&mut i);
                }
                n if VALUE_FLAGS.contains(&n) => {
                    value(&mut i);
                }
                // Before the verb: a global flag, which takes a value
                // unless it is one of the few booleans.
                n if out.positionals.is_empty() && !GLOBAL_BOOLS.contains(&n) => {
                    value(&mut i);
                }
                _ => {}
            }
            continue;
        }
        if let Some(cluster) = t.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (pos, c) in cluster.char_indices() {
                if c == 'A' {
                    out.all_namespaces = true;
                    continue;
                }
                if VALUE_SHORT.contains(c) {
                    let attached = cluster[pos + c.len_utf8()..].trim_start_matches('=');
                    let value = if attached.is_empty() {
                        let v = args.get(i).cloned();
                        i += 1;
                        v
                    } else {
                        Some(KubectlArg { text: attached.to_owned(), dynamic: arg.dynamic })
                    };
                    match c {
                        'n' => out.namespaces.extend(value),
                        'f' | 'k' => out.files = true,
                        _ => {}
                    }
                    break;
                }
            }
            continue;
        }
        out.positionals.push(arg.clone());
    }
    out
}

/// Combines the facts of every call. `expected` says a call was
/// expected (a `k8s.*` action), so finding none is a parse error.
pub(crate) fn facts(calls: &[KubectlCall], expected: bool) -> Option<KubectlFacts> {
    if calls.is_empty() {
        return expected.then(|| KubectlFacts { parse_error: true, ..KubectlFacts::default() });
    }
    let mut facts = KubectlFacts { dry_run: true, read_only: true, ..KubectlFacts::default() };
    for call in calls {
        let call = read(call);
        facts.all_namespaces |= call.all_namespaces;
        facts.dry_run &= call.dry_run;
        facts.uses_files |= call.files;
        for ns in &call.namespaces {
            if ns.dynamic {
                facts.parse_error = true;
            } else {
                push_unique(&mut facts.namespaces, &ns.text);
            }
        }
        let Some(verb) = call.positionals.first() else {
            facts.parse_error = true;
            facts.read_only = false;
            continue;
        };
        if verb.dynamic {
            facts.parse_error = true;
            facts.read_only = false;
            continue;
        }
        let verb_text = verb.text.to_ascii_lowercase();
        let reads = match verb_text.as_str() {
            "auth" => call.positionals.get(1).is_some_and(|s| matches!(s.text.as_str(), "can-i" | "whoami")),
            v => READ_ONLY_VERBS.contains(&v),
        };
        facts.read_only &= reads;
        let types = resource_operands(&verb_text, &call.positionals[1..]);
        push_unique(&mut facts.verbs, &verb_text);
        for t in types {
            if t.dynamic {
                facts.parse_error = true;
            } else {
                for name in t.text.split(',').filter(|s| !s.is_empty()) {
                    push_unique(&mut facts.resource_types, &normalise_type(name));
                }
            }
        }
    }
    Some(facts)
}

/// The operands naming resource types for `verb`.
fn resource_operands<'a>(verb: &str, operands: &'a [KubectlArg]) -> Vec<&'a KubectlArg> {
    let operands = if SUBCOMMAND_VERBS.contains(&verb) { operands.get(1..).unwrap_or(&[]) } else { operands };
    match verb {
        "cordon" | "uncordon" | "drain" | "taint" => return vec![],
        "logs" | "exec" | "attach" | "port-forward" | "cp" | "debug" => {
            // `TYPE/NAME` names a type; a bare name is a pod.
            return operands.iter().take(1).filter(|o| o.text.contains('/')).collect();
        }
        "create" => return operands.iter().take(1).collect(),
        v if !TYPE_VERBS.contains(&v) => return vec![],
        _ => {}
    }
    let Some(first) = operands.first() else {
        return vec![];
    };
    if first.text.contains('/') {
        // `kubectl delete pod/a deploy/b`
        operands.iter().filter(|o| o.text.contains('/') || o.dynamic).collect()
    } else {
        vec![first]
    }
}

/// `Pod`, `po`, `pods/web`, `deployments.apps` → `pods`, `pods`, `pods`,
/// `deployments`.
pub(crate) fn normalise_type(name: &str) -> String {
    let name = name.split('/').next().unwrap_or(name).to_ascii_lowercase();
    let name = name.split('.').next().unwrap_or(&name).to_owned();
    const ALIASES: [(&str, &str); 44] = [
        ("po", "pods"),
        ("pod", "pods"),
        ("svc", "services"),
        ("service", "services"),
        ("deploy", "deployments"),
        ("deployment", "deployments"),
        ("ns", "namespaces"),
        ("namespace", "namespaces"),
        ("no", "nodes"),
        ("node", "nodes"),
        ("cm", "configmaps"),
        ("configmap", "configmaps"),
        ("secret", "secrets"),
        ("sts", "statefulsets"),
        ("statefulset", "statefulsets"),
        ("ds", "daemonsets"),
        ("daemonset", "daemonsets"),
        ("rs", "replicasets"),
        ("replicaset", "replicasets"),
        ("pvc", "persistentvolumeclaims"),
        ("persistentvolumeclaim", "persistentvolumeclaims"),
        ("pv", "persistentvolumes"),
        ("persistentvolume", "persistentvolumes"),
        ("ing", "ingresses"),
        ("ingress", "ingresses"),
        ("sa", "serviceaccounts"),
        ("serviceaccount", "serviceaccounts"),
        ("crd", "customresourcedefinitions"),
        ("crds", "customresourcedefinitions"),
        ("customresourcedefinition", "customresourcedefinitions"),
        ("cj", "cronjobs"),
        ("cronjob", "cronjobs"),
        ("job", "jobs"),
        ("hpa", "horizontalpodautoscalers"),
        ("netpol", "networkpolicies"),
        ("networkpolicy", "networkpolicies"),
        ("pdb", "poddisruptionbudgets"),
        ("ep", "endpoints"),
        ("ev", "events"),
        ("event", "events"),
        ("role", "roles"),
        ("rolebinding", "rolebindings"),
        ("clusterrole", "clusterroles"),
        ("clusterrolebinding", "clusterrolebindings"),
    ];
    ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, plural)| (*plural).to_owned())
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if list.len() < 64 && !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

/// The call's subcommand (lowercase) and how many operands follow it;
/// `None` when it has none or it is computed.
pub(crate) fn subcommand(call: &KubectlCall) -> Option<(String, usize)> {
    let call = read(call);
    let verb = call.positionals.first().filter(|v| !v.dynamic)?;
    Some((verb.text.to_ascii_lowercase(), call.positionals.len() - 1))
}

/// A `kubectl` argument list given directly (payload `args`), each
/// element verbatim.
pub(crate) fn call_from_args(args: &[String]) -> KubectlCall {
    KubectlCall { args: args.iter().map(|a| KubectlArg { text: a.clone(), dynamic: false }).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell;

    fn of(line: &str) -> KubectlFacts {
        let calls = shell::from_payload(&serde_json::json!({ "command": line })).kubectl;
        facts(&calls, true).unwrap()
    }

    #[test]
    fn verb_namespace_and_types_wherever_the_flags_are() {
        let f = of("kubectl -n prod delete po/web-1 deploy/api");
        assert_eq!(f.verbs, ["delete"]);
        assert_eq!(f.namespaces, ["prod"]);
        assert_eq!(f.resource_types, ["pods", "deployments"]);
        assert!(!f.read_only && !f.dry_run && !f.parse_error);

        let f = of("kubectl --context=x get --namespace=kube-system pods,svc -o wide");
        assert_eq!((f.verbs.clone(), f.namespaces.clone()), (vec!["get".to_owned()], vec!["kube-system".to_owned()]));
        assert_eq!(f.resource_types, ["pods", "services"]);
        assert!(f.read_only);

        let f = of("kubectl get deployments.apps -A");
        assert!(f.all_namespaces);
        assert_eq!(f.resource_types, ["deployments"]);
    }

    #[test]
    fn every_call_in_a_line_counts() {
        let f = of("kubectl get pods -n dev && sudo /usr/local/bin/kubectl delete ns prod --wait=false");
        assert_eq!(f.verbs, ["get", "delete"]);
        assert_eq!(f.namespaces, ["dev"]);
        assert_eq!(f.resource_types, ["pods", "namespaces"]);
        assert!(!f.read_only);
    }

    #[test]
    fn dry_run_and_files() {
        assert!(of("kubectl apply -f x.yaml --dry-run=server").dry_run);
        assert!(of("kubectl apply -f x.yaml --dry-run").uses_files);
        assert!(!of("kubectl apply -f x.yaml --dry-run=none").dry_run);
        assert!(!of("kubectl apply -f x.yaml --dry-run=client; kubectl delete pod x").dry_run);
        let f = of("kubectl rollout restart deploy/api -n web");
        assert_eq!((f.verbs[0].as_str(), f.resource_types[0].as_str()), ("rollout", "deployments"));
    }

    #[test]
    fn computed_parts_and_missing_calls_are_errors() {
        assert!(of("kubectl delete pods -n \"$NS\"").parse_error);
        assert!(of("kubectl $VERB pods").parse_error);
        assert!(of("kubectl -n prod").parse_error);
        assert!(facts(&[], true).unwrap().parse_error);
        assert_eq!(facts(&[], false), None);
    }

    #[test]
    fn global_flags_with_values_do_not_hide_the_verb() {
        for line in [
            "kubectl -v 0 delete ns prod",
            "kubectl -v=0 delete ns prod",
            "kubectl --v=0 delete ns prod",
            "kubectl --v 0 delete ns prod",
            "kubectl -s https://k:6443 delete ns prod",
            "kubectl --server https://k:6443 delete ns prod",
            "kubectl --context x delete ns prod",
            "kubectl --kubeconfig f delete ns prod",
            "kubectl -n ns delete ns prod",
            "kubectl --namespace=ns delete ns prod",
            "kubectl --as admin delete ns prod",
            "kubectl --as-group g delete ns prod",
            "kubectl --token t delete ns prod",
            "kubectl --cluster c delete ns prod",
            "kubectl --user u delete ns prod",
            "kubectl --request-timeout 5s delete ns prod",
            "kubectl --cache-dir /tmp delete ns prod",
            "kubectl --vmodule x=2 delete ns prod",
            "kubectl --log-dir /tmp delete ns prod",
            "kubectl --some-future-flag x delete ns prod",
            "kubectl --insecure-skip-tls-verify delete ns prod",
            "kubectl --password p --username u delete ns prod",
            "kubectl --tls-server-name x delete ns prod",
        ] {
            let f = of(line);
            assert_eq!(f.verbs, ["delete"], "{line}");
            assert!(!f.read_only, "{line}");
        }
    }

    #[test]
    fn verbs_that_change_objects_are_never_read_only() {
        for verb in [
            "apply -f x.yaml",
            "create ns x",
            "delete pod x",
            "edit deploy x",
            "patch deploy x -p {}",
            "replace -f x.yaml",
            "scale deploy x --replicas 0",
            "rollout restart deploy/x",
            "rollout undo deploy/x",
            "label pod x a=b",
            "annotate pod x a=b",
            "set image deploy/x c=i",
            "drain node1",
            "cordon node1",
            "uncordon node1",
            "taint nodes node1 k=v:NoSchedule",
            "exec pod -- ls",
            "cp x pod:/x",
            "run x --image=i",
            "expose deploy x --port 80",
            "autoscale deploy x --max 3",
            "certificate approve csr",
            "auth reconcile -f x.yaml",
            "debug node/x -it --image=busybox",
            "some-plugin do-things",
            "port-forward pod/x 8080",
        ] {
            let f = of(&format!("kubectl {verb}"));
            assert!(!f.read_only, "{verb}");
        }
        assert!(of("kubectl auth can-i delete pods").read_only);
        assert!(of("kubectl get pods -v 6").read_only);
    }

    #[test]
    fn commands_run_in_pods_are_shell_facts() {
        let found = shell::from_payload(&serde_json::json!({ "command": "kubectl exec -it db-0 -- rm -rf /data" }));
        let (shell, calls) = (found.facts, found.kubectl);
        assert!(shell.destructive, "{shell:?}");
        assert_eq!(facts(&calls, true).unwrap().verbs, ["exec"]);
    }
}
