//! Browsers: a page navigation without a valid token is sent to the login page instead of getting
//! a bare 401, and CORS preflights may pass without a token.
//!
//! - Login redirect (`AUTH_EDGE_LOGIN_URL`): a navigation ([`is_navigation`]: `Sec-Fetch-Mode:
//!   navigate`, or `Accept: text/html` from a browser that sends no Fetch Metadata) whose token is
//!   missing or refused with 401 gets `302 Location: <login URL>?rd=<the page's URL>`. API calls
//!   keep their 401 (a script wants the status, not a login page). The page's URL comes from the
//!   proxy (`X-Forwarded-Proto`/`-Host`/`-Uri`, nginx's `X-Original-URI`, Envoy's attributes) and
//!   is believed only when the peer is a trusted proxy ([`TrustedProxies`]) and its host is on the
//!   allow-list ([`HostAllowList`]): anything else redirects to the bare login URL, so the edge is
//!   never an open redirector.
//! - CORS preflight (`AUTH_EDGE_CORS_PREFLIGHT=allow`): `OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method` is forwarded anonymously (no identity; client-sent identity
//!   headers still stripped). Browsers never attach credentials to a preflight, so without this
//!   every cross-origin call with custom headers fails before it starts.

use std::net::IpAddr;

use http::header::{ACCEPT, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use ipnet::IpNet;

const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
const SEC_FETCH_DEST: HeaderName = HeaderName::from_static("sec-fetch-dest");
const SEC_FETCH_USER: HeaderName = HeaderName::from_static("sec-fetch-user");
const ACCESS_CONTROL_REQUEST_METHOD: HeaderName =
    HeaderName::from_static("access-control-request-method");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");

/// Longest return URL carried to the login page; a longer one is dropped (bare login URL).
const MAX_RETURN_URL: usize = 2048;

/// The proxies whose forwarded headers (and Envoy attributes) are believed
/// (`AUTH_EDGE_TRUSTED_PROXIES`; loopback by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses comma-separated addresses and CIDRs (`10.0.0.0/8, ::1`).
    pub fn parse(raw: &str) -> Result<TrustedProxies, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{item:?} is not an address or CIDR"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether `peer` is one of them. An IPv4 peer on a dual-stack socket shows up as an
    /// IPv4-mapped IPv6 address and is compared as IPv4.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.0.iter().any(|net| net.contains(&peer))
    }
}

/// Hosts a return URL may name (`AUTH_EDGE_REDIRECT_ALLOWED_HOSTS`): exact host names, or
/// `.example.com` for that domain and every subdomain. Lowercase, without ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAllowList(Vec<String>);

impl HostAllowList {
    /// Parses comma-separated entries; wildcards, schemes, paths, ports and userinfo are refused.
    pub fn parse(raw: &str) -> Result<HostAllowList, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let host = entry.strip_prefix('.').unwrap_or(entry);
                let ok = !host.is_empty()
                    && !host.starts_with('.')
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if ok {
                    Ok(entry.to_ascii_lowercase())
                } else {
                    Err(format!(
                        "{entry:?} is not a host name or a .domain suffix (no `*`, scheme, port or path)"
                    ))
                }
            })
            .collect::<Result<_, _>>()
            .map(HostAllowList)
    }

    /// Whether `host` (lowercase, no port) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        self.0.iter().any(|entry| match entry.strip_prefix('.') {
            Some(domain) => {
                host == domain
                    || host
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1)
            }
            None => host == entry,
        })
    }
}

/// Where navigations without a valid token are sent (`AUTH_EDGE_LOGIN_URL`,
/// `AUTH_EDGE_LOGIN_RETURN_PARAM`, `AUTH_EDGE_REDIRECT_ALLOWED_HOSTS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRedirect {
    /// The login page, `http(s)://` (checked at start-up).
    pub url: String,
    /// The query parameter carrying the return URL (`rd` by default, as oauth2-proxy).
    pub return_param: String,
    /// Hosts a return URL may point to.
    pub allowed_hosts: HostAllowList,
}

