//! Which `Host` names the server answers to, so that a page on another origin cannot reach it
//! through DNS rebinding (its requests carry that page's own name as `Host`).

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::http::uri::Authority;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::net::IpAddr;
use std::sync::Arc;

/// The names a request's `Host` may carry (its port is not checked: rebinding keeps the port,
/// it changes the name).
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Lowercase names and IP literals (IPv6 without brackets).
    names: Vec<String>,
    /// Listening on every address (0.0.0.0 or ::): any IP literal is one of ours, or reaches
    /// us only through a proxy the user set up; a rebinding page always has a DNS name.
    any_ip: bool,
}

impl AllowedHosts {
    /// `localhost`, 127.0.0.1, ::1 and the address listened on, plus the `extra` names
    /// (`--allow-host`); an extra that is not a bare host name or IP address is the error.
    pub fn new(listening_on: IpAddr, extra: &[String]) -> Result<AllowedHosts, String> {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
        names.push(listening_on.to_string());
        for name in extra {
            let bare = name.trim_start_matches('[').trim_end_matches(']');
            let host_name = !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !host_name && bare.parse::<IpAddr>().is_err() {
                return Err(format!(
                    "--allow-host {name:?}: not a host name (letters, digits, '-' and '.', \
                     no port) nor an IP address"
                ));
            }
            names.push(bare.to_ascii_lowercase());
        }
        Ok(AllowedHosts {
            names,
            any_ip: listening_on.is_unspecified(),
        })
    }

    /// Whether `host` (a `Host` header: `name`, `name:port`, `[v6]:port`) is one of ours.
    pub fn allows(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let name = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = name.to_ascii_lowercase();
        (self.any_ip && name.parse::<IpAddr>().is_ok()) || self.names.contains(&name)
    }
}

/// Answer 403 to a request whose `Host` (or absolute URI) names another server.
pub async fn check(
    State(hosts): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request.headers().get(HOST).map(|h| h.to_str());
    let named = match (header, request.uri().authority()) {
        (Some(Ok(host)), authority) => {
            hosts.allows(host) && authority.is_none_or(|a| hosts.allows(a.as_str()))
        }
        (None, Some(authority)) => hosts.allows(authority.as_str()),
        _ => false,
    };
    if !named {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this server does not answer to that Host name (gridsearch serve --allow-host NAME \
             adds one)",
        ));
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::AllowedHosts;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_names_and_the_address_listened_on_are_allowed_with_any_port() {
        let hosts = AllowedHosts::new(ip("192.168.1.5"), &[]).unwrap();
        for host in [
            "localhost:8080",
            "LocalHost",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.5:8080",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "",
            "user@localhost",
            "local host",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
    }

    #[test]
    fn listening_on_every_address_allows_any_ip_literal_but_only_named_names() {
        let extra = ["Shop.Example".to_string(), "[fd00::7]".to_string()];
        let hosts = AllowedHosts::new(ip("0.0.0.0"), &extra).unwrap();
        assert!(hosts.allows("10.0.0.1:8080"));
        assert!(hosts.allows("[fe80::1]:8080"));
        assert!(hosts.allows("shop.example:8080"));
        assert!(!hosts.allows("evil.example:8080"));
        let loopback = AllowedHosts::new(ip("127.0.0.1"), &extra).unwrap();
        assert!(!loopback.allows("10.0.0.1:8080"));
        assert!(loopback.allows("[fd00::7]:8080"));
    }

    #[test]
    fn an_allowed_host_with_a_port_or_a_scheme_is_refused() {
        for bad in ["shop.example:8080", "http://shop.example", "", "a b"] {
            let error = AllowedHosts::new(ip("127.0.0.1"), &[bad.to_string()]).unwrap_err();
            assert!(error.starts_with("--allow-host "), "{error}");
        }
    }
}
