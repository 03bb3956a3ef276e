//! `auth-accounts import-legacy --from <old PostgreSQL URL> [--dry-run] [--batch-size N]`.
//!
//! Copies the old service's accounts and live sessions into the configured database
//! (`DATABASE_URL`, SQLite or PostgreSQL) so that nobody signs in again after the cut-over:
//!
//! - **Users** keep their id, email, role, name, country, activity flag and timestamps. The bcrypt
//!   hash is copied as it is: login verifies `$2b$` hashes and re-hashes them with the configured
//!   algorithm and cost on the next successful login.
//! - **Live sessions** (not revoked, not expired) keep their id, device, address, location and
//!   expiry. The old service kept `sha256(refresh_token)` as hex in `sessions.refresh_fingerprint`;
//!   the new one keeps every refresh token as the same `sha256` hex in `refresh_tokens`. So the old
//!   fingerprint becomes the family's generation-0 token: a browser presenting its old
//!   `refresh_token` cookie is found, rotated into a new-format token, and stays signed in.
//!
//! Safe to repeat: rows are keyed by their old ids and never overwritten (run twice: no
//! duplicates), each batch commits on its own (an interrupted run resumes where the data says),
//! and the old database is only read (the connection is read-only). Rows that cannot be taken
//! (bad email, unknown role, missing hash, ...) are reported with their id and reason and make the
//! command exit with status 3; nothing is dropped silently. No events are recorded: the other
//! services already know these accounts.

use std::collections::{HashMap, HashSet};
use std::fmt;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row as _};

use crate::config::Config;
use crate::crypto::hex;
use crate::domain::{Country, Email, Name};
use crate::store::{self, Db, Tx};

/// The arguments of `import-legacy` (a clap subcommand of the binary, see `commands`).
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// The old service's database (its `DB__DB_URL`; `postgresql+asyncpg://` is accepted).
    #[arg(long, value_name = "URL", value_parser = old_database_url)]
    pub from: String,
    /// Read and check everything, write nothing (the target is not even opened).
    #[arg(long)]
    pub dry_run: bool,
    /// Rows per batch; each batch commits on its own.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch_size: i64,
}

fn old_database_url(url: &str) -> Result<String, std::convert::Infallible> {
    Ok(crate::config::normalise_database_url(url))
}

impl Options {
    /// Parses the arguments after `import-legacy` (the same parser as the command line's).
    pub fn parse(args: &[String]) -> Result<Self, String> {
        #[derive(clap::Parser)]
        #[command(name = "auth-accounts import-legacy", no_binary_name = true)]
        struct Args {
            #[command(flatten)]
            options: Options,
        }
        <Args as clap::Parser>::try_parse_from(args)
            .map(|a| a.options)
            .map_err(|e| e.to_string())
    }
}

/// Why an import stopped (a rerun resumes where it stopped).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the old database failed.
    #[error("cannot read the old database: {0}")]
    Source(#[source] sqlx::Error),
    /// Opening the new database failed.
    #[error(transparent)]
    Target(#[from] store::StoreError),
    /// Writing to the new database failed.
    #[error("cannot write to the new database: {0}")]
    Write(#[source] sqlx::Error),
    /// The system's random generator failed.
    #[error("system random generator failed")]
    Random,
}

/// A row that was not taken, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The old table (`users`, `user_sessions`).
    pub table: &'static str,
    /// The row's id there.
    pub id: String,
    /// Why it was not taken.
    pub reason: String,
}

/// Rows of one table, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Read from the old database.
    pub read: u64,
    /// Written (or, in a dry run, that would be written).
    pub imported: u64,
    /// Already in the target from an earlier run.
    pub present: u64,
    /// Sessions only: revoked or expired, deliberately not copied.
    pub not_live: u64,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// Users.
    pub users: Counts,
    /// Sessions.
    pub sessions: Counts,
    /// Every row not taken.
    pub rejected: Vec<Rejected>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would import"
        } else {
            "imported"
        };
        let rejected = |table: &str| self.rejected.iter().filter(|r| r.table == table).count();
        writeln!(
            f,
            "users:    read {}, {verb} {}, already present {}, rejected {}",
            self.users.read,
            self.users.imported,
            self.users.present,
            rejected("users")
        )?;
        writeln!(
            f,
            "sessions: read {}, {verb} {}, already present {}, not live (revoked or expired) {}, rejected {}",
            self.sessions.read,
            self.sessions.imported,
            self.sessions.present,
            self.sessions.not_live,
            rejected("sessions")
        )?;
        for r in &self.rejected {
            writeln!(f, "rejected {} {}: {}", r.table, r.id, r.reason)?;
        }
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        Ok(())
    }
}

