//! Which client a call comes from: the peer's address, or, behind trusted
//! proxies (`server.trusted_proxies`), the nearest address in
//! `X-Forwarded-For` that is not itself a trusted proxy. The router stamps
//! it on every call once ([`crate::api::middleware::stamp_source`]);
//! handlers in other crates read the stamp with [`stamped`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use countersign_gateway::config::IpNet;
pub use countersign_gateway::refusals::Source;
use countersign_gateway::AppState;

/// The source of a request: the stamp if it has one, else worked out from
/// its peer address and headers.
pub fn source_of(extensions: &Extensions, headers: &HeaderMap, trusted: &[IpNet]) -> Source {
    if let Some(stamped) = extensions.get::<Source>() {
        return *stamped;
    }
    let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>() else {
        return Source::Unknown;
    };
    let mut client = peer.ip().to_canonical();
    if trusted.iter().any(|net| net.contains(client)) {
        // Right to left: each trusted hop vouches for the one before it.
        let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let hops: Vec<&str> = hops.flat_map(|v| v.split(',')).collect();
        for hop in hops.iter().rev().take(32) {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !trusted.iter().any(|net| net.contains(client)) {
                break;
            }
        }
    }
    Source::from_ip(client)
}

/// The source of a call to `state`'s gateway, by its `server.trusted_proxies`.
pub fn of(state: &AppState, extensions: &Extensions, headers: &HeaderMap) -> Source {
    source_of(extensions, headers, &state.config().limits.trusted_proxies)
}

/// The source stamped on a request by the gateway's router, for handlers in
/// other crates (`Unknown` when served without it, as in-process tests).
pub fn stamped(source: Option<axum::Extension<Source>>) -> Source {
    source.map_or(Source::Unknown, |axum::Extension(source)| source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Source {
        Source::from_ip(text.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 5], 4000))));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 192.0.2.7, 10.0.0.9".parse().unwrap());
        assert_eq!(source_of(&ext, &headers, &[]), ip("10.0.0.5"), "off by default");
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap()];
        assert_eq!(source_of(&ext, &headers, &trusted), ip("192.0.2.7"), "the nearest untrusted hop");
        headers.insert("x-forwarded-for", "junk".parse().unwrap());
        assert_eq!(source_of(&ext, &headers, &trusted), ip("10.0.0.5"));
        assert_eq!(source_of(&Extensions::new(), &headers, &trusted), Source::Unknown);
    }
}
