//! Who is calling: the client address and User-Agent.
//!
//! The address is the TCP peer. `X-Forwarded-For` is believed only when the peer is a configured
//! trusted proxy (`TRUSTED_PROXIES`), and then read right to left, skipping our own proxies, so a
//! client cannot choose its address by sending the header itself (the old service trusted the first
//! entry, which any client controls).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::error::ApiError;
use crate::state::AppState;
use ipnet::IpNet;

#[derive(Clone, Debug)]
pub(crate) struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub accept_language: Option<String>,
}

impl<S> FromRequestParts<S> for ClientInfo
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let header_str = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Self {
            ip: peer.map(|p| client_ip(p, &parts.headers, &state.config.http.trusted_proxies)),
            // Bounded: the value is stored with the session.
            user_agent: header_str(header::USER_AGENT).map(|ua| ua.chars().take(512).collect()),
            accept_language: header_str(header::ACCEPT_LANGUAGE),
        })
    }
}

pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| crate::config::in_networks(trusted, ip);
    if !is_trusted(peer) {
        if headers.contains_key("x-forwarded-for") {
            warn_untrusted_proxy(peer);
        }
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        for item in value.split(',') {
            match parse_hop(item) {
                Some(ip) => hops.push(ip),
                // A malformed entry: stop believing anything left of it.
                None => hops.clear(),
            }
        }
    }
    let mut candidate = peer;
    for hop in hops.into_iter().rev() {
        candidate = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    candidate
}

/// One `X-Forwarded-For` entry: an address, with or without a port (`203.0.113.7:51234`,
/// `[2001:db8::1]:443`, as some proxies write them), or a bracketed IPv6 address.
fn parse_hop(item: &str) -> Option<IpAddr> {
    let item = item.trim().trim_matches('"');
    item.parse::<IpAddr>()
        .ok()
        .or_else(|| item.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            item.strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse().ok())
        })
}

/// A proxy we do not trust forwards for its clients: they all get its address, so they share one
/// rate-limit bucket. Not detectable from the configuration alone (a direct client may send the
/// header too), so it is said loudly once per process, at the first such request.
fn warn_untrusted_proxy(peer: IpAddr) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::error!(
            %peer,
            "request with X-Forwarded-For from a peer not in TRUSTED_PROXIES: if this is your \
             proxy, every client behind it shares its address and its rate-limit bucket; set \
             TRUSTED_PROXIES to its address or network"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        h
    }

    #[test]
    fn forwarded_for_entries_with_ports() {
        let trusted = vec![crate::config::parse_network("10.0.0.0/8").unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        for (xff, want) in [
            ("198.51.100.7:51234", "198.51.100.7"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::2]", "2001:db8::2"),
            ("\"198.51.100.8\"", "198.51.100.8"),
            ("6.6.6.6, 198.51.100.9:80, 10.0.0.3:1234", "198.51.100.9"),
        ] {
            assert_eq!(
                client_ip(proxy, &headers(xff), &trusted),
                want.parse::<IpAddr>().unwrap(),
                "{xff}"
            );
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = vec![crate::config::parse_network("10.0.0.0/8").unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        // Untrusted peer: its header is ignored.
        assert_eq!(client_ip(stranger, &headers("1.2.3.4"), &trusted), stranger);
        // Trusted peer: the rightmost untrusted hop is the client; a spoofed left entry is ignored.
        assert_eq!(
            client_ip(proxy, &headers("6.6.6.6, 198.51.100.7, 10.0.0.3"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        // Garbage in the header: nothing left of it is believed.
        assert_eq!(
            client_ip(proxy, &headers("6.6.6.6, garbage"), &trusted),
            proxy
        );
        // No trusted proxies configured: never read the header.
        assert_eq!(client_ip(proxy, &headers("1.2.3.4"), &[]), proxy);
    }
}
