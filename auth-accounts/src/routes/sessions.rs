//! The signed-in user: profile and sessions (list, end one, end all others).

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, RevokeReason};
use crate::http::ratelimit::{per_client, Limit};
use crate::http::{ApiJson, AuthUser};
use crate::routes::{ErrorBody, StatusBody};
use crate::state::AppState;
use crate::store::{sessions, users};

pub(crate) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout_others))
        // A route layer covers the routes added above it.
        .route_layer(per_client(state, Limit::Auth))
        .routes(routes!(me))
        .routes(routes!(list))
        .routes(routes!(revoke))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MeBody {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub country: String,
    /// 0 user, 1 admin, 2 moderator.
    pub role: i64,
    pub last_login: Option<String>,
    pub created_at: String,
}

/// The current user.
#[utoipa::path(get, path = "/me", tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = MeBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<ApiJson<MeBody>> {
    let mut conn = state.db.acquire().await?;
    let user = users::find_by_id(&mut conn, &auth.user_id)
        .await?
        .ok_or(ApiError::Unauthorized("Invalid or expired token"))?;
    Ok(ApiJson(MeBody {
        user_id: user.user_id,
        email: user.email,
        name: user.name,
        country: user.country,
        role: user.role,
        last_login: user.last_login.map(rfc3339),
        created_at: rfc3339(user.created_at),
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionBody {
    pub session_id: String,
    #[schema(example = "Chrome on Windows")]
    pub device_name: String,
    #[schema(example = "Moscow, Russia")]
    pub location: String,
    pub ip: Option<String>,
    pub created_at: String,
    pub last_activity: String,
    pub is_current_session: bool,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SessionsBody {
    pub sessions: Vec<SessionBody>,
}

/// Live sessions of the current user (revoked and expired ones are not listed).
#[utoipa::path(get, path = "/sessions", tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = SessionsBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<ApiJson<SessionsBody>> {
    let mut conn = state.db.acquire().await?;
    let rows = sessions::list_active(&mut conn, &auth.user_id, state.clock.now()).await?;
    let sessions = rows
        .into_iter()
        .map(|s| SessionBody {
            is_current_session: s.session_id == auth.session_id,
            session_id: s.session_id,
            device_name: s.device_name,
            location: s.location,
            ip: s.ip,
            created_at: rfc3339(s.created_at),
            last_activity: rfc3339(s.last_activity),
        })
        .collect();
    Ok(ApiJson(SessionsBody { sessions }))
}

/// End one of the current user's sessions. Someone else's or an unknown id: 404.
#[utoipa::path(delete, path = "/sessions/{session_id}", tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    params(("session_id" = String, Path, description = "Session id (UUID)")),
    responses((status = 200, body = StatusBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(session_id): Path<String>,
) -> ApiResult<ApiJson<StatusBody>> {
    let id = uuid::Uuid::parse_str(&session_id)
        .map_err(|_| ApiError::Validation("session_id must be a UUID".into()))?;
    let id = id.hyphenated().to_string();
    let mut uow = state.unit_of_work().await?;
    if !uow.revoke_session(&id, &auth.user_id).await? {
        return Err(ApiError::NotFound("Session not found"));
    }
    let event = Event::SessionRevoked {
        session_id: id,
        reason: RevokeReason::User,
    };
    uow.record(Some(&auth.user_id), event).await?;
    uow.commit().await?;
    Ok(ApiJson(StatusBody::success(
        "revokeSession",
        "Session revoked.",
    )))
}

/// End every session of the current user except this one.
#[utoipa::path(post, path = "/sessions/logout-others", tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = StatusBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn logout_others(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<ApiJson<StatusBody>> {
    let mut uow = state.unit_of_work().await?;
    let revoked = uow
        .revoke_all_sessions(&auth.user_id, Some(&auth.session_id))
        .await?;
    for id in &revoked {
        let event = Event::SessionRevoked {
            session_id: id.clone(),
            reason: RevokeReason::LogoutOthers,
        };
        uow.record(Some(&auth.user_id), event).await?;
    }
    uow.commit().await?;
    Ok(ApiJson(StatusBody::success(
        "revokeOtherSessions",
        format!("{} other session(s) revoked.", revoked.len()),
    )))
}
