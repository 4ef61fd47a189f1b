//! The page frame every console page shares: a skip link, the navigation
//! (only what the viewer may use), who is signed in with a logout button,
//! and a live region for announcements.

use crate::html::esc;
use crate::session::Viewer;

/// Which section of the console a page belongs to, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Pending,
    History,
    Audit,
    Policies,
    Admin,
    None,
}

/// A whole page.
pub fn page(title: &str, section: Section, viewer: Option<&Viewer>, body: &str) -> String {
    let nav = match viewer {
        Some(viewer) => nav(section, viewer),
        None => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · countersign</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><a class=\"brand\" href=\"/console/\">countersign</a>{nav}</header>\
         <main id=\"main\" tabindex=\"-1\">{body}</main>\
         <div id=\"live\" class=\"visually-hidden\" aria-live=\"polite\"></div>\
         </body></html>",
        title = esc(title),
    )
}

fn nav(section: Section, viewer: &Viewer) -> String {
    let mut links = vec![(Section::Pending, "/console/", "Pending"), (Section::History, "/console/history", "History")];
    if viewer.principal.is_auditor() {
        links.push((Section::Audit, "/console/audit", "Audit"));
        links.push((Section::Policies, "/console/policies", "Policies"));
    }
    if viewer.principal.is_admin() {
        links.push((Section::Admin, "/console/admin", "Admin"));
    }
    let items: String = links
        .into_iter()
        .map(|(s, href, label)| {
            let current = if s == section { " aria-current=\"page\"" } else { "" };
            format!("<li><a href=\"{href}\"{current}>{label}</a></li>")
        })
        .collect();
    let who = viewer.display_name.as_deref().unwrap_or(&viewer.principal.name);
    format!(
        "<nav aria-label=\"Main\"><ul>{items}</ul></nav>\
         <div class=\"who\"><span title=\"{email}\">{who}</span>\
         <form method=\"post\" action=\"/console/logout\">{csrf}<button type=\"submit\" class=\"link\">Log out</button></form></div>",
        email = esc(viewer.principal.email.as_deref().unwrap_or("")),
        who = esc(who),
        csrf = csrf_field(&viewer.csrf),
    )
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"_csrf\" value=\"{}\">", esc(token))
}

/// A notice at the top of a page.
pub fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!("<div class=\"notice notice-{kind}\" role=\"{role}\">{}</div>", esc(text))
}
