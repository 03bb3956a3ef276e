//! `AuthUser`: the authenticated caller, from `Authorization: Bearer` or the `access_token` cookie;
//! `MaybeAuthUser`: the caller if there is a valid token, for routes that also serve anonymous
//! callers (logout, gateway-verify).
//!
//! Besides the signature and claims, the session behind the token must still be live: every
//! revocation (logout, session delete, password change or reset) takes effect on the next request
//! instead of when the access token expires (the old service kept revoked tokens working 15 min).

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};

pub(crate) use auth_token::TokenSource;
use auth_token::{Claims, CredentialError, ACCESS_COOKIE};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sessions;

#[derive(Clone, Debug)]
pub(crate) struct AuthUser {
    pub user_id: String,
    pub session_id: String,
    pub role: i32,
    pub claims: Claims,
    pub source: TokenSource,
}

/// The access token of a request, by the rule the edge applies too
/// ([`auth_token::access_token`]): one `Authorization: Bearer` wins over the cookie; several
/// `Authorization` headers, an ambiguous cookie or control characters are an error (401).
pub(crate) fn access_token(
    headers: &HeaderMap,
) -> Result<Option<(&str, TokenSource)>, CredentialError> {
    let values = |name| headers.get_all(name).into_iter().map(HeaderValue::as_bytes);
    auth_token::access_token(
        values(header::AUTHORIZATION),
        values(header::COOKIE),
        ACCESS_COOKIE,
    )
    .map(|credential| credential.map(|c| (c.token, c.source)))
}

/// Verifies a token and checks that its session is still live.
pub(crate) async fn authenticate(
    state: &AppState,
    token: &str,
    source: TokenSource,
) -> Result<AuthUser, ApiError> {
    const INVALID: ApiError = ApiError::Unauthorized("Invalid or expired token");
    let now = state.clock.now();
    let keys = state.keys();
    let claims =
        auth_token::verify(token, &keys.verifying, &keys.validation, now).map_err(|_| INVALID)?;
    let mut conn = state.db.acquire().await?;
    let session = sessions::find(&mut conn, claims.sid.as_str())
        .await?
        .ok_or(INVALID)?;
    if !session.is_active(now) || session.user_id != claims.sub {
        return Err(INVALID);
    }
    Ok(AuthUser {
        user_id: claims.sub.to_string(),
        session_id: claims.sid.to_string(),
        role: claims.role.as_i32(),
        claims,
        source,
    })
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let (token, source) = access_token(&parts.headers)
            .map_err(|_| ApiError::Unauthorized("Malformed credentials"))?
            .ok_or(ApiError::Unauthorized("Not authenticated"))?;
        authenticate(&state, token, source).await
    }
}

/// The caller when the request carries a valid token for a live session, else `None`. Never a
/// rejection: a missing, invalid or expired token (or a database that cannot say) is no identity.
#[derive(Clone, Debug)]
pub(crate) struct MaybeAuthUser(pub Option<AuthUser>);

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        // Malformed credentials (several Authorization headers, an ambiguous cookie) are no
        // identity either.
        let Ok(Some((token, source))) = access_token(&parts.headers) else {
            return Ok(Self(None));
        };
        match authenticate(&state, token, source).await {
            Ok(user) => Ok(Self(Some(user))),
            Err(ApiError::Unauthorized(_)) => Ok(Self(None)),
            Err(err) => {
                tracing::warn!(error = %err, "could not check an access token; treated as none");
                Ok(Self(None))
            }
        }
    }
}
