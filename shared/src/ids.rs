//! Typed identifiers carried in tokens: [`UserId`], [`SessionId`], [`Kid`] and [`Role`].
//!
//! Parse, don't validate: each is a newtype with a private field, made only through `parse` /
//! `TryFrom`, so a value that exists is known to be usable (as an HTTP header value, a log
//! field, a map key). serde goes through the same checks and keeps the wire format: ids are
//! JSON strings, the role is a JSON integer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Longest id accepted. Ours are UUIDs (36 bytes); the cap bounds what a token can make the
/// edge copy into headers and caches.
pub const MAX_ID_LEN: usize = 255;

/// Visible ASCII only: ids become HTTP header values (`x-user-id`) and log fields, where spaces,
/// control characters and non-ASCII bytes are trouble.
fn check_id(s: &str, what: &'static str) -> Result<(), Error> {
    let ok = !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::Malformed(what))
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps an id: 1 to [`MAX_ID_LEN`] bytes of visible ASCII.
            pub fn parse(s: impl Into<String>) -> Result<$name, Error> {
                let s = s.into();
                check_id(&s, $what)?;
                Ok($name(s))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<$name, Error> {
                $name::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name, Error> {
                $name::parse(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

string_id!(
    /// A user id (the token's `sub`).
    UserId,
    "sub"
);
string_id!(
    /// A session id (the token's `sid`), the unit of revocation.
    SessionId,
    "sid"
);
string_id!(
    /// A key id (`kid`): the RFC 7638 thumbprint of our keys, or whatever a JWKS names its keys.
    Kid,
    "kid"
);

/// A user's role; on the wire (token `role`, `x-user-role`, the database) the old service's
/// integers: 0 user, 1 admin, 2 moderator. Any other number is an error, never "user".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i32")]
pub enum Role {
    /// 0
    User,
    /// 1
    Admin,
    /// 2
    Moderator,
}

impl Role {
    /// The wire integer.
    pub fn as_i32(self) -> i32 {
        match self {
            Role::User => 0,
            Role::Admin => 1,
            Role::Moderator => 2,
        }
    }
}

impl TryFrom<i64> for Role {
    type Error = Error;
    fn try_from(n: i64) -> Result<Role, Error> {
        match n {
            0 => Ok(Role::User),
            1 => Ok(Role::Admin),
            2 => Ok(Role::Moderator),
            _ => Err(Error::Malformed("role out of range")),
        }
    }
}

impl TryFrom<i32> for Role {
    type Error = Error;
    fn try_from(n: i32) -> Result<Role, Error> {
        Role::try_from(i64::from(n))
    }
}

impl From<Role> for i32 {
    fn from(role: Role) -> i32 {
        role.as_i32()
    }
}

impl From<Role> for i64 {
    fn from(role: Role) -> i64 {
        i64::from(role.as_i32())
    }
}

/// The wire integer (what `x-user-role` carries).
impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_visible_ascii_only() {
        let id = UserId::parse("3f1c2a9e-8d4b-4c1e-9a7f-2b6d5e4c3a21").unwrap();
        assert_eq!(id.as_str(), "3f1c2a9e-8d4b-4c1e-9a7f-2b6d5e4c3a21");
        assert_eq!(id, "3f1c2a9e-8d4b-4c1e-9a7f-2b6d5e4c3a21");
        for bad in ["", "a b", "a\nb", "é", "a\u{7f}"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
            assert!(SessionId::parse(bad).is_err(), "{bad:?}");
            assert!(Kid::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SessionId::parse("s".repeat(MAX_ID_LEN)).is_ok());
        assert!(SessionId::parse("s".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn serde_keeps_the_wire_format_and_checks() {
        let sid: SessionId = serde_json::from_str("\"s-1\"").unwrap();
        assert_eq!(serde_json::to_string(&sid).unwrap(), "\"s-1\"");
        assert!(serde_json::from_str::<SessionId>("\"\"").is_err());
        assert!(serde_json::from_str::<UserId>("42").is_err());
        assert_eq!(serde_json::to_string(&Role::Moderator).unwrap(), "2");
        assert_eq!(serde_json::from_str::<Role>("1").unwrap(), Role::Admin);
        assert!(serde_json::from_str::<Role>("3").is_err());
        assert!(serde_json::from_str::<Role>("-1").is_err());
        assert!(serde_json::from_str::<Role>("\"1\"").is_err());
    }

    #[test]
    fn role_numbers() {
        for (n, role) in [(0, Role::User), (1, Role::Admin), (2, Role::Moderator)] {
            assert_eq!(Role::try_from(n as i64), Ok(role));
            assert_eq!(Role::try_from(n), Ok(role));
            assert_eq!(role.as_i32(), n);
            assert_eq!(role.to_string(), n.to_string());
        }
        // Out of range is an error, not "user".
        assert!(Role::try_from(3i64).is_err());
        assert!(Role::try_from(-1i32).is_err());
        assert!(Role::try_from(i64::MAX).is_err());
    }
}
