//! `xtask simulate`: records N actions into a SQLite store, decided by the
//! starter policy, then times `countersign policy simulate` against a
//! candidate set that changes some of them and against the set in force.
//!
//! The log is written through the store's own append path (sealed in
//! chain order, in large transactions), so `audit verify` accepts it; the
//! recorded decisions are the starter policy's real ones. Payloads vary
//! (shell commands, SQL statements, kubectl and terraform), and so do
//! principals and resources, so that no two actions cost alike by design.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use countersign_audit::AuditDraft;
use countersign_core::events::{AgentCreated, Decided, Event, Submitted, UserCreated};
use countersign_core::{Action, Fingerprint, Principal, PrincipalKind, Status, Timestamp};
use countersign_policy::{Defaults, PolicyEngine, PolicySource, Verdict, STARTER_POLICY};
use countersign_store::{NewAgent, NewUser, Store};
use countersign_store_sqlite::SqliteStore;
use serde_json::{json, Value};

/// Actions per append (two events each): one transaction.
const BATCH: usize = 5_000;
const AGENTS: usize = 200;
const USERS: usize = 50;

#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Actions to record.
    #[arg(long, default_value_t = 1_000_000)]
    pub actions: usize,
    /// The countersign binary to time.
    #[arg(long, default_value = "target/release/countersign")]
    pub binary: PathBuf,
    /// Where to keep the data directory; a store already there is reused
    /// as it is (the log is not recorded again) [default: a temporary one].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let temp = tempfile_dir()?;
    let data = args.data_dir.clone().unwrap_or_else(|| temp.join("data"));
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create `{}`", data.display()))?;
    let policies = data.join("policies");
    write_set(&policies, STARTER_POLICY)?;
    let candidate = data.join("candidate");
    write_set(&candidate, &candidate_policy())?;

    let db = data.join("countersign.db");
    if db.exists() {
        eprintln!("reusing the log in {}", db.display());
    } else {
        let started = Instant::now();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db)?);
        record(store.as_ref(), args.actions).await?;
        eprintln!("recorded {} actions in {:.1} s", args.actions, started.elapsed().as_secs_f64());
    }

    for (name, dir) in [("candidate (changes decisions)", &candidate), ("set in force (no change)", &policies)] {
        let started = Instant::now();
        let output = Command::new(&args.binary)
            .args(["policy", "simulate"])
            .arg(dir)
            .arg("--data-dir")
            .arg(&data)
            .args(["--since", "30d", "--output", "json"])
            .env("NO_COLOR", "1")
            .output()
            .with_context(|| format!("cannot run `{}`", args.binary.display()))?;
        let elapsed = started.elapsed();
        let report: Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("no JSON report: {}", String::from_utf8_lossy(&output.stderr)))?;
        println!(
            "| {name} | {} | {} | exit {} | {:.1} s | {:.0} actions/s |",
            report["replayed"],
            report["changed"],
            output.status.code().unwrap_or(-1),
            elapsed.as_secs_f64(),
            rate(report["replayed"].as_u64().unwrap_or(0), elapsed),
        );
    }
    if args.data_dir.is_none() {
        std::fs::remove_dir_all(&temp).ok();
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("countersign-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[expect(clippy::cast_precision_loss, reason = "a rate for people")]
fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

fn write_set(dir: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("starter.cedar"), text)?;
    Ok(())
}

/// The starter set with production shells needing two sres and a freeze on
/// Terraform in staging.
fn candidate_policy() -> String {
    STARTER_POLICY.replacen("@approvers(\"sre\")\n@timeout(\"30m\")", "@approvers(\"sre\")\n@quorum(\"2\")\n@timeout(\"30m\")", 1)
        + "\n@id(\"staging-terraform-freeze\")\nforbid (principal, action == Action::\"terraform.apply\", resource)\nwhen { resource.name like \"staging*\" };\n"
}

fn engine() -> anyhow::Result<PolicyEngine> {
    let defaults = Defaults { timeout: Duration::from_secs(1800), valid_for: Duration::from_secs(600) };
    let source = PolicySource { file: "starter.cedar".into(), text: STARTER_POLICY.into() };
    Ok(PolicyEngine::from_sources(vec![source], None, defaults)?)
}

fn principals() -> Vec<Principal> {
    let mut all = Vec::with_capacity(AGENTS + USERS);
    for i in 0..USERS {
        let groups = match i % 3 {
            0 => vec!["sre".to_owned()],
            1 => vec!["dba".to_owned()],
            _ => vec!["sre".to_owned(), "dba".to_owned()],
        };
        all.push(Principal {
            kind: PrincipalKind::User,
            name: format!("user-{i}"),
            email: Some(format!("user-{i}@example.com")),
            owner: None,
            groups,
        });
    }
    for i in 0..AGENTS {
        let groups = if i % 50 == 0 { vec!["break-glass".to_owned()] } else { vec![format!("team-{}", i % 7)] };
        all.push(Principal {
            kind: PrincipalKind::Agent,
            name: format!("agent-{i}"),
            email: None,
            owner: Some(format!("user-{}", i % USERS)),
            groups,
        });
    }
    all
}

async fn enrol(store: &dyn Store, principals: &[Principal]) -> anyhow::Result<()> {
    for (i, p) in principals.iter().enumerate() {
        let token_hash = format!("{i:064x}");
        let created_at = Timestamp::now();
        match p.kind {
            PrincipalKind::User => {
                let email = p.email.clone().unwrap_or_default();
                let event = Event::UserCreated(UserCreated {
                    name: p.name.clone(),
                    email: email.clone(),
                    groups: p.groups.clone(),
                    source: None,
                    subject: None,
                });
                let user = NewUser { name: p.name.clone(), email, groups: p.groups.clone(), token_hash, created_at };
                store.create_user(user, vec![AuditDraft::new("cli:xtask", event)]).await?;
            }
            PrincipalKind::Agent => {
                let event = Event::AgentCreated(AgentCreated {
                    name: p.name.clone(),
                    owner: p.owner.clone(),
                    groups: p.groups.clone(),
                });
                let agent = NewAgent {
                    name: p.name.clone(),
                    owner: p.owner.clone(),
                    groups: p.groups.clone(),
                    token_hash,
                    created_at,
                };
                store.create_agent(agent, vec![AuditDraft::new("cli:xtask", event)]).await?;
            }
        }
    }
    Ok(())
}

/// The `i`th action: a spread of kinds, resources and payloads.
fn action(i: usize) -> Action {
    let n = usize::try_from(mix(i as u64) >> 40).unwrap_or(0);
    let env = ["prod", "staging", "dev"][n % 3];
    let (kind, resource, payload) = match i % 8 {
        0 | 1 => (
            "shell.exec",
            format!("{env}-web-{}", n % 13),
            json!({"argv": ["systemctl", "restart", format!("web-{}", n % 5)], "cwd": "/srv"}),
        ),
        2 => (
            "shell.exec",
            format!("{env}-batch"),
            json!({"command": format!("tar czf /tmp/b{n}.tgz /var/log/app && rm -f /var/log/app/*.{}", n % 9)}),
        ),
        3 => (
            "sql.execute",
            format!("{env}-db"),
            json!({"statement": format!("UPDATE accounts SET plan = 'pro' WHERE id = {n}")}),
        ),
        4 => (
            "sql.execute",
            format!("{env}-db"),
            json!({"statement": format!("SELECT id, email FROM users WHERE created_at > now() - interval '{} days' LIMIT 50", n % 30)}),
        ),
        5 => (
            "sql.execute",
            format!("{env}-db"),
            json!({"statement": if n % 5 == 0 { "DELETE FROM sessions".to_owned() } else { format!("DELETE FROM sessions WHERE user_id = {n}") }}),
        ),
        6 => (
            "k8s.apply",
            format!("{env}-k8s"),
            json!({"args": ["rollout", "restart", format!("deployment/api-{}", n % 4), "-n", env]}),
        ),
        _ => (
            "terraform.apply",
            format!("{env}-infra"),
            json!({"plan": {"resource_changes": [{"address": format!("aws_instance.web[{}]", n % 3), "change": {"actions": ["update"]}}]}}),
        ),
    };
    let labels = if n % 11 == 0 { vec!["pii".to_owned()] } else { Vec::new() };
    Action {
        kind: kind.to_owned(),
        resource,
        payload,
        on_behalf_of: None,
        justification: (n % 4 == 0).then(|| format!("ticket OPS-{}", n % 1000)),
        labels,
        context: serde_json::Map::new(),
    }
}

/// splitmix64's finaliser: neighbouring indexes get unrelated numbers.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The two events the gateway writes for the `i`th action.
fn drafts(engine: &PolicyEngine, principals: &[Principal], i: usize) -> anyhow::Result<[AuditDraft; 2]> {
    let pick = mix(i as u64 ^ 0x5eed) % principals.len() as u64;
    let principal = &principals[usize::try_from(pick).unwrap_or(0)];
    let action = action(i);
    let reference = principal.reference();
    let fingerprint = Fingerprint::of(&action, &reference)?;
    let decision = engine.decide(principal, &action);
    let (status, requirements) = match decision.verdict {
        Verdict::Allow => (Status::Allowed, Vec::new()),
        Verdict::RequireApproval(requirements) => (Status::Pending, requirements),
        Verdict::Deny => (Status::Denied, Vec::new()),
    };
    let id = format!("00000000-0000-7000-8000-{i:012x}");
    let submitted = Submitted {
        id: id.clone(),
        fingerprint,
        kind: action.kind,
        resource: action.resource,
        payload: action.payload,
        on_behalf_of: action.on_behalf_of,
        justification: action.justification,
        labels: action.labels,
        context: action.context,
    };
    let decided = Decided {
        id,
        status,
        reason: decision.reason,
        policies: decision.policies,
        errors: decision.errors,
        policy_hash: decision.policy_hash,
        requirements,
        expires_at: None,
    };
    Ok([
        AuditDraft::new(reference.to_string(), Event::ActionSubmitted(submitted)),
        AuditDraft::new("system", Event::ActionDecided(decided)),
    ])
}

/// Decides batches on a blocking thread while the previous one is appended.
async fn record(store: &dyn Store, actions: usize) -> anyhow::Result<()> {
    let engine = Arc::new(engine()?);
    let principals = Arc::new(principals());
    enrol(store, &principals).await?;
    let make = |start: usize| {
        let (engine, principals) = (Arc::clone(&engine), Arc::clone(&principals));
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<AuditDraft>> {
            let end = (start + BATCH).min(actions);
            let mut out = Vec::with_capacity((end - start) * 2);
            for i in start..end {
                out.extend(drafts(&engine, &principals, i)?);
            }
            Ok(out)
        })
    };
    let mut next = (actions > 0).then(|| make(0));
    let mut start = 0;
    while let Some(pending) = next.take() {
        let batch = pending.await??;
        start += BATCH;
        next = (start < actions).then(|| make(start));
        store.append_audit(batch).await?;
        if start % 100_000 == 0 {
            eprintln!("  {start} actions recorded");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_differs_and_loads() {
        assert_ne!(candidate_policy(), STARTER_POLICY);
        let source = PolicySource { file: "c.cedar".into(), text: candidate_policy() };
        let defaults = Defaults { timeout: Duration::from_secs(60), valid_for: Duration::from_secs(60) };
        assert!(PolicyEngine::from_sources(vec![source], None, defaults).is_ok());
    }

    #[test]
    fn actions_spread_over_outcomes() {
        let engine = engine().unwrap();
        let principals = principals();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..400 {
            let [_, decided] = drafts(&engine, &principals, i).unwrap();
            seen.insert(decided.body().unwrap()["status"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["allowed", "denied", "pending"]);
    }
}
