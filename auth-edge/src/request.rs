//! Reading the access token from a request. (Writing the identity headers is
//! [`crate::identity`]'s.)

use auth_token::{Credential, CredentialError};
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};

/// The access token of a request, by the rule both services share
/// ([`auth_token::access_token`]): one `Authorization: Bearer` wins over the cookie, several
/// `Authorization` headers or an ambiguous cookie are refused, every `Cookie` header is searched.
pub fn token_from_headers<'a>(
    headers: &'a HeaderMap,
    cookie_name: &str,
) -> Result<Option<&'a str>, CredentialError> {
    credential_from_headers(headers, cookie_name).map(|credential| credential.map(|c| c.token))
}

/// The access token and where it came from (the CSRF check applies to cookies only).
pub fn credential_from_headers<'a>(
    headers: &'a HeaderMap,
    cookie_name: &str,
) -> Result<Option<Credential<'a>>, CredentialError> {
    let values = |name| headers.get_all(name).into_iter().map(HeaderValue::as_bytes);
    auth_token::access_token(values(AUTHORIZATION), values(COOKIE), cookie_name)
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
}
