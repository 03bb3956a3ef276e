//! [`Identity`], the verified caller, and the one rule for the identity headers
//! (`X-User-Id`, `X-Session-Id`, `X-User-Role`, or the names configured in [`HeaderNames`]):
//! strip every client-sent one, then set ours.
//!
//! Every front end applies that rule through [`strip_then_set`], each to its own kind of header
//! block (a hyper response, a pingora upstream request, an Envoy header mutation), so the list
//! of headers and the order of the two steps live here only.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use auth_token::Role;

/// The default names of the identity headers the edge sets after a successful verification,
/// and removes from anything a client sent ([`HeaderNames`] for configured ones).
pub static IDENTITY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static(auth_token::HEADER_USER_ID),
    HeaderName::from_static(auth_token::HEADER_SESSION_ID),
    HeaderName::from_static(auth_token::HEADER_USER_ROLE),
];

/// The names the identity is sent under, in the order user id, session id, role
/// (`AUTH_EDGE_USER_ID_HEADER`, `AUTH_EDGE_SESSION_ID_HEADER`, `AUTH_EDGE_ROLE_HEADER`; by default
/// [`IDENTITY_HEADERS`]). The identity rule strips every one of them, in any case and with `_`
/// for any `-`, and sets them only from a verified token. The default names are stripped too when
/// others are configured: an application that still reads `X-User-Id` must never get a
/// client-sent one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderNames {
    names: [HeaderName; 3],
    /// The signed identity assertion's header, when the edge signs one ([`crate::assertion`]).
    assertion: Option<HeaderName>,
    /// More claims sent as headers (`AUTH_EDGE_CLAIM_HEADERS`).
    claims: Vec<(ClaimField, HeaderName)>,
}

/// A token claim that can be forwarded in a header of its own (`sub`, `sid` and `role` have
/// theirs already).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimField {
    /// `iss`.
    Iss,
    /// `aud`.
    Aud,
    /// `jti`: the token's id.
    Jti,
    /// `iat`, unix seconds.
    Iat,
    /// `exp`, unix seconds.
    Exp,
}

impl ClaimField {
    /// The claim named `name`.
    pub fn parse(name: &str) -> Option<ClaimField> {
        match name {
            "iss" => Some(ClaimField::Iss),
            "aud" => Some(ClaimField::Aud),
            "jti" => Some(ClaimField::Jti),
            "iat" => Some(ClaimField::Iat),
            "exp" => Some(ClaimField::Exp),
            _ => None,
        }
    }

    /// The claim's name in a token.
    fn name(self) -> &'static str {
        match self {
            ClaimField::Iss => "iss",
            ClaimField::Aud => "aud",
            ClaimField::Jti => "jti",
            ClaimField::Iat => "iat",
            ClaimField::Exp => "exp",
        }
    }

    fn value(self, claims: &auth_token::Claims) -> String {
        match self {
            ClaimField::Iss => claims.iss.clone(),
            ClaimField::Aud => claims.aud.clone(),
            ClaimField::Jti => claims.jti.clone(),
            ClaimField::Iat => claims.iat.to_string(),
            ClaimField::Exp => claims.exp.to_string(),
        }
    }
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            names: IDENTITY_HEADERS.clone(),
            assertion: None,
            claims: Vec::new(),
        }
    }
}

/// Headers a proxy, a browser or the edge itself gives a meaning to: never an identity header.
const RESERVED: &[&str] = &[
    "authorization",
    "cookie",
    "set-cookie",
    "host",
    "origin",
    "referer",
    "accept",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "forwarded",
    "x-real-ip",
    "www-authenticate",
    "location",
    "cache-control",
];
const RESERVED_PREFIXES: &[&str] = &[
    "x-forwarded-",
    "x-original-",
    "x-envoy-",
    "x-auth-edge-",
    "sec-",
    "proxy-",
    "access-control-",
];