/// A user row that passed every check, in the new column types.
struct User {
    user_id: String,
    role: i64,
    email: Email,
    password_hash: String,
    name: Name,
    country: Country,
    is_active: i64,
    last_login: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

struct Session {
    session_id: String,
    user_id: String,
    user_agent: Option<String>,
    device_name: String,
    ip: Option<String>,
    location: String,
    fingerprint: String,
    last_activity: i64,
    expires_at: i64,
    created_at: i64,
}

fn epoch(column: &str) -> String {
    format!("EXTRACT(EPOCH FROM {column})::bigint AS {column}")
}

/// Keyset pages by primary key: a page is stable even if an earlier page's writes failed.
fn users_query() -> String {
    format!(
        "SELECT user_id::text AS user_id, role::bigint AS role, email, password_hash, name, country, is_active, \
         {}, {}, {} FROM users WHERE ($1::uuid IS NULL OR user_id > $1::uuid) ORDER BY user_id LIMIT $2",
        epoch("last_login"),
        epoch("created_at"),
        epoch("updated_at"),
    )
}

fn sessions_query() -> String {
    format!(
        "SELECT session_id::text AS session_id, user_id::text AS user_id, user_agent, device_name, ip, location, \
         revoked, refresh_fingerprint, {}, {}, {} FROM sessions \
         WHERE ($1::uuid IS NULL OR session_id > $1::uuid) ORDER BY session_id LIMIT $2",
        epoch("last_activity"),
        epoch("expires_at"),
        epoch("created_at"),
    )
}

fn looks_like_password_hash(hash: &str) -> bool {
    let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) && hash.len() == 60;
    bcrypt || hash.starts_with("$argon2") || hash.starts_with("$bcrypt-sha256$")
}

/// Checks one old user row; `Err` is the reason it cannot be taken.
fn check_user(row: &PgRow, now: i64) -> Result<User, String> {
    let get = |c: &str| {
        row.try_get::<Option<String>, _>(c)
            .map_err(|e| e.to_string())
    };
    let user_id = get("user_id")?.ok_or("user_id is missing")?;
    let email = get("email")?.ok_or("email is missing")?;
    let email = Email::parse(&email).map_err(|e| format!("{e}: {email:?}"))?;
    let role: Option<i64> = row.try_get("role").map_err(|e| e.to_string())?;
    let role = match role {
        Some(r @ 0..=2) => r,
        Some(r) => {
            return Err(format!(
                "unknown role {r} (known: 0 user, 1 admin, 2 moderator)"
            ))
        }
        None => return Err("role is missing".into()),
    };
    let password_hash = get("password_hash")?
        .filter(|h| !h.trim().is_empty())
        .ok_or("password hash is missing")?;
    if !looks_like_password_hash(&password_hash) {
        return Err("password hash is not bcrypt (or argon2): it could never verify".into());
    }
    let name = Name::parse(&get("name")?.unwrap_or_default()).map_err(|e| e.to_string())?;
    let country =
        Country::parse(&get("country")?.unwrap_or_default()).map_err(|e| e.to_string())?;
    let is_active: Option<bool> = row.try_get("is_active").map_err(|e| e.to_string())?;
    let time = |c: &str| row.try_get::<Option<i64>, _>(c).map_err(|e| e.to_string());
    let created_at = time("created_at")?.unwrap_or(now);
    Ok(User {
        user_id,
        role,
        email,
        password_hash,
        name,
        country,
        is_active: i64::from(is_active.unwrap_or(false)),
        last_login: time("last_login")?,
        created_at,
        updated_at: time("updated_at")?.unwrap_or(created_at),
    })
}

