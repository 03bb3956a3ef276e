//! Login, refresh and logout routes. The refresh state machine itself is [`crate::sessions`].

use std::net::IpAddr;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use auth_token::REFRESH_COOKIE;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::domain::Email;
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::http::ratelimit::{per_client, Limit};
use crate::http::{cookies, ApiJson, ClientInfo, MaybeAuthUser};
use crate::routes::issue::{respond, TokenDelivery};
use crate::routes::{ErrorBody, StatusBody};
use crate::sessions;
use crate::state::AppState;
use crate::store::users;

pub(crate) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .route_layer(per_client(state, Limit::Auth))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(refresh))
                .route_layer(per_client(state, Limit::Refresh)),
        )
        .routes(routes!(logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginRequest {
    #[schema(example = "user@example.com")]
    pub email: String,
    #[schema(example = "SecurePass123!")]
    pub password: String,
    #[serde(default, alias = "token_delivery")]
    pub token_delivery: TokenDelivery,
}

const BAD_CREDENTIALS: ApiError = ApiError::Unauthorized("Invalid credentials");

/// Sign in with email and password.
#[utoipa::path(post, path = "/login", tag = "login", request_body = LoginRequest,
    responses((status = 200, body = StatusBody, description = "Cookies set, or tokens in the body with tokenDelivery=body"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn login(
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
    let throttle_key = failure_key(&state, email.as_ref().map(Email::as_str), client.ip);
    refuse_when_throttled(&state, &throttle_key).await?;
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
            count_failure(&state, &throttle_key, now).await;
            let mut uow = state.unit_of_work().await?;
            let event = Event::LoginFailed {
                email: email.as_ref().map(|e| e.as_str().to_string()),
                ip: client.ip.map(|i| i.to_string()),
            };
            let user_id = other.as_ref().map(|u| u.user_id.as_str());
            uow.record(user_id, event).await?;
            uow.commit().await?;
            return Err(BAD_CREDENTIALS);
        }
    };
    let new_hash = if verified.needs_rehash {
        Some(state.hasher.hash(&password).await?)
    } else {
        None
    };
    let mut uow = state.unit_of_work().await?;
    if let Some(hash) = &new_hash {
        users::set_password_hash(&mut uow, &user.user_id, hash, now).await?;
    }
    let issued = sessions::open(
        &state,
        &mut uow,
        &user.user_id,
        user.role,
        client.ip,
        client.user_agent.as_deref(),
    )
    .await?;
    users::touch_last_login(&mut uow, &user.user_id, now).await?;
    let event = Event::Login {
        session_id: issued.session_id.clone(),
        ip: client.ip.map(|i| i.to_string()),
    };
    uow.record(Some(&user.user_id), event).await?;
    uow.commit().await?;
    let body = json!({
        "status": "success", "action": "login", "detail": "Logged in.",
        "user": { "id": user.user_id, "email": user.email, "name": user.name },
    });
    respond(&state, &issued, req.token_delivery, body)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshRequest {
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
#[utoipa::path(post, path = "/refresh", tag = "login", request_body(content = RefreshRequest, description = "Optional"),
    responses((status = 200, body = StatusBody), (status = 400, body = ErrorBody, description = "tokenDelivery body with the refresh cookie"), (status = 401, body = ErrorBody)))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req: RefreshRequest = optional_body(&body)?;
    // A token in the body answers in the body; the cookie answers with cookies.
    let (token, delivery) = match req.refresh_token.filter(|t| !t.is_empty()) {
        Some(t) => (t, req.token_delivery.unwrap_or(TokenDelivery::Body)),
        None => {
            let token = cookies::read(&headers, REFRESH_COOKIE)
                .ok_or(ApiError::Unauthorized("Refresh token missing"))?;
            // Cookie in, cookie out: an HttpOnly refresh cookie must never be exchanged for
            // tokens a page script can read.
            if req.token_delivery == Some(TokenDelivery::Body) {
                return Err(ApiError::BadRequest(
                    "tokenDelivery \"body\" needs the refresh token in the body".into(),
                ));
            }
            (token, TokenDelivery::Cookie)
        }
    };
    match sessions::refresh(&state, &token, client.ip).await {
        Ok(issued) => respond(
            &state,
            &issued,
            delivery,
            StatusBody::success("refresh", "Tokens refreshed."),
        ),
        Err(err) => {
            let mut response = ApiError::from(err).into_response();
            if delivery == TokenDelivery::Cookie {
                cookies::clear_tokens(response.headers_mut(), &state.config);
            }
            Ok(response)
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogoutRequest {
    #[serde(default, alias = "refresh_token")]
    pub refresh_token: Option<String>,
}

/// Sign out: revokes the current session and clears the cookies. 200 whether or not a session
/// was found; 4xx only for a body that is not a `LogoutRequest`.
#[utoipa::path(post, path = "/logout", tag = "login", request_body(content = LogoutRequest, description = "Optional"),
    responses((status = 200, body = StatusBody)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    // No body is fine (the cookie says which session); a body that is not a LogoutRequest is a
    // client error like everywhere else, not silently ignored.
    let req: LogoutRequest = optional_body(&body)?;
    // The session to end: from a valid access token, else from the (current) refresh token.
    let target = match caller {
        Some(user) => Some((user.session_id, user.user_id)),
        None => match req
            .refresh_token
            .or_else(|| cookies::read(&headers, REFRESH_COOKIE))
        {
            Some(refresh) => sessions::find_by_current_refresh(&state, &refresh).await?,
            None => None,
        },
    };
    if let Some((session_id, user_id)) = target {
        sessions::end(&state, &session_id, &user_id).await?;
    }
    let mut headers = HeaderMap::new();
    cookies::clear_tokens(&mut headers, &state.config);
    Ok((
        headers,
        ApiJson(StatusBody::success("logout", "Logged out.")),
    )
        .into_response())
}

/// The failed-password counters of an address: per address *and client* (the tight one, so a
/// guesser elsewhere cannot lock the real user out), and per address from everywhere (the loose
/// ceiling on distributed guessing). `None` email: a malformed one. Shared by login and
/// change-password, so a stolen session cannot guess the password faster than a login could.
pub(crate) struct FailureKeys {
    client: String,
    account: String,
}

pub(crate) fn failure_key(
    state: &AppState,
    email: Option<&str>,
    ip: Option<IpAddr>,
) -> FailureKeys {
    let email = email.unwrap_or("invalid");
    FailureKeys {
        client: format!(
            "login-fail:{email}:{}",
            state.config.rate_limit.client_key(ip)
        ),
        account: format!("login-fail:{email}"),
    }
}

/// 429 while the address has had too many failed password checks in the current window, from
/// this client or from all of them.
pub(crate) async fn refuse_when_throttled(state: &AppState, keys: &FailureKeys) -> ApiResult<()> {
    let rl = &state.config.rate_limit;
    if !rl.enabled {
        return Ok(());
    }
    let now = state.clock.now();
    let window = rl.login_failure_window;
    let from_client = state.limiter.peek(&keys.client, window, now).await;
    let from_all = state.limiter.peek(&keys.account, window, now).await;
    if from_client >= u64::from(rl.login_failures)
        || from_all >= u64::from(rl.login_failures_per_account)
    {
        let retry_after_secs = u64::try_from(window - now.rem_euclid(window))
            .unwrap_or(1)
            .max(1);
        state.metrics.failed_logins.inc();
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    Ok(())
}

/// Counts one failed password check on both counters.
pub(crate) async fn count_failure(state: &AppState, keys: &FailureKeys, now: i64) {
    state.metrics.failed_logins.inc();
    let rl = &state.config.rate_limit;
    if rl.enabled {
        for key in [&keys.client, &keys.account] {
            let _ = state
                .limiter
                .hit(key, u32::MAX, rl.login_failure_window, now)
                .await;
        }
    }
}
