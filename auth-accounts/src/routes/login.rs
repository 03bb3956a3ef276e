//! Login, refresh (rotation with reuse detection) and logout.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use auth_token::REFRESH_COOKIE;

use crate::crypto::{next_refresh_token, sha256_hex};
use crate::domain::Email;
use crate::error::{ApiError, ApiResult};
use crate::http::{auth, cookies, ApiJson, ClientInfo};
use crate::outbox::{events, record_event};
use crate::routes::issue::{open_session, respond, sign_access, Issued, TokenDelivery};
use crate::routes::{ErrorBody, StatusBody};
use crate::state::AppState;
use crate::store::{sessions, users};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    #[schema(example = "user@example.com")]
    pub email: String,
    #[schema(example = "SecurePass123!")]
    pub password: String,
    #[serde(default, alias = "token_delivery")]
    pub token_delivery: TokenDelivery,
}

const BAD_CREDENTIALS: ApiError = ApiError::Unauthorized("Invalid credentials");

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "login", request_body = LoginRequest,
    responses((status = 200, body = StatusBody, description = "Cookies set, or tokens in the body with tokenDelivery=body"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    state.metrics.login_attempts.inc();
    // A malformed email cannot belong to an account: same answer as a wrong password.
    let email = Email::parse(&req.email).ok();
    // Bound the work an attacker can ask for; real passwords are at most 128 characters.
    let password: String = req.password.chars().take(256).collect();
    // Per-address throttle on failures, counted alike for unknown addresses (no enumeration).
    let throttle_key = format!(
        "login-fail:{}",
        email.as_ref().map(Email::as_str).unwrap_or("invalid")
    );
    let rl = &state.config.rate_limit;
    if rl.enabled {
        let now = state.clock.now();
        let failures = state
            .limiter
            .peek(&throttle_key, rl.login_failure_window, now)
            .await;
        if failures >= u64::from(rl.login_failures) {
            let window = rl.login_failure_window;
            let retry_after_secs = u64::try_from(window - now.rem_euclid(window))
                .unwrap_or(1)
                .max(1);
            state.metrics.failed_logins.inc();
            return Err(ApiError::TooManyRequests { retry_after_secs });
        }
    }
    let user = match &email {
        Some(email) => {
            let mut conn = state.db.acquire().await?;
            users::find_by_email(&mut conn, email).await?
        }
        None => None,
    };
    // Unknown accounts verify against a dummy hash: the same cost as a real check.
    let verified = state
        .hasher
        .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let now = state.clock.now();
    let user = match user {
        Some(u) if verified.ok && u.is_active == 1 => u,
        other => {
            state.metrics.failed_logins.inc();
            if rl.enabled {
                let _ = state
                    .limiter
                    .hit(&throttle_key, u32::MAX, rl.login_failure_window, now)
                    .await;
            }
            let mut tx = state.begin().await?;
            let user_id = other.as_ref().map(|u| u.user_id.as_str());
            let data = json!({ "email": email.as_ref().map(Email::as_str), "ip": client.ip.map(|i| i.to_string()) });
            record_event(
                &mut tx,
                state.topic(),
                events::LOGIN_FAILED,
                user_id,
                data,
                now,
            )
            .await?;
            tx.commit().await?;
            return Err(BAD_CREDENTIALS);
        }
    };
    let new_hash = if verified.needs_rehash {
        Some(state.hasher.hash(&password).await?)
    } else {
        None
    };
    let mut tx = state.begin().await?;
    if let Some(hash) = &new_hash {
        users::set_password_hash(&mut tx, &user.user_id, hash, now).await?;
    }
    let issued = open_session(&state, &mut tx, &user.user_id, user.role, &client).await?;
    users::touch_last_login(&mut tx, &user.user_id, now).await?;
    let data = json!({ "sessionId": issued.session_id, "ip": client.ip.map(|i| i.to_string()) });
    record_event(
        &mut tx,
        state.topic(),
        events::LOGIN,
        Some(&user.user_id),
        data,
        now,
    )
    .await?;
    tx.commit().await?;
    let body = json!({
        "status": "success", "action": "login", "detail": "Logged in.",
        "user": { "id": user.user_id, "email": user.email, "name": user.name },
    });
    respond(&state, &issued, req.token_delivery, body)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// For non-browser clients; browsers send the `refresh_token` cookie instead.
    #[serde(default, alias = "refresh_token")]
    pub refresh_token: Option<String>,
    #[serde(default, alias = "token_delivery")]
    pub token_delivery: Option<TokenDelivery>,
}

/// Reads an optional JSON body: refresh and logout are often called with no body at all.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        // Like `ApiJson`: broken JSON is a bad request, well-formed JSON of the wrong shape is 422.
        serde_json::error::Category::Data => {
            ApiError::Validation(format!("Invalid JSON body: {e}"))
        }
        _ => ApiError::BadRequest(format!("Invalid JSON body: {e}")),
    })
}

