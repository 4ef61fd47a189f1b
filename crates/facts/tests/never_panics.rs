//! No payload can make fact derivation panic or overflow the stack:
//! arbitrary text, text built from shell and SQL syntax (so the parsers
//! get deep, not just rejected at the first byte), arbitrary JSON where a
//! plan is expected, and generated deep and wide shapes (nested `sh -c`,
//! substitutions, subshells, long `&&`/`||`/`|` chains, huge argv and
//! kubectl argument lists, deeply nested plans), each analysed on a
//! thread with a 256 KiB stack.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use countersign_facts::derive;
use proptest::prelude::*;
use serde_json::{json, Value};

const SHELL_PIECES: [&str; 40] = [
    "rm", "-rf", "/", " ", " ", "sh", "-c", "'", "\"", "`", "$(", ")", "(", "{", "}", ";", "&&", "||", "|", "&", "\n",
    "<<", "EOF", ">", "<", "2>&1", "$X", "${", "\\", "$'\\x72'", "sudo", "xargs", "env", "find", "-exec", "\\;",
    "kubectl", "-n", "case", "esac",
];

const SQL_PIECES: [&str; 30] = [
    "select", "delete", "from", "t", "where", "1", "=", "(", ")", ";", " ", " ", "drop", "table", "--", "\n", "/*",
    "*/", "/*!", "'", "\"", "with", "as", "update", "set", "a", ",", "insert", "into", "values",
];

fn pieces(alphabet: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), 0..60).prop_map(|p| p.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["create", "delete", "update", "no-op", "read", "forget"]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["resource_changes", "change", "actions", "address", "format_version", "x"]),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

const KINDS: [&str; 6] = ["shell.exec", "sql.execute", "k8s.apply", "terraform.apply", "mcp.tool_call", "run"];

/// One layer wrapped around a command line.
#[derive(Debug, Clone, Copy)]
enum Layer {
    ShC,
    Substitution,
    QuotedSubstitution,
    Subshell,
    Group,
    Backticks,
    Sudo,
    Env,
    Timeout,
    AndChain(usize),
    OrChain(usize),
    Pipe(usize),
    Param,
}

fn layer() -> impl Strategy<Value = Layer> {
    prop_oneof![
        Just(Layer::ShC),
        Just(Layer::Substitution),
        Just(Layer::QuotedSubstitution),
        Just(Layer::Subshell),
        Just(Layer::Group),
        Just(Layer::Backticks),
        Just(Layer::Sudo),
        Just(Layer::Env),
        Just(Layer::Timeout),
        (1_usize..2000).prop_map(Layer::AndChain),
        (1_usize..2000).prop_map(Layer::OrChain),
        (1_usize..2000).prop_map(Layer::Pipe),
        Just(Layer::Param),
    ]
}

