//! [`PublicPaths`]: the path prefixes the sidecar proxies without a token
//! (`AUTH_EDGE_PUBLIC_PATHS`), e.g. `/healthz,/static/,/api/v1/auth/login`.
//!
//! Matching is by whole path segments (`/static` matches `/static` and `/static/app.js`, never
//! `/staticfiles`), on the raw request path, and refuses anything an upstream could normalise
//! into a different path: dot segments, encoded dots, slashes, backslashes, semicolons and
//! percent signs. Without that, `/static/../admin` or `/static%2F..%2Fadmin` would pass here as
//! public and reach the application as `/admin`; so would `/static/..%3B/admin` (decoded, then
//! `;params` stripped) and `/static/%252e%252e/admin` (decoded twice, by a proxy and then the
//! application). Such a path is not an error; it simply needs a token. The fuzz target
//! `fuzz/fuzz_targets/public_paths.rs` checks this against a reference normaliser.

use std::fmt;

/// A validated list of public path prefixes. Empty means every path needs a token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PublicPaths(Vec<String>);

impl fmt::Debug for PublicPaths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl PublicPaths {
    /// Parses a comma-separated list of absolute path prefixes. Each must start with `/` and be
    /// a plain path itself (no query, no dot segments, no percent-encoding).
    pub fn parse(raw: &str) -> Result<PublicPaths, String> {
        let mut out = Vec::new();
        for prefix in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !prefix.starts_with('/') {
                return Err(format!("{prefix:?} must start with /"));
            }
            if prefix.contains(['?', '#', '%', '\\', '*', ';'])
                || prefix.contains("//")
                || !is_plain(prefix)
            {
                return Err(format!(
                    "{prefix:?} must be a plain path prefix (no query, wildcard, \
                     percent-encoding, parameters, empty or dot segments)"
                ));
            }
            if prefix == "/" {
                // Would make the whole service public: almost certainly a mistake, and a sidecar
                // that authenticates nothing is better not deployed.
                return Err("\"/\" would make every path public".to_owned());
            }
            if !out.iter().any(|p| p == prefix) {
                out.push(prefix.to_owned());
            }
        }
        Ok(PublicPaths(out))
    }

    /// Whether no path is public.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured prefixes.
    pub fn prefixes(&self) -> &[String] {
        &self.0
    }

    /// Whether `path` (the request target without its query) may pass without a token.
    pub fn is_public(&self, path: &str) -> bool {
        if self.0.is_empty() || !is_plain(path) {
            return false;
        }
        self.0.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                // `/static/` covers everything below it; `/static` also itself.
                prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')
            })
        })
    }
}

/// A path an upstream cannot reinterpret: no `.`/`..` segments (also with `;params`), no encoded
/// `.`, `/`, `\`, `;` or `%` (a second decoding would reveal any of them), no raw backslash.
fn is_plain(path: &str) -> bool {
    if path.contains('\\') {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%3b", "%25"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return false;
    }
    path.split('/').all(|segment| {
        // Tomcat-style `..;jsessionid=x` is still `..`.
        let name = segment.split(';').next().unwrap_or(segment);
        name != "." && name != ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let p = PublicPaths::parse(" /healthz, /static/ ,,/healthz").unwrap();
        assert_eq!(p.prefixes(), ["/healthz", "/static/"]);
        assert!(PublicPaths::parse("").unwrap().is_empty());
        for bad in [
            "healthz", "/", "/a?b", "/a/../b", "/a%2fb", "/a/*", "/a\\b", "/a;b", "/a//b",
        ] {
            assert!(PublicPaths::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_whole_segments() {
        let p = PublicPaths::parse("/healthz,/static/,/api/v1/auth/login").unwrap();
        for ok in [
            "/healthz",
            "/healthz/",
            "/healthz/live",
            "/static/",
            "/static/app.js",
            "/api/v1/auth/login",
        ] {
            assert!(p.is_public(ok), "{ok}");
        }
        for protected in [
            "/",
            "/healthzx",
            "/static",
            "/staticfiles/a",
            "/api/v1/auth/login2",
            "/api/v1/auth",
            "/orders",
        ] {
            assert!(!p.is_public(protected), "{protected}");
        }
    }

    #[test]
    fn paths_an_upstream_could_normalise_are_never_public() {
        let p = PublicPaths::parse("/static/,/healthz").unwrap();
        for sneaky in [
            "/static/../admin",
            "/static/./../admin",
            "/static/..;x=1/admin",
            "/static/%2e%2e/admin",
            "/static/%2E%2E/admin",
            "/static%2f..%2fadmin",
            "/static/..%2Fadmin",
            "/static/..\\admin",
            "/healthz/..",
            // Readings of the public_paths fuzz target's reference normaliser: `;` decoded and
            // then stripped as a path parameter, and a second percent-decoding.
            "/static/..%3B/admin",
            "/static/..%3b/admin",
            "/static/%252e%252e/admin",
            "/static/..%255cadmin",
            "/static/%252E%252E%252Fadmin",
        ] {
            assert!(!p.is_public(sneaky), "{sneaky}");
        }
        assert!(!PublicPaths::default().is_public("/static/a"));
    }
}