enum SessionCheck {
    Live(Session),
    NotLive,
}

fn check_session(row: &PgRow, now: i64) -> Result<SessionCheck, String> {
    let get = |c: &str| {
        row.try_get::<Option<String>, _>(c)
            .map_err(|e| e.to_string())
    };
    let time = |c: &str| row.try_get::<Option<i64>, _>(c).map_err(|e| e.to_string());
    let revoked: Option<bool> = row.try_get("revoked").map_err(|e| e.to_string())?;
    let expires_at = time("expires_at")?;
    // A row of unknown state is treated as ended: signing someone in by mistake is worse.
    let (Some(false), Some(expires_at)) = (revoked, expires_at) else {
        return Ok(SessionCheck::NotLive);
    };
    if expires_at <= now {
        return Ok(SessionCheck::NotLive);
    }
    let fingerprint = get("refresh_fingerprint")?
        .map(|f| f.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("refresh fingerprint is not a SHA-256 hex digest".into());
    }
    let created_at = time("created_at")?.unwrap_or(now);
    let unknown = || "Unknown".to_string();
    Ok(SessionCheck::Live(Session {
        session_id: get("session_id")?.ok_or("session_id is missing")?,
        user_id: get("user_id")?.ok_or("user_id is missing")?,
        user_agent: get("user_agent")?,
        device_name: get("device_name")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(unknown),
        ip: get("ip")?.filter(|s| !s.is_empty()),
        location: get("location")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(unknown),
        fingerprint,
        last_activity: time("last_activity")?.unwrap_or(created_at),
        expires_at,
        created_at,
    }))
}

async fn open_source(url: &str) -> Result<PgPool, ImportError> {
    let options: PgConnectOptions = url.parse().map_err(ImportError::Source)?;
    // Read-only: the old database stays exactly as it was, which is what makes rollback trivial.
    let options = options.options([("default_transaction_read_only", "on")]);
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(ImportError::Source)
}

async fn begin(db: &Db, sqlite: bool) -> Result<Tx, ImportError> {
    if sqlite {
        db.begin_with("BEGIN IMMEDIATE").await
    } else {
        db.begin().await
    }
    .map_err(ImportError::Write)
}

/// Keyset pagination over a table of the old database: `query` takes the last key read (`$1`,
/// NULL at first) and the batch size (`$2`), ordered by `key`.
struct Pages<'a> {
    source: &'a PgPool,
    query: String,
    key: &'static str,
    batch: i64,
    after: Option<String>,
}

impl<'a> Pages<'a> {
    fn new(source: &'a PgPool, query: String, key: &'static str, batch: i64) -> Self {
        Self {
            source,
            query,
            key,
            batch,
            after: None,
        }
    }

    /// The next batch, or `None` at the end.
    async fn next(&mut self) -> Result<Option<Vec<PgRow>>, ImportError> {
        let rows = sqlx::query(&self.query)
            .bind(self.after.as_deref())
            .bind(self.batch)
            .fetch_all(self.source)
            .await
            .map_err(ImportError::Source)?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = Some(last.try_get(self.key).map_err(ImportError::Source)?);
        Ok(Some(rows))
    }
}

/// The write transaction of one batch (none in a dry run).
async fn begin_batch(target: Option<&Db>, sqlite: bool) -> Result<Option<Tx>, ImportError> {
    match target {
        Some(db) => Ok(Some(begin(db, sqlite).await?)),
        None => Ok(None),
    }
}

