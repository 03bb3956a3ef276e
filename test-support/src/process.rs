//! Child processes killed on drop, and where the binaries they run are.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::fs::TempDir;

/// A child process with its own temp dir, killed (SIGKILL, and reaped) when dropped; the dir goes
/// with it. Its output goes to `output.log` in that dir, shown when it fails to start.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    dir: TempDir,
}

impl Process {
    /// Starts `command` with a fresh temp dir named after `name`.
    pub fn spawn(name: &str, command: &mut Command) -> Process {
        Process::spawn_in(name, TempDir::new(name), command)
    }

    /// Starts `command`, which may use `dir` (its configuration, its data), owned from now on.
    pub fn spawn_in(name: &str, dir: TempDir, command: &mut Command) -> Process {
        let log = dir.path().join("output.log");
        let out = std::fs::File::create(&log).expect("create a process log file");
        let err = out.try_clone().expect("clone the process log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}: run scripts/test"));
        Process {
            name: name.to_owned(),
            child: Some(child),
            log,
            dir,
        }
    }

    /// The name it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its process id (0 once stopped).
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its output so far, and the `error.log` it may have written into its dir (nginx does).
    pub fn log(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Ok(e) = std::fs::read_to_string(self.dir.path().join("error.log")) {
            text.push_str(&e);
        }
        text
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_wait() {
            panic!(
                "{} exited ({status}); its output:\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Waits until something accepts TCP connections on the loopback `port`; panics with the log
    /// if the process exits first or `timeout` passes.
    pub async fn wait_for_port(&mut self, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {port} after {timeout:?}; its output:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGTERM first (an nginx master stops its workers only then; SIGKILL would orphan them),
    /// SIGKILL if it has not exited after 5 s.
    pub fn kill(&mut self) {
        if self.child.is_some() && self.try_wait().is_none() {
            self.terminate(Duration::from_secs(5));
        }
        self.stop();
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
    }
}

/// A peer process listening on a loopback port: stopped gracefully on drop ([`Process::kill`]).
#[derive(Debug)]
pub struct Peer {
    /// What it is, for messages.
    pub name: &'static str,
    /// The loopback port it listens on.
    pub port: u16,
    process: Process,
}

impl Peer {
    /// Starts `command`, which will listen on `port` and may use `dir`.
    pub fn spawn(name: &'static str, port: u16, dir: TempDir, mut command: Command) -> Peer {
        Peer {
            name,
            port,
            process: Process::spawn_in(name, dir, &mut command),
        }
    }

    /// Waits (up to 30 s) until the port accepts connections; fails with the peer's log if it
    /// exits first.
    pub async fn wait_listening(mut self) -> Peer {
        self.process
            .wait_for_port(self.port, Duration::from_secs(30))
            .await;
        self
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its temp dir.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// Its output so far.
    pub fn log_text(&self) -> String {
        self.process.log()
    }

    /// The process itself (to stop it, or to check it is still running).
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.terminate(limit)
    }

    /// Stops it: SIGTERM, then SIGKILL after 5 s.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.process.kill();
    }
}

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

/// Finds a peer binary: `$ENV_VAR`, then PATH, then the given extra locations. Missing means the
/// machine was not prepared: the test fails (never skips) and says how to fix it.
pub fn binary(env_var: &str, name: &str, extra: &[PathBuf]) -> PathBuf {
    if std::env::var_os(env_var).is_some_and(|p| !p.is_empty()) {
        return peer_path(env_var);
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
                "{name} not found (PATH, {env_var}, {extra:?}): run scripts/test, which installs \
                 the test dependencies (or `cargo xtask setup`), or set {env_var}"
            )
        })
}

/// `~/.cache/auth-tests`, where `scripts/test` keeps the venv and the tools it builds.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"))
        .join("auth-tests")
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support/ is in the workspace root")
        .to_path_buf()
}

/// A binary of this workspace (`auth-accounts`, `auth-edge`) in the debug target dir; it must
/// have been built (`cargo xtask e2e` and `scripts/test` build them first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask e2e` (or scripts/test), which builds it",
        path.display()
    );
    path
}
