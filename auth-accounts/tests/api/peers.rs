//! Real peers for the production integrations: redis-server, the tansu Kafka broker, an aiosmtpd
//! SMTP sink, the Python Prometheus parser and the GeoIP test database. `scripts/test` installs them
//! and exports where they are (`AUTH_TEST_REDIS`, `AUTH_TEST_TANSU`, `AUTH_TEST_PYTHON`,
//! `AUTH_TEST_GEOIP_DB`); a missing one fails the test (never skips it). Each test starts its own
//! peers on random loopback ports; they are killed when dropped.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auth_accounts::clock::Clock;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

/// The value of a peer variable that `scripts/test` exports, naming a file that must exist.
pub fn peer_path(var: &str) -> PathBuf {
    let value = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{var} is not set: run scripts/test (it installs the test peers and exports {var})"
            )
        });
    let path = PathBuf::from(&value);
    assert!(
        path.is_file(),
        "{var}={value} does not exist: run scripts/test (it installs the test peers)"
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `check` is true, or panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, timeout, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Moves every clock to the start of the next `window`-second window (all by the same amount), so a
/// burst of requests counted in fixed windows cannot straddle a window boundary.
pub fn align_to_window(clocks: &[&Clock], window: i64) {
    let now = clocks[0].now();
    let advance = window - now.rem_euclid(window);
    for clock in clocks {
        clock.advance(advance);
    }
}

/// A child process, killed (and reaped) when dropped. Its output goes to a log file that is shown
/// when it fails to start.
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let log = std::env::temp_dir().join(format!(
            "auth-test-{name}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).expect("create a peer log file");
        let err = out.try_clone().expect("clone the peer log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Self {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited ({status}); its output:\n{}",
                    self.name,
                    self.log()
                );
            }
        }
    }

    /// Kills the process (SIGKILL: an outage, not a clean shutdown) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits until something accepts TCP connections on the loopback port.
async fn wait_for_port(process: &mut Process, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        process.assert_running();
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} does not listen on {port} after {timeout:?}; its output:\n{}",
            process.name,
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// --- Redis ----------------------------------------------------------------------------------------

pub struct RedisServer {
    pub port: u16,
    process: Process,
}

impl RedisServer {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Self {
        let bin = peer_path("AUTH_TEST_REDIS");
        let mut process = Process::spawn(
            "redis-server",
            Command::new(bin).args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]),
        );
        wait_for_port(&mut process, port, Duration::from_secs(10)).await;
        let server = Self { port, process };
        // Listening is not serving yet (loading): wait for PING.
        let client = redis::Client::open(server.url()).expect("redis URL");
        wait_until("redis-server PING", Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return false;
                };
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            }
        })
        .await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }

    /// Kills the server (an outage).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

// --- Kafka (tansu) ---------------------------------------------------------------------------------

pub const TOPIC: &str = "auth.events";

/// A tansu broker with in-memory storage and the `auth.events` topic (one partition).
pub struct Tansu {
    pub port: u16,
    process: Process,
}

impl Tansu {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// A fresh broker on `port` (memory storage: the topic is created again, empty).
    pub async fn start_on(port: u16) -> Self {
        let bin = peer_path("AUTH_TEST_TANSU");
        let url = format!("tcp://127.0.0.1:{port}");
        let mut process = Process::spawn(
            "tansu",
            Command::new(&bin)
                .args(["broker", "--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .env("RUST_LOG", "warn"),
        );
        wait_for_port(&mut process, port, Duration::from_secs(20)).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut create = Command::new(&bin);
            create
                .args([
                    "topic",
                    "create",
                    TOPIC,
                    "--partitions",
                    "1",
                    "--broker",
                    &url,
                ])
                .env("RUST_LOG", "warn");
            let out = tokio::task::spawn_blocking(move || create.output())
                .await
                .expect("the tansu thread")
                .expect("run tansu topic create");
            if out.status.success() {
                break;
            }
            process.assert_running();
            assert!(
                Instant::now() < deadline,
                "tansu topic create {TOPIC} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self { port, process }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (an outage; its in-memory data is gone).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// One record read back from the topic.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    pub key: Option<String>,
    pub value: Value,
    pub headers: HashMap<String, String>,
    pub offset: i64,
}

impl KafkaRecord {
    pub fn event_id(&self) -> &str {
        self.value["eventId"].as_str().unwrap_or("")
    }
}

/// Reads `auth.events` (partition 0) from the beginning until `done` says the records read so far
/// are enough (then keeps reading for `linger`, so a duplicate right behind is caught), or panics
/// after `timeout`.
pub async fn consume_until(
    bootstrap: &str,
    timeout: Duration,
    linger: Duration,
    done: impl Fn(&[KafkaRecord]) -> bool + Send + 'static,
) -> Vec<KafkaRecord> {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", format!("auth-tests-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("create a Kafka consumer");
        let mut partitions = TopicPartitionList::new();
        partitions
            .add_partition_offset(TOPIC, 0, Offset::Beginning)
            .expect("partition 0");
        consumer.assign(&partitions).expect("assign partition 0");
        let deadline = Instant::now() + timeout;
        let mut records = Vec::new();
        let mut linger_until: Option<Instant> = None;
        loop {
            match linger_until {
                Some(until) if Instant::now() >= until => return records,
                Some(_) => {}
                None if done(&records) => linger_until = Some(Instant::now() + linger),
                None => {}
            }
            assert!(
                linger_until.is_some() || Instant::now() < deadline,
                "timed out after {timeout:?} reading {TOPIC}; read so far: {records:#?}"
            );
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                // Transient (the broker is still electing, a fetch failed): keep polling.
                Some(Err(_)) => {}
                Some(Ok(message)) => {
                    let headers = message
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = message
                        .payload()
                        .map(|p| {
                            serde_json::from_slice(p).unwrap_or_else(|e| {
                                panic!(
                                    "record value is not JSON ({e}): {}",
                                    String::from_utf8_lossy(p)
                                )
                            })
                        })
                        .unwrap_or(Value::Null);
                    records.push(KafkaRecord {
                        key: message
                            .key()
                            .map(|k| String::from_utf8_lossy(k).into_owned()),
                        value,
                        headers,
                        offset: message.offset(),
                    });
                }
            }
        }
    })
    .await
    .expect("the consumer thread")
}

// --- SMTP sink -----------------------------------------------------------------------------------

/// `tests/smtp_sink.py` (aiosmtpd): stores each accepted message as DIR/N.eml.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    process: Process,
}

