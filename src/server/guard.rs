//! What the daemon trusts: requests a local program makes, never requests a
//! web page makes the browser send.
//!
//! The daemon starts processes on request and listens on loopback, which
//! every page a browser on this machine shows can reach. Three checks,
//! applied to every route, close what a page can do:
//!
//! - **`Host` names this machine by address or as `localhost`.** A DNS
//!   rebinding page reaches the daemon under the page's own name
//!   (`attacker.example` resolving to 127.0.0.1), which is the only way a
//!   page can read the daemon's answers; an IP literal cannot be rebound.
//! - **`Origin`, when present, is the daemon's own** (`http://` + a loopback
//!   name + the port the request came in on), and `Sec-Fetch-Site`, when
//!   present, is `same-origin` or `none`. Browsers send these on every
//!   cross-origin request; programs (curl, the CLI, tests) send neither.
//!   A page served by another local port is another origin.
//! - **State changes need a content type a page cannot send without a CORS
//!   preflight**: `POST` only with `application/json` or a YAML type, never
//!   `text/plain`, a form type or none; and the daemon answers no preflight
//!   (`OPTIONS` is refused, and no `Access-Control-Allow-*` header is ever
//!   sent), so the browser never sends the request itself. `DELETE` always
//!   needs a preflight.
//!
//! No token: anything that could read a token file (a process of the same
//! user) can already start processes as that user, and every page is
//! stopped by the checks above without one. Other users of a shared
//! machine can reach loopback ports too; the README says so.

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error;

/// The content types a spec may be posted with: none of them is one a
/// page may send cross-origin without a preflight.
const SPEC_CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
];

/// The middleware: refuses with 403 (421 for a foreign `Host`) what a web
/// page could have sent, before any route runs.
pub(crate) async fn refuse_web_pages(request: Request, next: Next) -> Response {
    match check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err((status, why)) => {
            tracing::warn!(method = %request.method(), uri = %request.uri(), "refused: {why}");
            error(status, why)
        }
    }
}

fn check(method: &Method, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or((
            StatusCode::BAD_REQUEST,
            "a request needs a Host header".to_string(),
        ))?;
    let (host_name, host_port) = split_authority(host).ok_or((
        StatusCode::BAD_REQUEST,
        format!("Host {host:?} is not host[:port]"),
    ))?;
    if !is_local_name(host_name) {
        return Err((
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host {host:?} is not this machine: the daemon answers only to an IP address or localhost (a name that resolves here may be a DNS rebinding page)"
            ),
        ));
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if !matches!(site, "same-origin" | "none") {
            return Err((
                StatusCode::FORBIDDEN,
                format!("a request from another site (Sec-Fetch-Site: {site}) is refused"),
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !is_own_origin(origin, host_port) {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "a request from {origin:?} is refused: only the daemon's own pages may call it"
                ),
            ));
        }
    }
    if *method == Method::OPTIONS {
        return Err((
            StatusCode::FORBIDDEN,
            "the daemon allows no cross-origin request".to_string(),
        ));
    }
    if *method == Method::POST || *method == Method::PUT || *method == Method::PATCH {
        let content_type = media_type(headers);
        if !content_type
            .as_deref()
            .is_some_and(|t| SPEC_CONTENT_TYPES.contains(&t))
        {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{method} needs content-type {} (was {}): a web page can send the others without asking first",
                    SPEC_CONTENT_TYPES.join(", "),
                    content_type.as_deref().unwrap_or("none"),
                ),
            ));
        }
    }
    Ok(())
}

/// The media type of `content-type`, lower-cased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

/// `host[:port]`, `[v6][:port]` → (host, port); 80 when no port is given.
fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().ok()?,
    };
    (!host.is_empty()).then_some((host, port))
}

/// An IP literal (no name can be rebound to it), `localhost` or a name
/// under `.localhost` (which browsers resolve to loopback themselves).
fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host.parse::<IpAddr>().is_ok() || host == "localhost" || host.ends_with(".localhost")
}

/// `http://` + a loopback address or `localhost` + the port the request
/// was sent to.
fn is_own_origin(origin: &str, port: u16) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let Some((host, origin_port)) = split_authority(authority) else {
        return false;
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback && origin_port == port
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn status(method: Method, pairs: &[(&'static str, &str)]) -> Option<StatusCode> {
        check(&method, &headers(pairs)).err().map(|(s, _)| s)
    }

    #[test]
    fn programs_pass() {
        assert_eq!(status(Method::GET, &[("host", "127.0.0.1:7411")]), None);
        assert_eq!(status(Method::GET, &[("host", "localhost:7411")]), None);
        assert_eq!(status(Method::GET, &[("host", "[::1]:7411")]), None);
        assert_eq!(
            status(
                Method::POST,
                &[
                    ("host", "127.0.0.1:7411"),
                    ("content-type", "application/yaml; charset=utf-8")
                ]
            ),
            None
        );
        assert_eq!(status(Method::DELETE, &[("host", "127.0.0.1:7411")]), None);
    }

    #[test]
    fn the_daemons_own_pages_pass() {
        let own = [
            ("host", "127.0.0.1:7411"),
            ("origin", "http://127.0.0.1:7411"),
            ("sec-fetch-site", "same-origin"),
            ("content-type", "application/json"),
        ];
        assert_eq!(status(Method::POST, &own), None);
        assert_eq!(
            status(
                Method::GET,
                &[
                    ("host", "localhost:7411"),
                    ("origin", "http://localhost:7411")
                ]
            ),
            None
        );
    }

    #[test]
    fn pages_are_refused() {
        // A rebinding page: its own name in Host.
        assert_eq!(
            status(Method::GET, &[("host", "attacker.example:7411")]),
            Some(StatusCode::MISDIRECTED_REQUEST)
        );
        // Another origin, another local port, or a sandboxed page.
        for origin in [
            "https://evil.example",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "null",
            "https://127.0.0.1:7411",
        ] {
            assert_eq!(
                status(
                    Method::GET,
                    &[("host", "127.0.0.1:7411"), ("origin", origin)]
                ),
                Some(StatusCode::FORBIDDEN),
                "{origin}"
            );
        }
        assert_eq!(
            status(
                Method::GET,
                &[("host", "127.0.0.1:7411"), ("sec-fetch-site", "cross-site")]
            ),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(Method::OPTIONS, &[("host", "127.0.0.1:7411")]),
            Some(StatusCode::FORBIDDEN)
        );
    }

    #[test]
    fn writes_need_a_type_that_forces_a_preflight() {
        for content_type in [
            None,
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let mut pairs = vec![("host", "127.0.0.1:7411")];
            if let Some(t) = content_type {
                pairs.push(("content-type", t));
            }
            assert_eq!(
                status(Method::POST, &pairs),
                Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn authorities_split() {
        assert_eq!(split_authority("a:1"), Some(("a", 1)));
        assert_eq!(split_authority("a"), Some(("a", 80)));
        assert_eq!(split_authority("[::1]:9"), Some(("::1", 9)));
        assert_eq!(split_authority("[::1]"), Some(("::1", 80)));
        assert_eq!(split_authority("a:x"), None);
        assert_eq!(split_authority(":1"), None);
    }
}
