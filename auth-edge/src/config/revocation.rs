//! The revocation sources: the accounts stream (`AUTH_EDGE_REVOCATIONS_URL`, with its bearer
//! token) and Redis (`REDIS_URL`). The token and the Redis URL (which may carry a password) are
//! [`SecretString`]s: redacted in `Debug`, never in an error message.

use http::Uri;
use secrecy::SecretString;

use super::vars::{err, http_url, ConfigError, Vars};
use crate::tls::TlsClient;

/// The revocation section. Both sources may be set; they feed the same set.
#[derive(Clone, Debug, Default)]
pub struct RevocationSources {
    /// Revocation stream from accounts (`AUTH_EDGE_REVOCATIONS_URL`).
    pub url: Option<Uri>,
    /// Bearer token for the revocation stream (`AUTH_EDGE_REVOCATIONS_TOKEN`).
    pub token: Option<SecretString>,
    /// Redis for revocation pub/sub (`REDIS_URL`, `redis://` or `rediss://`); may carry a
    /// password.
    pub redis_url: Option<SecretString>,
    /// The TLS client for an `https://` stream and `rediss://` (`AUTH_EDGE_CA_FILE`).
    pub tls: TlsClient,
}

impl RevocationSources {
    pub(super) fn parse(v: &Vars<'_>) -> Result<RevocationSources, ConfigError> {
        let url = v
            .get("AUTH_EDGE_REVOCATIONS_URL")
            .map(|raw| http_url("AUTH_EDGE_REVOCATIONS_URL", raw))
            .transpose()?;
        let token = v.get("AUTH_EDGE_REVOCATIONS_TOKEN").map(SecretString::from);
        if token.is_some() && url.is_none() {
            return Err(err(
                "AUTH_EDGE_REVOCATIONS_TOKEN",
                "set without AUTH_EDGE_REVOCATIONS_URL",
            ));
        }
        let redis_url = match v.get("REDIS_URL") {
            None => None,
            Some(raw) => {
                // Parses without connecting; the message never includes the URL (it may hold a
                // password).
                redis::Client::open(raw)
                    .map_err(|_| err("REDIS_URL", "not a valid redis:// or rediss:// URL"))?;
                Some(SecretString::from(raw))
            }
        };
        Ok(RevocationSources {
            url,
            token,
            redis_url,
            tls: TlsClient::default(),
        })
    }

    /// Whether any revocation source is configured. Without one, a revoked session stays usable
    /// at this edge until its access token expires; start-up warns about it.
    pub fn any(&self) -> bool {
        self.url.is_some() || self.redis_url.is_some()
    }
}
