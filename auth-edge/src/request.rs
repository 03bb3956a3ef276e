//! Reading the access token from a request and writing the identity headers onto one.

use auth_token::CredentialError;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The identity headers the edge sets after a successful verification, and removes from
/// anything a client sent.
pub static IDENTITY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static(auth_token::HEADER_USER_ID),
    HeaderName::from_static(auth_token::HEADER_SESSION_ID),
    HeaderName::from_static(auth_token::HEADER_USER_ROLE),
];

/// The access token of a request, by the rule both services share
/// ([`auth_token::access_token`]): one `Authorization: Bearer` wins over the cookie, several
/// `Authorization` headers or an ambiguous cookie are refused, every `Cookie` header is searched.
pub fn token_from_headers<'a>(
    headers: &'a HeaderMap,
    cookie_name: &str,
) -> Result<Option<&'a str>, CredentialError> {
    let values = |name| headers.get_all(name).into_iter().map(HeaderValue::as_bytes);
    auth_token::access_token(values(AUTHORIZATION), values(COOKIE), cookie_name)
        .map(|credential| credential.map(|c| c.token))
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
    fn reads_every_header_of_a_name() {
        // The rules themselves are tested in auth-token; this checks the HeaderMap plumbing.
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1"));
        h.append(COOKIE, HeaderValue::from_static("access_token=from-cookie"));
        assert_eq!(
            token_from_headers(&h, "access_token"),
            Ok(Some("from-cookie"))
        );
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer from-header"),
        );
        assert_eq!(
            token_from_headers(&h, "access_token"),
            Ok(Some("from-header"))
        );
        h.append(AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert!(token_from_headers(&h, "access_token").is_err());
        assert_eq!(
            token_from_headers(&HeaderMap::new(), "access_token"),
            Ok(None)
        );
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
