//! Sessions, the domain side: opening one (login, registration, password change), signing its
//! access tokens, and the refresh state machine (rotation with reuse detection). No HTTP here:
//! the routes turn [`SessionError`] into answers and [`Issued`] into cookies or a body.

use std::net::IpAddr;

use auth_token::{Claims, Role, SessionId, UserId};

use crate::crypto::{hex, next_refresh_token, random_bytes, random_token, sha256_hex, CryptoError};
use crate::domain::device_name;
use crate::events::{Event, RevokeReason};
use crate::state::AppState;
use crate::store::{sessions, users};
use crate::unit_of_work::UnitOfWork;

/// The tokens of a session just opened or refreshed.
pub(crate) struct Issued {
    pub session_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// Unknown, expired, revoked, or reused (the session is revoked then).
    #[error("invalid or expired refresh token")]
    InvalidRefresh,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("signing the access token: {0}")]
    Sign(#[from] auth_token::Error),
    /// A stored id or role that makes no valid claim (a role outside 0..=2 is a bug to surface,
    /// not a "user" to sign for).
    #[error("the session's user, id or role makes no valid claim: {0}")]
    Claims(#[source] auth_token::Error),
}

/// Refresh tokens are 43 characters; anything much longer is not one (and is not hashed).
const MAX_REFRESH_LEN: usize = 128;

/// Signs an access token for a session.
pub(crate) fn sign_access(
    state: &AppState,
    user_id: &str,
    role: i64,
    session_id: &str,
) -> Result<String, SessionError> {
    let now = state.clock.now();
    let tokens = &state.config.tokens;
    let claims = Claims {
        sub: UserId::parse(user_id).map_err(SessionError::Claims)?,
        sid: SessionId::parse(session_id).map_err(SessionError::Claims)?,
        role: Role::try_from(role).map_err(SessionError::Claims)?,
        iss: tokens.issuer.clone(),
        aud: tokens.audience.clone(),
        iat: now,
        exp: tokens.lifetime().expires_at(now),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    Ok(auth_token::sign(&claims, &state.keys().signing)?)
}

/// Creates a session (and its refresh family) inside the caller's unit of work.
pub(crate) async fn open(
    state: &AppState,
    uow: &mut UnitOfWork,
    user_id: &str,
    role: i64,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> Result<Issued, SessionError> {
    let now = uow.now();
    let session_id = uuid::Uuid::new_v4().to_string();
    let refresh_token = random_token()?;
    let key = random_bytes::<32>()?;
    let ip_text = ip.map(|ip| ip.to_string());
    sessions::insert(
        uow,
        sessions::NewSession {
            session_id: &session_id,
            user_id,
            user_agent,
            device_name: &device_name(user_agent),
            ip: ip_text.as_deref(),
            location: &state.geoip.locate(ip),
            refresh_key: &hex(&key),
            first_token_hash: &sha256_hex(&refresh_token),
            now,
            expires_at: state.config.tokens.session_expiry(now, now),
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

/// The refresh state machine. The presented token is either the family's current one (rotate),
/// the one just before it within the grace window (a retry or a racing tab: answer with the same
/// successor, derived deterministically), or anything older (reuse: revoke the whole family).
pub(crate) async fn refresh(
    state: &AppState,
    token: &str,
    ip: Option<IpAddr>,
) -> Result<Issued, SessionError> {
    if token.len() > MAX_REFRESH_LEN {
        return Err(SessionError::InvalidRefresh);
    }
    let hash = sha256_hex(token);
    let ip = ip.map(|i| i.to_string());
    // Two passes at most: when a concurrent request wins the compare-and-set, look again.
    for _ in 0..2 {
        let mut uow = state.unit_of_work().await?;
        let now = uow.now();
        let Some((generation, session)) = sessions::find_by_refresh_hash(&mut uow, &hash).await?
        else {
            return Err(SessionError::InvalidRefresh);
        };
        if !session.is_active(now) {
            return Err(SessionError::InvalidRefresh);
        }
        let user = users::find_by_id(&mut uow, &session.user_id)
            .await?
            .ok_or(SessionError::InvalidRefresh)?;
        let next = next_refresh_token(&session.refresh_key, token);
        let issued = |session_id: String, refresh_token: String| -> Result<Issued, SessionError> {
            Ok(Issued {
                access_token: sign_access(state, &user.user_id, user.role, &session_id)?,
                session_id,
                refresh_token,
            })
        };
        if generation == session.refresh_generation {
            let expires_at = state.config.tokens.session_expiry(session.created_at, now);
            let rotated = sessions::rotate(
                &mut uow,
                &session.session_id,
                generation,
                now,
                expires_at,
                ip.as_deref(),
            )
            .await?;
            if !rotated {
                continue;
            }
            let next_hash = sha256_hex(&next);
            sessions::add_refresh_token(
                &mut uow,
                &next_hash,
                &session.session_id,
                generation + 1,
                now,
            )
            .await?;
            let event = Event::TokenRefreshed {
                session_id: session.session_id.clone(),
                generation: generation + 1,
            };
            uow.record(Some(&user.user_id), event).await?;
            uow.commit().await?;
            return issued(session.session_id, next);
        }
        let within_grace = now - session.rotated_at <= state.config.tokens.refresh_grace;
        // The grace answer goes only to the address that rotated (a retry, a second tab): a
        // copy of the previous token replayed from elsewhere within the window is reuse. Both
        // addresses must be known to differ (a client behind no trusted proxy is the proxy).
        let same_client = match (ip.as_deref(), session.ip.as_deref()) {
            (Some(now_ip), Some(rotated_ip)) => now_ip == rotated_ip,
            _ => true,
        };
        if generation + 1 == session.refresh_generation && within_grace && same_client {
            // Same successor as the first answer; prove it is really the current token.
            let next_hash = sha256_hex(&next);
            let current = sessions::has_refresh_token(
                &mut uow,
                &next_hash,
                &session.session_id,
                session.refresh_generation,
            )
            .await?;
            if current {
                uow.commit().await?;
                return issued(session.session_id, next);
            }
        }
        // An old generation came back: someone holds a copy of a rotated token. Revoke the family.
        uow.revoke_session(&session.session_id, &user.user_id)
            .await?;
        let reused = Event::RefreshTokenReused {
            session_id: session.session_id.clone(),
            presented_generation: generation,
            current_generation: session.refresh_generation,
            ip: ip.clone(),
        };
        uow.record(Some(&user.user_id), reused).await?;
        let revoked = Event::SessionRevoked {
            session_id: session.session_id.clone(),
            reason: RevokeReason::RefreshTokenReused,
        };
        uow.record(Some(&user.user_id), revoked).await?;
        uow.commit().await?;
        tracing::warn!(session_id = %session.session_id, user_id = %user.user_id, "refresh token reuse detected; session revoked");
        return Err(SessionError::InvalidRefresh);
    }
    Err(SessionError::InvalidRefresh)
}

/// The session (and its user) whose *current* refresh token this is; an older copy names none,
/// so it cannot end the session (logout).
pub(crate) async fn find_by_current_refresh(
    state: &AppState,
    token: &str,
) -> Result<Option<(String, String)>, SessionError> {
    if token.len() > MAX_REFRESH_LEN {
        return Ok(None);
    }
    let mut conn = state.db.acquire().await?;
    let found = sessions::find_by_refresh_hash(&mut conn, &sha256_hex(token)).await?;
    Ok(found
        .filter(|(generation, session)| *generation == session.refresh_generation)
        .map(|(_, session)| (session.session_id, session.user_id)))
}

/// Ends a session (logout); `false` when it was not live any more.
pub(crate) async fn end(
    state: &AppState,
    session_id: &str,
    user_id: &str,
) -> Result<bool, SessionError> {
    let mut uow = state.unit_of_work().await?;
    let ended = uow.revoke_session(session_id, user_id).await?;
    if ended {
        let event = Event::Logout {
            session_id: session_id.to_string(),
        };
        uow.record(Some(user_id), event).await?;
    }
    uow.commit().await?;
    Ok(ended)
}
