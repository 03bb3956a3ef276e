//! The old service's `.env` configures the service (the rules themselves are tested in
//! `config::legacy_env`, on plain maps).

use std::path::Path;

use super::tests::vars;
use super::*;
use crate::config::legacy_env::{log_level, with_dotenv};

#[test]
fn the_old_env_example_configures_the_service() {
    let c = Config::from_vars(&vars(&[
        ("APP__ENV", "prod"),
        ("APP__FRONTEND_URL", "https://budget.example.com"),
        ("APP__LOG_LEVEL", "WARNING"),
        (
            "DB__DB_URL",
            "postgresql+asyncpg://auth:pw@auth_postgres:5432/auth",
        ),
        ("DB__DB_POOL_SIZE", "10"),
        ("DB__DB_MAX_OVERFLOW", "5"),
        ("KAFKA__KAFKA_BOOTSTRAP_SERVERS", "kafka:29092"),
        ("KAFKA__KAFKA_AUTH_EVENTS_TOPIC", "budget.auth.events"),
        ("ARQ__REDIS_URL", "redis://redis_cache:6379/0"),
        ("SMTP__SMTP_HOST", "smtp.example.com"),
        ("SMTP__SMTP_PORT", "465"),
        ("SMTP__SMTP_USER", "mailer"),
        ("SMTP__SMTP_PASS", "secret"),
        ("SMTP__SMTP_FROM_EMAIL", "noreply@example.com"),
        ("SMTP__SMTP_FROM_NAME", "Budget"),
        ("JWT__JWT_PRIVATE_KEY_PATH", "/app/certs/jwt-private.pem"),
        ("JWT__JWT_PUBLIC_KEY_PATH", "/app/certs/jwt-public.pem"),
        ("JWT__JWT_ALGORITHM", "RS256"),
        ("JWT__ACCESS_TOKEN_EXPIRE_MINUTES", "15"),
        ("JWT__REFRESH_TOKEN_EXPIRE_DAYS", "30"),
        ("JWT__EMAIL_TOKEN_EXPIRE_SECONDS", "600"),
        ("JWT__JWT_ISSUER", "budget-auth"),
        ("JWT__JWT_AUDIENCE", "budget"),
        // New with this service, and required with ENV=prod: the revocation feed's token.
        ("REVOCATIONS_TOKEN", "feed-token-0123456789"),
    ]))
    .unwrap();
    assert!(c.production);
    assert_eq!(c.http.frontend_url.as_str(), "https://budget.example.com/");
    assert_eq!(c.log.level, "warn");
    assert_eq!(
        c.database.url.expose_secret(),
        "postgres://auth:pw@auth_postgres:5432/auth"
    );
    assert_eq!(c.database.pool_size, 15);
    assert_eq!(c.kafka.bootstrap_servers.as_deref(), Some("kafka:29092"));
    assert_eq!(c.kafka.topic, "budget.auth.events");
    assert_eq!(
        c.redis.url.as_ref().map(|s| s.expose_secret()),
        Some("redis://redis_cache:6379/0")
    );
    assert_eq!(c.email.smtp.host.as_deref(), Some("smtp.example.com"));
    assert_eq!(c.email.smtp.port, 465);
    assert_eq!(c.email.smtp.tls, SmtpTls::Tls);
    assert_eq!(c.email.smtp.user.as_deref(), Some("mailer"));
    assert_eq!(
        c.email.smtp.pass.as_ref().map(|s| s.expose_secret()),
        Some("secret")
    );
    assert_eq!(c.email.from_email, "noreply@example.com");
    assert_eq!(c.email.from_name, "Budget");
    assert_eq!(
        c.tokens.private_key_path,
        Path::new("/app/certs/jwt-private.pem")
    );
    assert_eq!(
        c.tokens.public_key_path,
        Path::new("/app/certs/jwt-public.pem")
    );
    assert_eq!(c.tokens.access_ttl, 900);
    assert_eq!(c.tokens.refresh_ttl, 30 * 86_400);
    assert_eq!(c.tokens.one_time_ttl, 600);
    assert_eq!(c.tokens.issuer, "budget-auth");
    assert_eq!(c.tokens.audience, "budget");
}

#[test]
fn new_names_win_and_empty_old_values_are_unset() {
    let c = Config::from_vars(&vars(&[
        ("DATABASE_URL", "postgres://new/db"),
        ("DB__DB_URL", "postgres://old/db"),
        ("LOG_LEVEL", "debug"),
        ("APP__LOG_LEVEL", "ERROR"),
        // The old .env.example ships every name empty: that must not override a default.
        ("APP__FRONTEND_URL", ""),
        ("JWT__ACCESS_TOKEN_EXPIRE_MINUTES", "   "),
    ]))
    .unwrap();
    assert_eq!(c.database.url.expose_secret(), "postgres://new/db");
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.http.frontend_url.as_str(), "http://localhost:3000/");
    assert_eq!(c.tokens.access_ttl, 900);
}

#[test]
fn bad_old_numbers_name_the_old_variable() {
    let e = Config::from_vars(&vars(&[("JWT__REFRESH_TOKEN_EXPIRE_DAYS", "a month")])).unwrap_err();
    assert_eq!(e.var, "JWT__REFRESH_TOKEN_EXPIRE_DAYS");
    let e = Config::from_vars(&vars(&[
        ("DB__DB_POOL_SIZE", "10"),
        ("DB__DB_MAX_OVERFLOW", "lots"),
    ]))
    .unwrap_err();
    assert_eq!(e.var, "DB__DB_MAX_OVERFLOW");
}

#[test]
fn names_without_a_counterpart_are_kept_for_the_start_up_warning() {
    let c = Config::from_vars(&vars(&[("APP__TZ", "Europe/Moscow")])).unwrap();
    let names: Vec<&str> = c.ignored_legacy_vars.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, vec!["APP__TZ"]);
}

#[test]
fn old_log_levels() {
    for old in [
        "WARNING",
        "Critical",
        "ERROR",
        "NOTSET",
        "30",
        "info,sqlx=debug",
    ] {
        let c = Config::from_vars(&vars(&[("LOG_LEVEL", old)])).unwrap();
        assert_eq!(c.log.level, log_level(old), "{old} through Config");
    }
    assert_eq!(
        Config::from_vars(&vars(&[("LOG_LEVEL", "WARNING")]))
            .unwrap()
            .log
            .level,
        "warn"
    );
}

#[test]
fn dotenv_is_read_and_the_real_environment_wins() {
    let dir = std::env::temp_dir().join(format!("dotenv-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        "# the old service's file\nDB__DB_URL=postgresql+asyncpg://u:p@db/auth\nAPP__LOG_LEVEL=CRITICAL\nPORT=8000\n",
    )
    .unwrap();
    let v = with_dotenv(&dir, [("PORT".to_string(), "9000".to_string())]).unwrap();
    let c = Config::from_vars(&v).unwrap();
    assert_eq!(c.database.url.expose_secret(), "postgres://u:p@db/auth");
    assert_eq!(c.log.level, "error");
    assert_eq!(c.http.port, 9000);
    std::fs::write(dir.join(".env"), "NOT A LINE\n").unwrap();
    let e: ConfigError = with_dotenv(&dir, []).unwrap_err().into();
    assert_eq!(e.var, ".env");
    std::fs::remove_dir_all(&dir).unwrap();
}
