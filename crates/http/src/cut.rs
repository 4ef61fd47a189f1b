//! The one way every open stream through the gateway learns that its
//! caller may no longer use it: a streamed HTTP response, a WebSocket,
//! a Kubernetes watch, `logs -f`, exec, attach or port-forward each
//! hold a [`Caller`] and select on [`Caller::no_longer_allowed`] beside
//! their own traffic; when it resolves the stream is closed and its
//! outcome records why ([`Cut::note`], in an `outcome.reported` audit
//! event).
//!
//! Every [`RECHECK`], in a task of its own, the caller's bearer credential
//! is checked again: a revoked key, a revoked or disabled agent, an
//! expired workload token all end the stream within about that long, and
//! so does a credential store that cannot answer (fail closed). When the policy set in force has
//! changed since the stream's request was decided, the request is decided
//! again under it, for the caller as it is now: a stream the new set
//! denies is cut too. (One that would now need approval goes on: it was
//! allowed, or approved, under the set that decided it.)

use std::time::Duration;

use countersign_gateway::AppState;
use countersign_policy::Verdict;

/// How often an open stream checks that its caller may still use it.
pub const RECHECK: Duration = Duration::from_secs(1);

/// What a stream cut because its credential went says about why.
pub const CUT: &str = "cut: the caller's credential is no longer accepted";

/// Why an open stream was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// The credential it was opened with is no longer accepted.
    Credential,
    /// The policy set in force now denies its request (the reason).
    Policy(String),
    /// Its request can no longer be read to decide it again.
    Unknown,
}

impl Cut {
    /// The outcome's words for it.
    pub fn note(&self) -> String {
        match self {
            Self::Credential => CUT.to_owned(),
            Self::Policy(reason) => format!("cut: the policy in force now denies it ({reason})"),
            Self::Unknown => "cut: its request could not be decided again".to_owned(),
        }
    }
}

/// The caller of an open stream, checked again in a task of its own
/// (so that a busy stream, whose traffic always wins the race, never
/// starves the check), which ends with the stream.
#[derive(Debug)]
pub struct Caller {
    cut: tokio::sync::oneshot::Receiver<Cut>,
    /// Once resolved, what it resolved to.
    seen: Option<Cut>,
}

/// What the check needs.
struct Check {
    state: AppState,
    bearer: String,
    /// The stream's request, decided again when the policy set changes.
    request: String,
    /// The hash of the policy set its request was last decided under.
    decided_under: String,
}

impl Caller {
    /// Follows `bearer` (the credential the stream was opened with) and
    /// request `request` (the decision it runs under); the first check is
    /// one [`RECHECK`] from now.
    pub fn new(state: AppState, bearer: String, request: String) -> Self {
        let decided_under = state.policy().engine.hash().to_owned();
        let mut check = Check { state, bearer, request, decided_under };
        let (tell, cut) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut tell = tell;
            let mut every = tokio::time::interval(RECHECK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.reset();
            loop {
                tokio::select! {
                    // The stream ended first.
                    () = tell.closed() => return,
                    _ = every.tick() => {}
                }
                if let Some(found) = check.run().await {
                    tracing::info!(request = %check.request, why = %found.note(), "an open stream is cut");
                    let _ = tell.send(found);
                    return;
                }
            }
        });
        Self { cut, seen: None }
    }

    /// Runs `work` (a write to one side of a stream) unless the caller is
    /// cut first. A peer that stops reading stalls a write for as long as
    /// it likes; the cut must not wait for it.
    pub async fn unless_cut<T>(&mut self, work: impl std::future::Future<Output = T>) -> Result<T, Cut> {
        tokio::select! {
            done = work => Ok(done),
            cut = self.no_longer_allowed() => Err(cut),
        }
    }

    /// Resolves once the caller may no longer use the stream; never
    /// before. Cancel safe: a stream selects on it beside its own reads.
    pub async fn no_longer_allowed(&mut self) -> Cut {
        if let Some(seen) = &self.seen {
            return seen.clone();
        }
        // A check that ended without a word (it cannot) counts as a cut:
        // fail closed.
        let cut = (&mut self.cut).await.unwrap_or(Cut::Unknown);
        self.seen = Some(cut.clone());
        cut
    }
}

impl Check {
    async fn run(&mut self) -> Option<Cut> {
        let Ok(principal) = self.state.authenticate(&self.bearer).await else {
            return Some(Cut::Credential);
        };
        let policy = self.state.policy();
        if policy.engine.hash() == self.decided_under {
            return None;
        }
        let Ok(Some(request)) = self.state.request(&self.request).await else {
            return Some(Cut::Unknown);
        };
        let decision = policy.engine.decide(&principal, &request.action);
        match decision.verdict {
            Verdict::Deny => Some(Cut::Policy(decision.reason)),
            Verdict::Allow | Verdict::RequireApproval(_) => {
                policy.engine.hash().clone_into(&mut self.decided_under);
                None
            }
        }
    }
}