/// Runs the import; the report says what happened to every row.
pub async fn run(config: &Config, options: &Options) -> Result<Report, ImportError> {
    let source = open_source(&options.from).await?;
    let target = if options.dry_run {
        None
    } else {
        Some(store::connect(config).await?)
    };
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let now = chrono::Utc::now().timestamp();
    let sqlite = config.is_sqlite();
    // Users rejected in this run: their sessions are rejected too (also in a dry run).
    let mut rejected_users = HashSet::new();
    // Normalised email -> the first account that had it: old rows differing only in case collide.
    let mut emails: HashMap<String, String> = HashMap::new();

    let mut users = Pages::new(&source, users_query(), "user_id", options.batch_size);
    while let Some(rows) = users.next().await? {
        let mut tx = begin_batch(target.as_ref(), sqlite).await?;
        for row in &rows {
            report.users.read += 1;
            let id: String = row.try_get("user_id").unwrap_or_default();
            let checked =
                check_user(row, now).and_then(|user| match emails.get(user.email.as_str()) {
                    Some(first) if *first != user.user_id => Err(format!(
                        "email {} already belongs to account {first}",
                        user.email
                    )),
                    _ => {
                        emails.insert(user.email.as_str().to_string(), user.user_id.clone());
                        Ok(user)
                    }
                });
            let result = match (checked, tx.as_mut()) {
                (Err(reason), _) => Err(reason),
                (Ok(_), None) => Ok(true),
                (Ok(user), Some(tx)) => write_user(tx, &user).await?,
            };
            match result {
                Ok(true) => report.users.imported += 1,
                Ok(false) => report.users.present += 1,
                Err(reason) => {
                    rejected_users.insert(id.clone());
                    report.rejected.push(Rejected {
                        table: "users",
                        id,
                        reason,
                    });
                }
            }
        }
        if let Some(tx) = tx {
            tx.commit().await.map_err(ImportError::Write)?;
        }
    }

    let mut sessions = Pages::new(&source, sessions_query(), "session_id", options.batch_size);
    while let Some(rows) = sessions.next().await? {
        let mut tx = begin_batch(target.as_ref(), sqlite).await?;
        for row in &rows {
            report.sessions.read += 1;
            let id: String = row.try_get("session_id").unwrap_or_default();
            let result = match check_session(row, now) {
                Err(reason) => Err(reason),
                Ok(SessionCheck::NotLive) => {
                    report.sessions.not_live += 1;
                    continue;
                }
                Ok(SessionCheck::Live(s)) if rejected_users.contains(&s.user_id) => {
                    Err(format!("its user {} was rejected", s.user_id))
                }
                Ok(SessionCheck::Live(s)) => match tx.as_mut() {
                    Some(tx) => write_session(tx, &s, now).await?,
                    None => Ok(true),
                },
            };
            match result {
                Ok(true) => report.sessions.imported += 1,
                Ok(false) => report.sessions.present += 1,
                Err(reason) => report.rejected.push(Rejected {
                    table: "sessions",
                    id,
                    reason,
                }),
            }
        }
        if let Some(tx) = tx {
            tx.commit().await.map_err(ImportError::Write)?;
        }
    }
    source.close().await;
    if let Some(db) = target {
        db.close().await;
    }
    Ok(report)
}

