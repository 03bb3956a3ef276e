//! How a request carries its access token: the one rule both services apply.
//!
//! The edge and accounts each used to read the token their own way, and they disagreed:
//! `Authorization: Basic x` + `Authorization: Bearer A` + `Cookie: access_token=B` was user A at
//! the edge and user B at accounts. Both now call [`access_token`] with the raw header values, so
//! a request means the same caller everywhere. The rules:
//!
//! - **More than one `Authorization` header** is a malformed request: refused (401), never "pick
//!   one", because which one a proxy or a framework keeps differs. So is a single value that
//!   looks like a proxy's comma-joined merge of a Bearer header with another one.
//! - **One `Authorization: Bearer <token>`** wins over the cookie (an API client's explicit token
//!   is never shadowed by a stale browser cookie). The scheme is case-insensitive (RFC 9110
//!   11.1); the token must be RFC 6750 `b64token` (what a JWT is made of), else refused: the
//!   client chose Bearer, so a broken one is an error, not a reason to fall back to the cookie.
//! - **One `Authorization` header of another scheme** (`Basic ...` for an upstream app, say) is
//!   not ours: it is ignored and the cookie is used, as both services did before.
//! - **Every `Cookie` header is searched** (HTTP/2 sends one per cookie). Empty values are absent
//!   (a cleared cookie); a value in double quotes (RFC 6265 allows it) is unquoted.
//! - **The access cookie twice with different values** (e.g. a host-only and a domain cookie) is
//!   ambiguous: refused rather than guessing which one the browser meant. The same value twice is
//!   fine.
//! - **Control characters** (bytes below 0x20 except HTAB, and 0x7f) anywhere in these headers
//!   are refused. HTTP parsers already reject most of them; this is the backstop for front ends
//!   that hand over headers some other way (Envoy's ext_authz messages).
//!
//! The rules are covered by one table, `cases::CASES` (exported as `credential_cases`), run here
//! and against both real services.

use std::fmt;

/// Where the token was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer`.
    Header,
    /// The access cookie.
    Cookie,
}

/// The access token of a request and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential<'a> {
    /// The token, unquoted and checked to be `b64token` characters only.
    pub token: &'a str,
    /// Header or cookie.
    pub source: TokenSource,
}

/// Why a request's credentials were refused. Every variant means 401: the request carried
/// something that looks like credentials but cannot be read one way only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    SeveralAuthorizationHeaders,
    /// `Authorization: Bearer` without a well-formed token.
    #[error("malformed Bearer credentials")]
    MalformedBearer,
    /// The access cookie's value is not a token.
    #[error("malformed access cookie")]
    MalformedCookie,
    /// The access cookie twice with different values.
    #[error("access cookie sent twice with different values")]
    AmbiguousCookie,
    /// A control character in `Authorization` or `Cookie`.
    #[error("control character in credentials")]
    ControlCharacter,
}

/// The access token of a request, from all its `Authorization` header values and all its
/// `Cookie` header values (raw bytes, in the order received). `Ok(None)`: no credentials at all
/// (the caller answers with a bare challenge or treats the request as anonymous).
pub fn access_token<'a, A, C>(
    authorization: A,
    cookies: C,
    cookie_name: &str,
) -> Result<Option<Credential<'a>>, CredentialError>
where
    A: IntoIterator<Item = &'a [u8]>,
    C: IntoIterator<Item = &'a [u8]>,
{
    let mut authorization = authorization.into_iter();
    let first = authorization.next();
    if authorization.next().is_some() {
        return Err(CredentialError::SeveralAuthorizationHeaders);
    }
    if let Some(value) = first {
        if let Some(token) = bearer(value)? {
            return Ok(Some(Credential {
                token,
                source: TokenSource::Header,
            }));
        }
    }
    let mut found: Option<&'a str> = None;
    for header in cookies {
        if let Some(token) = cookie(header, cookie_name)? {
            match found {
                Some(earlier) if earlier != token => return Err(CredentialError::AmbiguousCookie),
                _ => found = Some(token),
            }
        }
    }
    Ok(found.map(|token| Credential {
        token,
        source: TokenSource::Cookie,
    }))
}

fn has_control(bytes: &[u8]) -> bool {
    // No early exit, for the same reason as `b64token`: clean values are the common case.
    bytes.iter().fold(false, |bad, &b| {
        bad | ((b < 0x20) & (b != b'\t')) | (b == 0x7f)
    })
}

