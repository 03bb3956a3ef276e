//! The database: SQLite (embedded default) or PostgreSQL, through sqlx's `Any` driver so that one
//! query text serves both. Portable column types only (TEXT, BIGINT/INTEGER); ids are UUID text and
//! times unix seconds. Queries take a connection (a transaction derefs to one) so the caller decides
//! what commits together: an outbox row always goes in the same transaction as the change.

pub(crate) mod one_time;
pub(crate) mod sessions;
pub(crate) mod users;

use std::sync::Once;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor as _};

use crate::config::Config;

pub(crate) type Db = AnyPool;
pub(crate) type Tx = sqlx::Transaction<'static, Any>;
pub(crate) type Conn = sqlx::AnyConnection;

/// Applied migrations this binary does not know (a newer release's expand step) are tolerated:
/// migrations are expand/contract (docs/upgrading.md), so the previous release keeps running
/// beside the next one during a rolling upgrade or a rollback.
static SQLITE: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    let mut m = sqlx::migrate!("../migrations/sqlite");
    m.set_ignore_missing(true);
    m
});
static POSTGRES: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    let mut m = sqlx::migrate!("../migrations/postgres");
    m.set_ignore_missing(true);
    m
});

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error(
        "the database schema is behind this release: {count} migration(s) pending, the first is \
         {first}; run `auth-accounts migrate` (MIGRATE_ON_START is false)"
    )]
    Pending { count: usize, first: String },
}

/// Opens the pool. With `MIGRATE_ON_START` (the default) it applies the pending migrations;
/// without, it only checks that none is pending (`auth-accounts migrate` applies them, once per
/// release, not every replica at start).
pub(crate) async fn connect(config: &Config) -> Result<Db, StoreError> {
    let db = open(config, true).await?;
    if config.database.migrate_on_start {
        migrate(&db, config).await?;
    } else {
        let state = schema_state(&db, config).await?;
        if let Some(first) = state.pending.first() {
            return Err(StoreError::Pending {
                count: state.pending.len(),
                first: first.clone(),
            });
        }
    }
    Ok(db)
}

fn migrator(config: &Config) -> &'static sqlx::migrate::Migrator {
    if config.is_sqlite() {
        &SQLITE
    } else {
        &POSTGRES
    }
}

/// Applies the pending migrations; returns how many were applied.
pub(crate) async fn migrate(db: &Db, config: &Config) -> Result<usize, StoreError> {
    let before = schema_state(db, config).await.map(|s| s.pending.len());
    migrator(config)
        .run(db)
        .await
        .map_err(StoreError::Migrate)?;
    Ok(before.unwrap_or(0))
}

/// Where the database's schema stands against the migrations built into this binary.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SchemaState {
    pub applied: usize,
    /// Built-in migrations not applied yet (`version description`).
    pub pending: Vec<String>,
    /// Versions applied to the database that this binary does not know (a newer release ran).
    pub unknown: Vec<i64>,
}

/// Reads the migration table without changing anything.
pub(crate) async fn schema_state(db: &Db, config: &Config) -> Result<SchemaState, StoreError> {
    let exists: Option<(i64,)> = sqlx::query_as(if config.is_sqlite() {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
    } else {
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations'"
    })
    .fetch_optional(db)
    .await
    .map_err(StoreError::Connect)?;
    let applied: Vec<i64> = if exists.is_some_and(|(n,)| n > 0) {
        sqlx::query_as::<_, (i64,)>("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_all(db)
            .await
            .map_err(StoreError::Connect)?
            .into_iter()
            .map(|(v,)| v)
            .collect()
    } else {
        Vec::new()
    };
    let known: Vec<i64> = migrator(config).iter().map(|m| m.version).collect();
    Ok(SchemaState {
        applied: applied.len(),
        pending: migrator(config)
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect(),
        unknown: applied.into_iter().filter(|v| !known.contains(v)).collect(),
    })
}

/// Opens the pool without touching the schema. `create` makes a missing SQLite file (and its
/// directory); without it a missing file is a connection error (`check` must not write).
pub(crate) async fn open(config: &Config, create: bool) -> Result<Db, StoreError> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);

    let mut url = config.database.url.expose_secret().to_string();
    let sqlite = config.is_sqlite();
    if sqlite && create {
        if let Some(path) = sqlite_path(&url) {
            if let Some(parent) = std::path::Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::DataDir(parent.display().to_string(), e))?;
            }
        }
    }
    if sqlite && !url.contains("mode=") {
        let mode = if create { "mode=rwc" } else { "mode=rw" };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(mode);
    }
    let options: AnyConnectOptions = url.parse().map_err(StoreError::Connect)?;
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite {
            config.database.pool_size.min(8)
        } else {
            config.database.pool_size
        })
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if sqlite {
                    // WAL lets readers run beside the one writer; the busy timeout makes a writer wait
                    // for the lock instead of failing; foreign keys are off by default in SQLite.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(StoreError::Connect)?;
    Ok(pool)
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// A unique-constraint violation, which callers turn into a domain error (email taken -> 409).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

pub(crate) async fn ping(db: &Db) -> bool {
    sqlx::query("SELECT 1").execute(db).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/auth.db").as_deref(),
            Some("data/auth.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc").as_deref(),
            Some("/tmp/x.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
