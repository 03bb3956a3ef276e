//! Password reset (by email link) and change (signed in).
//!
//! reset-password answers the same whether or not the address has an account. complete-reset revokes
//! every session; change-password revokes every session too and opens a fresh one for the caller, so
//! tokens stolen before the change (access or refresh) stop working at once.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::domain::{Email, Password};
use crate::email::{Lang, Template};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::http::ratelimit::{per_client, Limit};
use crate::http::{ApiJson, AuthUser, ClientInfo};
use crate::routes::issue::{respond, TokenDelivery};
use crate::routes::registration::{link, EmailRequest};
use crate::routes::{ErrorBody, StatusBody};
use crate::state::AppState;
use crate::store::one_time::{self, Purpose};
use crate::store::users;

pub(crate) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Every route here sends an email or hashes a password: all are rate limited.
        .routes(routes!(reset_password))
        .routes(routes!(complete_reset))
        .routes(routes!(change_password))
        // A route layer covers the routes added above it.
        .route_layer(per_client(state, Limit::Auth))
}

fn user_lang(locale: Option<&str>, accept_language: Option<&str>) -> Lang {
    locale
        .and_then(Lang::parse)
        .unwrap_or_else(|| Lang::from_accept_language(accept_language))
}

/// Start a password reset: emails a link when the account exists. Always 200.
#[utoipa::path(post, path = "/reset-password", tag = "password", request_body = EmailRequest,
    responses((status = 200, body = StatusBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<ApiJson<StatusBody>> {
    let email = Email::parse(&req.email)?;
    if !crate::http::ratelimit::recipient_allowed(&state, email.as_str()).await {
        return Ok(ApiJson(StatusBody::success(
            "resetPassword",
            "If the account exists, a password reset email has been sent.",
        )));
    }
    let token = crate::crypto::random_token()?;
    let mut uow = state.unit_of_work().await?;
    let now = uow.now();
    let user = users::find_by_email(&mut uow, &email).await?;
    // The token row is written either way so both paths do the same work; without an account
    // nobody receives it, and complete-reset refuses it.
    one_time::replace(
        &mut uow,
        Purpose::Reset,
        &email,
        &token,
        now,
        state.config.tokens.one_time_ttl,
    )
    .await?;
    // Both branches render the email and write one outbox row (see `suppressed_email`); only
    // a real account's is delivered and recorded as an event.
    let url = link(
        &state,
        &state.config.frontend.reset_password_path,
        &token,
        &email,
    );
    let locale = user.as_ref().and_then(|u| u.locale.as_deref());
    let lang = user_lang(locale, client.accept_language.as_deref());
    let ttl_minutes = state.config.tokens.one_time_ttl / 60;
    let template = Template::Reset { link: &url };
    match &user {
        Some(user) => {
            uow.email(email.as_str(), &template, lang, ttl_minutes)
                .await?;
            let event = Event::PasswordResetStarted {
                email: email.as_str().to_string(),
            };
            uow.record(Some(&user.user_id), event).await?;
        }
        None => {
            uow.suppressed_email(email.as_str(), &template, lang, ttl_minutes)
                .await?;
        }
    }
    uow.commit().await?;
    Ok(ApiJson(StatusBody::success(
        "resetPassword",
        "If the account exists, a password reset email has been sent.",
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CompleteResetRequest {
    pub email: String,
    pub token: String,
    #[serde(alias = "new_password")]
    #[schema(min_length = 8, max_length = 128, example = "NewPass123!")]
    pub new_password: String,
}

/// Set a new password with the emailed token; signs out every session.
#[utoipa::path(post, path = "/complete-reset", tag = "password", request_body = CompleteResetRequest,
    responses((status = 200, body = StatusBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn complete_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<CompleteResetRequest>,
) -> ApiResult<ApiJson<StatusBody>> {
    const INVALID: ApiError = ApiError::Unauthorized("Invalid or expired reset token");
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.new_password)?;
    // The cheap check first: a wrong token costs a lookup, not a password hash. (It is checked
    // again, and used up, in the transaction below; the hash is made outside it so no write
    // lock is held while it runs.)
    {
        let mut conn = state.db.acquire().await?;
        if !one_time::check(
            &mut conn,
            Purpose::Reset,
            &email,
            &req.token,
            state.clock.now(),
        )
        .await?
        {
            return Err(INVALID);
        }
    }
    let hash = state.hasher.hash(password.expose()).await?;
    let mut uow = state.unit_of_work().await?;
    let now = uow.now();
    if !one_time::consume(&mut uow, Purpose::Reset, &email, &req.token, now).await? {
        return Err(INVALID);
    }
    // A token issued for an address without an account: same answer as a wrong token.
    let user = users::find_by_email(&mut uow, &email)
        .await?
        .ok_or(INVALID)?;
    users::set_password_hash(&mut uow, &user.user_id, &hash, now).await?;
    let revoked_sessions = uow.revoke_all_sessions(&user.user_id, None).await?;
    uow.record(
        Some(&user.user_id),
        Event::PasswordReset { revoked_sessions },
    )
    .await?;
    let lang = user_lang(user.locale.as_deref(), client.accept_language.as_deref());
    uow.email(&user.email, &Template::PasswordChanged, lang, 0)
        .await?;
    uow.commit().await?;
    Ok(ApiJson(StatusBody::success(
        "completeReset",
        "Password has been reset.",
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChangePasswordRequest {
    /// The current password.
    pub password: String,
    #[serde(alias = "new_password")]
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    #[serde(default, alias = "token_delivery")]
    pub token_delivery: Option<TokenDelivery>,
}

/// Change the password; other sessions are signed out and this one gets fresh tokens.
#[utoipa::path(post, path = "/change-password", tag = "password", request_body = ChangePasswordRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = StatusBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Response> {
    let new_password = Password::parse(&req.new_password)?;
    let user = {
        let mut conn = state.db.acquire().await?;
        users::find_by_id(&mut conn, &auth.user_id)
            .await?
            .ok_or(ApiError::Unauthorized("Invalid or expired token"))?
    };
    let current: String = req.password.chars().take(256).collect();
    // Throttled like failed logins, on the same counter: a stolen session must not be a faster
    // way to guess the password.
    let throttle_key = crate::routes::login::failure_key(&state, Some(&user.email), client.ip);
    crate::routes::login::refuse_when_throttled(&state, &throttle_key).await?;
    if !state
        .hasher
        .verify(&current, Some(&user.password_hash))
        .await?
        .ok
    {
        crate::routes::login::count_failure(&state, &throttle_key, state.clock.now()).await;
        return Err(ApiError::Unauthorized("Invalid credentials"));
    }
    let hash = state.hasher.hash(new_password.expose()).await?;
    let mut uow = state.unit_of_work().await?;
    let now = uow.now();
    users::set_password_hash(&mut uow, &user.user_id, &hash, now).await?;
    let revoked_sessions = uow.revoke_all_sessions(&user.user_id, None).await?;
    let issued = crate::sessions::open(
        &state,
        &mut uow,
        &user.user_id,
        user.role,
        client.ip,
        client.user_agent.as_deref(),
    )
    .await?;
    let event = Event::PasswordChanged {
        revoked_sessions,
        session_id: issued.session_id.clone(),
    };
    uow.record(Some(&user.user_id), event).await?;
    let lang = user_lang(user.locale.as_deref(), client.accept_language.as_deref());
    uow.email(&user.email, &Template::PasswordChanged, lang, 0)
        .await?;
    uow.commit().await?;
    // Answer the way the caller authenticated: cookie clients get cookies, Bearer clients the body.
    // A cookie-authenticated caller gets cookies whatever it asks for: cookies are never
    // exchanged for tokens a page script can read.
    let delivery = match auth.source {
        crate::http::TokenSource::Cookie => TokenDelivery::Cookie,
        crate::http::TokenSource::Header => req.token_delivery.unwrap_or(TokenDelivery::Body),
    };
    respond(
        &state,
        &issued,
        delivery,
        StatusBody::success("changePassword", "Password changed."),
    )
}