/// Rotate the refresh token and get a new access token.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "login", request_body(content = RefreshRequest, description = "Optional"),
    responses((status = 200, body = StatusBody), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req: RefreshRequest = optional_body(&body)?;
    // A token in the body answers in the body; the cookie answers with cookies.
    let (token, delivery) = match req.refresh_token.filter(|t| !t.is_empty()) {
        Some(t) => (t, req.token_delivery.unwrap_or(TokenDelivery::Body)),
        None => (
            cookies::read(&headers, REFRESH_COOKIE)
                .ok_or(ApiError::Unauthorized("Refresh token missing"))?,
            req.token_delivery.unwrap_or(TokenDelivery::Cookie),
        ),
    };
    match rotate(&state, &token, &client).await {
        Ok(issued) => respond(
            &state,
            &issued,
            delivery,
            StatusBody::success("refresh", "Tokens refreshed."),
        ),
        Err(err) => {
            let mut response = err.into_response();
            if delivery == TokenDelivery::Cookie {
                cookies::clear_tokens(response.headers_mut(), &state.config);
            }
            Ok(response)
        }
    }
}

const INVALID_REFRESH: ApiError = ApiError::Unauthorized("Invalid or expired refresh token");

/// The refresh state machine. The presented token is either the family's current one (rotate),
/// the one just before it within the grace window (a retry or a racing tab: answer with the same
/// successor, derived deterministically), or anything older (reuse: revoke the whole family).
async fn rotate(state: &AppState, token: &str, client: &ClientInfo) -> Result<Issued, ApiError> {
    if token.len() > 128 {
        return Err(INVALID_REFRESH);
    }
    let hash = sha256_hex(token);
    let ip = client.ip.map(|i| i.to_string());
    // Two passes at most: when a concurrent request wins the compare-and-set, look again.
    for _ in 0..2 {
        let now = state.clock.now();
        let mut tx = state.begin().await?;
        let Some((generation, session)) = sessions::find_by_refresh_hash(&mut tx, &hash).await?
        else {
            return Err(INVALID_REFRESH);
        };
        if !session.is_active(now) {
            return Err(INVALID_REFRESH);
        }
        let user = users::find_by_id(&mut tx, &session.user_id)
            .await?
            .ok_or(INVALID_REFRESH)?;
        let next = next_refresh_token(&session.refresh_key, token);
        if generation == session.refresh_generation {
            if !sessions::rotate(
                &mut tx,
                &session.session_id,
                generation,
                now,
                now + state.config.refresh_ttl,
                ip.as_deref(),
            )
            .await?
            {
                drop(tx);
                continue;
            }
            sessions::add_refresh_token(
                &mut tx,
                &sha256_hex(&next),
                &session.session_id,
                generation + 1,
                now,
            )
            .await?;
            let data = json!({ "sessionId": session.session_id, "generation": generation + 1 });
            record_event(
                &mut tx,
                state.topic(),
                events::TOKEN_REFRESHED,
                Some(&user.user_id),
                data,
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(Issued {
                access_token: sign_access(state, &user.user_id, user.role, &session.session_id)?,
                session_id: session.session_id,
                refresh_token: next,
            });
        }
        let within_grace = now - session.rotated_at <= state.config.refresh_grace;
        if generation + 1 == session.refresh_generation && within_grace {
            // Same successor as the first answer; prove it is really the current token.
            let next_hash = sha256_hex(&next);
            if sessions::has_refresh_token(
                &mut tx,
                &next_hash,
                &session.session_id,
                session.refresh_generation,
            )
            .await?
            {
                tx.commit().await?;
                return Ok(Issued {
                    access_token: sign_access(
                        state,
                        &user.user_id,
                        user.role,
                        &session.session_id,
                    )?,
                    session_id: session.session_id,
                    refresh_token: next,
                });
            }
        }
        // An old generation came back: someone holds a copy of a rotated token. Revoke the family.
        sessions::revoke(&mut tx, &session.session_id, &user.user_id, now).await?;
        let data = json!({ "sessionId": session.session_id, "presentedGeneration": generation,
            "currentGeneration": session.refresh_generation, "ip": ip });
        record_event(
            &mut tx,
            state.topic(),
            events::REFRESH_TOKEN_REUSED,
            Some(&user.user_id),
            data.clone(),
            now,
        )
        .await?;
        record_event(
            &mut tx,
            state.topic(),
            events::SESSION_REVOKED,
            Some(&user.user_id),
            json!({ "sessionId": session.session_id, "reason": "refresh_token_reused" }),
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(session_id = %session.session_id, user_id = %user.user_id, "refresh token reuse detected; session revoked");
        return Err(INVALID_REFRESH);
    }
    Err(INVALID_REFRESH)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogoutRequest {
    #[serde(default, alias = "refresh_token")]
    pub refresh_token: Option<String>,
}

/// Sign out: revokes the current session and clears the cookies. 200 whether or not a session
/// was found; 4xx only for a body that is not a `LogoutRequest`.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "login", request_body(content = LogoutRequest, description = "Optional"),
    responses((status = 200, body = StatusBody)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    // No body is fine (the cookie says which session); a body that is not a LogoutRequest is a
    // client error like everywhere else, not silently ignored.
    let req: LogoutRequest = optional_body(&body)?;
    let now = state.clock.now();
    // The session to end: from a valid access token, else from the refresh token.
    let mut target: Option<(String, String)> = None;
    // Malformed credentials end nothing by themselves; the refresh token may still say which.
    if let Ok(Some((token, source))) = auth::access_token(&headers) {
        if let Ok(user) = auth::authenticate(&state, token, source).await {
            target = Some((user.session_id, user.user_id));
        }
    }
    if target.is_none() {
        let refresh = req
            .refresh_token
            .or_else(|| cookies::read(&headers, REFRESH_COOKIE));
        if let Some(refresh) = refresh.filter(|t| t.len() <= 128) {
            let mut conn = state.db.acquire().await?;
            if let Some((generation, session)) =
                sessions::find_by_refresh_hash(&mut conn, &sha256_hex(&refresh)).await?
            {
                // Only the current generation may log out; an old copy must not end the session.
                if generation == session.refresh_generation {
                    target = Some((session.session_id, session.user_id));
                }
            }
        }
    }
    if let Some((session_id, user_id)) = target {
        let mut tx = state.begin().await?;
        if sessions::revoke(&mut tx, &session_id, &user_id, now).await? {
            record_event(
                &mut tx,
                state.topic(),
                events::LOGOUT,
                Some(&user_id),
                json!({ "sessionId": session_id }),
                now,
            )
            .await?;
        }
        tx.commit().await?;
    }
    let mut headers = HeaderMap::new();
    cookies::clear_tokens(&mut headers, &state.config);
    Ok((
        headers,
        ApiJson(StatusBody::success("logout", "Logged out.")),
    )
        .into_response())
}