/// One configured header name: a valid name without `_` (nginx drops those) that proxies and
/// browsers give no meaning to (`Authorization`, `Cookie`, `Host`, `X-Forwarded-*`, `Sec-*`, ...).
fn parse_name(raw: &str) -> Result<HeaderName, String> {
    let lower = raw.trim().to_ascii_lowercase();
    let name = HeaderName::from_bytes(lower.as_bytes())
        .map_err(|_| format!("{raw:?} is not a header name"))?;
    if lower.contains('_') {
        return Err(format!("{raw:?}: use - not _ (nginx drops names with _)"));
    }
    if RESERVED.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(format!(
            "{raw:?} already means something to proxies or browsers"
        ));
    }
    Ok(name)
}

impl HeaderNames {
    /// The names for user id, session id and role (`parse_name`'s rules; all different).
    pub fn new(user_id: &str, session_id: &str, role: &str) -> Result<HeaderNames, String> {
        let names = [
            parse_name(user_id)?,
            parse_name(session_id)?,
            parse_name(role)?,
        ];
        if names[0] == names[1] || names[0] == names[2] || names[1] == names[2] {
            return Err("the three identity header names must differ".into());
        }
        Ok(HeaderNames {
            names,
            assertion: None,
            claims: Vec::new(),
        })
    }

    /// The same names, plus claims forwarded in headers of their own: `claim:Header-Name` pairs,
    /// comma-separated (`jti:X-Token-Id,exp:X-Token-Expires`). Claims: `iss`, `aud`, `jti`,
    /// `iat`, `exp`; header names by the same rules as the identity's, all different.
    pub fn with_claims(self, raw: &str) -> Result<HeaderNames, String> {
        let mut out = self;
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (claim, header) = pair
                .split_once(':')
                .ok_or_else(|| format!("{pair:?} is not claim:Header-Name"))?;
            let field = ClaimField::parse(claim.trim()).ok_or_else(|| {
                format!("{claim:?}: forwardable claims are iss, aud, jti, iat and exp")
            })?;
            let name = parse_name(header)?;
            if out.stripped().any(|h| *h == name) {
                return Err(format!("{header:?} is already an identity header"));
            }
            out.claims.push((field, name));
        }
        Ok(out)
    }

    /// The claims forwarded in headers of their own, in order.
    pub fn claim_fields(&self) -> impl Iterator<Item = ClaimField> + '_ {
        self.claims.iter().map(|(field, _)| *field)
    }

    /// The same names, plus the header of the signed identity assertion (the same rules; not
    /// one of the identity headers, configured or default).
    pub fn with_assertion(self, raw: &str) -> Result<HeaderNames, String> {
        let name = parse_name(raw)?;
        if self.stripped().any(|h| *h == name) {
            return Err(format!("{raw:?} is already an identity header"));
        }
        Ok(HeaderNames {
            assertion: Some(name),
            ..self
        })
    }

    /// User id, session id and role header names.
    pub fn names(&self) -> &[HeaderName; 3] {
        &self.names
    }

    /// The assertion's header, when the edge signs one.
    pub fn assertion(&self) -> Option<&HeaderName> {
        self.assertion.as_ref()
    }

    /// The names stripped: the configured ones, the assertion's, the claims', then the defaults
    /// not among them.
    pub fn stripped(&self) -> impl Iterator<Item = &HeaderName> {
        self.names
            .iter()
            .chain(self.assertion.iter())
            .chain(self.claims.iter().map(|(_, name)| name))
            .chain(IDENTITY_HEADERS.iter().filter(|d| !self.names.contains(d)))
    }

    /// Whether `name` is one of them (or a default name) in any case and with `_` for any `-`.
    /// CGI, WSGI, PHP and
    /// many frameworks map `X_User_Id` and `X-User-Id` to the same variable (`HTTP_X_USER_ID`),
    /// so an underscore variant a client sends is as good as the real header to such an
    /// application: it is stripped like the real one.
    pub fn matches(&self, name: &str) -> bool {
        self.stripped().any(|h| {
            let canonical = h.as_str().as_bytes();
            name.len() == canonical.len()
                && name.bytes().zip(canonical).all(|(a, &b)| {
                    let a = if a == b'_' {
                        b'-'
                    } else {
                        a.to_ascii_lowercase()
                    };
                    a == b
                })
        })
    }

    /// Whether a request carries client-sent identity headers (the exact names): a spoofing
    /// attempt or a misconfigured proxy, worth a debug line.
    pub fn carried_by(&self, headers: &HeaderMap) -> bool {
        self.stripped().any(|h| headers.contains_key(h))
    }
}

