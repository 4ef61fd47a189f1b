//! The page frame every console page shares: a skip link, the navigation
//! (only what the viewer may use), who is signed in with a logout button,
//! and a live region for announcements.

use maud::{html, Markup, PreEscaped};

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
pub fn page(title: &str, section: Section, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        // maud's own `DOCTYPE` is upper case; the console always sent this.
        (PreEscaped("<!doctype html>\n"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · countersign" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console/" { "countersign" }
                    @if let Some(viewer) = viewer { (nav(section, viewer)) }
                }
                main id="main" tabindex="-1" { (body) }
                div id="live" class="visually-hidden" aria-live="polite" {}
            }
        }
    }
}

fn nav(section: Section, viewer: &Viewer) -> Markup {
    let mut links = vec![(Section::Pending, "/console/", "Pending"), (Section::History, "/console/history", "History")];
    if viewer.principal.is_auditor() {
        links.push((Section::Audit, "/console/audit", "Audit"));
        links.push((Section::Policies, "/console/policies", "Policies"));
    }
    if viewer.principal.is_admin() {
        links.push((Section::Admin, "/console/admin", "Admin"));
    }
    let who = viewer.display_name.as_deref().unwrap_or(&viewer.principal.name);
    html! {
        nav aria-label="Main" {
            ul {
                @for (s, href, label) in links {
                    li { a href=(href) aria-current=[(s == section).then_some("page")] { (label) } }
                }
            }
        }
        div class="who" {
            span title=(viewer.principal.email.as_deref().unwrap_or("")) { (who) }
            form method="post" action="/console/logout" {
                (csrf_field(&viewer.csrf))
                button type="submit" class="link" { "Log out" }
            }
        }
    }
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="_csrf" value=(token); }
}

/// How a notice reads to assistive technology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Ok,
    Error,
}

/// A notice at the top of a page.
pub fn notice(kind: Notice, text: &str) -> Markup {
    let (class, role) = match kind {
        Notice::Ok => ("notice notice-ok", "status"),
        Notice::Error => ("notice notice-error", "alert"),
    };
    html! { div class=(class) role=(role) { (text) } }
}