fn is_ows(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_ows(first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_ows(last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn b64token(bytes: &[u8]) -> Option<&str> {
    let body_len = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let (body, _padding) = bytes.split_at(body_len);
    // Folded without short-circuit so the compiler can check many bytes at once: this runs on
    // every request over the whole token (~800 bytes), and a byte-at-a-time loop with early
    // exit was a tenth of the edge's CPU per request.
    let ok = !body.is_empty() && body.iter().fold(true, |ok, &b| ok & is_b64token_byte(b));
    // All ASCII when `ok`, so this never fails then.
    ok.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`, without branches.
#[inline(always)]
fn is_b64token_byte(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// Whether credentials start with the Bearer scheme (`Bearer` alone or followed by a space).
fn is_bearer_scheme(credentials: &[u8]) -> bool {
    credentials
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"bearer"))
        && matches!(credentials.get(6), None | Some(b' '))
}

/// The token of one `Authorization` value if its scheme is Bearer; `Ok(None)` for other schemes.
fn bearer(value: &[u8]) -> Result<Option<&str>, CredentialError> {
    if has_control(value) {
        return Err(CredentialError::ControlCharacter);
    }
    let value = trim_ows(value);
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // A proxy that merges repeated headers (Envoy hands ext_authz one comma-joined value)
        // turns `Basic x` + `Bearer A` into `Basic x, Bearer A`: still two credentials.
        let merged_bearer = value
            .split(|&b| b == b',')
            .skip(1)
            .any(|part| is_bearer_scheme(trim_ows(part)));
        if merged_bearer {
            return Err(CredentialError::SeveralAuthorizationHeaders);
        }
        return Ok(None);
    }
    b64token(trim_ows(rest))
        .map(Some)
        .ok_or(CredentialError::MalformedBearer)
}

/// The non-empty value of cookie `name` in one `Cookie` header value (`a=1; b=2`), unquoted.
/// Several occurrences in one header must agree, like occurrences across headers.
fn cookie<'a>(header: &'a [u8], name: &str) -> Result<Option<&'a str>, CredentialError> {
    if has_control(header) {
        return Err(CredentialError::ControlCharacter);
    }
    let mut found: Option<&'a str> = None;
    for pair in header.split(|&b| b == b';') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if trim_ows(&pair[..eq]) != name.as_bytes() {
            continue;
        }
        let mut value = trim_ows(&pair[eq + 1..]);
        if let [b'"', inner @ .., b'"'] = value {
            value = inner;
        }
        if value.is_empty() {
            continue;
        }
        let token = b64token(value).ok_or(CredentialError::MalformedCookie)?;
        match found {
            Some(earlier) if earlier != token => return Err(CredentialError::AmbiguousCookie),
            _ => found = Some(token),
        }
    }
    Ok(found)
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenSource::Header => "header",
            TokenSource::Cookie => "cookie",
        })
    }
}

/// The table of credential cases every reader of credentials must agree on: the unit tests
/// below, and the integration tests of the edge (forward-auth) and of accounts (`/auth/me`) run
/// it against the real services. Not part of the API proper.
#[doc(hidden)]
pub mod cases {
    /// What a case must come to. `A` and `B` stand for two valid tokens of two different users;
    /// the tests substitute real tokens for the placeholders `{A}` and `{B}`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Expect {
        /// Authenticated as the user of token `A`, from the header.
        HeaderA,
        /// Authenticated as the user of token `A`, from the cookie.
        CookieA,
        /// Authenticated as the user of token `B`, from the cookie.
        CookieB,
        /// No credentials: 401 with a bare challenge (or anonymous on a public path).
        Missing,
        /// Refused as malformed or ambiguous: 401.
        Refused,
    }

    /// One request's credential headers and the outcome every service must reach.
    #[derive(Clone, Copy, Debug)]
    pub struct Case {
        /// What the case is about (shown on failure).
        pub name: &'static str,
        /// `Authorization` header values, one header each.
        pub authorization: &'static [&'static str],
        /// `Cookie` header values, one header each.
        pub cookies: &'static [&'static str],
        /// The outcome.
        pub expect: Expect,
    }

    impl Case {
        /// Whether the case can be sent over HTTP at all: header values with control characters
        /// are refused by HTTP clients and servers before any service sees them, so those cases
        /// are for the unit tests only.
        pub fn travels_over_http(&self) -> bool {
            self.authorization
                .iter()
                .chain(self.cookies)
                .all(|v| !super::has_control(v.as_bytes()))
        }

        /// The header values with real tokens in place of `{A}` and `{B}`.
        pub fn with_tokens(values: &[&str], a: &str, b: &str) -> Vec<String> {
            values
                .iter()
                .map(|v| v.replace("{A}", a).replace("{B}", b))
                .collect()
        }
    }

    const fn case(
        name: &'static str,
        authorization: &'static [&'static str],
        cookies: &'static [&'static str],
        expect: Expect,
    ) -> Case {
        Case {
            name,
            authorization,
            cookies,
            expect,
        }
    }

    use Expect::*;

    /// The cases. The access cookie is `access_token` throughout.
    pub const CASES: &[Case] = &[
        case("nothing", &[], &[], Missing),
        case("bearer", &["Bearer {A}"], &[], HeaderA),
        case(
            "bearer scheme is case-insensitive",
            &["bEaReR {A}"],
            &[],
            HeaderA,
        ),
        case(
            "bearer with extra spaces",
            &["Bearer   {A}  "],
            &[],
            HeaderA,
        ),
        case("cookie", &[], &["access_token={A}"], CookieA),
        case(
            "cookie among others",
            &[],
            &["theme=dark; access_token={B}; lang=ru"],
            CookieB,
        ),
        case("quoted cookie", &[], &["access_token=\"{A}\""], CookieA),
        case(
            "bearer wins over the cookie",
            &["Bearer {A}"],
            &["access_token={B}"],
            HeaderA,
        ),
        case(
            "basic is ignored, cookie used",
            &["Basic dXNlcjpwYXNz"],
            &["access_token={B}"],
            CookieB,
        ),
        case(
            "basic alone is no credentials",
            &["Basic dXNlcjpwYXNz"],
            &[],
            Missing,
        ),
        case(
            "empty authorization is ignored",
            &[""],
            &["access_token={B}"],
            CookieB,
        ),
        case(
            "two authorization headers are refused",
            &["Basic dXNlcjpwYXNz", "Bearer {A}"],
            &["access_token={B}"],
            Refused,
        ),
        case(
            "two bearer headers are refused",
            &["Bearer {A}", "Bearer {A}"],
            &[],
            Refused,
        ),
        case(
            "two authorization headers merged by a proxy are refused",
            &["Basic dXNlcjpwYXNz, Bearer {A}"],
            &["access_token={B}"],
            Refused,
        ),
        case(
            "a digest header with commas is just another scheme",
            &["Digest username=\"bearer x\", realm=\"Bearer y\""],
            &["access_token={B}"],
            CookieB,
        ),
        case(
            "bearer without a token",
            &["Bearer"],
            &["access_token={B}"],
            Refused,
        ),
        case("bearer with a blank token", &["Bearer  "], &[], Refused),
        case(
            "bearer token with a space",
            &["Bearer {A} {B}"],
            &[],
            Refused,
        ),
        case("bearer token with a comma", &["Bearer {A},x"], &[], Refused),
        case(
            "bearer glued to its token is another scheme",
            &["Bearer{A}"],
            &[],
            Missing,
        ),
        case(
            "cookie split over two headers",
            &[],
            &["theme=dark", "access_token={A}"],
            CookieA,
        ),
        case(
            "cookie in the second header of two",
            &[],
            &["a=1; b=2", "c=3; access_token={B}"],
            CookieB,
        ),
        case(
            "same cookie twice, same value",
            &[],
            &["access_token={A}", "access_token={A}"],
            CookieA,
        ),
        case(
            "same cookie twice in one header, different values",
            &[],
            &["access_token={A}; access_token={B}"],
            Refused,
        ),
        case(
            "same cookie in two headers, different values",
            &[],
            &["access_token={A}", "access_token={B}"],
            Refused,
        ),
        case("empty cookie is absent", &[], &["access_token="], Missing),
        case(
            "empty cookie beside a full one",
            &[],
            &["access_token=; access_token={B}"],
            CookieB,
        ),
        case(
            "empty quoted cookie is absent",
            &[],
            &["access_token=\"\""],
            Missing,
        ),
        case(
            "other cookie names do not count",
            &[],
            &["xaccess_token={A}; access_tokens={A}"],
            Missing,
        ),
        case(
            "cookie name is case-sensitive",
            &[],
            &["Access_Token={A}"],
            Missing,
        ),
        case(
            "cookie value that is no token",
            &[],
            &["access_token={A}\\x"],
            Refused,
        ),
        case(
            "control character in bearer",
            &["Bearer {A}\u{1}"],
            &[],
            Refused,
        ),
        case("DEL in bearer", &["Bearer {A}\u{7f}"], &[], Refused),
        case(
            "control character in a basic header",
            &["Basic \u{0}"],
            &["access_token={B}"],
            Refused,
        ),
        case(
            "control character in the cookie header",
            &[],
            &["theme=\u{1b}; access_token={A}"],
            Refused,
        ),
        case(
            "line feed in the cookie",
            &[],
            &["access_token={A}\n"],
            Refused,
        ),
        case(
            "bearer and token separated by a tab is another scheme",
            &["Bearer\t{A}"],
            &[],
            Missing,
        ),
    ];
}

#[cfg(test)]
mod tests {
    use super::cases::{Case, Expect, CASES};
    use super::*;

    #[test]
    fn the_branchless_byte_checks_match_the_grammar_for_every_byte() {
        for b in 0..=255u8 {
            let grammar =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_b64token_byte(b), grammar, "byte {b:#04x}");
            let control = (b < 0x20 && b != b'\t') || b == 0x7f;
            assert_eq!(has_control(&[b'a', b, b'z']), control, "byte {b:#04x}");
        }
    }

    // Shaped like real tokens (three base64url parts), so the b64token check is exercised.
    const A: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnLWE";
    const B: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiIn0.c2lnLWI";

    fn run(case: &Case) -> Result<Option<Credential<'static>>, CredentialError> {
        // Leaked so the borrowed result can outlive this function; a few hundred bytes per test.
        let auth: &'static [String] = Case::with_tokens(case.authorization, A, B).leak();
        let cookies: &'static [String] = Case::with_tokens(case.cookies, A, B).leak();
        access_token(
            auth.iter().map(|s| s.as_bytes()),
            cookies.iter().map(|s| s.as_bytes()),
            "access_token",
        )
    }

    #[test]
    fn the_table() {
        for case in CASES {
            let got = run(case);
            let ok = match (case.expect, got) {
                (Expect::HeaderA, Ok(Some(c))) => {
                    c == Credential {
                        token: A,
                        source: TokenSource::Header,
                    }
                }
                (Expect::CookieA, Ok(Some(c))) => {
                    c == Credential {
                        token: A,
                        source: TokenSource::Cookie,
                    }
                }
                (Expect::CookieB, Ok(Some(c))) => {
                    c == Credential {
                        token: B,
                        source: TokenSource::Cookie,
                    }
                }
                (Expect::Missing, Ok(None)) => true,
                (Expect::Refused, Err(_)) => true,
                _ => false,
            };
            assert!(ok, "{}: expected {:?}, got {got:?}", case.name, case.expect);
        }
    }

    #[test]
    fn the_table_covers_every_outcome_and_most_cases_travel() {
        for expect in [
            Expect::HeaderA,
            Expect::CookieA,
            Expect::CookieB,
            Expect::Missing,
            Expect::Refused,
        ] {
            assert!(CASES.iter().any(|c| c.expect == expect), "{expect:?}");
        }
        let wire = CASES.iter().filter(|c| c.travels_over_http()).count();
        assert!(
            (25..CASES.len()).contains(&wire),
            "{wire} of {}",
            CASES.len()
        );
    }

    #[test]
    fn errors_say_what_was_wrong() {
        let two = access_token([&b"Bearer a"[..], &b"Bearer a"[..]], [], "t");
        assert_eq!(two, Err(CredentialError::SeveralAuthorizationHeaders));
        let ambiguous = access_token([], [&b"t=a"[..], &b"t=b"[..]], "t");
        assert_eq!(ambiguous, Err(CredentialError::AmbiguousCookie));
        assert_eq!(
            access_token([&b"Bearer"[..]], [], "t"),
            Err(CredentialError::MalformedBearer)
        );
        assert_eq!(
            access_token([], [&b"t=a,b"[..]], "t"),
            Err(CredentialError::MalformedCookie)
        );
        assert_eq!(
            access_token([&b"x\x00"[..]], [], "t"),
            Err(CredentialError::ControlCharacter)
        );
    }

    #[test]
    fn non_ascii_in_other_cookies_or_schemes_is_harmless() {
        // Browsers send UTF-8 in cookie values; an unrelated cookie must not lock a user out.
        let cookies = ["theme=тёмная; t=abc".as_bytes()];
        let got = access_token([], cookies, "t").unwrap().unwrap();
        assert_eq!(got.token, "abc");
        let got = access_token(["Digest realm=\"é\"".as_bytes()], [&b"t=abc"[..]], "t");
        assert_eq!(got.unwrap().unwrap().source, TokenSource::Cookie);
        // A non-ASCII Bearer token is malformed.
        let got = access_token(["Bearer é".as_bytes()], [], "t");
        assert_eq!(got, Err(CredentialError::MalformedBearer));
    }

    #[test]
    fn padding_is_allowed_only_at_the_end() {
        assert_eq!(b64token(b"abc=="), Some("abc=="));
        assert_eq!(b64token(b"a=bc"), None);
        assert_eq!(b64token(b"=="), None);
        assert_eq!(b64token(b""), None);
    }
}
