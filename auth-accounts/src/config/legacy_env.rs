//! The old service's `.env`, read as it is.
//!
//! The old service (pydantic-settings, `env_nested_delimiter="__"`) read nested names such as
//! `DB__DB_URL` and `APP__LOG_LEVEL`, case-insensitively, from the environment and from `.env` in
//! the working directory. Here each old name is an alias of a new one: the new name wins when both
//! are set, an empty value counts as unset (the old `.env.example` ships every name empty), and a
//! unit change (minutes, days) is converted. Old names with no counterpart are listed by
//! [`ignored`] so start-up can say that they have no effect instead of silently dropping them.
//!
//! Everything here works on maps, never on the process environment, so it is tested without it.

use std::collections::HashMap;
use std::path::Path;

/// A value that cannot be taken, naming the variable (old name, or `.env`); configuration turns
/// it into its own error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct EnvError {
    /// The variable as it was set (old or new name).
    pub var: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// How an old value becomes the new one.
#[derive(Clone, Copy, Debug)]
enum Conv {
    Copy,
    MinutesToSeconds,
    DaysToSeconds,
    /// SQLAlchemy's pool holds at most `pool_size + max_overflow` connections; sqlx's one number
    /// is that maximum.
    PoolPlusOverflow,
}

struct Alias {
    old: &'static str,
    new: &'static str,
    conv: Conv,
}

const fn alias(old: &'static str, new: &'static str, conv: Conv) -> Alias {
    Alias { old, new, conv }
}

/// Old name -> new name. The README's configuration table lists the same pairs.
const ALIASES: &[Alias] = &[
    alias("APP__ENV", "ENV", Conv::Copy),
    alias("APP__FRONTEND_URL", "FRONTEND_URL", Conv::Copy),
    alias("APP__LOG_LEVEL", "LOG_LEVEL", Conv::Copy),
    alias("DB__DB_URL", "DATABASE_URL", Conv::Copy),
    alias("DB__DB_POOL_SIZE", "DB_POOL_SIZE", Conv::PoolPlusOverflow),
    alias(
        "KAFKA__KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_BOOTSTRAP_SERVERS",
        Conv::Copy,
    ),
    alias(
        "KAFKA__KAFKA_AUTH_EVENTS_TOPIC",
        "KAFKA_AUTH_EVENTS_TOPIC",
        Conv::Copy,
    ),
    alias("ARQ__REDIS_URL", "REDIS_URL", Conv::Copy),
    alias("SMTP__SMTP_HOST", "SMTP_HOST", Conv::Copy),
    alias("SMTP__SMTP_PORT", "SMTP_PORT", Conv::Copy),
    alias("SMTP__SMTP_USER", "SMTP_USER", Conv::Copy),
    alias("SMTP__SMTP_PASS", "SMTP_PASS", Conv::Copy),
    alias("SMTP__SMTP_FROM_EMAIL", "SMTP_FROM_EMAIL", Conv::Copy),
    alias("SMTP__SMTP_FROM_NAME", "SMTP_FROM_NAME", Conv::Copy),
    alias(
        "JWT__JWT_PRIVATE_KEY_PATH",
        "JWT_PRIVATE_KEY_PATH",
        Conv::Copy,
    ),
    alias(
        "JWT__JWT_PUBLIC_KEY_PATH",
        "JWT_PUBLIC_KEY_PATH",
        Conv::Copy,
    ),
    alias("JWT__JWT_ALGORITHM", "JWT_ALGORITHM", Conv::Copy),
    alias("JWT__JWT_ISSUER", "JWT_ISSUER", Conv::Copy),
    alias("JWT__JWT_AUDIENCE", "JWT_AUDIENCE", Conv::Copy),
    alias(
        "JWT__ACCESS_TOKEN_EXPIRE_MINUTES",
        "JWT_ACCESS_TTL_SECONDS",
        Conv::MinutesToSeconds,
    ),
    alias(
        "JWT__REFRESH_TOKEN_EXPIRE_DAYS",
        "REFRESH_TTL_SECONDS",
        Conv::DaysToSeconds,
    ),
    alias(
        "JWT__EMAIL_TOKEN_EXPIRE_SECONDS",
        "ONE_TIME_TOKEN_TTL_SECONDS",
        Conv::Copy,
    ),
];

