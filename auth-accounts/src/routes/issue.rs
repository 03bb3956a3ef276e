//! Opening a session and handing its tokens to the client (login, registration, password change).
//!
//! Browsers get the tokens as `HttpOnly` cookies and never see them in JSON, so scripts cannot read
//! the refresh token. Non-browser clients (mobile apps, CLIs, services) ask for
//! `"tokenDelivery": "body"` and get `accessToken`/`refreshToken` in the body instead, no cookies.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use auth_token::{Claims, Role, SessionId, UserId};

use crate::crypto::{hex, random_token, sha256_hex};
use crate::domain::device_name;
use crate::error::ApiError;
use crate::http::{cookies, ApiJson, ClientInfo};
use crate::state::AppState;
use crate::store::{sessions, Conn};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenDelivery {
    /// `HttpOnly` cookies (browsers; the default).
    #[default]
    Cookie,
    /// `accessToken` and `refreshToken` in the JSON body (non-browser clients).
    Body,
}

/// Tokens in the body, present only with `tokenDelivery: "body"`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenBody {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
}

pub struct Issued {
    pub session_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub fn sign_access(
    state: &AppState,
    user_id: &str,
    role: i64,
    session_id: &str,
) -> Result<String, ApiError> {
    let now = state.clock.now();
    // A role outside 0..=2 in the database is a bug to surface, not a "user" to sign for.
    let claims = Claims {
        sub: UserId::parse(user_id).map_err(ApiError::internal)?,
        sid: SessionId::parse(session_id).map_err(ApiError::internal)?,
        role: Role::try_from(role).map_err(ApiError::internal)?,
        iss: state.config.jwt_issuer.clone(),
        aud: state.config.jwt_audience.clone(),
        iat: now,
        exp: state.config.token_lifetime().expires_at(now),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    auth_token::sign(&claims, &state.keys().signing).map_err(ApiError::internal)
}

/// Creates a session (and its refresh family) inside the caller's transaction.
pub async fn open_session(
    state: &AppState,
    conn: &mut Conn,
    user_id: &str,
    role: i64,
    client: &ClientInfo,
) -> Result<Issued, ApiError> {
    let now = state.clock.now();
    let session_id = uuid::Uuid::new_v4().to_string();
    let refresh_token = random_token()?;
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| ApiError::internal("random failed"))?;
    let ip = client.ip.map(|ip| ip.to_string());
    sessions::insert(
        conn,
        sessions::NewSession {
            session_id: &session_id,
            user_id,
            user_agent: client.user_agent.as_deref(),
            device_name: &device_name(client.user_agent.as_deref()),
            ip: ip.as_deref(),
            location: &state.geoip.locate(client.ip),
            refresh_key: &hex(&key),
            first_token_hash: &sha256_hex(&refresh_token),
            now,
            expires_at: now + state.config.refresh_ttl,
        },
    )
    .await?;
    let access_token = sign_access(state, user_id, role, &session_id)?;
    Ok(Issued {
        session_id,
        access_token,
        refresh_token,
    })
}

/// Answers with `body` plus the tokens, as cookies or in the body.
pub fn respond<T: Serialize>(
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
                expires_in: state.config.access_ttl,
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
