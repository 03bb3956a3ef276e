//! The `access_token` and `refresh_token` cookies (the old service's names).
//!
//! Both are `HttpOnly` (scripts never see them), `Secure` unless `COOKIE_SECURE=false` is set for
//! plain-http development, and `SameSite=Lax` by default. The refresh cookie's `Path` is
//! `/api/v1/auth`, so it travels only to this API and never to the services behind the gateway.

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite as CookieSameSite};

use auth_token::{ACCESS_COOKIE, REFRESH_COOKIE};

use crate::config::{Config, SameSite};

pub(crate) const REFRESH_PATH: &str = "/api/v1/auth";

fn build(
    config: &Config,
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: i64,
) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_http_only(true);
    c.set_secure(config.cookies.secure);
    c.set_same_site(match config.cookies.same_site {
        SameSite::Lax => CookieSameSite::Lax,
        SameSite::Strict => CookieSameSite::Strict,
        SameSite::None => CookieSameSite::None,
    });
    c.set_path(path);
    c.set_max_age(cookie::time::Duration::seconds(max_age));
    if let Some(domain) = &config.cookies.domain {
        c.set_domain(domain.clone());
    }
    c
}

fn append(headers: &mut HeaderMap, c: Cookie<'static>) {
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        headers.append(header::SET_COOKIE, v);
    }
}

pub(crate) fn set_tokens(headers: &mut HeaderMap, config: &Config, access: &str, refresh: &str) {
    append(
        headers,
        build(
            config,
            ACCESS_COOKIE,
            access.to_string(),
            "/",
            config.tokens.access_ttl,
        ),
    );
    append(
        headers,
        build(
            config,
            REFRESH_COOKIE,
            refresh.to_string(),
            REFRESH_PATH,
            config.tokens.refresh_ttl,
        ),
    );
    // The old service set the refresh cookie at Path=/; expire that copy so it stops travelling
    // to every service.
    append(
        headers,
        build(config, REFRESH_COOKIE, String::new(), "/", 0),
    );
}

pub(crate) fn clear_tokens(headers: &mut HeaderMap, config: &Config) {
    append(headers, build(config, ACCESS_COOKIE, String::new(), "/", 0));
    append(
        headers,
        build(config, REFRESH_COOKIE, String::new(), REFRESH_PATH, 0),
    );
    append(
        headers,
        build(config, REFRESH_COOKIE, String::new(), "/", 0),
    );
}

/// The first non-empty value of a cookie in the request (the most specific path comes first).
pub(crate) fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse(pair.trim().to_string()).ok())
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn attributes() {
        let config = Config::from_vars(&HashMap::new()).unwrap();
        let mut h = HeaderMap::new();
        set_tokens(&mut h, &config, "aaa", "rrr");
        let all: Vec<String> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(
            all[0].starts_with("access_token=aaa")
                && all[0].contains("HttpOnly")
                && all[0].contains("Secure")
        );
        assert!(
            all[0].contains("SameSite=Lax")
                && all[0].contains("Path=/")
                && all[0].contains("Max-Age=900")
        );
        assert!(all[1].starts_with("refresh_token=rrr") && all[1].contains("Path=/api/v1/auth"));
        assert!(all[2].starts_with("refresh_token=;") && all[2].contains("Max-Age=0"));
    }

    #[test]
    fn reading() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; refresh_token=; refresh_token=xyz; access_token=tok"),
        );
        assert_eq!(read(&h, "refresh_token").as_deref(), Some("xyz"));
        assert_eq!(read(&h, "access_token").as_deref(), Some("tok"));
        assert_eq!(read(&h, "missing"), None);
    }
}
