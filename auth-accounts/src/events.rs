//! The domain events: the Kafka contract of this service as one Rust type.
//!
//! Every event the service emits is a variant of [`Event`] with its payload fields, so a payload
//! key is checked by the compiler instead of typed into a `json!` literal at each call site. An
//! event travels in an [`Envelope`]:
//!
//! ```text
//! {"eventId":"<uuid v7>","eventType":"user.login","occurredAt":"2026-11-30T16:00:00Z",
//!  "source":"auth-accounts","userId":"<uuid or null>","data":{"sessionId":"..","ip":".."}}
//! ```
//!
//! The field order is the wire format consumers have seen so far (serde writes fields in
//! declaration order); `data` never holds secrets (tokens, passwords).

use serde::Serialize;

use crate::clock::rfc3339;
use crate::keys::Rotation;

/// The `source` of every envelope.
pub(crate) const SOURCE: &str = "auth-accounts";

/// Why a session was revoked (`user.session_revoked`'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The user ended it (`DELETE /sessions/{id}`).
    User,
    /// The user ended every other session.
    LogoutOthers,
    /// An old refresh token of the session came back.
    RefreshTokenReused,
}

/// Every event type and its `data`. Serialises to the `data` object only; the type name is
/// [`Event::event_type`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum Event {
    /// `user.verification_started`: verify-email was called (for a new or an existing address).
    VerificationStarted { email: String },
    /// `user.verification_validated`: a verification link was checked and is valid.
    VerificationValidated { email: String },
    /// `user.registered`.
    Registered {
        email: String,
        name: String,
        country: String,
        session_id: String,
    },
    /// `user.login`.
    Login {
        session_id: String,
        ip: Option<String>,
    },
    /// `user.login_failed`: `email` is `null` when it was not a valid address.
    LoginFailed {
        email: Option<String>,
        ip: Option<String>,
    },
    /// `user.logout`.
    Logout { session_id: String },
    /// `user.password_reset_started`.
    PasswordResetStarted { email: String },
    /// `user.password_reset_validated`: a reset link was checked and is valid.
    PasswordResetValidated { email: String },
    /// `user.password_reset`: every session was revoked.
    PasswordReset { revoked_sessions: Vec<String> },
    /// `user.password_changed`: every other session was revoked, `session_id` is the new one.
    PasswordChanged {
        revoked_sessions: Vec<String>,
        session_id: String,
    },
    /// `user.token_refreshed`.
    TokenRefreshed { session_id: String, generation: i64 },
    /// `user.session_revoked`.
    SessionRevoked {
        session_id: String,
        reason: RevokeReason,
    },
    /// `user.refresh_token_reused`: the session was revoked (a `SessionRevoked` follows).
    RefreshTokenReused {
        session_id: String,
        presented_generation: i64,
        current_generation: i64,
        ip: Option<String>,
    },
    /// `auth.signing_key_rotated`.
    SigningKeyRotated {
        retired_kid: String,
        current_kid: String,
        next_kid: String,
    },
}

impl Event {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::VerificationStarted { .. } => "user.verification_started",
            Self::VerificationValidated { .. } => "user.verification_validated",
            Self::Registered { .. } => "user.registered",
            Self::Login { .. } => "user.login",
            Self::LoginFailed { .. } => "user.login_failed",
            Self::Logout { .. } => "user.logout",
            Self::PasswordResetStarted { .. } => "user.password_reset_started",
            Self::PasswordResetValidated { .. } => "user.password_reset_validated",
            Self::PasswordReset { .. } => "user.password_reset",
            Self::PasswordChanged { .. } => "user.password_changed",
            Self::TokenRefreshed { .. } => "user.token_refreshed",
            Self::SessionRevoked { .. } => "user.session_revoked",
            Self::RefreshTokenReused { .. } => "user.refresh_token_reused",
            Self::SigningKeyRotated { .. } => "auth.signing_key_rotated",
        }
    }
}

impl From<Rotation> for Event {
    fn from(r: Rotation) -> Self {
        Self::SigningKeyRotated {
            retired_kid: r.retired_kid,
            current_kid: r.current_kid,
            next_kid: r.next_kid,
        }
    }
}

/// An event as it is stored in the outbox and published.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope<'a> {
    pub event_id: &'a str,
    pub event_type: &'static str,
    pub occurred_at: String,
    pub source: &'static str,
    pub user_id: Option<&'a str>,
    pub data: &'a Event,
}

