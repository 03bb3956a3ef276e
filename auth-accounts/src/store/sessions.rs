//! Sessions and their refresh-token families.
//!
//! A session row is one login on one device and doubles as the refresh family: `refresh_generation`
//! is the generation of the only refresh token that may rotate; every token ever issued is kept by
//! hash in `refresh_tokens` so an old one coming back is recognised (reuse) rather than unknown.

use sqlx::FromRow;

use super::Conn;

#[derive(Clone, Debug, FromRow)]
pub(crate) struct Session {
    pub session_id: String,
    pub user_id: String,
    pub device_name: String,
    pub ip: Option<String>,
    pub location: String,
    pub created_at: i64,
    pub last_activity: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub refresh_generation: i64,
    pub refresh_key: String,
    pub rotated_at: i64,
}

impl Session {
    pub(crate) fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

const COLUMNS: &str =
    "s.session_id, s.user_id, s.device_name, s.ip, s.location, s.created_at, s.last_activity, \
     s.expires_at, s.revoked_at, s.refresh_generation, s.refresh_key, s.rotated_at";

pub(crate) struct NewSession<'a> {
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub user_agent: Option<&'a str>,
    pub device_name: &'a str,
    pub ip: Option<&'a str>,
    pub location: &'a str,
    pub refresh_key: &'a str,
    pub first_token_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub(crate) async fn insert(conn: &mut Conn, s: NewSession<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (session_id, user_id, user_agent, device_name, ip, location, created_at, last_activity,
             expires_at, refresh_generation, refresh_key, rotated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, 0, $9, $7)",
    )
    .bind(s.session_id)
    .bind(s.user_id)
    .bind(s.user_agent)
    .bind(s.device_name)
    .bind(s.ip)
    .bind(s.location)
    .bind(s.now)
    .bind(s.expires_at)
    .bind(s.refresh_key)
    .execute(&mut *conn)
    .await?;
    add_refresh_token(conn, s.first_token_hash, s.session_id, 0, s.now).await
}

pub(crate) async fn add_refresh_token(
    conn: &mut Conn,
    hash: &str,
    session_id: &str,
    generation: i64,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at) VALUES ($1, $2, $3, $4)")
        .bind(hash)
        .bind(session_id)
        .bind(generation)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The session a refresh token belongs to, with the generation of that token.
pub(crate) async fn find_by_refresh_hash(
    conn: &mut Conn,
    hash: &str,
) -> sqlx::Result<Option<(i64, Session)>> {
    let row = sqlx::query(&format!(
        "SELECT t.generation AS token_generation, {COLUMNS} FROM refresh_tokens t
         JOIN sessions s ON s.session_id = t.session_id WHERE t.token_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            use sqlx::Row as _;
            let generation: i64 = row.try_get("token_generation")?;
            Ok(Some((generation, Session::from_row(&row)?)))
        }
    }
}

pub(crate) async fn has_refresh_token(
    conn: &mut Conn,
    hash: &str,
    session_id: &str,
    generation: i64,
) -> sqlx::Result<bool> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT session_id FROM refresh_tokens WHERE token_hash = $1 AND session_id = $2 AND generation = $3")
            .bind(hash)
            .bind(session_id)
            .bind(generation)
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some())
}

/// Moves the family from `from_generation` to the next one. A compare-and-set: `false` when another
/// request rotated first (or the session was revoked), and the caller re-reads.
pub(crate) async fn rotate(
    conn: &mut Conn,
    session_id: &str,
    from_generation: i64,
    now: i64,
    expires_at: i64,
    ip: Option<&str>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET refresh_generation = refresh_generation + 1, rotated_at = $1, last_activity = $1,
             expires_at = $2, ip = COALESCE($3, ip)
         WHERE session_id = $4 AND refresh_generation = $5 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(expires_at)
    .bind(ip)
    .bind(session_id)
    .bind(from_generation)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn find(conn: &mut Conn, session_id: &str) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions s WHERE s.session_id = $1"
    ))
    .bind(session_id)
    .fetch_optional(conn)
    .await
}

pub(crate) async fn list_active(
    conn: &mut Conn,
    user_id: &str,
    now: i64,
) -> sqlx::Result<Vec<Session>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
         ORDER BY s.last_activity DESC, s.created_at DESC"
    ))
    .bind(user_id)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Revokes one live session of this user; `false` if there is none (unknown, someone else's, gone).
pub(crate) async fn revoke(
    conn: &mut Conn,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE session_id = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(session_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live session of the user except `keep`; returns the ids it revoked.
pub(crate) async fn revoke_all(
    conn: &mut Conn,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> sqlx::Result<Vec<String>> {
    let keep = keep.unwrap_or("");
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT session_id FROM sessions WHERE user_id = $1 AND session_id <> $2 AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(user_id)
    .bind(keep)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND session_id <> $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(user_id)
        .bind(keep)
        .execute(conn)
        .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}
