//! One-time tokens for email verification and password reset: stored as SHA-256, one live token per
//! (purpose, email) so a new request invalidates the previous link, single use, short-lived.

use super::Conn;
use crate::crypto::{ct_eq, sha256_hex};
use crate::domain::Email;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Verification,
    Reset,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Verification => "verification",
            Self::Reset => "reset",
        }
    }
}

pub(crate) async fn replace(
    conn: &mut Conn,
    purpose: Purpose,
    email: &Email,
    token: &str,
    now: i64,
    ttl: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO one_time_tokens (purpose, email, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (purpose, email) DO UPDATE SET token_hash = excluded.token_hash,
             expires_at = excluded.expires_at, created_at = excluded.created_at",
    )
    .bind(purpose.as_str())
    .bind(email.as_str())
    .bind(sha256_hex(token))
    .bind(now + ttl)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Whether `token` is the live token for this email, without using it up (verify-link).
pub(crate) async fn check(
    conn: &mut Conn,
    purpose: Purpose,
    email: &Email,
    token: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT token_hash, expires_at FROM one_time_tokens WHERE purpose = $1 AND email = $2",
    )
    .bind(purpose.as_str())
    .bind(email.as_str())
    .fetch_optional(conn)
    .await?;
    // Hash first, then compare in constant time: the lookup is by email, never by the secret.
    let presented = sha256_hex(token);
    Ok(matches!(row, Some((hash, expires_at)) if expires_at > now && ct_eq(&hash, &presented)))
}

/// Checks and deletes the token in one go; `false` if it was wrong, expired or already used.
/// Called inside the transaction that performs the action, so a failed action keeps the token.
pub(crate) async fn consume(
    conn: &mut Conn,
    purpose: Purpose,
    email: &Email,
    token: &str,
    now: i64,
) -> sqlx::Result<bool> {
    if !check(&mut *conn, purpose, email, token, now).await? {
        return Ok(false);
    }
    // The hash condition makes two concurrent uses race on the DELETE: only one removes the row.
    let deleted = sqlx::query(
        "DELETE FROM one_time_tokens WHERE purpose = $1 AND email = $2 AND token_hash = $3",
    )
    .bind(purpose.as_str())
    .bind(email.as_str())
    .bind(sha256_hex(token))
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected() == 1)
}
