//! Password reset (by email link) and change (signed in).
//!
//! reset-password answers the same whether or not the address has an account. complete-reset revokes
//! every session; change-password revokes every session too and opens a fresh one for the caller, so
//! tokens stolen before the change (access or refresh) stop working at once.

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::{Email, Password};
use crate::email::{Lang, Template};
use crate::error::{ApiError, ApiResult};
use crate::http::{ApiJson, AuthUser, ClientInfo};
use crate::outbox::{events, queue_email, record_event};
use crate::routes::issue::{open_session, respond, TokenDelivery};
use crate::routes::registration::{link, EmailRequest};
use crate::routes::{ErrorBody, StatusBody};
use crate::state::AppState;
use crate::store::one_time::{self, Purpose};
use crate::store::{sessions, users};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/reset-password", post(reset_password))
        .route("/api/v1/auth/complete-reset", post(complete_reset))
        .route("/api/v1/auth/change-password", post(change_password))
}

fn user_lang(locale: Option<&str>, accept_language: Option<&str>) -> Lang {
    locale
        .and_then(Lang::parse)
        .unwrap_or_else(|| Lang::from_accept_language(accept_language))
}

/// Start a password reset: emails a link when the account exists. Always 200.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "password", request_body = EmailRequest,
    responses((status = 200, body = StatusBody), (status = 422, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<ApiJson<StatusBody>> {
    let email = Email::parse(&req.email)?;
    let now = state.clock.now();
    let token = crate::crypto::random_token()?;
    let mut tx = state.begin().await?;
    let user = users::find_by_email(&mut tx, &email).await?;
    // The token row is written either way so both paths do the same work; without an account
    // nobody receives it, and complete-reset refuses it.
    one_time::replace(
        &mut tx,
        Purpose::Reset,
        &email,
        &token,
        now,
        state.config.one_time_token_ttl,
    )
    .await?;
    if let Some(user) = &user {
        let url = link(
            &state,
            &state.config.frontend.reset_password_path,
            &token,
            &email,
        );
        let lang = user_lang(user.locale.as_deref(), client.accept_language.as_deref());
        queue_email(
            &mut tx,
            email.as_str(),
            &Template::Reset { link: &url },
            lang,
            state.config.one_time_token_ttl / 60,
            now,
        )
        .await?;
        record_event(
            &mut tx,
            state.topic(),
            events::PASSWORD_RESET_STARTED,
            Some(&user.user_id),
            json!({ "email": email.as_str() }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    state.mail_notify.notify_one();
    Ok(ApiJson(StatusBody::success(
        "resetPassword",
        "If the account exists, a password reset email has been sent.",
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResetRequest {
    pub email: String,
    pub token: String,
    #[serde(alias = "new_password")]
    #[schema(min_length = 8, max_length = 128, example = "NewPass123!")]
    pub new_password: String,
}

/// Set a new password with the emailed token; signs out every session.
#[utoipa::path(post, path = "/api/v1/auth/complete-reset", tag = "password", request_body = CompleteResetRequest,
    responses((status = 200, body = StatusBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn complete_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<CompleteResetRequest>,
) -> ApiResult<ApiJson<StatusBody>> {
    const INVALID: ApiError = ApiError::Unauthorized("Invalid or expired reset token");
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.new_password)?;
    let hash = state.hasher.hash(password.expose()).await?;
    let now = state.clock.now();
    let mut tx = state.begin().await?;
    if !one_time::consume(&mut tx, Purpose::Reset, &email, &req.token, now).await? {
        return Err(INVALID);
    }
    // A token issued for an address without an account: same answer as a wrong token.
    let user = users::find_by_email(&mut tx, &email)
        .await?
        .ok_or(INVALID)?;
    users::set_password_hash(&mut tx, &user.user_id, &hash, now).await?;
    let revoked = sessions::revoke_all(&mut tx, &user.user_id, None, now).await?;
    record_event(
        &mut tx,
        state.topic(),
        events::PASSWORD_RESET,
        Some(&user.user_id),
        json!({ "revokedSessions": revoked }),
        now,
    )
    .await?;
    let lang = user_lang(user.locale.as_deref(), client.accept_language.as_deref());
    queue_email(
        &mut tx,
        &user.email,
        &Template::PasswordChanged,
        lang,
        0,
        now,
    )
    .await?;
    tx.commit().await?;
    state.mail_notify.notify_one();
    Ok(ApiJson(StatusBody::success(
        "completeReset",
        "Password has been reset.",
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    /// The current password.
    pub password: String,
    #[serde(alias = "new_password")]
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    #[serde(default, alias = "token_delivery")]
    pub token_delivery: Option<TokenDelivery>,
}

/// Change the password; other sessions are signed out and this one gets fresh tokens.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "password", request_body = ChangePasswordRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = StatusBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
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
    if !state
        .hasher
        .verify(&current, Some(&user.password_hash))
        .await?
        .ok
    {
        return Err(ApiError::Unauthorized("Invalid credentials"));
    }
    let hash = state.hasher.hash(new_password.expose()).await?;
    let now = state.clock.now();
    let mut tx = state.begin().await?;
    users::set_password_hash(&mut tx, &user.user_id, &hash, now).await?;
    let revoked = sessions::revoke_all(&mut tx, &user.user_id, None, now).await?;
    let issued = open_session(&state, &mut tx, &user.user_id, user.role, &client).await?;
    let data = json!({ "revokedSessions": revoked, "sessionId": issued.session_id });
    record_event(
        &mut tx,
        state.topic(),
        events::PASSWORD_CHANGED,
        Some(&user.user_id),
        data,
        now,
    )
    .await?;
    let lang = user_lang(user.locale.as_deref(), client.accept_language.as_deref());
    queue_email(
        &mut tx,
        &user.email,
        &Template::PasswordChanged,
        lang,
        0,
        now,
    )
    .await?;
    tx.commit().await?;
    state.mail_notify.notify_one();
    // Answer the way the caller authenticated: cookie clients get cookies, Bearer clients the body.
    let delivery = req.token_delivery.unwrap_or(match auth.source {
        crate::http::TokenSource::Cookie => TokenDelivery::Cookie,
        crate::http::TokenSource::Header => TokenDelivery::Body,
    });
    respond(
        &state,
        &issued,
        delivery,
        StatusBody::success("changePassword", "Password changed."),
    )
}
