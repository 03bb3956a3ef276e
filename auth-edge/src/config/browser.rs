//! The browser section, [`BrowserPolicy`]: the login redirect for navigations without a valid
//! token (`AUTH_EDGE_LOGIN_URL`, `AUTH_EDGE_LOGIN_RETURN_PARAM`,
//! `AUTH_EDGE_REDIRECT_ALLOWED_HOSTS`), whose forwarded headers are believed
//! (`AUTH_EDGE_TRUSTED_PROXIES`) and the CORS preflight bypass (`AUTH_EDGE_CORS_PREFLIGHT`).
//! Anything that could make the edge an open redirector is refused here, at start-up.

use super::vars::{err, http_url, ConfigError, Vars};
use crate::browser::{BrowserPolicy, HostAllowList, LoginRedirect, TrustedProxies};

pub(super) fn parse(v: &Vars<'_>) -> Result<BrowserPolicy, ConfigError> {
    let login = match v.get("AUTH_EDGE_LOGIN_URL") {
        None => {
            for var in [
                "AUTH_EDGE_LOGIN_RETURN_PARAM",
                "AUTH_EDGE_REDIRECT_ALLOWED_HOSTS",
            ] {
                if v.get(var).is_some() {
                    return Err(err(var, "only used with AUTH_EDGE_LOGIN_URL"));
                }
            }
            None
        }
        Some(raw) => Some(login_redirect(v, raw)?),
    };
    let cors_preflight = match v
        .or("AUTH_EDGE_CORS_PREFLIGHT", "off")
        .to_ascii_lowercase()
        .as_str()
    {
        "allow" => true,
        "off" => false,
        other => {
            return Err(err(
                "AUTH_EDGE_CORS_PREFLIGHT",
                format!("{other:?}: use allow or off"),
            ))
        }
    };
    let trusted_proxies = match v.get("AUTH_EDGE_TRUSTED_PROXIES") {
        None => BrowserPolicy::default().trusted_proxies,
        Some(raw) => TrustedProxies::parse(raw).map_err(|m| err("AUTH_EDGE_TRUSTED_PROXIES", m))?,
    };
    Ok(BrowserPolicy {
        login,
        cors_preflight,
        trusted_proxies,
    })
}

fn login_redirect(v: &Vars<'_>, raw: &str) -> Result<LoginRedirect, ConfigError> {
    const VAR: &str = "AUTH_EDGE_LOGIN_URL";
    let uri = http_url(VAR, raw)?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') || raw.contains(['#', '\\']) {
        return Err(err(
            VAR,
            format!("{raw:?}: no userinfo, fragment or backslash"),
        ));
    }
    let param = v.or("AUTH_EDGE_LOGIN_RETURN_PARAM", "rd");
    if !param
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(err(
            "AUTH_EDGE_LOGIN_RETURN_PARAM",
            format!("{param:?}: letters, digits and -._~ only"),
        ));
    }
    // By default only the login page's own host may be returned to.
    let host = uri.host().unwrap_or_default();
    let allowed_hosts = HostAllowList::parse(v.or("AUTH_EDGE_REDIRECT_ALLOWED_HOSTS", host))
        .map_err(|m| err("AUTH_EDGE_REDIRECT_ALLOWED_HOSTS", m))?;
    Ok(LoginRedirect {
        url: raw.to_owned(),
        return_param: param.to_owned(),
        allowed_hosts,
    })
}
