//! Registration with email verification: verify-email -> (email link) -> verify-link ->
//! complete-registration.
//!
//! By default verify-email answers the same thing, after the same work, whether or not the address
//! is registered; only the email differs ("finish signing up" vs "you already have an account"), so
//! the endpoint cannot be used to discover accounts. `VERIFY_EMAIL_MODE=identifier-first` restores
//! the old service's `sign_in` answer for registered addresses (the SmartBudget frontend signs in
//! that way); see [`crate::config::VerifyEmailMode`].

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::config::VerifyEmailMode;
use crate::domain::{Country, Email, Name, Password};
use crate::email::{Lang, Template};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::http::ratelimit::{per_client, Limit};
use crate::http::{ApiJson, ClientInfo};
use crate::routes::issue::{respond, TokenDelivery};
use crate::routes::{ErrorBody, StatusBody};
use crate::sessions;
use crate::state::AppState;
use crate::store::one_time::{self, Purpose};
use crate::store::{is_unique_violation, users};

pub(crate) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_email))
        .routes(routes!(complete_registration))
        // A route layer covers the routes added above it: verify-link is not limited.
        .route_layer(per_client(state, Limit::Auth))
        .routes(routes!(verify_link))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct EmailRequest {
    #[schema(example = "user@example.com")]
    pub email: String,
}

/// An emailed link to a frontend route (`FRONTEND_*_PATH` below `FRONTEND_URL`).
pub(crate) fn link(state: &AppState, path: &str, token: &str, email: &Email) -> String {
    crate::config::link(
        &state.config.http.frontend_url,
        path,
        &[("token", token), ("email", email.as_str())],
    )
}

fn ttl_minutes(state: &AppState) -> i64 {
    state.config.tokens.one_time_ttl / 60
}

