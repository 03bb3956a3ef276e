//! Cross-site request forgery protection for the services behind the edge.
//!
//! A browser attaches the access cookie to every request to the site, whoever made the page that
//! sent it; a `Bearer` header is only ever sent by code that holds the token. So requests whose
//! token came from the cookie are checked, Bearer requests never are (OWASP CSRF cheat sheet:
//! "verifying origin with standard headers", plus Fetch Metadata).
//!
//! The rule, for a cookie-borne token on an unsafe method, or on any request that carries an
//! `Origin` (browsers send it on every cross-origin fetch and every POST):
//! 1. `Sec-Fetch-Site: same-origin` or `none` (typed by the user): allowed. The browser sets
//!    this header and page scripts cannot.
//! 2. Otherwise the request's origin is `Origin`, or the origin of `Referer` when there is no
//!    `Origin`. It is allowed when it equals an allow-listed origin exactly (scheme, host and
//!    port), or when its host and port equal the request's own `Host` (or `X-Forwarded-Host`).
//!    `Origin: null` (sandboxed frames, `file:`, some redirects) is never allowed.
//! 3. No `Origin`, no `Referer` and no `Sec-Fetch-Site`: not a browser (curl, a server), allowed.
//!    `Sec-Fetch-Site: cross-site` or `same-site` without any origin: refused.
//!
//! The method is the original request's: `X-Forwarded-Method` (Traefik, Caddy, the nginx
//! snippets), `X-Original-Method`, or the method of the request itself (sidecar, Envoy).

use http::header::{HOST, ORIGIN, REFERER};
use http::{HeaderMap, HeaderName, Method};

/// `Sec-Fetch-Site` (not in the `http` crate's list).
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// Whether and against what origins cookie-borne requests are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrfPolicy {
    /// `AUTH_EDGE_CSRF` (`on` by default).
    pub enabled: bool,
    /// `AUTH_EDGE_CSRF_ALLOWED_ORIGINS`: exact origins (`https://app.example.com`), lowercase,
    /// without a trailing slash.
    pub allowed_origins: Vec<String>,
}

impl Default for CsrfPolicy {
    fn default() -> Self {
        CsrfPolicy {
            enabled: true,
            allowed_origins: Vec::new(),
        }
    }
}

/// Why a configured origin is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin (scheme://host[:port], no path; never \"null\")")]
pub struct BadOrigin(pub String);

/// Normalises a configured origin: `https://App.example.com/` → `https://app.example.com`.
pub fn parse_origin(raw: &str) -> Result<String, BadOrigin> {
    let bad = || BadOrigin(raw.to_owned());
    let trimmed = raw.trim().trim_end_matches('/');
    let (scheme, authority) = trimmed.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    // Any scheme (app shells send `capacitor://localhost`, `ionic://localhost`), compared
    // exactly; only the opaque origin `null` has no scheme and is never an origin here.
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad());
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The method of the request the proxy is asking about.
pub fn original_method<'a>(headers: &'a HeaderMap, own: &'a Method) -> Method {
    [X_FORWARDED_METHOD, X_ORIGINAL_METHOD]
        .iter()
        .find_map(|name| headers.get(name))
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
        .unwrap_or_else(|| own.clone())
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `scheme://authority` of a `Referer` URL.
fn referer_origin(referer: &str) -> Option<&str> {
    let scheme_end = referer.find("://")? + 3;
    let rest = &referer[scheme_end..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&referer[..scheme_end + end])
}

impl CsrfPolicy {
    /// Whether a request whose token came from the cookie may be treated as authenticated.
    pub fn allows(&self, headers: &HeaderMap, method: &Method) -> bool {
        if !self.enabled {
            return true;
        }
        let origin = header(headers, &ORIGIN);
        if is_safe(method) && origin.is_none() {
            return true;
        }
        let fetch_site = header(headers, &SEC_FETCH_SITE).map(str::to_ascii_lowercase);
        if matches!(fetch_site.as_deref(), Some("same-origin" | "none")) {
            return true;
        }
        let origin = origin.or_else(|| header(headers, &REFERER).and_then(referer_origin));
        let Some(origin) = origin else {
            // No browser header at all: not a browser. With Sec-Fetch-Site but no origin:
            // a browser that withheld it, refuse.
            return fetch_site.is_none();
        };
        let Ok(origin) = parse_origin(origin) else {
            return false; // "null", or not an origin at all
        };
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let authority = &origin[origin.find("://").map_or(0, |i| i + 3)..];
        [HOST, X_FORWARDED_HOST]
            .iter()
            .filter_map(|name| header(headers, name))
            // X-Forwarded-Host may list several hosts; the first is the client's.
            .map(|host| host.split(',').next().unwrap_or_default().trim())
            .any(|host| same_authority(authority, host, origin.starts_with("https")))
    }
}

