//! Loading: ids, locations of every kind of problem, directories, schema,
//! and the policy-set hash.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod common;

use std::fs;

use common::*;
use countersign_policy::{PolicyEngine, PolicyLoadError, PolicySource, Verdict, SCHEMA_FILE};

fn problems(text: &str) -> Vec<String> {
    match try_engine(text) {
        Ok(_) => panic!("should not load"),
        Err(e) => e.problems(),
    }
}

#[test]
fn ids_come_from_annotations_or_file_and_position() {
    let e = PolicyEngine::from_sources(
        vec![
            source("prod.cedar", "permit(principal, action, resource);\n@id(\"named\") forbid(principal, action, resource) when { false };\npermit(principal, action == Action::\"x\", resource);"),
            source("dir/base.rules.cedar", "// only a comment\npermit(principal, action, resource);"),
        ],
        None,
        defaults(),
    )
    .unwrap();
    assert_eq!(e.policy_ids(), vec!["prod.0", "named", "prod.2", "base.rules.0"]);
    assert_eq!(e.policy_count(), 4);
    assert_eq!(e.files(), vec!["prod.cedar", "dir/base.rules.cedar"]);
    assert_eq!(e.decide(&agent("a", &[]), &action("y", "r")).policies, vec!["base.rules.0", "prod.0"]);
}

#[test]
fn syntax_errors_point_at_file_line_and_column() {
    let p = problems(
        "permit(principal, action, resource);\n\n  permit(principal, action, resource) when { context.x == };\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("test.cedar:3:"), "{p:?}");

    let p = problems("permit(principal, action, resource)\npermit(principal, action, resource);");
    assert_eq!(p, vec!["test.cedar:2:7: unexpected token `(`"]);

    // Every file is checked, and every problem reported.
    let err = PolicyEngine::from_sources(
        vec![
            source("a.cedar", "permit(principal, action, resource"),
            source("b.cedar", "\nforbid(principal, acton, resource);"),
        ],
        None,
        defaults(),
    )
    .unwrap_err();
    let p = err.problems();
    assert!(matches!(err, PolicyLoadError::Multiple(_)), "{err:?}");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("a.cedar:1:"), "{p:?}");
    assert!(p[1].starts_with("b.cedar:2:"), "{p:?}");
    assert_eq!(err.to_string(), p.join("\n"));
}

#[test]
fn templates_are_rejected() {
    let p = problems(
        "permit(principal, action, resource);\n\n// a template\npermit(principal == ?principal, action, resource);",
    );
    assert_eq!(
        p,
        vec!["test.cedar:4:1: templates are not supported; write a static policy without `?principal` or `?resource`"]
    );
}

#[test]
fn duplicate_ids_name_both_places() {
    let err = PolicyEngine::from_sources(
        vec![
            source("a.cedar", "\n@id(\"x\") permit(principal, action, resource);"),
            source(
                "b.cedar",
                "permit(principal, action, resource);\n  @id(\"x\")\n  forbid(principal, action, resource);",
            ),
        ],
        None,
        defaults(),
    )
    .unwrap_err();
    assert_eq!(err.problems(), vec!["b.cedar:2:3: duplicate policy id `x` (first used at a.cedar:2:1)"]);

    // A generated id can collide with an explicit one too.
    let p = problems("@id(\"test.1\") permit(principal, action, resource);\npermit(principal, action, resource);");
    assert_eq!(p, vec!["test.cedar:2:1: duplicate policy id `test.1` (first used at test.cedar:1:1)"]);
}

#[test]
fn bad_annotations_point_at_the_policy() {
    let p = problems(
        "permit(principal, action, resource);\n\
         @id(\"slow\") @approvers(\"sre\") @timeout(\"soon\")\npermit(principal, action, resource);\n\
         @quorum(\"2\") permit(principal, action, resource);\n\
         @approver(\"sre\") permit(principal, action, resource);\n\
         @approvers(\"sre\") @quorum(\"0\") permit(principal, action, resource);\n\
         @id(\"\") permit(principal, action, resource);",
    );
    assert_eq!(p.len(), 5, "{p:#?}");
    assert!(p[0].starts_with("test.cedar:2:1: policy `slow`: `@timeout`: invalid duration `soon`"), "{p:#?}");
    assert_eq!(p[1], "test.cedar:4:1: policy `test.2`: `@quorum` needs `@approvers(\"group,…\")` on the same policy");
    assert_eq!(p[2], "test.cedar:5:1: policy `test.3`: unknown annotation `@approver`; did you mean `@approvers`?");
    assert_eq!(p[3], "test.cedar:6:1: policy `test.4`: `@quorum(\"0\")` must be a whole number of at least 1");
    assert!(p[4].starts_with("test.cedar:7:1: policy `test.5`: `@id(\"\")` must be non-empty"), "{p:#?}");
}

