//! Moving from the old SmartBudget auth service (Python): everything that exists only for that
//! move lives here, behind thin hooks, so the rest of the service never sees the old shapes.
//!
//! - `config::legacy_env` (in the configuration, which it serves): the old `.env` keeps working: `.env` loading, the old nested variable names
//!   (`DB__DB_URL`, `APP__LOG_LEVEL`, ...) as aliases, the old `LOG_LEVEL` values.
//! - [`import`]: `auth-accounts import-legacy`, copying users and live sessions out of the old
//!   PostgreSQL database so that nobody has to sign in again after the cut-over.

pub mod import;