/// [`HeaderNames::matches`] for the default names.
pub fn is_identity_header(name: &str) -> bool {
    HeaderNames::default().matches(name)
}

/// [`HeaderNames::carried_by`] for the default names.
pub fn carries_identity_headers(headers: &HeaderMap) -> bool {
    HeaderNames::default().carried_by(headers)
}

/// Which claims of a foreign issuer's token become the identity headers (per issuer, from
/// `AUTH_EDGE_ISSUERS_FILE`: [`crate::config::issuers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The user id (`X-User-Id`); default `sub`. A token without it is refused.
    pub user_id: String,
    /// Put before the user id (`user_id_prefix`, e.g. `corp:`), so that an issuer's user ids
    /// cannot be mistaken for the own ones or another issuer's; empty by default.
    pub user_id_prefix: String,
    /// The session id (`X-Session-Id`), when the issuer has one. Revocation by session applies
    /// only to tokens that carry it.
    pub session_id: Option<String>,
    /// The role claim and which of its values mean which role (`X-User-Role`); none: no role
    /// header. A string claim or an array of strings; the first value with a mapping wins.
    pub role: Option<RoleMapping>,
}

/// A role claim and its value mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleMapping {
    /// The claim holding the role(s).
    pub claim: String,
    /// Claim value -> role.
    pub values: Vec<(String, Role)>,
}

/// A header block the identity rule can be applied to.
pub trait IdentityHeaders {
    /// What setting a header can fail with (nothing, for a plain `HeaderMap`).
    type Error;

    /// Removes every value of `name`; returns whether there was one.
    fn remove(&mut self, name: &HeaderName) -> bool;

    /// The names of the headers the block carries (as sent: any case, underscores kept) for
    /// which `keep` holds. Filtered here, so the usual answer (none) allocates nothing.
    fn names_where(&self, keep: &dyn Fn(&str) -> bool) -> Vec<String>;

    /// Removes every value of the header the block carries under `name` (from [`Self::names_where`]).
    fn remove_named(&mut self, name: &str) -> bool;

    /// Sets `name` to `value` (after [`IdentityHeaders::remove`] for the same name).
    fn set(&mut self, name: &HeaderName, value: HeaderValue) -> Result<(), Self::Error>;
}

impl IdentityHeaders for HeaderMap {
    type Error = std::convert::Infallible;

    fn remove(&mut self, name: &HeaderName) -> bool {
        HeaderMap::remove(self, name).is_some()
    }

    fn names_where(&self, keep: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.keys()
            .map(HeaderName::as_str)
            .filter(|k| keep(k))
            .map(str::to_owned)
            .collect()
    }

    fn remove_named(&mut self, name: &str) -> bool {
        HeaderMap::remove(self, name).is_some()
    }

    fn set(&mut self, name: &HeaderName, value: HeaderValue) -> Result<(), Self::Error> {
        self.insert(name.clone(), value);
        Ok(())
    }
}

/// The one rule: removes every identity header (each of `names`, and their underscore
/// spellings), then sets those of `identity` (none for an anonymous request). Only values the
/// edge set may reach an application that trusts these headers. Returns whether a client-sent
/// one was removed.
pub fn strip_then_set<H: IdentityHeaders + ?Sized>(
    headers: &mut H,
    identity: Option<&Identity>,
    names: &HeaderNames,
) -> Result<bool, H::Error> {
    let mut spoofed = false;
    // Variants first (`X_User_Id`, `x-session_id`, ...): only the block knows which it carries.
    let variants =
        headers.names_where(&|name| names.matches(name) && !names.stripped().any(|h| h == name));
    for name in variants {
        spoofed |= headers.remove_named(&name);
    }
    for name in names.stripped() {
        spoofed |= headers.remove(name);
    }
    if let Some(identity) = identity {
        // A foreign token without a session id or a role sets no header for it.
        for (name, value) in names.names.iter().zip(identity.values()) {
            if let Some(value) = value {
                headers.set(name, value)?;
            }
        }
        if let (Some(name), Some(value)) = (&names.assertion, identity.assertion()) {
            headers.set(name, value)?;
        }
        // Values that cannot be header values were dropped when the identity was made.
        for ((_, name), value) in names.claims.iter().zip(identity.claim_values.iter()) {
            if let Some(value) = value {
                headers.set(name, value.clone())?;
            }
        }
    }
    Ok(spoofed)
}

