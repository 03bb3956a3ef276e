//! Wire names shared by the accounts service (which sets them) and the edge
//! verifier (which reads cookies and injects headers for upstream services).
//! Kept in one place so the two sides cannot drift apart.

/// Cookie carrying the signed access token.
pub const ACCESS_COOKIE: &str = "access_token";
/// Cookie carrying the opaque refresh token (only the accounts service reads it).
pub const REFRESH_COOKIE: &str = "refresh_token";
/// Header the edge injects with the verified `sub` claim.
pub const HEADER_USER_ID: &str = "x-user-id";
/// Header the edge injects with the verified `sid` claim.
pub const HEADER_SESSION_ID: &str = "x-session-id";
/// Header the edge injects with the verified `role` claim.
pub const HEADER_USER_ROLE: &str = "x-user-role";
/// JOSE header `typ` of access tokens (RFC 9068 section 2.1). Checking it stops
/// other JWTs signed by the same key (e.g. ID tokens) from being replayed as
/// access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
