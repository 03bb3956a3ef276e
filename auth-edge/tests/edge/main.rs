//! Integration tests of the edge: the real server on port 0, a fake accounts (JWKS and
//! revocation stream), an echoing upstream, and real peers (nginx, Caddy, Envoy, Redis, an OpenID provider) on random
//! loopback ports; the sidecar binary in front of the upstream. (The Kubernetes manifests, now under
//! `deploy/kustomize/`, are rendered and validated by `scripts/check-deploy`.) Peers missing from
//! the machine make the tests fail with "run scripts/test".
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Helpers are `pub` to the modules of this one test binary.
#![allow(unreachable_pub)]

mod cli;
mod credentials;
mod csrf;
mod forward_auth;
mod helpers;
mod issuers;
mod peers;
mod protocols;
mod revocation;
mod sidecar;
mod tls;
