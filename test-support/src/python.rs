//! Running the test venv's Python (`$AUTH_TEST_PYTHON`): PyJWT, aiosmtpd, prometheus_client.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::process::peer_path;

/// Runs `python args...` with `stdin` and returns its stdout, or why it failed (it could not
/// start, or exited unsuccessfully: with its stderr).
pub fn run_python(python: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let py = python.display();
    let mut child = Command::new(python)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{py}`: {e}"))?;
    {
        let mut input = child.stdin.take().expect("python stdin");
        if let Some(text) = stdin {
            input
                .write_all(text.as_bytes())
                .map_err(|e| format!("writing to `{py}`: {e}"))?;
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "`{py}` {args:?} exited with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("`{py}` wrote non-UTF-8: {e}"))
}

/// Runs `$AUTH_TEST_PYTHON args...` with `stdin` (off the async threads), and returns its
/// stdout; panics on failure.
pub async fn python(args: &[&str], stdin: Option<&str>) -> String {
    let bin = peer_path("AUTH_TEST_PYTHON");
    let stdin = stdin.map(str::to_string);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(&bin, &args, stdin.as_deref()).unwrap_or_else(|e| panic!("{e}"))
    })
    .await
    .expect("the python thread")
}