/// The URL of the request being checked, as reported by a trusted proxy (unchecked parts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginalUrl<'a> {
    /// `http` or `https` (anything else is refused).
    pub scheme: &'a str,
    /// `host[:port]`.
    pub authority: &'a str,
    /// `/path?query`.
    pub path_and_query: &'a str,
}

impl LoginRedirect {
    /// The `Location` of the redirect: the login URL, with the return URL when `original` is
    /// given, safe and on the allow-list.
    pub fn location(&self, original: Option<OriginalUrl<'_>>) -> HeaderValue {
        let mut location = self.url.clone();
        if let Some(back) = original.and_then(|o| self.return_url(o)) {
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(&self.return_param);
            location.push('=');
            percent_encode_into(&back, &mut location);
        }
        // Built from a checked URL and percent-encoded ASCII: always a valid header value.
        HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static("/"))
    }

    /// The return URL if every part is safe: scheme http(s); a plain `host[:port]` (no userinfo,
    /// no backslash) on the allow-list; a path starting with one `/` (never `//` or `/\`, which
    /// browsers read as another host); visible ASCII only.
    pub fn return_url(&self, original: OriginalUrl<'_>) -> Option<String> {
        let scheme = original.scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let authority = original.authority.to_ascii_lowercase();
        let host = host_of(&authority)?;
        if !self.allowed_hosts.allows(host) {
            return None;
        }
        let path = original.path_and_query;
        let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
        if !path.starts_with('/') || path.starts_with("//") || !visible(path) {
            return None;
        }
        let url = format!("{scheme}://{authority}{path}");
        (url.len() <= MAX_RETURN_URL).then_some(url)
    }
}

/// The host of `host[:port]` (lowercase input), or None when it is not a plain authority.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        (&authority[..v6.len() + 2], after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    (host_ok && port_ok).then_some(host)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode_into(raw: &str, out: &mut String) {
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// What the edge does for browsers: the login redirect, the CORS preflight bypass, and whose
/// forwarded headers it believes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserPolicy {
    /// None: navigations get the 401 like everyone else.
    pub login: Option<LoginRedirect>,
    /// `AUTH_EDGE_CORS_PREFLIGHT=allow`.
    pub cors_preflight: bool,
    /// `AUTH_EDGE_TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
}

impl Default for BrowserPolicy {
    fn default() -> Self {
        BrowserPolicy {
            login: None,
            cors_preflight: false,
            trusted_proxies: TrustedProxies::parse("127.0.0.0/8,::1")
                .unwrap_or_else(|e| unreachable!("{e}")),
        }
    }
}

impl BrowserPolicy {
    /// Whether a return URL should be read from the request of `peer`: only when there is a
    /// login redirect, and only from a trusted proxy.
    pub fn reads_return_url(&self, peer: Option<IpAddr>) -> bool {
        self.login.is_some() && peer.is_some_and(|p| self.trusted_proxies.contains(p))
    }
}

fn value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether the request is a browser loading a page: `Sec-Fetch-Mode: navigate`, or, from a
/// browser that sends no Fetch Metadata at all, a `GET`/`HEAD` accepting `text/html`. Only
/// `GET` and `HEAD` are redirected: a form `POST` would lose its body on the way to the login.
pub fn is_navigation(headers: &HeaderMap, method: &Method) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if let Some(mode) = value(headers, &SEC_FETCH_MODE) {
        return mode.eq_ignore_ascii_case("navigate");
    }
    let fetch_metadata = [SEC_FETCH_SITE, SEC_FETCH_DEST, SEC_FETCH_USER]
        .iter()
        .any(|name| headers.contains_key(name));
    !fetch_metadata
        && headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|media| {
                media
                    .split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
            })
}

/// Whether the request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn is_preflight(headers: &HeaderMap, method: &Method) -> bool {
    method == Method::OPTIONS
        && value(headers, &ORIGIN).is_some()
        && value(headers, &ACCESS_CONTROL_REQUEST_METHOD).is_some()
}

