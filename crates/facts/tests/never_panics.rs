//! No payload can make fact derivation panic: arbitrary text, text built
//! from shell and SQL syntax (so the parsers get deep, not just rejected
//! at the first byte), and arbitrary JSON where a plan is expected.

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

const KINDS: [&str; 5] = ["shell.exec", "sql.execute", "k8s.apply", "terraform.apply", "mcp.tool_call"];

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
