//! Who may see which requests: the requester, the people who may decide
//! them, admins and auditors. Everyone else is told the request does not
//! exist, so ids leak nothing.

use countersign_core::{Approver, Principal, Request, GATEWAY_CONTEXT_KEYS};
use countersign_store::{Audience, Cursor, RequestFilter};

use crate::error::GatewayError;
use crate::AppState;

/// Requests in a page when the caller does not say.
const DEFAULT_PAGE: usize = 100;
/// Requests in a page at most.
const MAX_PAGE: usize = 1000;
/// Rows a page may read past what the caller cannot see before it stops
/// short (and says where to go on).
const SCAN_BUDGET: usize = 2000;

/// One page of a list, and where the next starts if there may be more.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub requests: Vec<Request>,
    pub next: Option<Cursor>,
}

impl AppState {
    /// The request, if `caller` may see it; `not_found` otherwise.
    pub async fn visible_request(&self, caller: &Principal, id: &str) -> Result<Request, GatewayError> {
        match self.0.store.request(id).await? {
            Some(request) if can_see(caller, &request) => Ok(request),
            Some(_) | None => Err(GatewayError::not_found(id)),
        }
    }

    /// Requests `caller` may see, up to `filter.limit`. For a human caller
    /// who is not admin or auditor, only their own and those they may
    /// actually decide; see [`AppState::visible_page`].
    pub async fn visible_requests(
        &self,
        caller: &Principal,
        filter: &RequestFilter,
    ) -> Result<Vec<Request>, GatewayError> {
        Ok(self.visible_page(caller, filter).await?.requests)
    }

    /// One page of the requests `caller` may see (newest first, after
    /// `filter.after`), and where the next page starts if there may be more.
    ///
    /// Who may see what is filtered in the store (agents: their own; people:
    /// their own and those their groups may decide), before the limit, so
    /// requests filed for other groups cannot crowd a person's out of the
    /// page. What the store cannot know (that the person is excluded from
    /// deciding, as the requester's owner, say) is filtered here, reading
    /// on through the store's pages up to a bounded number of rows; if that
    /// runs out, the page is short and `next` says where to go on.
    pub async fn visible_page(&self, caller: &Principal, filter: &RequestFilter) -> Result<Page, GatewayError> {
        let mut filter = filter.clone();
        let limit = match filter.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        filter.limit = limit;
        if !caller.is_user() {
            filter.principal = Some(caller.reference());
        } else if !caller.is_auditor() {
            filter.visible_to = Some(Audience { principal: Some(caller.reference()), groups: caller.groups.clone() });
        }
        let budget = limit.saturating_mul(4).max(SCAN_BUDGET);
        let mut scanned = 0usize;
        let mut visible = Vec::new();
        loop {
            let batch = self.0.store.list_requests(&filter).await?;
            let exhausted = batch.len() < limit;
            for request in batch {
                scanned += 1;
                filter.after = Some(Cursor::after(&request));
                if self.shows(caller, &request).await? {
                    visible.push(request);
                    if visible.len() == limit {
                        return Ok(Page { requests: visible, next: filter.after });
                    }
                }
            }
            if exhausted {
                return Ok(Page { requests: visible, next: None });
            }
            if scanned >= budget {
                return Ok(Page { requests: visible, next: filter.after });
            }
        }
    }

    /// Whether a listed request goes to `caller`: theirs, decidable by
    /// them, or everything for auditors.
    async fn shows(&self, caller: &Principal, request: &Request) -> Result<bool, GatewayError> {
        Ok(can_see(caller, request)
            && (request.principal == caller.reference()
                || caller.is_auditor()
                || self.can_decide(caller, request).await?))
    }

    /// `request` as `caller` may read it. What only the gateway's own
    /// endpoints write on an action ([`GATEWAY_CONTEXT_KEYS`]: an impact
    /// preview, the database's or the API server's view of the objects the
    /// action would touch) is for the people who decide or audit it. The
    /// requester does not read it back: its policy may not let it read
    /// those objects, and a held write must not become a way to read them.
    pub async fn as_read_by(&self, caller: &Principal, mut request: Request) -> Result<Request, GatewayError> {
        let written_by_gateway = GATEWAY_CONTEXT_KEYS.iter().any(|key| request.action.context.contains_key(*key));
        if !written_by_gateway || caller.is_auditor() || self.can_decide(caller, &request).await? {
            return Ok(request);
        }
        for key in GATEWAY_CONTEXT_KEYS {
            request.action.context.remove(key);
        }
        Ok(request)
    }

    /// `caller` is a person in an approver group who is not excluded.
    pub async fn can_decide(&self, caller: &Principal, request: &Request) -> Result<bool, GatewayError> {
        let Some(person) = caller.person() else {
            return Ok(false);
        };
        if !request.requirements.iter().any(|r| r.admits(&caller.groups)) {
            return Ok(false);
        }
        let approver = Approver { principal: caller.reference(), person, groups: caller.groups.clone() };
        Ok(!self.exclusions_for(request).await?.excludes(&approver))
    }
}

fn can_see(caller: &Principal, request: &Request) -> bool {
    request.principal == caller.reference()
        || caller.is_auditor()
        || (caller.is_user() && request.requirements.iter().any(|r| r.admits(&caller.groups)))
}