/// `a` (from an origin, lowercase) and `host` (a Host header) name the same host and port,
/// with the scheme's default port filled in where one side leaves it out.
fn same_authority(a: &str, host: &str, https: bool) -> bool {
    let default = if https { ":443" } else { ":80" };
    let with_port = |s: &str| {
        let s = s.to_ascii_lowercase();
        // An IPv6 literal's colons are inside brackets; a port follows the last `]` or the host.
        let host_part_end = s.rfind(']').map_or(0, |i| i + 1);
        if s[host_part_end..].contains(':') {
            s
        } else {
            format!("{s}{default}")
        }
    };
    !host.is_empty() && with_port(a) == with_port(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::headers;

    fn policy(allowed: &[&str]) -> CsrfPolicy {
        CsrfPolicy {
            enabled: true,
            allowed_origins: allowed.iter().map(|o| parse_origin(o).unwrap()).collect(),
        }
    }

    #[test]
    fn the_rule_table() {
        let p = policy(&["https://app.example.com"]);
        let post = Method::POST;
        let get = Method::GET;
        type Case<'a> = (&'a [(&'static str, &'static str)], &'a Method, bool);
        let cases: &[Case<'_>] = &[
            // Not a browser.
            (&[("host", "api.example.com")], &post, true),
            // Fetch Metadata says same-origin or user-typed.
            (
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://evil.example"),
                ],
                &post,
                true,
            ),
            (&[("sec-fetch-site", "none")], &post, true),
            // Allow-listed origin, any case, default port spelled out or not.
            (&[("origin", "https://app.example.com")], &post, true),
            (&[("origin", "HTTPS://APP.example.com")], &post, true),
            (
                &[
                    ("sec-fetch-site", "same-site"),
                    ("origin", "https://app.example.com"),
                ],
                &post,
                true,
            ),
            // Same origin as the request's host.
            (
                &[
                    ("origin", "https://api.example.com"),
                    ("host", "api.example.com"),
                ],
                &post,
                true,
            ),
            (
                &[
                    ("origin", "https://api.example.com"),
                    ("host", "api.example.com:443"),
                ],
                &post,
                true,
            ),
            (
                &[
                    ("origin", "http://api.example.com:8080"),
                    ("host", "api.example.com:8080"),
                ],
                &post,
                true,
            ),
            (
                &[
                    ("origin", "https://a.example"),
                    ("host", "internal:8080"),
                    ("x-forwarded-host", "a.example"),
                ],
                &post,
                true,
            ),
            // Foreign origins.
            (
                &[
                    ("origin", "https://evil.example"),
                    ("host", "api.example.com"),
                ],
                &post,
                false,
            ),
            (
                &[
                    ("origin", "https://api.example.com:8443"),
                    ("host", "api.example.com"),
                ],
                &post,
                false,
            ),
            (
                &[
                    ("origin", "http://api.example.com"),
                    ("host", "api.example.com:443"),
                ],
                &post,
                false,
            ),
            (
                &[("origin", "https://app.example.com.evil.example")],
                &post,
                false,
            ),
            (&[("origin", "null")], &post, false),
            (
                &[("origin", "null"), ("sec-fetch-site", "cross-site")],
                &post,
                false,
            ),
            // A cross-origin fetch with credentials, even a GET.
            (
                &[
                    ("origin", "https://evil.example"),
                    ("host", "api.example.com"),
                ],
                &get,
                false,
            ),
            // Referer when there is no Origin.
            (
                &[("referer", "https://app.example.com/page?x=1")],
                &post,
                true,
            ),
            (
                &[("referer", "https://evil.example/app.example.com")],
                &post,
                false,
            ),
            // A browser that sends Fetch Metadata but no origin at all on a cross-site POST.
            (&[("sec-fetch-site", "cross-site")], &post, false),
            // Navigations: a cross-site link is a GET without Origin.
            (
                &[
                    ("sec-fetch-site", "cross-site"),
                    ("referer", "https://evil.example/"),
                ],
                &get,
                true,
            ),
        ];
        for (pairs, method, want) in cases {
            assert_eq!(
                p.allows(&headers(pairs), method),
                *want,
                "{method} {pairs:?}"
            );
        }
        let off = CsrfPolicy {
            enabled: false,
            ..CsrfPolicy::default()
        };
        assert!(off.allows(&headers(&[("origin", "null")]), &post));
    }

    #[test]
    fn configured_origins() {
        assert_eq!(
            parse_origin("https://App.Example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        assert_eq!(
            parse_origin("capacitor://localhost").unwrap(),
            "capacitor://localhost"
        );
        for bad in [
            "null",
            "app.example.com",
            "https://",
            "https://a.example/path",
            "https://user@a.example",
            "ht tp://a.example",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_original_method() {
        let own = Method::GET;
        assert_eq!(original_method(&headers(&[]), &own), Method::GET);
        assert_eq!(
            original_method(&headers(&[("x-forwarded-method", "POST")]), &own),
            Method::POST
        );
        assert_eq!(
            original_method(&headers(&[("x-original-method", "DELETE")]), &own),
            Method::DELETE
        );
    }
}
