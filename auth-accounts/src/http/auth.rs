//! `AuthUser`: the authenticated caller, from `Authorization: Bearer` or the `access_token` cookie;
//! `MaybeAuthUser`: the caller if there is a valid token, for routes that also serve anonymous
//! callers (logout, gateway-verify).
//!
//! Besides the signature and claims, the session behind the token must still be live: every
//! revocation (logout, session delete, password change or reset) takes effect on the next request
//! instead of when the access token expires (the old service kept revoked tokens working 15 min).

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use auth_token::{Claims, ACCESS_COOKIE};

use crate::error::ApiError;
use crate::http::cookies;
use crate::state::AppState;
use crate::store::sessions;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Header,
    Cookie,
}

#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user_id: String,
    pub session_id: String,
    pub role: i32,
    pub claims: Claims,
    pub source: TokenSource,
}

/// The access token of a request: the Authorization header wins over the cookie.
pub fn access_token(headers: &HeaderMap) -> Option<(String, TokenSource)> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = value.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let token = parts.next().unwrap_or("").trim();
        if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
            return Some((token.to_string(), TokenSource::Header));
        }
    }
    cookies::read(headers, ACCESS_COOKIE).map(|t| (t, TokenSource::Cookie))
}

/// Verifies a token and checks that its session is still live.
pub async fn authenticate(
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
    let session = sessions::find(&mut conn, &claims.sid)
        .await?
        .ok_or(INVALID)?;
    if !session.is_active(now) || session.user_id != claims.sub {
        return Err(INVALID);
    }
    Ok(AuthUser {
        user_id: claims.sub.clone(),
        session_id: claims.sid.clone(),
        role: claims.role,
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
        let (token, source) =
            access_token(&parts.headers).ok_or(ApiError::Unauthorized("Not authenticated"))?;
        authenticate(&state, &token, source).await
    }
}

/// The caller when the request carries a valid token for a live session, else `None`. Never a
/// rejection: a missing, invalid or expired token (or a database that cannot say) is no identity.
#[derive(Clone, Debug)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let Some((token, source)) = access_token(&parts.headers) else {
            return Ok(Self(None));
        };
        match authenticate(&state, &token, source).await {
            Ok(user) => Ok(Self(Some(user))),
            Err(ApiError::Unauthorized(_)) => Ok(Self(None)),
            Err(err) => {
                tracing::warn!(error = %err, "could not check an access token; treated as none");
                Ok(Self(None))
            }
        }
    }
}