/// Old names that have no counterpart, with the reason (logged once at start-up).
const IGNORED: &[(&str, &str)] = &[
    (
        "APP__DUMMY_HASH",
        "the timing-protection hash is generated at start-up",
    ),
    (
        "APP__PROMETHEUS_PORT",
        "the old service ignored it too: /metrics stays on the API port unless METRICS_PORT is set",
    ),
    ("APP__TZ", "all times are UTC"),
    (
        "KAFKA__KAFKA_AUTH_GROUP_ID",
        "the service only produces, it has no consumer group",
    ),
    (
        "ARQ__ARQ_QUEUE_NAME",
        "emails go through the database outbox, there is no arq queue",
    ),
    (
        "JWT__SESSION_CACHE_EXPIRE_DAYS",
        "sessions are not cached in Redis",
    ),
    (
        "GEO__DADATA_API_KEY",
        "locations come from a local GeoIP database (GEOIP_DB_PATH)",
    ),
    (
        "GEO__DADATA_SECRET_KEY",
        "locations come from a local GeoIP database (GEOIP_DB_PATH)",
    ),
];

/// The value of an old (nested) name: pydantic-settings matched them case-insensitively.
fn old_value<'a>(vars: &'a HashMap<String, String>, old: &str) -> Option<&'a str> {
    vars.get(old)
        .or_else(|| {
            vars.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(old))
                .map(|(_, v)| v)
        })
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

fn is_set(vars: &HashMap<String, String>, key: &str) -> bool {
    vars.get(key).is_some_and(|v| !v.trim().is_empty())
}

fn whole_number(var: &'static str, value: &str) -> Result<i64, EnvError> {
    value.parse::<i64>().map_err(|_| EnvError {
        var,
        reason: format!("not a number: {value:?}"),
    })
}

/// The variables with every old name resolved onto its new one (the new name wins when set).
pub fn resolve_aliases(
    vars: &HashMap<String, String>,
) -> Result<HashMap<String, String>, EnvError> {
    let mut out = vars.clone();
    for a in ALIASES {
        if is_set(vars, a.new) {
            continue;
        }
        let Some(value) = old_value(vars, a.old) else {
            continue;
        };
        let value = match a.conv {
            Conv::Copy => value.to_string(),
            Conv::MinutesToSeconds => (whole_number(a.old, value)? * 60).to_string(),
            Conv::DaysToSeconds => (whole_number(a.old, value)? * 86_400).to_string(),
            Conv::PoolPlusOverflow => {
                let overflow = match old_value(vars, "DB__DB_MAX_OVERFLOW") {
                    Some(v) => whole_number("DB__DB_MAX_OVERFLOW", v)?.max(0),
                    None => 0,
                };
                (whole_number(a.old, value)? + overflow).to_string()
            }
        };
        out.insert(a.new.to_string(), value);
    }
    Ok(out)
}

/// Old names that are set but have no effect, with the reason.
pub fn ignored(vars: &HashMap<String, String>) -> Vec<(&'static str, &'static str)> {
    IGNORED
        .iter()
        .filter(|(old, _)| old_value(vars, old).is_some())
        .copied()
        .collect()
}

/// `LOG_LEVEL` as a tracing filter: the old Python level names (`WARNING`, `CRITICAL`, any case,
/// or their numbers) map onto tracing's; anything else (`info`, `debug,sqlx=warn`) passes through.
pub fn log_level(raw: &str) -> String {
    let value = raw.trim().to_ascii_lowercase();
    match value.as_str() {
        "warning" | "30" => "warn".into(),
        "critical" | "fatal" | "50" | "40" => "error".into(),
        "notset" | "0" => "trace".into(),
        "10" => "debug".into(),
        "20" => "info".into(),
        _ => value,
    }
}

/// The variables of `.env` in `dir` (if there is one) overlaid by `process` (the real environment
/// always wins, as with pydantic-settings). A malformed `.env` is an error, not a silent skip.
pub fn with_dotenv(
    dir: &Path,
    process: impl IntoIterator<Item = (String, String)>,
) -> Result<HashMap<String, String>, EnvError> {
    let path = dir.join(".env");
    let mut vars = HashMap::new();
    if path.is_file() {
        let fail = |e: dotenvy::Error| EnvError {
            var: ".env",
            reason: format!("{}: {e}", path.display()),
        };
        for item in dotenvy::from_path_iter(&path).map_err(fail)? {
            let (k, v) = item.map_err(fail)?;
            vars.insert(k, v);
        }
    }
    vars.extend(process);
    Ok(vars)
}