#[test]
fn no_sources_is_an_error() {
    assert!(matches!(PolicyEngine::from_sources(vec![], None, defaults()), Err(PolicyLoadError::NoSources)));
    // A file without policies is fine: it denies everything.
    let e = engine("// nothing yet\n");
    assert_eq!(e.policy_count(), 0);
    assert_eq!(e.decide(&agent("a", &[]), &action("x", "r")).verdict, Verdict::Deny);
}

#[test]
fn load_dir_reads_cedar_files_sorted_and_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("b.cedar"), "@id(\"b\") permit(principal, action == Action::\"x\", resource);").unwrap();
    fs::write(dir.path().join("a.cedar"), "@id(\"a\") permit(principal, action == Action::\"y\", resource);").unwrap();
    fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/c.cedar"), "this is not read").unwrap();
    let e = PolicyEngine::load_dir(dir.path(), defaults()).unwrap();
    assert_eq!(e.files(), vec!["a.cedar", "b.cedar"]);
    assert_eq!(e.policy_ids(), vec!["a", "b"]);
    assert_eq!(e.schema_file(), None);

    fs::write(dir.path().join(SCHEMA_FILE), SCHEMA).unwrap();
    let with_schema = PolicyEngine::load_dir(dir.path(), defaults()).unwrap();
    assert_eq!(with_schema.schema_file(), Some(SCHEMA_FILE));
    assert_ne!(with_schema.hash(), e.hash());
}

#[test]
fn load_dir_reports_missing_empty_and_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = PolicyEngine::load_dir(&missing, defaults()).unwrap_err();
    assert!(matches!(err, PolicyLoadError::MissingDir { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let err = PolicyEngine::load_dir(dir.path(), defaults()).unwrap_err();
    assert!(matches!(err, PolicyLoadError::EmptyDir { .. }), "{err:?}");
    assert!(err.to_string().ends_with("contains no `*.cedar` files"), "{err}");

    fs::write(dir.path().join("bad.cedar"), [0xff, 0xfe, 0x00]).unwrap();
    let err = PolicyEngine::load_dir(dir.path(), defaults()).unwrap_err();
    assert!(matches!(err, PolicyLoadError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot read `bad.cedar`: "), "{err}");
}

/// What the gateway, `policy check` and reload all read: a `*.cedar`
/// entry that cannot be read is an error naming it, never skipped (the
/// missing file may hold the `forbid` that denies).
#[test]
fn unreadable_cedar_entries_are_load_errors_not_skipped() {
    let fresh = || {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("base.cedar"), "@id(\"all\") permit(principal, action, resource);").unwrap();
        fs::write(dir.path().join("target.cedar"), "@id(\"no\") forbid(principal, action, resource);").unwrap();
        dir
    };
    let expect_error = |dir: &tempfile::TempDir, file: &str| {
        let err = PolicyEngine::load_dir(dir.path(), defaults()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("`{file}`")), "{file}: {text}");
        assert!(PolicyEngine::read_dir(dir.path()).is_err(), "{file}");
    };

    let dir = fresh();
    fs::create_dir(dir.path().join("nested.cedar")).unwrap();
    expect_error(&dir, "nested.cedar");

    let dir = fresh();
    std::os::unix::fs::symlink(dir.path().join("gone.cedar"), dir.path().join("dangling.cedar")).unwrap();
    expect_error(&dir, "dangling.cedar");

    let dir = fresh();
    std::os::unix::fs::symlink(dir.path().join("loop-b.cedar"), dir.path().join("loop-a.cedar")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("loop-a.cedar"), dir.path().join("loop-b.cedar")).unwrap();
    expect_error(&dir, "loop-a.cedar");
    expect_error(&dir, "loop-b.cedar");

    let dir = fresh();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("self.cedar")).unwrap();
    expect_error(&dir, "self.cedar");

    let dir = fresh();
    std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join(SCHEMA_FILE)).unwrap();
    expect_error(&dir, SCHEMA_FILE);

    // A FIFO would block a reader forever; it is refused before reading.
    let dir = fresh();
    let fifo = dir.path().join("pipe.cedar");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if made {
        expect_error(&dir, "pipe.cedar");
    }

    // A symlink to a readable file is read, as before.
    let dir = fresh();
    let elsewhere = tempfile::tempdir().unwrap();
    fs::write(
        elsewhere.path().join("shared.cedar"),
        "@id(\"shared\") forbid(principal, action, resource) when { false };",
    )
    .unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("shared.cedar"), dir.path().join("link.cedar")).unwrap();
    let e = PolicyEngine::load_dir(dir.path(), defaults()).unwrap();
    assert_eq!(e.policy_ids(), vec!["all", "shared", "no"]);
}

