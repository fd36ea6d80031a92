//! Refusing requests that change or compute something (POST and the like) when a browser says
//! they come from a page on another origin: a form or script elsewhere cannot use the API.

use super::error::ApiError;
use axum::extract::Request;
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// The browser's own word on where a request comes from (sent by every current browser).
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Answer 403 to a cross-origin request whose method is not GET, HEAD or OPTIONS.
///
/// `Sec-Fetch-Site` decides when present (`same-origin` or `none` pass); else `Origin`, when
/// present, must be this server's own (`http://` and the request's `Host`). A request with
/// neither comes from a program, not a page, and passes.
pub async fn check(request: Request, next: Next) -> Result<Response, ApiError> {
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS].contains(request.method());
    if !safe && is_cross_origin(request.headers()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: only the server's own page may use its API",
        ));
    }
    Ok(next.run(request).await)
}

fn is_cross_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = text(SEC_FETCH_SITE) {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(ORIGIN.as_str()), text(HOST.as_str())) {
        (None, _) => false,
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(&format!("http://{host}")),
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::is_cross_origin;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn sec_fetch_site_decides_then_origin_against_host() {
        let host = ("host", "127.0.0.1:8080");
        assert!(!is_cross_origin(&headers(&[host])));
        assert!(!is_cross_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(is_cross_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(is_cross_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://127.0.0.1:8080"),
        ])));
        assert!(!is_cross_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(is_cross_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(is_cross_origin(&headers(&[host, ("origin", "null")])));
    }
}