#[cfg(test)]
mod tests {
    //! The rules on plain maps. That a `Config` built from the old names is right (the old
    //! `.env.example`, the new names winning, `.env` under the real environment) is tested in
    //! `config/legacy_tests.rs`: this module sits below the configuration and never names it.
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn aliases_convert_units_and_new_names_win() {
        let r = resolve_aliases(&vars(&[
            ("DATABASE_URL", "postgres://new/db"),
            ("DB__DB_URL", "postgres://old/db"),
            ("JWT__ACCESS_TOKEN_EXPIRE_MINUTES", "15"),
            ("JWT__REFRESH_TOKEN_EXPIRE_DAYS", "30"),
            ("DB__DB_POOL_SIZE", "10"),
            ("DB__DB_MAX_OVERFLOW", "5"),
            // The old .env.example ships every name empty: that must not override a default.
            ("APP__FRONTEND_URL", ""),
        ]))
        .unwrap();
        assert_eq!(r["DATABASE_URL"], "postgres://new/db");
        assert_eq!(r["JWT_ACCESS_TTL_SECONDS"], "900");
        assert_eq!(r["REFRESH_TTL_SECONDS"], (30 * 86_400).to_string());
        assert_eq!(r["DB_POOL_SIZE"], "15");
        assert!(!r.contains_key("FRONTEND_URL"));
    }

    #[test]
    fn old_names_match_case_insensitively_and_bad_numbers_name_the_old_variable() {
        let r = resolve_aliases(&vars(&[("db__db_url", "sqlite://x.db")])).unwrap();
        assert_eq!(r["DATABASE_URL"], "sqlite://x.db");
        let e =
            resolve_aliases(&vars(&[("JWT__REFRESH_TOKEN_EXPIRE_DAYS", "a month")])).unwrap_err();
        assert_eq!(e.var, "JWT__REFRESH_TOKEN_EXPIRE_DAYS");
        let e = resolve_aliases(&vars(&[
            ("DB__DB_POOL_SIZE", "10"),
            ("DB__DB_MAX_OVERFLOW", "lots"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "DB__DB_MAX_OVERFLOW");
    }

    #[test]
    fn names_without_a_counterpart_are_reported() {
        let v = vars(&[
            ("GEO__DADATA_API_KEY", "k"),
            ("APP__TZ", "Europe/Moscow"),
            ("APP__DUMMY_HASH", ""),
        ]);
        let names: Vec<&str> = ignored(&v).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["APP__TZ", "GEO__DADATA_API_KEY"]);
    }

    #[test]
    fn old_log_levels() {
        for (old, new) in [
            ("WARNING", "warn"),
            ("warning", "warn"),
            ("CRITICAL", "error"),
            ("Critical", "error"),
            ("ERROR", "error"),
            ("DEBUG", "debug"),
            ("INFO", "info"),
            ("NOTSET", "trace"),
            ("30", "warn"),
            ("info,sqlx=debug", "info,sqlx=debug"),
        ] {
            assert_eq!(log_level(old), new, "{old}");
        }
    }

    #[test]
    fn dotenv_is_read_and_the_real_environment_wins() {
        let dir = std::env::temp_dir().join(format!("dotenv-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // No file: just the process variables.
        let v = with_dotenv(&dir, [("A".to_string(), "1".to_string())]).unwrap();
        assert_eq!(v.len(), 1);
        std::fs::write(
            dir.join(".env"),
            "# the old service's file\nDB__DB_URL=postgresql+asyncpg://u:p@db/auth\nAPP__LOG_LEVEL=CRITICAL\nPORT=8000\nQUOTED=\"a b\"\n",
        )
        .unwrap();
        let v = with_dotenv(&dir, [("PORT".to_string(), "9000".to_string())]).unwrap();
        assert_eq!(v["PORT"], "9000");
        assert_eq!(v["QUOTED"], "a b");
        assert_eq!(v["DB__DB_URL"], "postgresql+asyncpg://u:p@db/auth");
        std::fs::write(dir.join(".env"), "NOT A LINE\n").unwrap();
        let e = with_dotenv(&dir, []).unwrap_err();
        assert_eq!(e.var, ".env");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
