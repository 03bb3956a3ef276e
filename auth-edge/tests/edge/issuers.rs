//! Foreign issuers (`AUTH_EDGE_ISSUERS_FILE`) against a real third-party OpenID provider: npm
//! `oauth2-mock-server`, started by `oidc/provider.mjs` on random loopback ports, with a second
//! instance the edge is not told to trust.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use auth_edge::Config;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// The audience the edge accepts from the provider.
const AUDIENCE: &str = "smart-budget-api";

/// The two providers and their control port (`oidc/provider.mjs`).
struct Provider {
    peer: Peer,
    trusted: u16,
}

impl Provider {
    async fn start() -> Provider {
        let node = binary("AUTH_TEST_NODE", "node", &[]);
        // `$AUTH_TEST_OAUTH2_MOCK_SERVER` is the package's package.json, in the cache's
        // node_modules (auth-edge/scripts/install-test-deps.sh).
        let modules = peer_path("AUTH_TEST_OAUTH2_MOCK_SERVER")
            .parent()
            .and_then(|p| p.parent())
            .expect("node_modules")
            .to_path_buf();
        let (trusted, untrusted, control) = (free_port(), free_port(), free_port());
        let mut cmd = Command::new(node);
        cmd.arg(workspace_root().join("auth-edge/tests/edge/oidc/provider.mjs"))
            .arg(&modules)
            .args([trusted, untrusted, control].map(|p| p.to_string()));
        let peer = Peer::spawn("oauth2-mock-server", control, TempDir::new("oidc"), cmd)
            .wait_listening()
            .await;
        Provider { peer, trusted }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.trusted)
    }

    /// A token from the trusted provider (or the untrusted one) with these claims.
    async fn token(&self, provider: &str, sub: &str, aud: &str, extra: &[(&str, &str)]) -> String {
        let mut query = vec![("provider", provider), ("sub", sub), ("aud", aud)];
        query.extend_from_slice(extra);
        let r = client()
            .get(self.peer.url("/token"))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", self.peer.log_text());
        r.text().await.unwrap()
    }

    /// The trusted provider signs with a new key from now on; returns its kid.
    async fn rotate(&self) -> String {
        let r = client()
            .post(self.peer.url("/rotate"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", self.peer.log_text());
        r.text().await.unwrap()
    }
}

/// The edge as deployed: own issuer from the environment's defaults (keys from `fake`), the
/// provider trusted through `AUTH_EDGE_ISSUERS_FILE` by its discovery URL.
async fn edge_trusting(fake: &FakeAccounts, provider: &Provider, dir: &TempDir) -> TestEdge {
    let issuers = json!({"issuers": [{
        "issuer": provider.issuer(),
        "discovery_url": format!("{}/.well-known/openid-configuration", provider.issuer()),
        "audiences": [AUDIENCE, "another-api"],
        "session_id_claim": "sid",
        "role_claim": "roles",
        "roles": {"budget-admin": "admin", "budget-user": "user"},
    }]});
    let file = dir.write("issuers.json", &issuers.to_string());
    let vars: HashMap<String, String> = [
        ("AUTH_EDGE_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH_EDGE_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH_EDGE_JWKS_URL", fake.jwks_url().to_string()),
        ("AUTH_EDGE_REVOCATIONS_URL", fake.stream_url().to_string()),
        ("AUTH_EDGE_ISSUERS_FILE", file.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let edge = spawn_edge(Config::from_vars(&vars).expect("config")).await;
    edge.verifier.load_keys().await.expect("own keys");
    edge
}

/// A provider, a fake accounts (own keys and revocations), and an edge trusting both (the
/// issuers file lives in the returned dir).
async fn start() -> (Provider, FakeAccounts, TempDir, TestEdge) {
    let provider = Provider::start().await;
    let fake = FakeAccounts::start(&[key_a()]).await;
    let dir = TempDir::new("issuers");
    let edge = edge_trusting(&fake, &provider, &dir).await;
    (provider, fake, dir, edge)
}

/// The forward-auth answer for a Bearer token: status and identity headers.
async fn answer(edge: &TestEdge, token: &str) -> (StatusCode, [Option<String>; 3]) {
    let r = client()
        .get(edge.url("/api/v1/auth/gateway-verify"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let ids = [
        header("x-user-id"),
        header("x-session-id"),
        header("x-user-role"),
    ];
    (r.status(), ids)
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

#[tokio::test]
async fn provider_tokens_verify_via_discovery_beside_own_tokens_and_rotation_is_followed() {
    let (provider, fake, _dir, edge) = start().await;

    // (1) The provider's token (typ JWT, no sid, no role) verifies via discovery; its `sub` is
    // the user id, and no session or role header is made up.
    let token = provider.token("trusted", "alice", AUDIENCE, &[]).await;
    assert_eq!(jwt_header(&token)["typ"], "JWT");
    assert_eq!(
        answer(&edge, &token).await,
        (StatusCode::OK, [some("alice"), None, None])
    );
    // Cached like own tokens: the same answer again.
    assert_eq!(answer(&edge, &token).await.0, StatusCode::OK);

    // The claim mapping: sid and a mapped role (an array claim; the first mapped value wins).
    let mapped = provider
        .token(
            "trusted",
            "bob",
            "another-api",
            &[("sid", "idp-session-1"), ("roles", "reader,budget-admin")],
        )
        .await;
    assert_eq!(
        answer(&edge, &mapped).await,
        (
            StatusCode::OK,
            [some("bob"), some("idp-session-1"), some("1")]
        )
    );

    // (4) Own tokens still work beside it, with their full identity.
    let own = claims();
    let (status, ids) = answer(&edge, &sign(&own, key_a())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids[0].as_deref(), Some(own.sub.as_str()));
    assert_eq!(ids[1].as_deref(), Some(own.sid.as_str()));

    // Revocation by session applies where a session id exists: the feed revokes the provider
    // session, that token is refused (cached or not); one without a session id is untouched.
    fake.revoke("idp-session-1", now() + 600);
    wait_until(Duration::from_secs(5), "revocation applied", || {
        edge.verifier.revocations().is_revoked("idp-session-1")
    })
    .await;
    assert_eq!(answer(&edge, &mapped).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(answer(&edge, &token).await.0, StatusCode::OK);

    // (3) Key rotation at the provider: its next token names a kid the edge has not seen; the
    // edge refetches discovery and the JWKS once and accepts it.
    let old_kid = jwt_header(&token)["kid"].as_str().unwrap().to_owned();
    let new_kid = provider.rotate().await;
    assert_ne!(new_kid, old_kid);
    let rotated = provider.token("trusted", "carol", AUDIENCE, &[]).await;
    assert_eq!(jwt_header(&rotated)["kid"], new_kid.as_str());
    assert_eq!(
        answer(&edge, &rotated).await,
        (StatusCode::OK, [some("carol"), None, None])
    );
    // The old key is still published, so its tokens stay valid.
    assert_eq!(answer(&edge, &token).await.0, StatusCode::OK);
    // The provider's key loads are counted under its issuer label: the start, and the refetch
    // for the new kid.
    let metrics = text_of(&edge.admin_url("/metrics")).await;
    let fetched = format!(
        "auth_edge_issuer_key_fetches_total{{issuer=\"{}\",result=\"ok\"}} ",
        provider.issuer()
    );
    let count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&fetched))
        .unwrap_or_else(|| panic!("{fetched} not in {metrics}"))
        .parse()
        .unwrap();
    assert!(count >= 2, "{count}");
    edge.shutdown().await;
}

#[tokio::test]
async fn untrusted_issuers_and_foreign_audiences_are_refused() {
    let (provider, _fake, _dir, edge) = start().await;
    let refused = (StatusCode::UNAUTHORIZED, [None, None, None]);

    // (2) A real provider the edge was not told to trust: a well-signed token, refused.
    let untrusted = provider.token("untrusted", "mallory", AUDIENCE, &[]).await;
    assert_eq!(answer(&edge, &untrusted).await, refused);
    // The trusted provider's token for an audience the edge does not accept.
    let foreign_aud = provider
        .token("trusted", "alice", "someone-elses-api", &[])
        .await;
    assert_eq!(answer(&edge, &foreign_aud).await, refused);
    // Nor is the provider's token for our own audience accepted as an own token: its issuer
    // decides the policy, and a provider token naming JWT_AUDIENCE is still not ours.
    let own_aud = provider
        .token("trusted", "alice", "smart-budget", &[])
        .await;
    assert_eq!(answer(&edge, &own_aud).await, refused);
    // The same edge still accepts a good one.
    let good = provider.token("trusted", "alice", AUDIENCE, &[]).await;
    assert_eq!(answer(&edge, &good).await.0, StatusCode::OK);
    edge.shutdown().await;
}
