//! The database: SQLite (embedded default) or PostgreSQL, through sqlx's `Any` driver so that one
//! query text serves both. Portable column types only (TEXT, BIGINT/INTEGER); ids are UUID text and
//! times unix seconds. Queries take a connection (a transaction derefs to one) so the caller decides
//! what commits together: an outbox row always goes in the same transaction as the change.

pub mod one_time;
pub mod sessions;
pub mod users;

use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor as _};

use crate::config::Config;

pub type Db = AnyPool;
pub type Tx = sqlx::Transaction<'static, Any>;
pub type Conn = sqlx::AnyConnection;

/// The migrations of one database kind. Applied migrations this binary does not know (a newer
/// release's expand step) are tolerated: migrations are expand/contract (docs/upgrading.md), so the
/// previous release keeps running beside the next one during a rolling upgrade or a rollback.
fn migrator(sqlite: bool) -> sqlx::migrate::Migrator {
    let mut migrator = if sqlite {
        sqlx::migrate!("../migrations/sqlite")
    } else {
        sqlx::migrate!("../migrations/postgres")
    };
    migrator.set_ignore_missing(true);
    migrator
}

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
/// without, it only checks that none is pending (`auth-accounts migrate` applies them).
pub async fn connect(config: &Config) -> Result<Db, StoreError> {
    let pool = open(config).await?;
    let migrator = migrator(config.is_sqlite());
    if config.migrate_on_start {
        migrator.run(&pool).await.map_err(StoreError::Migrate)?;
    } else {
        let pending = pending(&pool, &migrator).await;
        if let Some(first) = pending.first() {
            return Err(StoreError::Pending {
                count: pending.len(),
                first: first.clone(),
            });
        }
    }
    Ok(pool)
}

/// `auth-accounts migrate`: applies the pending migrations, whatever `MIGRATE_ON_START` says, and
/// returns their names. Concurrent runs are safe (sqlx takes a lock on PostgreSQL).
pub async fn migrate(config: &Config) -> Result<Vec<String>, StoreError> {
    let pool = open(config).await?;
    let migrator = migrator(config.is_sqlite());
    let pending = pending(&pool, &migrator).await;
    migrator.run(&pool).await.map_err(StoreError::Migrate)?;
    pool.close().await;
    Ok(pending)
}

/// The migrations this binary knows that the database has not applied (`VERSION description`).
/// No migrations table yet means none is applied.
async fn pending(pool: &Db, migrator: &sqlx::migrate::Migrator) -> Vec<String> {
    use sqlx::migrate::Migrate as _;
    let applied: Vec<i64> = match pool.acquire().await {
        Ok(mut conn) => conn
            .list_applied_migrations()
            .await
            .map(|list| list.into_iter().map(|m| m.version).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect()
}

async fn open(config: &Config) -> Result<Db, StoreError> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);

    let mut url = config.database_url.expose().to_string();
    let sqlite = config.is_sqlite();
    if sqlite {
        if let Some(path) = sqlite_path(&url) {
            if let Some(parent) = std::path::Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::DataDir(parent.display().to_string(), e))?;
            }
        }
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
    }
    let options: AnyConnectOptions = url.parse().map_err(StoreError::Connect)?;
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite {
            config.db_pool_size.min(8)
        } else {
            config.db_pool_size
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
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

pub async fn ping(db: &Db) -> bool {
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
