//! Loading and reloading the policy set, and re-deciding open requests when
//! it changes: a request the new set denies is revoked at once.

use std::path::Path;

use countersign_audit::AuditDraft;
use countersign_core::events::{Event, PolicyLoadFailed, PolicyLoaded};
use countersign_core::lifecycle;
use countersign_core::{Principal, PrincipalKind, PrincipalRef, Request, Status};
use countersign_policy::{Defaults, PolicyEngine, Verdict};
use countersign_store::{Cursor, RequestFilter, Update};

use crate::replication::SharedPolicy;
use crate::state::drafts;
use crate::{AppState, LoadedPolicy, StartError};

/// Open requests read per page when re-deciding them.
const REDECIDE_PAGE: usize = 500;
use crate::config::GatewayConfig;
use crate::error::GatewayError;

/// Writes the commented starter policy into a new policy directory.
pub(crate) fn write_starter(dir: &Path) -> Result<(), StartError> {
    let fail =
        |e: std::io::Error| StartError::StarterPolicy { dir: dir.display().to_string(), reason: e.kind().to_string() };
    std::fs::create_dir_all(dir).map_err(fail)?;
    std::fs::write(dir.join("starter.cedar"), countersign_policy::STARTER_POLICY).map_err(fail)
}

/// Loads the configured policy directory, and keeps its files to share
/// with other replicas; on failure, one problem a line.
pub(crate) fn load(config: &GatewayConfig) -> Result<(PolicyEngine, SharedPolicy), String> {
    let defaults = Defaults { timeout: config.default_timeout, valid_for: config.default_valid_for };
    let problems = |e: countersign_policy::PolicyLoadError| e.problems().join("\n");
    let (sources, schema) = PolicyEngine::read_dir(&config.policies_dir).map_err(problems)?;
    let engine = PolicyEngine::from_sources(sources.clone(), schema.clone(), defaults)
        .map_err(problems)?
        .with_sql_dialects(config.sql_dialects.clone())
        .with_http_apis(config.http_apis.clone());
    let shared = SharedPolicy::new(engine.hash(), &sources, schema.as_ref());
    Ok((engine, shared))
}

pub(crate) fn loaded_event(actor: &str, engine: &PolicyEngine, previous: Option<&str>) -> AuditDraft {
    let loaded = PolicyLoaded {
        hash: engine.hash().to_owned(),
        previous_hash: previous.map(str::to_owned),
        files: engine.files(),
        policies: engine.policy_count(),
    };
    AuditDraft::new(actor, Event::PolicyLoaded(loaded))
}

impl AppState {
    /// Reloads the policy directory. A set that fails to load is reported
    /// and audited, and the previous set stays in force.
    pub async fn reload_policies(&self, actor: &str) -> Result<String, GatewayError> {
        let _serialised = self.0.reload_lock.lock().await;
        let previous = self.policy();
        let (engine, shared) = match load(&self.0.config) {
            Ok(loaded) => loaded,
            Err(problems) => {
                let failed = PolicyLoadFailed {
                    hash: None,
                    problems: problems.lines().map(str::to_owned).collect(),
                    kept_hash: previous.engine.hash().to_owned(),
                    source: None,
                };
                self.audit(vec![AuditDraft::new(actor, Event::PolicyLoadFailed(failed))]).await?;
                return Err(GatewayError::PolicyInvalid(problems.replace('\n', "; ")));
            }
        };
        let hash = engine.hash().to_owned();
        self.audit(vec![loaded_event(actor, &engine, Some(previous.engine.hash()))]).await?;
        self.install_policy(engine).await;
        tracing::info!(%hash, "policy set reloaded");
        // Other replicas install the same set within milliseconds. A failure
        // to share must not skip re-deciding here; it is reported after.
        let shared = self.share_policy(&shared).await;
        self.redecide_open_requests().await?;
        shared?;
        Ok(hash)
    }

    /// Decides every open request again under the policy set in force and
    /// revokes those it now denies (every one: the list is read page by
    /// page to its end). Approved requests are also checked again at
    /// release. A request that closed meanwhile is left alone: the revoke
    /// decides on the request as it is inside its own transaction.
    async fn redecide_open_requests(&self) -> Result<(), GatewayError> {
        let policy = self.policy();
        for status in [Status::Pending, Status::Approved] {
            let mut filter = RequestFilter { status: Some(status), limit: REDECIDE_PAGE, ..RequestFilter::default() };
            loop {
                let page = self.0.store.list_requests(&filter).await?;
                let last_page = page.len() < REDECIDE_PAGE;
                filter.after = page.last().map(Cursor::after);
                self.redecide(&policy, page).await?;
                if last_page || filter.after.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Revokes those of `requests` that `policy` now denies, or whose
    /// requester is gone.
    async fn redecide(&self, policy: &LoadedPolicy, requests: Vec<Request>) -> Result<(), GatewayError> {
        for request in requests {
            let reason = match self.current_principal(&request).await? {
                None => Some(format!("{} no longer exists or was revoked", request.principal)),
                Some(principal) => {
                    let decision = policy.engine.decide(&principal, &request.action);
                    match decision.verdict {
                        Verdict::Deny => Some(format!(
                            "policy set `{}` denies this action: {}",
                            decision.policy_hash, decision.reason
                        )),
                        Verdict::Allow | Verdict::RequireApproval(_) => None,
                    }
                }
            };
            if let Some(reason) = reason {
                self.revoke_request(&request.id, reason).await?;
            }
        }
        Ok(())
    }

    /// The requester as it stands now; `None` if it is gone or revoked.
    pub(crate) async fn current_principal(&self, request: &Request) -> Result<Option<Principal>, GatewayError> {
        let name = &request.principal.name;
        Ok(match request.principal.kind {
            PrincipalKind::Agent => {
                self.0.store.agent(name).await?.filter(|a| a.revoked_at.is_none()).map(|a| a.principal())
            }
            PrincipalKind::User => {
                self.0.store.user(name).await?.filter(|u| u.revoked_at.is_none()).map(|u| u.principal())
            }
        })
    }

    /// The identities whose still-counted votes on `request` no longer
    /// count: revoked, or gone from the store.
    pub(crate) async fn revoked_voters(&self, request: &Request) -> Result<Vec<PrincipalRef>, GatewayError> {
        let mut gone: Vec<PrincipalRef> = Vec::new();
        for by in request.counted_voters() {
            if gone.contains(by) {
                continue;
            }
            let active = match by.kind {
                PrincipalKind::Agent => self.0.store.agent(&by.name).await?.is_some_and(|a| a.revoked_at.is_none()),
                PrincipalKind::User => self.0.store.user(&by.name).await?.is_some_and(|u| u.revoked_at.is_none()),
            };
            if !active {
                gone.push(by.clone());
            }
        }
        Ok(gone)
    }

    /// Revokes one open request (no-op if it already closed).
    pub async fn revoke_request(&self, id: &str, reason: String) -> Result<(), GatewayError> {
        let now = self.now();
        self.update(
            id,
            Box::new(move |current| match lifecycle::revoke(current, &reason, now) {
                Ok(revoked) => Update { events: drafts(revoked.events), save: Some(revoked.request), result: Ok(()) },
                Err(refusal) => Update { save: None, events: Vec::new(), result: Err(refusal) },
            }),
        )
        .await?;
        Ok(())
    }
}
