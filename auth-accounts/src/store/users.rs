//! Users: the account row and its queries.

use sqlx::FromRow;

use super::Conn;
use crate::domain::{Country, Email, Name};

#[derive(Clone, Debug, FromRow)]
pub(crate) struct User {
    pub user_id: String,
    pub role: i64,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub country: String,
    pub locale: Option<String>,
    pub is_active: i64,
    pub last_login: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str =
    "user_id, role, email, password_hash, name, country, locale, is_active, last_login, created_at";

pub(crate) async fn find_by_email(conn: &mut Conn, email: &Email) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
        .bind(email.as_str())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn find_by_id(conn: &mut Conn, user_id: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE user_id = $1"))
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

pub(crate) struct NewUser<'a> {
    pub user_id: &'a str,
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub name: &'a Name,
    pub country: &'a Country,
    pub locale: &'a str,
    pub now: i64,
}

/// Fails with a unique violation when the email is taken (the caller answers 409).
pub(crate) async fn insert(conn: &mut Conn, u: NewUser<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (user_id, role, email, password_hash, name, country, locale, is_active, created_at, updated_at)
         VALUES ($1, 0, $2, $3, $4, $5, $6, 1, $7, $7)",
    )
    .bind(u.user_id)
    .bind(u.email.as_str())
    .bind(u.password_hash)
    .bind(u.name.as_str())
    .bind(u.country.as_str())
    .bind(u.locale)
    .bind(u.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub(crate) async fn set_password_hash(
    conn: &mut Conn,
    user_id: &str,
    hash: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE user_id = $3")
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub(crate) async fn touch_last_login(conn: &mut Conn, user_id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET last_login = $1 WHERE user_id = $2")
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}
