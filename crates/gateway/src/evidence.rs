//! Evidence packs for auditors, read from the store: the whole log, page by
//! page, folded by [`countersign_evidence::Collector`] (which holds the
//! rules; this module only reads).

use countersign_core::Timestamp;
use countersign_evidence::{CheckpointEvidence, Collector, Period, Report};
use countersign_store::{Store, StoreError};

use crate::AppState;

/// Events read per store call.
const PAGE: usize = 10_000;

/// The pack for `period` from the log in `store`, generated at `now`, with
/// the checkpoint the log was checked against, if the caller checked one.
pub async fn report(
    store: &dyn Store,
    period: Period,
    now: Timestamp,
    checkpoint: Option<CheckpointEvidence>,
) -> Result<Report, StoreError> {
    let mut collector = Collector::new(period);
    let mut after = 0;
    loop {
        let page = store.audit_events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        // Read to the end even past `until`: the pack vouches for the
        // whole chain its period hangs from.
        for event in &page {
            collector.push(event);
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(collector.finish(now, checkpoint))
}

impl AppState {
    /// The evidence pack for `period`, from this gateway's store.
    pub async fn evidence_report(&self, period: Period) -> Result<Report, StoreError> {
        report(self.0.store.as_ref(), period, self.now(), None).await
    }
}