/// A verified caller, ready to be forwarded as headers.
///
/// Compact on purpose (one of these per cached token, 100,000 by default): the three header
/// values live in one shared buffer, `{sub}{sid}{role}`, and each header is a zero-copy slice of
/// it, so a cache hit allocates nothing.
#[derive(Debug)]
pub struct Identity {
    values: Bytes,
    sub_end: u32,
    sid_end: u32,
    role: Option<i32>,
    exp: i64,
    valid_until: i64,
    key_epoch: u64,
    /// The signed identity assertion and its expiry, when the edge signs them
    /// ([`crate::assertion`]); shared by every request of this token while it is fresh.
    assertion: Mutex<Option<(i64, HeaderValue)>>,
    /// The values of the claims forwarded in headers of their own ([`HeaderNames::with_claims`]),
    /// in the same order; None for a value that is not a valid header value.
    claim_values: Box<[Option<HeaderValue>]>,
}

impl Identity {
    /// The identity of verified `claims`; `leeway` extends validity past `exp`, `key_epoch` is
    /// the key set's epoch at verification (see [`crate::keys::KeyStore::epoch`]).
    pub(crate) fn from_claims(
        claims: &auth_token::Claims,
        leeway: i64,
        key_epoch: u64,
    ) -> Result<Identity, auth_token::Error> {
        Identity::from_parts(
            claims.sub.as_str(),
            Some(claims.sid.as_str()),
            Some(claims.role),
            claims.exp,
            leeway,
            key_epoch,
        )
    }