/// Wraps `inner` in `layer`, quoting as a shell would need.
fn wrap(inner: &str, layer: Layer) -> String {
    match layer {
        // Double quotes need only `\`, `"`, `$` and backquote escaped, so
        // nesting grows the text linearly per level (the backslashes
        // double, bounded by the size limit).
        Layer::ShC => format!(
            "sh -c \"{}\"",
            inner.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('`', "\\`")
        ),
        // A space after `$(`: `$((` starts arithmetic.
        Layer::Substitution => format!("echo $( {inner})"),
        Layer::QuotedSubstitution => format!("echo \"$( {inner})\""),
        Layer::Subshell => format!("( {inner})"),
        Layer::Group => format!("{{ {inner}; }}"),
        Layer::Backticks => format!("echo `{}`", inner.replace('\\', "\\\\").replace('`', "\\`")),
        Layer::Sudo => format!("sudo -u root {inner}"),
        Layer::Env => format!("env -i A=1 {inner}"),
        Layer::Timeout => format!("timeout -s KILL 5 {inner}"),
        Layer::AndChain(n) => format!("{}{inner}", "true && ".repeat(n)),
        Layer::OrChain(n) => format!("{}{inner}", "false || ".repeat(n)),
        Layer::Pipe(n) => format!("{}{inner}", "cat | ".repeat(n)),
        Layer::Param => format!("echo ${{x:-$( {inner})}}"),
    }
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let worker = std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap();
    worker.join().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(text in ".{0,200}", dialect in prop::sample::select(vec!["generic", "postgres", "mysql", "sqlite", "x"])) {
        for kind in KINDS {
            let facts = derive(kind, &json!({"command": text, "statement": text, "dialect": dialect, "plan": text}));
            let _ = facts.lines();
            let _ = facts.to_json();
        }
    }

    #[test]
    fn shell_syntax(text in pieces(&SHELL_PIECES)) {
        let facts = derive("shell.exec", &json!({"command": text}));
        let _ = facts.lines();
        let args: Vec<&str> = text.split(' ').collect();
        let _ = derive("k8s.apply", &json!({"argv": args, "args": args}));
    }

    #[test]
    fn sql_syntax(text in pieces(&SQL_PIECES), dialect in prop::sample::select(vec!["generic", "postgres", "mysql"])) {
        let facts = derive("sql.execute", &json!({"statement": text, "dialect": dialect}));
        let _ = facts.lines();
    }

    #[test]
    fn arbitrary_payloads(payload in json_value()) {
        for kind in KINDS {
            let _ = derive(kind, &payload).lines();
            let _ = derive(kind, &json!({"plan": payload, "argv": payload, "args": payload, "statement": payload})).lines();
        }
    }
}

proptest! {
    // Each case builds and analyses up to a few hundred KiB, so fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the wrapping, a command hiding `rm -rf /` is flagged:
    /// destructive, or (past the limits, or where a layer cannot be read)
    /// unresolved or a parse error. Never a crash.
    #[test]
    fn deep_and_wide_shapes_fail_closed(layers in prop::collection::vec(layer(), 1..80), kind in prop::sample::select(vec!["shell.exec", "run", "k8s.apply"])) {
        let mut text = "rm -rf /srv".to_owned();
        for l in &layers {
            text = wrap(&text, *l);
            if text.len() > 2 * countersign_facts::MAX_INPUT_BYTES {
                break;
            }
        }
        let facts = on_small_stack(move || derive(kind, &json!({"command": text})));
        let shell = facts.shell.unwrap();
        prop_assert!(shell.destructive || shell.unresolved || shell.parse_error, "{:?}", shell);
    }

    /// Long argv and kubectl argument lists, with global flags before the verb.
    #[test]
    fn wide_kubectl_calls(n in 0_usize..20_000, flag in prop::sample::select(vec!["-v", "--v", "-s", "--context", "--kubeconfig", "-n", "--namespace", "--as", "--token", "--cluster", "--user", "--request-timeout", "--cache-dir"])) {
        let mut args: Vec<String> = Vec::new();
        for _ in 0..n {
            args.push(flag.to_owned());
            args.push("0".to_owned());
        }
        args.extend(["delete", "ns", "prod"].map(str::to_owned));
        let mut argv = vec!["kubectl".to_owned()];
        argv.extend(args.iter().cloned());
        let (a, b) = on_small_stack(move || (derive("k8s.delete", &json!({"args": args})), derive("run", &json!({"argv": argv}))));
        for facts in [a, b] {
            match facts.kubectl {
                Some(k) => {
                    prop_assert_eq!(k.verbs, vec!["delete".to_owned()]);
                    prop_assert!(!k.read_only);
                }
                // An argv over the size limit is not read at all.
                None => prop_assert!(facts.shell.unwrap().parse_error),
            }
        }
    }

    #[test]
    fn deep_plans(depth in 0_usize..5000, as_string in any::<bool>()) {
        let facts = on_small_stack(move || {
            let inner = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let plan = format!("{{\"format_version\":\"1.2\",\"resource_changes\":[],\"x\":{inner}}}");
            if as_string {
                derive("terraform.apply", &json!({"plan": plan}))
            } else {
                derive("terraform.apply", &json!({"plan": {"format_version": "1.2"}}))
            }
        });
        let t = facts.terraform.unwrap();
        prop_assert_eq!(t.parse_error, as_string && depth + 1 > countersign_facts::terraform::MAX_PLAN_DEPTH);
    }
}
