//! Reading and running policy test cases.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod common;

use common::*;
use countersign_policy::cases::{parse_cases, run, CaseError, Expect};

const POLICY: &str = r#"
@id("read") permit(principal, action == Action::"sql.execute", resource) when { context.payload.statement like "SELECT*" };
@id("prod") @approvers("sre") permit(principal, action, resource) when { resource.name like "prod*" };
@id("never") forbid(principal, action, resource) when { context.labels.contains("nope") };
"#;

const JSON: &str = r#"[
  {"name": "select", "principal": {"kind": "agent", "name": "bot", "groups": ["g"]},
   "action": {"kind": "sql.execute", "resource": "db", "payload": {"statement": "SELECT 1"}},
   "expect": "allowed", "expect_policies": ["read"]},
  {"name": "prod", "principal": {"kind": "user", "name": "ann", "email": "ann@example.com"},
   "action": {"kind": "shell.exec", "resource": "prod-1"}, "expect": "pending"},
  {"name": "wrong expectation", "principal": {"kind": "agent", "name": "bot"},
   "action": {"kind": "shell.exec", "resource": "db", "labels": ["nope"]}, "expect": "allowed"},
  {"name": "wrong policies", "principal": {"kind": "agent", "name": "bot"},
   "action": {"kind": "shell.exec", "resource": "prod-1", "labels": ["nope"]}, "expect": "denied", "expect_policies": ["read"]},
  {"name": "no expectation", "principal": {"kind": "agent", "name": "bot"},
   "action": {"kind": "shell.exec", "resource": "db"}}
]"#;

#[test]
fn json_cases_run() {
    let cases = parse_cases("cases.json", JSON).unwrap();
    let results = run(&engine(POLICY), &cases);
    let summary: Vec<(&str, Expect, bool)> = results.iter().map(|r| (r.name.as_str(), r.outcome, r.passed)).collect();
    assert_eq!(
        summary,
        vec![
            ("select", Expect::Allowed, true),
            ("prod", Expect::Pending, true),
            ("wrong expectation", Expect::Denied, false),
            ("wrong policies", Expect::Denied, false),
            ("no expectation", Expect::Denied, true),
        ]
    );
    assert_eq!(results[3].policies, vec!["never"]);
    assert_eq!(results[3].reason, "denied by `never`");
}

#[test]
fn wrapped_json_and_toml_read_the_same() {
    let wrapped = format!("{{\"cases\": {JSON}}}");
    let a = parse_cases("x.json", JSON).unwrap();
    assert_eq!(parse_cases("x.JSON", &wrapped).unwrap(), a);
    let toml = r#"
[[case]]
name = "select"
expect = "allowed"
expect_policies = ["read"]
principal = { kind = "agent", name = "bot", groups = ["g"] }
action = { kind = "sql.execute", resource = "db", payload = { statement = "SELECT 1" } }

[[case]]
name = "prod"
expect = "pending"
[case.principal]
kind = "user"
name = "ann"
email = "ann@example.com"
[case.action]
kind = "shell.exec"
resource = "prod-1"
"#;
    let t = parse_cases("cases.toml", toml).unwrap();
    assert_eq!(t, a[..2].to_vec());
}

#[test]
fn errors_name_the_file_and_line() {
    let err = parse_cases("c.json", "[\n  {\"name\": \"x\",\n   \"principal\": 3}\n]").unwrap_err();
    assert!(matches!(err, CaseError::Syntax { line: Some(3), .. }), "{err:?}");
    assert!(err.to_string().starts_with("c.json:3:"), "{err}");

    let err = parse_cases("c.json", r#"[{"name": "x", "principal": {"kind": "agent", "name": "b"}, "action": {"kind": "k", "resource": "r"}, "expected": "allowed"}]"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `expected`"), "{err}");

    let err = parse_cases("c.toml", "[[case]]\nname = \"x\"\nexpect = \"maybe\"\n").unwrap_err();
    assert!(err.to_string().starts_with("c.toml:"), "{err}");
    assert!(matches!(err, CaseError::Syntax { line: Some(_), .. }), "{err:?}");

    let err = parse_cases("c.yaml", "[]").unwrap_err();
    assert_eq!(err.to_string(), "`c.yaml`: unknown cases format; name the file `*.json` or `*.toml`");
    assert_eq!(parse_cases("c.json", "[]").unwrap_err().to_string(), "c.json: no cases");

    let one = r#"{"name": "x", "principal": {"kind": "agent", "name": "b"}, "action": {"kind": "k", "resource": "r"}}"#;
    let err = parse_cases("c.json", &format!("[{one}, {one}]")).unwrap_err();
    assert_eq!(err.to_string(), "c.json: duplicate case name `x`");

    let bad = r#"[{"name": "x", "principal": {"kind": "agent", "name": "b"}, "action": {"kind": "rm -rf", "resource": "r"}}]"#;
    let err = parse_cases("c.json", bad).unwrap_err();
    assert!(matches!(err, CaseError::InvalidAction { .. }), "{err:?}");
}