/// `Ok(Ok(true))` written, `Ok(Ok(false))` already there, `Ok(Err(reason))` refused.
async fn write_user(tx: &mut Tx, u: &User) -> Result<Result<bool, String>, ImportError> {
    let owner: Option<(String,)> = sqlx::query_as("SELECT user_id FROM users WHERE email = $1")
        .bind(u.email.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(ImportError::Write)?;
    match owner {
        Some((id,)) if id == u.user_id => return Ok(Ok(false)),
        // Two old rows differing only in case (the old service kept both), or an account made on
        // the new service before the import: the operator decides which one is real.
        Some((id,)) => {
            return Ok(Err(format!(
                "email {} already belongs to account {id}",
                u.email
            )))
        }
        None => {}
    }
    let done = sqlx::query(
        "INSERT INTO users (user_id, role, email, password_hash, name, country, locale, is_active, last_login,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $10)
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(&u.user_id)
    .bind(u.role)
    .bind(u.email.as_str())
    .bind(&u.password_hash)
    .bind(u.name.as_str())
    .bind(u.country.as_str())
    .bind(u.is_active)
    .bind(u.last_login)
    .bind(u.created_at)
    .bind(u.updated_at)
    .execute(&mut **tx)
    .await
    .map_err(ImportError::Write)?;
    Ok(Ok(done.rows_affected() == 1))
}

async fn write_session(
    tx: &mut Tx,
    s: &Session,
    now: i64,
) -> Result<Result<bool, String>, ImportError> {
    let user: Option<(String,)> = sqlx::query_as("SELECT user_id FROM users WHERE user_id = $1")
        .bind(&s.user_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(ImportError::Write)?;
    if user.is_none() {
        return Ok(Err(format!(
            "its user {} is not in the new database",
            s.user_id
        )));
    }
    let holder: Option<(String,)> =
        sqlx::query_as("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(&s.fingerprint)
            .fetch_optional(&mut **tx)
            .await
            .map_err(ImportError::Write)?;
    match holder {
        Some((id,)) if id == s.session_id => return Ok(Ok(false)),
        Some((id,)) => {
            return Ok(Err(format!(
                "its refresh fingerprint already belongs to session {id}"
            )))
        }
        None => {}
    }
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| ImportError::Random)?;
    // Generation 0 is the old token: the first refresh with it rotates into a new-format token.
    let done = sqlx::query(
        "INSERT INTO sessions (session_id, user_id, user_agent, device_name, ip, location, created_at,
             last_activity, expires_at, refresh_generation, refresh_key, rotated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(&s.session_id)
    .bind(&s.user_id)
    .bind(s.user_agent.as_deref())
    .bind(&s.device_name)
    .bind(s.ip.as_deref())
    .bind(&s.location)
    .bind(s.created_at)
    .bind(s.last_activity)
    .bind(s.expires_at)
    .bind(hex(&key))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(ImportError::Write)?;
    if done.rows_affected() == 0 {
        return Ok(Ok(false));
    }
    store::sessions::add_refresh_token(tx, &s.fingerprint, &s.session_id, 0, now)
        .await
        .map_err(ImportError::Write)?;
    Ok(Ok(true))
}

impl Report {
    /// The exit status of `import-legacy` once it finished: 0 when every row was taken, 3 when some
    /// were rejected (a failed run is 1, bad arguments 2; batches already committed stay, and a
    /// rerun resumes).
    pub fn exit_status(&self) -> u8 {
        if self.rejected.is_empty() {
            0
        } else {
            3
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        let o = Options::parse(&args(&["--from", "postgresql+asyncpg://u:p@h/old"])).unwrap();
        assert_eq!(o.from, "postgres://u:p@h/old");
        assert!(!o.dry_run);
        assert_eq!(o.batch_size, 500);
        let o = Options::parse(&args(&[
            "--dry-run",
            "--from=postgres://h/old",
            "--batch-size",
            "2",
        ]))
        .unwrap();
        assert!(o.dry_run);
        assert_eq!(o.batch_size, 2);
        assert!(Options::parse(&args(&["--dry-run"])).is_err());
        assert!(Options::parse(&args(&["--from"])).is_err());
        assert!(Options::parse(&args(&["--from", "x", "--batch-size", "0"])).is_err());
        assert!(Options::parse(&args(&["--from", "x", "--force"])).is_err());
    }

    #[test]
    fn password_hash_shapes() {
        let bcrypt = "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
        assert_eq!(bcrypt.len(), 60);
        assert!(looks_like_password_hash(bcrypt));
        assert!(!looks_like_password_hash(&bcrypt[..59]));
        assert!(!looks_like_password_hash("plaintext-password"));
        assert!(!looks_like_password_hash(
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        ));
    }

    #[test]
    fn report_lists_every_rejected_row() {
        let report = Report {
            dry_run: true,
            users: Counts {
                read: 3,
                imported: 2,
                ..Counts::default()
            },
            sessions: Counts::default(),
            rejected: vec![Rejected {
                table: "users",
                id: "u-1".into(),
                reason: "unknown role 7".into(),
            }],
        };
        let text = report.to_string();
        assert!(text.contains("users:    read 3, would import 2, already present 0, rejected 1"));
        assert!(text.contains("rejected users u-1: unknown role 7"));
        assert!(text.contains("dry run: nothing was written"));
    }
}
