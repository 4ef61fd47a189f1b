//! Driving the console's forms over plain HTTP, as a browser would without
//! following redirects: the client, cookies set by an answer, and the
//! hidden fields (CSRF tokens) of a page.

#![allow(dead_code)]

use reqwest::header::SET_COOKIE;

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of the cookie `name` that `response` sets, if it sets one.
pub fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().split_once('=').unwrap().1.to_owned())
}

/// The value of the hidden field `name` on a page.
pub fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no `{name}` field")) + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}
