//! Reading the access token from a request and writing the identity headers onto one.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName};

/// The identity headers the edge sets after a successful verification, and removes from
/// anything a client sent.
pub static IDENTITY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static(auth_token::HEADER_USER_ID),
    HeaderName::from_static(auth_token::HEADER_SESSION_ID),
    HeaderName::from_static(auth_token::HEADER_USER_ROLE),
];

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive, RFC 7235).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of cookie `name` in a `Cookie` header value (`a=1; b=2`), without optional quotes.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty()).then_some(v)
    })
}

/// The access token of a request: `Authorization: Bearer` wins over the cookie (the same rule as
/// accounts), so an API client's explicit token is never shadowed by a stale browser cookie.
/// Every `Cookie` header is searched (HTTP/2 may split them).
pub fn token_from_headers<'a>(headers: &'a HeaderMap, cookie_name: &str) -> Option<&'a str> {
    let from_header = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(bearer);
    from_header.or_else(|| {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| cookie(h, cookie_name))
    })
}

/// Removes every identity header; returns whether there was any (a spoofing attempt, or a
/// misconfigured proxy, worth a log line).
pub fn strip_identity_headers(headers: &mut HeaderMap) -> bool {
    let mut found = false;
    for name in &IDENTITY_HEADERS {
        found |= headers.remove(name).is_some();
    }
    found
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer  "), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn cookie_values() {
        let h = "theme=dark; access_token=tok1; other=2";
        assert_eq!(cookie(h, "access_token"), Some("tok1"));
        assert_eq!(cookie(h, "theme"), Some("dark"));
        assert_eq!(cookie(h, "missing"), None);
        assert_eq!(cookie("access_token=\"q\"", "access_token"), Some("q"));
        assert_eq!(cookie("access_token=", "access_token"), None);
        assert_eq!(cookie("xaccess_token=a", "access_token"), None);
        assert_eq!(cookie("access_token=a=b", "access_token"), Some("a=b"));
    }

    #[test]
    fn header_wins_over_cookie_and_all_cookie_headers_are_searched() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1"));
        h.append(COOKIE, HeaderValue::from_static("access_token=from-cookie"));
        assert_eq!(token_from_headers(&h, "access_token"), Some("from-cookie"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(token_from_headers(&h, "access_token"), Some("from-cookie"));
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer from-header"),
        );
        assert_eq!(token_from_headers(&h, "access_token"), Some("from-header"));
        assert_eq!(token_from_headers(&HeaderMap::new(), "access_token"), None);
    }

    #[test]
    fn strips_identity_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-user-id", HeaderValue::from_static("admin"));
        h.append("X-User-Role", HeaderValue::from_static("1"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        assert!(strip_identity_headers(&mut h));
        assert_eq!(h.len(), 1);
        assert!(!strip_identity_headers(&mut h));
    }
}
