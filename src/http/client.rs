//! What the connection says about the caller: its address and user agent.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

/// The peer address of the connection (devx does not trust forwarding
/// headers: put the real client address in front via the proxy's own logs).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// The `User-Agent` header, if any, cut to a sane length.
pub fn user_agent(parts_headers: &axum::http::HeaderMap) -> Option<String> {
    parts_headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().filter(|c| *c != '\0').take(512).collect())
}
