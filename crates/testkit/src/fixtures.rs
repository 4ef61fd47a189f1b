//! What tests submit and decide: the standard policy and cast (the
//! gateway's own tests are written against them), the starter policy,
//! actions in their JSON form, and pending requests (from
//! `countersign_core::testing`, re-exported).

use std::path::PathBuf;

pub use countersign_core::testing::{action, pending, requirement};
pub use countersign_policy::STARTER_POLICY;
use serde_json::{json, Value};

use crate::Cast;

/// The standard policy: staging is routine; production shells wait for an
/// sre; `prod-db` for two dbas (and security when labelled `pii`);
/// `short-fuse` expires and `brief` approvals lapse after a second;
/// dropping `users` is forbidden; only `ci` agents deploy.
pub const POLICY: &str = r#"
@id("routine")
permit(principal, action, resource) when { resource.name like "staging*" };

@id("prod-shell-sre")
@approvers("sre")
permit(principal, action == Action::"shell.exec", resource) when { resource.name like "prod*" };

@id("prod-db-two-dbas")
@approvers("dba")
@quorum("2")
permit(principal, action == Action::"sql.execute", resource == Resource::"prod-db");

@id("pii-needs-security")
@approvers("security")
permit(principal, action == Action::"sql.execute", resource == Resource::"prod-db")
when { context.labels.contains("pii") };

@id("short-fuse")
@approvers("sre")
@timeout("1s")
permit(principal, action == Action::"shell.exec", resource == Resource::"short-fuse");

@id("brief-approval")
@approvers("sre")
@valid_for("1s")
permit(principal, action == Action::"shell.exec", resource == Resource::"brief");

@id("no-drop")
forbid(principal, action == Action::"sql.execute", resource)
when { context.payload has statement && context.payload.statement == "DROP TABLE users" };

@id("ci-only-deploys")
permit(principal in Group::"ci", action == Action::"deploy", resource);
"#;

/// The standard cast: sres (alice, bob), dbas (carol, dave, and erin, also
/// in security), owen (sre and dba, who owns `bot`) with a second identity
/// `owen-sso` on the same address in other case, olga (sre and dba), ann
/// the auditor, adam the admin, sam (web); agents `bot` and `ci-bot` (in
/// `ci`, no owner).
pub fn standard_cast() -> Cast {
    Cast::new()
        .user("alice", "alice@corp", &["sre"])
        .user("bob", "bob@corp", &["sre"])
        .user("carol", "carol@corp", &["dba"])
        .user("dave", "dave@corp", &["dba"])
        .user("erin", "erin@corp", &["dba", "security"])
        .user("owen", "owen@corp", &["sre", "dba"])
        .user("owen-sso", "OWEN@corp", &["sre", "dba"])
        .user("olga", "olga@corp", &["sre", "dba"])
        .user("ann", "ann@corp", &["auditor"])
        .user("adam", "adam@corp", &["admin"])
        .user("sam", "sam@corp", &["web"])
        .agent("bot", Some("owen"), &[])
        .agent("ci-bot", None, &["ci"])
}

/// The directory holding the starter policy and its cases, as shipped.
pub fn starter_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/starter")
}

/// Restarting `web` on `resource`.
pub fn shell(resource: &str) -> Value {
    json!({"kind": "shell.exec", "resource": resource, "payload": {"argv": ["systemctl", "restart", "web"]}})
}

/// `statement` on `prod-db`, on alice's behalf, justified and scored.
pub fn sql(statement: &str) -> Value {
    json!({"kind": "sql.execute", "resource": "prod-db", "payload": {"statement": statement},
           "on_behalf_of": "alice", "justification": "ticket 42", "labels": [], "context": {"confidence": 0.92}})
}
