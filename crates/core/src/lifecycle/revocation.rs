//! What revoking an identity does to the open requests: the rule both
//! stores apply, in the transaction that revokes the identity, so that it
//! lives in one place and the stores only persist its result.
//!
//! The identity's own open requests are revoked (`action.revoked`), and its
//! votes on others' open requests stop counting ([`super::withdraw_votes`]):
//! an approved request that loses its quorum is revoked (`action.revoked`),
//! any other is only marked (`votes.withdrawn`).

use crate::{PrincipalRef, Refusal, Request, Status, Timestamp};

use super::{revoke, withdraw_votes, Moved};

/// The moves a revocation causes, in the order they are saved and audited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cascade {
    pub moves: Vec<Moved>,
    /// Requests the store listed as open that are not (their stored status
    /// and their body disagree), with why they were left alone: failing the
    /// revocation over them would leave a compromised identity's
    /// credentials alive.
    pub skipped: Vec<(String, Refusal)>,
}

impl Cascade {
    /// The requests this revocation revoked, as they are after it.
    pub fn revoked(&self) -> Vec<Request> {
        self.moves.iter().filter(|m| m.request.status == Status::Revoked).map(|m| m.request.clone()).collect()
    }
}

/// What revoking `gone` at `now` does to `open`, the requests the store
/// holds as open, oldest first: first the revocation of `gone`'s own
/// requests, then the withdrawal of its votes on the others.
pub fn revoke_identity(gone: &PrincipalRef, open: &[Request], now: Timestamp) -> Cascade {
    let reason = format!("{} `{}` was revoked", gone.kind.as_str(), gone.name);
    let mut cascade = Cascade::default();
    for request in open.iter().filter(|r| &r.principal == gone) {
        match revoke(request, &reason, now) {
            Ok(moved) => cascade.moves.push(moved),
            Err(refusal) => cascade.skipped.push((request.id.clone(), refusal)),
        }
    }
    let voters = std::slice::from_ref(gone);
    for request in open.iter().filter(|r| &r.principal != gone) {
        cascade.moves.extend(withdraw_votes(request, voters, now));
    }
    cascade
}
