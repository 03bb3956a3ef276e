//! Handing a session's tokens to the client (login, registration, refresh, password change); the
//! session itself is opened by [`crate::sessions`].
//!
//! Browsers get the tokens as `HttpOnly` cookies and never see them in JSON, so scripts cannot read
//! the refresh token. Non-browser clients (mobile apps, CLIs, services) ask for
//! `"tokenDelivery": "body"` and get `access_token`/`refresh_token` in the body instead (OAuth 2.0's
//! names, as the old service's README documented them), no cookies.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::{cookies, ApiJson};
use crate::sessions::Issued;
use crate::state::AppState;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenDelivery {
    /// `HttpOnly` cookies (browsers; the default).
    #[default]
    Cookie,
    /// `access_token` and `refresh_token` in the JSON body (non-browser clients).
    Body,
}

/// Tokens in the body, present only with `tokenDelivery: "body"`. OAuth 2.0 token response names
/// (RFC 6749 section 5.1), not camelCase like the rest of the body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenBody {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
}

/// Answers with `body` plus the tokens, as cookies or in the body.
pub(crate) fn respond<T: Serialize>(
    state: &AppState,
    issued: &Issued,
    delivery: TokenDelivery,
    body: T,
) -> Result<Response, ApiError> {
    let mut value = serde_json::to_value(body).map_err(ApiError::internal)?;
    let mut headers = HeaderMap::new();
    match delivery {
        TokenDelivery::Cookie => cookies::set_tokens(
            &mut headers,
            &state.config,
            &issued.access_token,
            &issued.refresh_token,
        ),
        TokenDelivery::Body => {
            let tokens = serde_json::to_value(TokenBody {
                access_token: issued.access_token.clone(),
                refresh_token: issued.refresh_token.clone(),
                token_type: "Bearer",
                expires_in: state.config.tokens.access_ttl,
            })
            .map_err(ApiError::internal)?;
            if let (Some(obj), serde_json::Value::Object(extra)) = (value.as_object_mut(), tokens) {
                obj.extend(extra);
            }
        }
    }
    // Responses carrying tokens must never be cached by a proxy.
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok((headers, ApiJson(value)).into_response())
}