/// A message the sink accepted, decoded by Python's `email` package.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SinkMail {
    #[serde(rename = "envelopeTo")]
    pub envelope_to: String,
    pub to: String,
    pub from: String,
    pub subject: String,
    #[serde(rename = "messageId")]
    pub message_id: String,
    pub text: String,
    pub html: String,
}

impl SinkMail {
    /// The `token` query parameter of the first frontend link in the text part.
    pub fn token(&self) -> Option<String> {
        self.text
            .split_whitespace()
            .filter_map(|w| url::Url::parse(w).ok())
            .find_map(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.to_string())
            })
    }
}

const PARSE_MAILS: &str = r#"
import email, email.policy, glob, json, os, sys
out = []
paths = glob.glob(os.path.join(sys.argv[1], "*.eml"))
# N.eml or <start-time>-N.eml: oldest first either way.
for path in sorted(paths, key=lambda p: [int(x) for x in os.path.basename(p)[:-4].split("-")]):
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    plain = m.get_body(preferencelist=("plain",))
    html = m.get_body(preferencelist=("html",))
    out.append({
        "envelopeTo": str(m["X-Envelope-To"]), "to": str(m["To"]), "from": str(m["From"]),
        "subject": str(m["Subject"]), "messageId": str(m["Message-ID"]),
        "text": plain.get_content() if plain else "", "html": html.get_content() if html else "",
    })
print(json.dumps(out))
"#;

pub fn sink_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("smtp_sink.py")
}

impl SmtpSink {
    pub async fn start(dir: &Path) -> Self {
        Self::start_on(free_port(), dir).await
    }

    pub async fn start_on(port: u16, dir: &Path) -> Self {
        let python = peer_path("AUTH_TEST_PYTHON");
        let mut process = Process::spawn(
            "smtp-sink",
            Command::new(python)
                .arg(sink_script())
                .args(["--port", &port.to_string(), "--dir"])
                .arg(dir),
        );
        wait_for_port(&mut process, port, Duration::from_secs(15)).await;
        Self {
            port,
            dir: dir.to_path_buf(),
            process,
        }
    }

    /// Every message accepted so far, oldest first.
    pub async fn mails(&self) -> Vec<SinkMail> {
        let out = python(&["-c", PARSE_MAILS, &self.dir.display().to_string()], None).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("mail parser output ({e}): {out}"))
    }

    /// Waits (up to `timeout`) for the messages to `recipient`, until there are at least `n`.
    pub async fn wait_for_mails(
        &self,
        recipient: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<SinkMail> {
        wait_for(
            &format!("{n} message(s) to {recipient} at the SMTP sink"),
            timeout,
            || async {
                let mails: Vec<SinkMail> = self
                    .mails()
                    .await
                    .into_iter()
                    .filter(|m| m.envelope_to == recipient)
                    .collect();
                (mails.len() >= n).then_some(mails)
            },
        )
        .await
    }

    /// Kills the sink (an outage).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

// --- Python ----------------------------------------------------------------------------------------

/// Runs `$AUTH_TEST_PYTHON args...` with `stdin`, and returns its stdout; panics on failure.
pub async fn python(args: &[&str], stdin: Option<&str>) -> String {
    let bin = peer_path("AUTH_TEST_PYTHON");
    let stdin = stdin.map(str::to_string);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&bin)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        {
            let mut input = child.stdin.take().expect("python stdin");
            if let Some(text) = &stdin {
                input
                    .write_all(text.as_bytes())
                    .expect("write python stdin");
            }
        }
        let out = child.wait_with_output().expect("python output");
        assert!(
            out.status.success(),
            "python {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("python stdout is UTF-8")
    })
    .await
    .expect("the python thread")
}