impl<'a> Envelope<'a> {
    pub(crate) fn new(
        event_id: &'a str,
        user_id: Option<&'a str>,
        event: &'a Event,
        at: i64,
    ) -> Self {
        Self {
            event_id,
            event_type: event.event_type(),
            occurred_at: rfc3339(at),
            source: SOURCE,
            user_id,
            data: event,
        }
    }

    pub(crate) fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &str) -> String {
        v.to_string()
    }

    /// The envelope is byte for byte what the `json!` literals of earlier releases produced.
    #[test]
    fn wire_format_is_unchanged() {
        let ip = Some(s("203.0.113.9"));
        let cases: Vec<(Event, serde_json::Value)> = vec![
            (
                Event::VerificationStarted { email: s("a@b.c") },
                json!({ "email": "a@b.c" }),
            ),
            (
                Event::VerificationValidated { email: s("a@b.c") },
                json!({ "email": "a@b.c" }),
            ),
            (
                Event::PasswordResetValidated { email: s("a@b.c") },
                json!({ "email": "a@b.c" }),
            ),
            (
                Event::PasswordResetStarted { email: s("a@b.c") },
                json!({ "email": "a@b.c" }),
            ),
            (
                Event::Registered {
                    email: s("a@b.c"),
                    name: s("N"),
                    country: s("Russia"),
                    session_id: s("s1"),
                },
                json!({ "email": "a@b.c", "name": "N", "country": "Russia", "sessionId": "s1" }),
            ),
            (
                Event::Login {
                    session_id: s("s1"),
                    ip: ip.clone(),
                },
                json!({ "sessionId": "s1", "ip": "203.0.113.9" }),
            ),
            (
                Event::LoginFailed {
                    email: None,
                    ip: None,
                },
                json!({ "email": null, "ip": null }),
            ),
            (
                Event::Logout {
                    session_id: s("s1"),
                },
                json!({ "sessionId": "s1" }),
            ),
            (
                Event::PasswordReset {
                    revoked_sessions: vec![s("s1"), s("s2")],
                },
                json!({ "revokedSessions": ["s1", "s2"] }),
            ),
            (
                Event::PasswordChanged {
                    revoked_sessions: vec![],
                    session_id: s("s3"),
                },
                json!({ "revokedSessions": [], "sessionId": "s3" }),
            ),
            (
                Event::TokenRefreshed {
                    session_id: s("s1"),
                    generation: 4,
                },
                json!({ "sessionId": "s1", "generation": 4 }),
            ),
            (
                Event::SessionRevoked {
                    session_id: s("s1"),
                    reason: RevokeReason::LogoutOthers,
                },
                json!({ "sessionId": "s1", "reason": "logout_others" }),
            ),
            (
                Event::SessionRevoked {
                    session_id: s("s1"),
                    reason: RevokeReason::RefreshTokenReused,
                },
                json!({ "sessionId": "s1", "reason": "refresh_token_reused" }),
            ),
            (
                Event::SessionRevoked {
                    session_id: s("s1"),
                    reason: RevokeReason::User,
                },
                json!({ "sessionId": "s1", "reason": "user" }),
            ),
            (
                Event::RefreshTokenReused {
                    session_id: s("s1"),
                    presented_generation: 1,
                    current_generation: 3,
                    ip,
                },
                json!({ "sessionId": "s1", "presentedGeneration": 1, "currentGeneration": 3, "ip": "203.0.113.9" }),
            ),
            (
                Event::from(Rotation {
                    retired_kid: s("k0"),
                    current_kid: s("k1"),
                    next_kid: s("k2"),
                }),
                json!({ "retiredKid": "k0", "currentKid": "k1", "nextKid": "k2" }),
            ),
        ];
        for (event, data) in cases {
            let user_id = Some("u1");
            let old = json!({
                "eventId": "e1",
                "eventType": event.event_type(),
                "occurredAt": rfc3339(1_700_000_000),
                "source": SOURCE,
                "userId": user_id,
                "data": data,
            });
            let new = Envelope::new("e1", user_id, &event, 1_700_000_000)
                .to_json()
                .unwrap();
            assert_eq!(new, old.to_string(), "{}", event.event_type());
        }
        let anonymous = Event::LoginFailed {
            email: Some(s("a@b.c")),
            ip: None,
        };
        let json = Envelope::new("e2", None, &anonymous, 0).to_json().unwrap();
        assert!(json.contains(r#""userId":null"#), "{json}");
    }
}