/// Start registration: emails a verification link (or an "already registered" notice).
#[utoipa::path(post, path = "/verify-email", tag = "registration", request_body = EmailRequest,
    responses((status = 200, body = StatusBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<ApiJson<StatusBody>> {
    let email = Email::parse(&req.email)?;
    if !crate::http::ratelimit::recipient_allowed(&state, email.as_str()).await {
        return Ok(ApiJson(StatusBody::success(
            "sign_up",
            "Verification email sent.",
        )));
    }
    let lang = Lang::from_accept_language(client.accept_language.as_deref());
    let token = crate::crypto::random_token()?;
    let mut uow = state.unit_of_work().await?;
    let now = uow.now();
    let existing = users::find_by_email(&mut uow, &email).await?;
    if existing.is_some() && state.config.frontend.verify_email == VerifyEmailMode::IdentifierFirst
    {
        // The old service's answer: go on to the password step; nothing is emailed (the unit of
        // work is dropped uncommitted: nothing is written either).
        return Ok(ApiJson(StatusBody::success("sign_in", "Complete sign in.")));
    }
    // The same writes on both paths (token row, email row, event) keep the timing alike.
    one_time::replace(
        &mut uow,
        Purpose::Verification,
        &email,
        &token,
        now,
        state.config.tokens.one_time_ttl,
    )
    .await?;
    let template_links;
    let template = match &existing {
        None => {
            template_links = link(
                &state,
                &state.config.frontend.registration_path,
                &token,
                &email,
            );
            Template::Verification {
                link: &template_links,
            }
        }
        Some(_) => {
            // The frontend's password reset starts on its sign-in page, so that is the one link.
            template_links = crate::config::link(
                &state.config.http.frontend_url,
                &state.config.frontend.sign_in_path,
                &[],
            );
            Template::AlreadyRegistered {
                login_link: &template_links,
            }
        }
    };
    uow.email(email.as_str(), &template, lang, ttl_minutes(&state))
        .await?;
    let user_id = existing.as_ref().map(|u| u.user_id.as_str());
    let event = Event::VerificationStarted {
        email: email.as_str().to_string(),
    };
    uow.record(user_id, event).await?;
    uow.commit().await?;
    Ok(ApiJson(StatusBody::success(
        "sign_up",
        "Verification email sent.",
    )))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LinkQuery {
    pub token: Option<String>,
    pub email: Option<String>,
    /// `verification` (default) or `reset`.
    #[serde(alias = "tokenType")]
    #[param(pattern = "^(verification|reset)$")]
    pub token_type: Option<String>,
}

/// Check an emailed link without using it up.
#[utoipa::path(get, path = "/verify-link", tag = "registration", params(LinkQuery),
    responses((status = 200, body = StatusBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn verify_link(
    State(state): State<AppState>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<StatusBody>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let purpose = match q.token_type.as_deref().unwrap_or("verification") {
        "verification" => Purpose::Verification,
        "reset" => Purpose::Reset,
        _ => {
            return Err(ApiError::BadRequest(
                "token_type must be verification or reset".into(),
            ))
        }
    };
    let (Some(token), Some(email)) = (q.token, q.email) else {
        return Err(ApiError::BadRequest("token and email are required".into()));
    };
    const INVALID: ApiError = ApiError::Unauthorized("Invalid or expired link");
    let email = Email::parse(&email).map_err(|_| INVALID)?;
    let mut uow = state.unit_of_work().await?;
    let now = uow.now();
    if !one_time::check(&mut uow, purpose, &email, &token, now).await? {
        return Err(INVALID);
    }
    let address = email.as_str().to_string();
    let event = match purpose {
        Purpose::Verification => Event::VerificationValidated { email: address },
        Purpose::Reset => Event::PasswordResetValidated { email: address },
    };
    let user_id = users::find_by_email(&mut uow, &email)
        .await?
        .map(|u| u.user_id);
    uow.record(user_id.as_deref(), event).await?;
    uow.commit().await?;
    Ok(ApiJson(StatusBody::success(
        "verify_link",
        "Link is valid.",
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CompleteRegistrationRequest {
    pub email: String,
    pub token: String,
    #[schema(min_length = 8, max_length = 128, example = "SecurePass123!")]
    pub password: String,
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "John Doe"
    )]
    pub name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Russia"
    )]
    pub country: String,
    #[serde(default, alias = "token_delivery")]
    pub token_delivery: TokenDelivery,
}

/// Finish registration: creates the account and signs it in.
#[utoipa::path(post, path = "/complete-registration", tag = "registration", request_body = CompleteRegistrationRequest,
    responses((status = 200, body = StatusBody, description = "Signed in: cookies set, or tokens in the body"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn complete_registration(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<CompleteRegistrationRequest>,
) -> ApiResult<Response> {
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.password)?;
    let name = Name::parse(&req.name)?;
    let country = Country::parse(&req.country)?;
    let lang = Lang::from_accept_language(client.accept_language.as_deref());
    // Hash before the transaction: it takes a while and must not hold a database lock.
    let password_hash = state.hasher.hash(password.expose()).await?;
    let mut uow = state.unit_of_work().await?;
    let now = uow.now();
    if !one_time::consume(&mut uow, Purpose::Verification, &email, &req.token, now).await? {
        return Err(ApiError::Unauthorized(
            "Invalid or expired verification token",
        ));
    }
    let user_id = uuid::Uuid::new_v4().to_string();
    let inserted = users::insert(
        &mut uow,
        users::NewUser {
            user_id: &user_id,
            email: &email,
            password_hash: &password_hash,
            name: &name,
            country: &country,
            locale: lang.as_str(),
            now,
        },
    )
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict("Email is already registered"))
        }
        other => other?,
    }
    let issued = sessions::open(
        &state,
        &mut uow,
        &user_id,
        0,
        client.ip,
        client.user_agent.as_deref(),
    )
    .await?;
    users::touch_last_login(&mut uow, &user_id, now).await?;
    let event = Event::Registered {
        email: email.as_str().to_string(),
        name: name.as_str().to_string(),
        country: country.as_str().to_string(),
        session_id: issued.session_id.clone(),
    };
    uow.record(Some(&user_id), event).await?;
    uow.commit().await?;
    let body = json!({ "status": "success", "action": "completeRegistration", "detail": "Registration completed.", "userId": user_id });
    respond(&state, &issued, req.token_delivery, body)
}