    /// The identity of a foreign issuer's verified `claims` ([`auth_token::verify_foreign`]),
    /// through the issuer's claim `mapping`: the user id claim is required (a string or an
    /// integer, by [`auth_token::UserId`]'s rules), the session id and role only if mapped and
    /// present (a role value without a mapping is no role).
    pub(crate) fn from_foreign(
        claims: &serde_json::Map<String, serde_json::Value>,
        mapping: &ClaimMapping,
        leeway: i64,
        key_epoch: u64,
    ) -> Result<Identity, auth_token::Error> {
        let id_text = |name: &str| match claims.get(name) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        };
        let sub =
            id_text(&mapping.user_id).ok_or(auth_token::Error::Malformed("no user id claim"))?;
        let sub = auth_token::UserId::parse(format!("{}{sub}", mapping.user_id_prefix))?;
        let sid: Option<auth_token::SessionId> = match &mapping.session_id {
            Some(name) => id_text(name).map(|s| s.parse()).transpose()?,
            None => None,
        };
        let role = mapping.role.as_ref().and_then(|m| {
            let wanted = |value: &serde_json::Value| {
                let value = value.as_str()?;
                m.values.iter().find(|(v, _)| v == value).map(|(_, r)| *r)
            };
            match claims.get(&m.claim)? {
                serde_json::Value::Array(values) => values.iter().find_map(wanted),
                one => wanted(one),
            }
        });
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(auth_token::Error::Malformed("exp"))?;
        Identity::from_parts(
            sub.as_str(),
            sid.as_ref().map(auth_token::SessionId::as_str),
            role,
            exp,
            leeway,
            key_epoch,
        )
    }

    fn from_parts(
        sub: &str,
        sid: Option<&str>,
        role: Option<auth_token::Role>,
        exp: i64,
        leeway: i64,
        key_epoch: u64,
    ) -> Result<Identity, auth_token::Error> {
        // `UserId` and `SessionId` are never empty (an empty header is dropped or merged with a
        // client-sent value by some proxies) and are visible ASCII; the header-value check
        // below stays as the last word. An absent session id or role is an empty slice: no
        // header.
        let sid = sid.unwrap_or_default();
        let role_text = role.map(|r| r.to_string()).unwrap_or_default();
        let mut values = String::with_capacity(sub.len() + sid.len() + role_text.len());
        values.push_str(sub);
        values.push_str(sid);
        values.push_str(&role_text);
        let too_long = || auth_token::Error::Malformed("sub or sid too long");
        let sub_end = u32::try_from(sub.len()).map_err(|_| too_long())?;
        let sid_end = u32::try_from(sub.len() + sid.len()).map_err(|_| too_long())?;
        let identity = Identity {
            values: Bytes::from(values),
            sub_end,
            sid_end,
            role: role.map(auth_token::Role::as_i32),
            exp,
            valid_until: auth_token::accepted_until(exp, leeway),
            key_epoch,
            assertion: Mutex::new(None),
            claim_values: Box::default(),
        };
        // Checked once here, so `headers` never meets an invalid value.
        if identity
            .header_values()
            .iter()
            .any(|v| HeaderValue::from_maybe_shared(v.clone()).is_err())
        {
            return Err(auth_token::Error::Malformed(
                "sub or sid is not a header value",
            ));
        }
        Ok(identity)
    }

    /// An identity for unit tests elsewhere in the crate: `sub` = `sid` = `id`, role 1.
    #[cfg(test)]
    pub(crate) fn for_tests(id: &str) -> Identity {
        let claims = auth_token::Claims {
            sub: id.parse().unwrap_or_else(|e| panic!("test id {id:?}: {e}")),
            sid: id.parse().unwrap_or_else(|e| panic!("test id {id:?}: {e}")),
            role: auth_token::Role::Admin,
            iss: String::new(),
            aud: String::new(),
            iat: 0,
            exp: crate::clock::unix_now() + 600,
            jti: String::new(),
        };
        // Test ids are plain ASCII.
        Identity::from_claims(&claims, 0, 0).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The three values as slices of the shared buffer (reference-count bumps, no copies).
    fn header_values(&self) -> [Bytes; 3] {
        let (sub, sid) = (self.sub_end as usize, self.sid_end as usize);
        [
            self.values.slice(..sub),
            self.values.slice(sub..sid),
            self.values.slice(sid..),
        ]
    }

    fn str_at(&self, range: std::ops::Range<usize>) -> &str {
        // Built from Strings split at their own lengths: always UTF-8.
        std::str::from_utf8(&self.values[range]).unwrap_or_default()
    }

    /// User id (`sub`).
    pub fn user_id(&self) -> &str {
        self.str_at(0..self.sub_end as usize)
    }

    /// Session id (`sid`); empty for a foreign token without one (never revoked by session).
    pub fn session_id(&self) -> &str {
        self.str_at(self.sub_end as usize..self.sid_end as usize)
    }

    /// Role (`role`); none for a foreign token without a mapped role.
    pub fn role(&self) -> Option<i32> {
        self.role
    }

    /// Token expiry, unix seconds.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// Last second (unix) at which the token is still accepted (`exp` + leeway).
    pub fn valid_until(&self) -> i64 {
        self.valid_until
    }

    /// The key set's epoch when this identity was verified.
    pub(crate) fn key_epoch(&self) -> u64 {
        self.key_epoch
    }

    /// The user id, session id and role header values (none for an absent session id or
    /// role). Front ends apply them with [`strip_then_set`], never one by one.
    pub fn values(&self) -> impl Iterator<Item = Option<HeaderValue>> {
        self.header_values()
            .into_iter()
            // Validated in `from_parts`, so `ok()` only ever drops an empty (absent) value.
            .map(|v| {
                (!v.is_empty())
                    .then(|| HeaderValue::from_maybe_shared(v).ok())
                    .flatten()
            })
    }

    /// The identity with the values of `fields` taken from its `claims`, for the claims forwarded
    /// in headers of their own.
    pub(crate) fn with_claim_values(
        mut self,
        claims: &auth_token::Claims,
        fields: impl Iterator<Item = ClaimField>,
    ) -> Identity {
        self.claim_values = fields
            .map(|field| HeaderValue::from_str(&field.value(claims)).ok())
            .collect();
        self
    }

    /// [`Identity::with_claim_values`] for a foreign token's claims: strings and integers as
    /// they are, an array of strings (`aud`) comma-separated, anything else no header.
    pub(crate) fn with_foreign_claim_values(
        mut self,
        claims: &serde_json::Map<String, serde_json::Value>,
        fields: impl Iterator<Item = ClaimField>,
    ) -> Identity {
        use serde_json::Value;
        self.claim_values = fields
            .map(|field| {
                let text = match claims.get(field.name())? {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Array(list) => list
                        .iter()
                        .map(Value::as_str)
                        .collect::<Option<Vec<_>>>()?
                        .join(","),
                    _ => return None,
                };
                HeaderValue::from_str(&text).ok()
            })
            .collect();
        self
    }

    /// The current signed assertion, if one was made ([`crate::assertion::AssertionSigner`]).
    pub fn assertion(&self) -> Option<HeaderValue> {
        let slot = self
            .assertion
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|(_, value)| value.clone())
    }

    /// Keeps the assertion if it has more than `min_left` seconds to live at `now`, else
    /// replaces it with what `sign` makes (one signer at a time per identity).
    pub(crate) fn refresh_assertion(
        &self,
        now: i64,
        min_left: i64,
        sign: impl FnOnce() -> Option<(i64, HeaderValue)>,
    ) {
        let mut slot = self
            .assertion
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|(exp, _)| exp - now > min_left) {
            return;
        }
        *slot = sign();
    }

    /// Bytes held for this identity, for the cache's memory bound: the struct, the shared
    /// buffer, and the allocator's and reference count's overhead on both.
    pub(crate) fn approximate_size(&self) -> usize {
        let claims: usize = self
            .claim_values
            .iter()
            .flatten()
            .map(|v| v.len() + std::mem::size_of::<HeaderValue>())
            .sum();
        std::mem::size_of::<Identity>() + self.values.len() + claims + 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, sid: &str) -> auth_token::Claims {
        auth_token::Claims {
            sub: sub.parse().unwrap(),
            sid: sid.parse().unwrap(),
            role: auth_token::Role::Moderator,
            iss: String::new(),
            aud: String::new(),
            iat: 0,
            exp: 1000,
            jti: String::new(),
        }
    }

    #[test]
    fn values_and_validity() {
        let id = Identity::from_claims(&claims("user-1", "s9"), 30, 7).unwrap();
        assert_eq!(
            (id.user_id(), id.session_id(), id.role()),
            ("user-1", "s9", Some(2))
        );
        assert_eq!(
            (id.exp(), id.valid_until(), id.key_epoch()),
            (1000, 1030, 7)
        );
        // Empty or non-header ids cannot even be claims any more (see auth_token::UserId).
        assert!("".parse::<auth_token::UserId>().is_err());
        assert!("u\n".parse::<auth_token::SessionId>().is_err());
    }

    fn mapping(session: Option<&str>, role: bool) -> ClaimMapping {
        ClaimMapping {
            user_id: "oid".into(),
            user_id_prefix: String::new(),
            session_id: session.map(Into::into),
            role: role.then(|| RoleMapping {
                claim: "roles".into(),
                values: vec![("budget-admin".into(), auth_token::Role::Admin)],
            }),
        }
    }

    fn foreign(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn foreign_claims_through_the_mapping() {
        let claims = foreign(serde_json::json!({
            "sub": "ignored", "oid": "u-42", "sid": "s-7", "roles": ["reader", "budget-admin"],
            "exp": 1000, "iss": "https://idp", "aud": ["a", "b"]
        }));
        let id = Identity::from_foreign(&claims, &mapping(Some("sid"), true), 30, 3).unwrap();
        assert_eq!(
            (id.user_id(), id.session_id(), id.role()),
            ("u-42", "s-7", Some(1))
        );
        assert_eq!((id.valid_until(), id.key_epoch()), (1030, 3));
        let id =
            id.with_foreign_claim_values(&claims, [ClaimField::Aud, ClaimField::Iss].into_iter());
        assert_eq!(id.claim_values[0].as_ref().unwrap(), "a,b");
        assert_eq!(id.claim_values[1].as_ref().unwrap(), "https://idp");

        // No session id or role mapped: only the user id header is set.
        let id = Identity::from_foreign(&claims, &mapping(None, false), 30, 0).unwrap();
        assert_eq!((id.session_id(), id.role()), ("", None));
        let mut h = HeaderMap::new();
        h.insert("x-session-id", HeaderValue::from_static("spoofed"));
        h.insert("x-user-role", HeaderValue::from_static("1"));
        strip_then_set(&mut h, Some(&id), &HeaderNames::default()).unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-user-id"], "u-42");

        // An unmapped role value is no role; a numeric user id is its digits.
        let claims = foreign(serde_json::json!({"oid": 42, "roles": "root", "exp": 1000}));
        let id = Identity::from_foreign(&claims, &mapping(Some("sid"), true), 0, 0).unwrap();
        assert_eq!((id.user_id(), id.session_id(), id.role()), ("42", "", None));
        // The issuer's prefix keeps its ids apart from the own ones.
        let prefixed = ClaimMapping {
            user_id_prefix: "corp:".into(),
            ..mapping(None, false)
        };
        let id = Identity::from_foreign(&claims, &prefixed, 0, 0).unwrap();
        assert_eq!(id.user_id(), "corp:42");

        // No user id, or one that cannot be a header value: refused.
        for bad in [
            serde_json::json!({"exp": 1000}),
            serde_json::json!({"oid": "", "exp": 1000}),
            serde_json::json!({"oid": "a b", "exp": 1000}),
            serde_json::json!({"oid": {"x": 1}, "exp": 1000}),
            serde_json::json!({"oid": "u", "sid": "", "exp": 1000}),
        ] {
            assert!(
                Identity::from_foreign(&foreign(bad.clone()), &mapping(Some("sid"), false), 0, 0)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn strip_then_set_removes_underscore_variants() {
        let id = Identity::from_claims(&claims("user-1", "s9"), 30, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x_user_id", HeaderValue::from_static("admin"));
        h.insert("X_User_Role", HeaderValue::from_static("1"));
        h.insert("x-session_id", HeaderValue::from_static("s-evil"));
        h.insert("x_other", HeaderValue::from_static("kept"));
        assert_eq!(
            strip_then_set(&mut h, Some(&id), &HeaderNames::default()),
            Ok(true)
        );
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["x-session-id", "x-user-id", "x-user-role", "x_other"]
        );
        assert_eq!(h["x-user-id"], "user-1");

        // Anonymous (a public path): the variants go too.
        let mut h = HeaderMap::new();
        h.insert("x_user_id", HeaderValue::from_static("admin"));
        assert_eq!(
            strip_then_set(&mut h, None, &HeaderNames::default()),
            Ok(true)
        );
        assert!(h.is_empty());
    }

    #[test]
    fn strip_then_set_replaces_client_headers() {
        let id = Identity::from_claims(&claims("user-1", "s9"), 30, 0).unwrap();
        let mut h = HeaderMap::new();
        h.append("x-user-id", HeaderValue::from_static("admin"));
        h.append("X-User-Id", HeaderValue::from_static("root"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        assert!(carries_identity_headers(&h));
        assert_eq!(
            strip_then_set(&mut h, Some(&id), &HeaderNames::default()),
            Ok(true)
        );
        assert_eq!(h.get_all("x-user-id").iter().count(), 1);
        assert_eq!(h["x-user-id"], "user-1");
        assert_eq!(h["x-session-id"], "s9");
        assert_eq!(h["x-user-role"], "2");
        assert_eq!(h["x-other"], "kept");
        assert_eq!(
            strip_then_set(&mut h, Some(&id), &HeaderNames::default()),
            Ok(true),
            "ours count too"
        );

        // Anonymous: strip only.
        assert_eq!(
            strip_then_set(&mut h, None, &HeaderNames::default()),
            Ok(true)
        );
        assert_eq!(h.len(), 1);
        assert_eq!(
            strip_then_set(&mut h, None, &HeaderNames::default()),
            Ok(false)
        );
    }

    #[test]
    fn configured_names() {
        let names = HeaderNames::new("X-Auth-User", "x-auth-session", "X-Auth-Role").unwrap();
        let id = Identity::from_claims(&claims("user-1", "s9"), 30, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x_auth_user", HeaderValue::from_static("admin"));
        h.insert("x-auth-role", HeaderValue::from_static("1"));
        h.insert("x-user-id", HeaderValue::from_static("admin"));
        h.insert("x_session_id", HeaderValue::from_static("s-evil"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        assert!(names.carried_by(&h));
        assert_eq!(strip_then_set(&mut h, Some(&id), &names), Ok(true));
        assert_eq!(h["x-auth-user"], "user-1");
        assert_eq!(h["x-auth-session"], "s9");
        assert_eq!(h["x-auth-role"], "2");
        // The configured names' underscore spellings, and the default names, are stripped.
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            ["x-auth-role", "x-auth-session", "x-auth-user", "x-other"]
        );
        for bad in [
            ("a b", "s", "r"),
            ("x_user", "s", "r"),
            ("authorization", "s", "r"),
            ("X-Forwarded-User", "s", "r"),
            ("sec-user", "s", "r"),
            ("u", "U", "r"),
        ] {
            assert!(HeaderNames::new(bad.0, bad.1, bad.2).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_assertion_header_is_stripped_and_set_with_the_identity() {
        let names = HeaderNames::default()
            .with_assertion("X-Identity-Assertion")
            .unwrap();
        assert!(HeaderNames::default().with_assertion("x-user-id").is_err());
        let id = Identity::from_claims(&claims("user-1", "s9"), 30, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-identity-assertion", HeaderValue::from_static("forged"));
        h.insert("x_identity_assertion", HeaderValue::from_static("forged"));
        // No assertion made yet (signing failed or not configured): none forwarded.
        assert_eq!(strip_then_set(&mut h, Some(&id), &names), Ok(true));
        assert!(!h.contains_key("x-identity-assertion") && !h.contains_key("x_identity_assertion"));
        id.refresh_assertion(0, 0, || Some((60, HeaderValue::from_static("signed"))));
        assert_eq!(strip_then_set(&mut h, Some(&id), &names), Ok(true));
        assert_eq!(h["x-identity-assertion"], "signed");
        assert_eq!(strip_then_set(&mut h, None, &names), Ok(true));
        assert!(h.is_empty());
    }

    #[test]
    fn claims_in_headers_of_their_own() {
        let names = HeaderNames::default()
            .with_claims(" jti:X-Token-Id , exp:X-Token-Expires,iss:X-Token-Issuer")
            .unwrap();
        let mut c = claims("user-1", "s9");
        c.jti = "token-7".into();
        c.iss = "bad\nissuer".into();
        let id = Identity::from_claims(&c, 30, 0)
            .unwrap()
            .with_claim_values(&c, names.claim_fields());
        let mut h = HeaderMap::new();
        h.insert("x-token-id", HeaderValue::from_static("forged"));
        h.insert("x_token_expires", HeaderValue::from_static("forged"));
        h.insert("x-token-issuer", HeaderValue::from_static("forged"));
        assert_eq!(strip_then_set(&mut h, Some(&id), &names), Ok(true));
        assert_eq!(h["x-token-id"], "token-7");
        assert_eq!(h["x-token-expires"], "1000");
        // Not a header value: not forwarded, and the client's is gone.
        assert!(!h.contains_key("x-token-issuer") && !h.contains_key("x_token_expires"));
        assert_eq!(strip_then_set(&mut h, None, &names), Ok(true));
        assert!(h.is_empty());
        for bad in [
            "sub:X-Sub",
            "jti",
            "jti:X-User-Id",
            "jti:Cookie",
            "jti:A,exp:a",
        ] {
            assert!(HeaderNames::default().with_claims(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_any_case() {
        assert!(is_identity_header("X-User-Role"));
        assert!(is_identity_header("x-session-id"));
        assert!(!is_identity_header("x-user"));
        assert!(is_identity_header("X_User_Id"));
        assert!(is_identity_header("x-session_id"));
        assert!(is_identity_header("X_USER_ROLE"));
        assert!(!is_identity_header("x__user-id"));
        assert!(!is_identity_header("x-user-ids"));
    }
}