/// An unreadable file (permissions) is an error too, with its name; root
/// reads everything, so this runs only where permissions bite.
#[test]
fn a_policy_file_without_read_permission_is_a_load_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.cedar");
    fs::write(&file, "@id(\"no\") forbid(principal, action, resource);").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&file).is_ok() {
        return; // running as root
    }
    let err = PolicyEngine::load_dir(dir.path(), defaults()).unwrap_err();
    assert!(err.to_string().starts_with("cannot read `secret.cedar`: "), "{err}");
}

const SCHEMA: &str = r#"
entity Group;
entity Agent in [Group] { name: String, owner?: String };
entity User in [Group] { name: String, email?: String };
entity Resource { name: String };
type Ctx = { labels: Set<String>, context: { confidence?: decimal } };
action "x", "y" appliesTo { principal: [Agent, User], resource: Resource, context: Ctx };
"#;

fn with_schema(policies: &str, schema: &str) -> Result<PolicyEngine, PolicyLoadError> {
    PolicyEngine::from_sources(
        vec![source("p.cedar", policies)],
        Some(PolicySource { file: SCHEMA_FILE.into(), text: schema.into() }),
        defaults(),
    )
}

#[test]
fn schema_validation_reports_policy_locations() {
    let ok = with_schema(
        r#"permit(principal in Group::"dba", action == Action::"x", resource) when { context.labels.contains("pii") && resource.name like "prod*" };"#,
        SCHEMA,
    );
    assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.problems()));

    let err = with_schema(
        "permit(principal, action == Action::\"x\", resource);\n\npermit(principal, action == Action::\"x\", resource)\n  when { resource.nmae == \"prod\" };",
        SCHEMA,
    )
    .unwrap_err();
    let p = err.problems();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0],
        "p.cedar:4:10: policy `p.1` fails schema validation: attribute `nmae` on entity type `Resource` not found (help: did you mean `name`?)"
    );

    let err = with_schema("permit(principal, action == Action::\"z\", resource);", SCHEMA).unwrap_err();
    assert!(err.problems()[0].starts_with("p.cedar:1:"), "{:?}", err.problems());
}

#[test]
fn schema_syntax_errors_point_into_the_schema() {
    let err =
        with_schema("permit(principal, action, resource);", "entity Group;\nentity Agent in [Group {};\n").unwrap_err();
    let p = err.problems();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("schema.cedarschema:2:"), "{p:?}");
}

#[test]
fn the_hash_covers_names_texts_and_schema_but_not_order() {
    let hash = |sources: Vec<PolicySource>, schema: Option<&str>| {
        PolicyEngine::from_sources(
            sources,
            schema.map(|s| PolicySource { file: SCHEMA_FILE.into(), text: s.into() }),
            defaults(),
        )
        .unwrap()
        .hash()
        .to_owned()
    };
    let a = source("a.cedar", "@id(\"a\") permit(principal, action, resource);");
    let b = source("b.cedar", "@id(\"b\") permit(principal, action, resource);");
    let base = hash(vec![a.clone(), b.clone()], None);
    assert_eq!(base, hash(vec![b.clone(), a.clone()], None));
    assert_ne!(base, hash(vec![a.clone(), source("c.cedar", &b.text)], None));
    assert_ne!(base, hash(vec![a.clone(), source("b.cedar", &format!("{} ", b.text))], None));
    assert_ne!(base, hash(vec![a.clone(), b.clone()], Some(SCHEMA)));
    // Moving text between names is a change as well.
    assert_ne!(
        hash(vec![source("a.cedar", "permit(principal, action, resource);"), source("b.cedar", "")], None),
        hash(vec![source("a.cedar", ""), source("b.cedar", "permit(principal, action, resource);")], None)
    );
}
