//! Helpers shared by this crate's unit tests.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// A header map of `pairs`, in order, repeated names appended.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}
