//! Pieces several pages share: request rows, filters, the words for
//! statuses and refusals, and form parsing helpers.

use countersign_core::{Request, Status};

use crate::html::{esc, status_badge, time, url_part};

/// The text filters of the queue and history pages; each matches a
/// substring, case-insensitively.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TextFilters {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub agent: String,
}

impl TextFilters {
    pub fn admits(&self, request: &Request) -> bool {
        contains(&request.action.kind, &self.kind)
            && contains(&request.action.resource, &self.resource)
            && contains(&request.principal.name, &self.agent)
    }

    /// The filters as a query string (for links and live refreshes).
    pub fn query(&self) -> String {
        format!("kind={}&resource={}&agent={}", url_part(&self.kind), url_part(&self.resource), url_part(&self.agent))
    }
}

pub fn contains(haystack: &str, needle: &str) -> bool {
    let needle = needle.trim();
    needle.is_empty() || haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// One labelled text input of a filter form.
pub fn filter_input(name: &str, label: &str, value: &str) -> String {
    format!(
        "<div class=\"field\"><label for=\"f-{name}\">{label}</label>\
         <input id=\"f-{name}\" name=\"{name}\" value=\"{}\" autocomplete=\"off\"></div>",
        esc(value)
    )
}

/// The table of requests used by the queue and history pages; on narrow
/// screens the CSS turns each row into a card, using `data-label`.
pub fn request_table(requests: &[Request], caption: &str, empty: &str) -> String {
    if requests.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let rows: String = requests.iter().map(request_row).collect();
    format!(
        "<table class=\"requests\"><caption class=\"visually-hidden\">{}</caption><thead><tr>\
         <th scope=\"col\">Action</th><th scope=\"col\">Resource</th><th scope=\"col\">Requested by</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Needs</th><th scope=\"col\">Asked</th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        esc(caption)
    )
}

fn request_row(r: &Request) -> String {
    format!(
        "<tr><td data-label=\"Action\"><a href=\"/console/requests/{id}\">{kind}</a>{why}</td>\
         <td data-label=\"Resource\">{resource}</td><td data-label=\"Requested by\">{who}</td>\
         <td data-label=\"Status\">{status}</td><td data-label=\"Needs\">{needs}</td><td data-label=\"Asked\">{at}</td></tr>",
        id = url_part(&r.id),
        kind = esc(&r.action.kind),
        why = r
            .action
            .justification
            .as_deref()
            .map(|j| format!("<div class=\"muted small\">{}</div>", esc(&truncate(j, 120))))
            .unwrap_or_default(),
        resource = esc(&r.action.resource),
        who = esc(&r.principal.to_string()),
        status = status_badge(r.status.as_str()),
        needs = needs(r),
        at = time(r.created_at),
    )
}

/// "1/2 of sre, dba" per requirement.
pub fn needs(r: &Request) -> String {
    if r.requirements.is_empty() {
        return "—".to_owned();
    }
    r.requirements
        .iter()
        .map(|req| {
            let step_up = if req.routing.step_up { " <span class=\"badge\">step-up</span>" } else { "" };
            format!("{}/{} of {}{step_up}", r.approvals_for(req), req.quorum, esc(&req.groups.join(", ")))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

/// Parses a status filter.
pub fn status_filter(text: &str) -> Option<Status> {
    Status::parse(text.trim())
}
