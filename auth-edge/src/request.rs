//! Reading the access token from a request. (Writing the identity headers is
//! [`crate::identity`]'s.)

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

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
}
