//! The revocation feed: how accounts tells edges, within a second, that a session was revoked.
//!
//! Edges verify access tokens on their own and cannot ask the database on every request, so
//! accounts pushes each revoked session id with `until`, the time after which no token of that
//! session can be accepted any more ([`crate::TokenLifetime::revoked_until`]). Two transports
//! carry the same JSON messages:
//!
//! - the NDJSON stream accounts serves at [`REVOCATION_STREAM_PATH`] (one message per line: a
//!   snapshot first, then one `revoked` per revocation, and a `ping` every 15 s);
//! - Redis: the sorted set [`REDIS_REVOKED_SET`] (member = sid, score = until) is the snapshot,
//!   and each new revocation is published on [`REDIS_REVOCATIONS_CHANNEL`].
//!
//! ```text
//! {"type":"snapshot","revocations":[{"sid":"..","until":1795676000}]}
//! {"type":"revoked","sid":"..","until":1795676100}
//! {"type":"ping"}
//! ```

use serde::{Deserialize, Serialize};

/// Path of the NDJSON stream on the accounts service.
pub const REVOCATION_STREAM_PATH: &str = "/api/v1/auth/revocations/stream";
/// Media type of the stream.
pub const REVOCATION_STREAM_CONTENT_TYPE: &str = "application/x-ndjson";
/// Redis sorted set of every revocation still relevant (member = sid, score = until).
pub const REDIS_REVOKED_SET: &str = "auth:revoked";
/// Redis pub/sub channel carrying one [`FeedMessage::Revoked`] per revocation.
pub const REDIS_REVOCATIONS_CHANNEL: &str = "auth:revocations";

/// One revoked session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revocation {
    /// Session id (the token's `sid`).
    pub sid: String,
    /// Unix seconds after which no token of the session can be accepted.
    pub until: i64,
}

/// A message of the feed, on either transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeedMessage {
    /// Everything still relevant; sent first on every (re)connection.
    Snapshot {
        /// The revoked sessions.
        revocations: Vec<Revocation>,
    },
    /// One new revocation (`{"type":"revoked","sid":..,"until":..}`).
    Revoked(Revocation),
    /// Keep-alive, so a silent dead link is noticed.
    Ping,
    /// A type this reader does not know (sent by a newer accounts); readers ignore it.
    #[serde(other)]
    Unknown,
}

impl FeedMessage {
    /// Parses one line or pub/sub payload. Unknown members are ignored, unknown types are
    /// [`FeedMessage::Unknown`], so accounts can add either without breaking older edges.
    /// Parses one message: a JSON object in UTF-8. serde alone would also read a message from a
    /// JSON array of its fields and skip invalid bytes inside unknown members; both ends must
    /// read a line the same way.
    pub fn parse(bytes: &[u8]) -> Result<FeedMessage, serde_json::Error> {
        use serde::de::Error as _;
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(serde_json::Error::custom("a feed message is a JSON object"));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| serde_json::Error::custom("a feed message is UTF-8"))?;
        // Every number in range, also in members this version does not know.
        serde_json::from_str::<serde_json::Value>(text)?;
        serde_json::from_str(text)
    }

    /// The message as JSON, without a newline (a Redis payload).
    pub fn to_json(&self) -> String {
        // Strings and integers only: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The message as one NDJSON line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = self.to_json();
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the revocation-message fuzz target: serde read `["ty"]` (an array) as a message.
    #[test]
    fn only_utf8_json_objects_are_messages() {
        for line in [
            &b"[\"ty\" ]"[..],
            b"[\"ping\"]",
            b"\"ping\"",
            b"{\"type\":\"ping\",\"x\":\"\xff\"}",
            b"{\"type\":\"ping\",\"x\":1e999}",
        ] {
            assert!(FeedMessage::parse(line).is_err(), "{line:?}");
        }
        assert_eq!(
            FeedMessage::parse(b" {\"type\":\"ping\"}").unwrap(),
            FeedMessage::Ping
        );
    }

    fn rev(sid: &str, until: i64) -> Revocation {
        Revocation {
            sid: sid.into(),
            until,
        }
    }

    #[test]
    fn wire_format() {
        let snapshot = FeedMessage::Snapshot {
            revocations: vec![rev("a", 5)],
        };
        assert_eq!(
            snapshot.to_line(),
            "{\"type\":\"snapshot\",\"revocations\":[{\"sid\":\"a\",\"until\":5}]}\n"
        );
        assert_eq!(
            FeedMessage::Revoked(rev("b", 7)).to_json(),
            r#"{"type":"revoked","sid":"b","until":7}"#
        );
        assert_eq!(FeedMessage::Ping.to_json(), r#"{"type":"ping"}"#);
        for m in [
            snapshot,
            FeedMessage::Revoked(rev("b", 7)),
            FeedMessage::Ping,
        ] {
            assert_eq!(
                FeedMessage::parse(m.to_line().trim_end().as_bytes()).unwrap(),
                m
            );
        }
    }

    #[test]
    fn parses_what_edges_must_tolerate() {
        assert_eq!(
            FeedMessage::parse(br#"{"type":"revoked","sid":"b","until":7,"extra":1}"#).unwrap(),
            FeedMessage::Revoked(rev("b", 7))
        );
        assert_eq!(
            FeedMessage::parse(br#"{"type":"hello","x":1}"#).unwrap(),
            FeedMessage::Unknown
        );
        assert!(FeedMessage::parse(br#"{"type":"revoked","sid":"b"}"#).is_err());
        assert!(FeedMessage::parse(b"not json").is_err());
    }
}
