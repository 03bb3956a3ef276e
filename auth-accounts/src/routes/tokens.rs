//! Token checks for other services: validate-token, gateway-verify (nginx `auth_request`), JWKS.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use auth_token::{HEADER_SESSION_ID, HEADER_USER_ID, HEADER_USER_ROLE};

use crate::error::ApiResult;
use crate::http::errors::KeepBody;
use crate::http::{auth, ApiJson, MaybeAuthUser, TokenSource};
use crate::routes::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    // gateway-verify answers every method (a proxy may forward the original one); documented as GET.
    let (schemas, paths, _) = routes!(gateway_verify);
    OpenApiRouter::new()
        .routes(routes!(validate_token))
        .routes((schemas, paths, any(gateway_verify)))
        .routes(routes!(jwks))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct ValidateRequest {
    pub token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ValidateBody {
    /// `success`, `validateToken` and a detail: the old service's whole answer, kept for its callers.
    #[schema(example = "success")]
    pub status: &'static str,
    #[schema(example = "validateToken")]
    pub action: &'static str,
    pub detail: &'static str,
    pub valid: bool,
    pub user_id: String,
    pub session_id: String,
    pub role: i32,
    /// Expiry, unix seconds.
    pub exp: i64,
}

/// Check an access token: signature, claims, and that its session is still live.
#[utoipa::path(post, path = "/validate-token", tag = "tokens", request_body = ValidateRequest,
    responses((status = 200, body = ValidateBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn validate_token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> ApiResult<ApiJson<ValidateBody>> {
    let user = auth::authenticate(&state, &req.token, TokenSource::Header).await?;
    Ok(ApiJson(ValidateBody {
        status: "success",
        action: "validateToken",
        detail: "Token valid.",
        valid: true,
        user_id: user.user_id,
        session_id: user.session_id,
        role: user.role,
        exp: user.claims.exp,
    }))
}

/// Forward-auth for a gateway: 200 with `X-User-Id`, `X-Session-Id`, `X-User-Role`, or a bare 401.
/// Accepts the `access_token` cookie (as the old gateway sent it) or `Authorization: Bearer`.
#[utoipa::path(get, path = "/gateway-verify", tag = "tokens", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Authenticated; identity in X-User-Id, X-Session-Id, X-User-Role"),
        (status = 401, description = "Not authenticated (empty body)")))]
pub(crate) async fn gateway_verify(MaybeAuthUser(caller): MaybeAuthUser) -> Response {
    let mut response = match caller {
        Some(user) => {
            let mut response = StatusCode::OK.into_response();
            let h = response.headers_mut();
            for (name, value) in [
                (HEADER_USER_ID, user.user_id),
                (HEADER_SESSION_ID, user.session_id),
                (HEADER_USER_ROLE, user.role.to_string()),
            ] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
            response
        }
        None => {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"auth\""),
            );
            response.extensions_mut().insert(KeepBody);
            response
        }
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "JWK Set", content_type = "application/json")))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = axum::Json(&state.keys().jwks).into_response();
    // Short enough that a key change propagates quickly; edges refetch on an unknown kid anyway.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
