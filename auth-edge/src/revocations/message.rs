//! The messages of both revocation sources: one NDJSON line of the accounts stream, or one Redis
//! pub/sub payload. Free of I/O, so the fuzz crate (`fuzz/`) compiles this file directly.

use serde::Deserialize;

/// One revoked session.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Revocation {
    /// Session id (the token's `sid`).
    pub sid: String,
    /// Unix seconds after which no token of the session can be valid.
    pub until: i64,
}

/// A message on either source.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// Everything still relevant; sent first on every (re)connection.
    Snapshot {
        /// The revoked sessions.
        revocations: Vec<Revocation>,
    },
    /// One new revocation.
    Revoked {
        /// Session id.
        sid: String,
        /// See [`Revocation::until`].
        until: i64,
    },
    /// Keep-alive, so a silent dead link is noticed.
    Ping,
    /// A type this edge does not know (a newer accounts); ignored.
    #[serde(other)]
    Unknown,
}

impl Message {
    /// Parses one line / pub-sub payload.
    pub fn parse(bytes: &[u8]) -> Result<Message, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
