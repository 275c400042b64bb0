//! What the connection says about the caller: its address and user agent.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use ipnet::IpNet;

use super::AppState;

/// The client's address: the connection's peer, unless the peer is one of
/// `DEVX_TRUSTED_PROXIES`; then the right-most address of `X-Forwarded-For`
/// (or `Forwarded: for=`) that is not a trusted proxy, since only the
/// entries our own proxies appended can be believed (a client can send any
/// `X-Forwarded-For` it likes, and proxies append to the right).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientIp(peer.map(|peer| client_address(peer, &parts.headers, &state.config.http.trusted_proxies))))
    }
}

/// See [`ClientIp`].
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).map(String::from).collect::<Vec<_>>());
    let forwarded = headers.get_all(header::FORWARDED).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| {
        v.split(',')
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"').to_string())
                })
            })
            .collect::<Vec<_>>()
    });
    let hops: Vec<String> = forwarded_for.chain(forwarded).collect();
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => continue,
            Some(ip) => return ip,
            // An unreadable hop (`unknown`, an obfuscated name): nothing to its
            // left can be believed either.
            None => return peer,
        }
    }
    peer
}

/// `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    hop.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
}

/// The `User-Agent` header, if any, cut to a sane length.
pub fn user_agent(parts_headers: &axum::http::HeaderMap) -> Option<String> {
    parts_headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().filter(|c| *c != '\0').take(512).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarding_headers_count_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4")]);
        let stranger: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(client_address(stranger, &spoofed, &trusted), stranger, "an untrusted peer's header is ignored");
        assert_eq!(client_address(proxy, &spoofed, &[]), proxy, "no trusted proxies: the peer");
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(
            client_address(proxy, &chain, &trusted).to_string(),
            "203.0.113.7",
            "the right-most untrusted hop, not what the client claimed at the left"
        );
        let forwarded = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]);
        assert_eq!(client_address(proxy, &forwarded, &trusted).to_string(), "2001:db8::1");
        let unknown = headers(&[("x-forwarded-for", "203.0.113.7, unknown")]);
        assert_eq!(client_address(proxy, &unknown, &trusted), proxy);
    }
}