/// The original URL from a forward-auth request's headers: `X-Forwarded-Proto`, then
/// `X-Forwarded-Host` or `Host`, then `X-Forwarded-Uri` (Traefik, Caddy), `X-Original-URI` (the
/// nginx snippet) or the request's own target (Envoy's HTTP service sends the original path).
/// None without a scheme: guessing `http` would send an `https` site's users back over
/// plain HTTP. Only call it for a request from a trusted proxy.
pub fn forwarded_url<'a>(headers: &'a HeaderMap, own_target: &'a str) -> Option<OriginalUrl<'a>> {
    let first =
        |name: &HeaderName| value(headers, name).map(|v| v.split(',').next().unwrap_or(v).trim());
    Some(OriginalUrl {
        scheme: first(&X_FORWARDED_PROTO)?,
        authority: first(&X_FORWARDED_HOST).or_else(|| value(headers, &http::header::HOST))?,
        path_and_query: value(headers, &X_FORWARDED_URI)
            .or_else(|| value(headers, &X_ORIGINAL_URI))
            .unwrap_or(own_target),
    })
}

/// The original URL of a request the sidecar serves itself: `X-Forwarded-Proto` and
/// `X-Forwarded-Host` when `trusted` (a proxy in front of it), else `http` and `Host` (what the
/// browser itself sent to reach us), and the request's own target.
pub fn own_url<'a>(
    headers: &'a HeaderMap,
    target: &'a str,
    trusted: bool,
) -> Option<OriginalUrl<'a>> {
    let forwarded = |name: &HeaderName| {
        trusted
            .then(|| value(headers, name))
            .flatten()
            .map(|v| v.split(',').next().unwrap_or(v).trim())
    };
    Some(OriginalUrl {
        scheme: forwarded(&X_FORWARDED_PROTO).unwrap_or("http"),
        authority: forwarded(&X_FORWARDED_HOST).or_else(|| value(headers, &http::header::HOST))?,
        path_and_query: target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::headers;

    fn login(allowed: &str) -> LoginRedirect {
        LoginRedirect {
            url: "https://login.example.com/signin".into(),
            return_param: "rd".into(),
            allowed_hosts: HostAllowList::parse(allowed).unwrap(),
        }
    }

    fn url<'a>(scheme: &'a str, authority: &'a str, path: &'a str) -> OriginalUrl<'a> {
        OriginalUrl {
            scheme,
            authority,
            path_and_query: path,
        }
    }

    #[test]
    fn navigations() {
        let get = Method::GET;
        assert!(is_navigation(
            &headers(&[("sec-fetch-mode", "navigate")]),
            &get
        ));
        assert!(is_navigation(
            &headers(&[("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")]),
            &Method::HEAD
        ));
        assert!(is_navigation(
            &headers(&[("accept", "Text/HTML; q=1")]),
            &get
        ));
        // A fetch() from a page, an API client, a form POST.
        assert!(!is_navigation(
            &headers(&[("sec-fetch-mode", "cors"), ("accept", "text/html")]),
            &get
        ));
        assert!(!is_navigation(
            &headers(&[("sec-fetch-dest", "empty"), ("accept", "text/html")]),
            &get
        ));
        assert!(!is_navigation(
            &headers(&[("accept", "application/json")]),
            &get
        ));
        assert!(!is_navigation(&headers(&[("accept", "*/*")]), &get));
        assert!(!is_navigation(&headers(&[]), &get));
        assert!(!is_navigation(
            &headers(&[("sec-fetch-mode", "navigate")]),
            &Method::POST
        ));
    }

    #[test]
    fn preflights() {
        let h = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ]);
        assert!(is_preflight(&h, &Method::OPTIONS));
        assert!(!is_preflight(&h, &Method::GET));
        assert!(!is_preflight(
            &headers(&[("origin", "https://app.example.com")]),
            &Method::OPTIONS
        ));
        assert!(!is_preflight(
            &headers(&[("access-control-request-method", "POST")]),
            &Method::OPTIONS
        ));
    }

    #[test]
    fn the_location_carries_a_safe_allow_listed_return_url() {
        let l = login("app.example.com,.shop.example");
        assert_eq!(
            l.location(Some(url(
                "https",
                "App.Example.com",
                "/orders/42?page=1&x=a b"
            ))),
            "https://login.example.com/signin"
        );
        assert_eq!(
            l.location(Some(url("https", "App.Example.com", "/orders/42?page=1&x=%20"))),
            "https://login.example.com/signin?rd=https%3A%2F%2Fapp.example.com%2Forders%2F42%3Fpage%3D1%26x%3D%2520"
        );
        assert_eq!(l.location(None), "https://login.example.com/signin");
        let with_query = LoginRedirect {
            url: "https://login.example.com/?lang=en".into(),
            return_param: "return_to".into(),
            ..l.clone()
        };
        assert_eq!(
            with_query.location(Some(url("http", "a.shop.example:8080", "/"))),
            "https://login.example.com/?lang=en&return_to=http%3A%2F%2Fa.shop.example%3A8080%2F"
        );
        for (scheme, authority, path) in [
            ("javascript", "app.example.com", "/"),
            ("https", "evil.example", "/"),
            ("https", "app.example.com.evil.example", "/"),
            ("https", "evilshop.example", "/"),
            ("https", "user@app.example.com", "/"),
            ("https", "app.example.com\\@evil.example", "/"),
            ("https", "app.example.com:", "/"),
            ("https", "app.example.com:99999", "/"),
            ("https", "app.example.com", "//evil.example/"),
            ("https", "app.example.com", "/\\evil.example/"),
            ("https", "app.example.com", "evil"),
            ("https", "app.example.com", "/a\tb"),
            ("https", "app.example.com", "/caf\u{e9}"),
            ("https", "", "/"),
        ] {
            assert_eq!(
                l.return_url(url(scheme, authority, path)),
                None,
                "{scheme}://{authority}{path}"
            );
        }
        assert!(l.return_url(url("https", "shop.example", "/")).is_some());
        assert!(l
            .return_url(url("HTTPS", "b.a.shop.example", "/"))
            .is_some());
        let long = format!("/{}", "a".repeat(MAX_RETURN_URL));
        assert_eq!(l.return_url(url("https", "app.example.com", &long)), None);
    }

    #[test]
    fn allow_lists_refuse_wildcards() {
        for bad in [
            "*",
            "*.example.com",
            "https://a.example",
            "a.example:443",
            "a.example/x",
            "..a",
            "u@a",
        ] {
            assert!(HostAllowList::parse(bad).is_err(), "{bad}");
        }
        let l = HostAllowList::parse(" A.example , .b.example ").unwrap();
        assert!(l.allows("a.example") && l.allows("b.example") && l.allows("x.b.example"));
        assert!(!l.allows("x.a.example") && !l.allows("xb.example") && !l.allows(".b.example"));
    }

    #[test]
    fn trusted_proxies() {
        let t = BrowserPolicy::default().trusted_proxies;
        assert!(t.contains("127.0.0.1".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!(t.contains("::ffff:127.0.0.2".parse().unwrap()));
        assert!(!t.contains("10.0.0.1".parse().unwrap()));
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").unwrap();
        assert!(t.contains("10.1.2.3".parse().unwrap()));
        assert!(t.contains("192.168.1.7".parse().unwrap()));
        assert!(!t.contains("192.168.1.8".parse().unwrap()));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("gateway").is_err());
    }

    #[test]
    fn forwarded_urls() {
        let h = headers(&[
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "app.example.com"),
            ("host", "edge:8081"),
            ("x-forwarded-uri", "/orders?a=1"),
            ("x-original-uri", "/ignored"),
        ]);
        assert_eq!(
            forwarded_url(&h, "/api/v1/auth/gateway-verify"),
            Some(url("https", "app.example.com", "/orders?a=1"))
        );
        let h = headers(&[("x-forwarded-proto", "http"), ("host", "app.example.com")]);
        assert_eq!(
            forwarded_url(&h, "/orders"),
            Some(url("http", "app.example.com", "/orders"))
        );
        assert_eq!(forwarded_url(&headers(&[("host", "a")]), "/"), None);

        let h = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("host", "app.example.com"),
        ]);
        assert_eq!(
            own_url(&h, "/a", false),
            Some(url("http", "app.example.com", "/a"))
        );
        assert_eq!(
            own_url(&h, "/a", true),
            Some(url("https", "evil.example", "/a"))
        );
        assert_eq!(own_url(&headers(&[]), "/a", false), None);
    }
}
