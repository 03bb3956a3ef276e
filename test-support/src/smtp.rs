//! `tests/smtp_sink.py` (aiosmtpd, in the test venv): an SMTP server that stores each message it
//! accepts, and the messages read back through Python's `email` package.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::net::{free_port, wait_for};
use crate::process::{peer_path, workspace_root, Process};
use crate::python::python;

/// `tests/smtp_sink.py` (aiosmtpd): stores each accepted message as DIR/N.eml.
#[derive(Debug)]
pub struct SmtpSink {
    /// The loopback port it listens on.
    pub port: u16,
    /// Where it stores the messages.
    pub dir: PathBuf,
    process: Process,
}

/// A message the sink accepted, decoded by Python's `email` package.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SinkMail {
    /// The SMTP envelope's recipient (`RCPT TO`).
    #[serde(rename = "envelopeTo")]
    pub envelope_to: String,
    /// The `To` header.
    pub to: String,
    /// The `From` header.
    pub from: String,
    /// The `Subject` header, decoded.
    pub subject: String,
    /// The `Message-ID` header.
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
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

/// The sink's script, `tests/smtp_sink.py`.
pub fn sink_script() -> PathBuf {
    workspace_root().join("tests").join("smtp_sink.py")
}

impl SmtpSink {
    /// A sink on a free port storing into `dir`.
    pub async fn start(dir: &Path) -> Self {
        Self::start_on(free_port(), dir).await
    }

    /// A sink on `port` (a restart after an outage) storing into `dir`.
    pub async fn start_on(port: u16, dir: &Path) -> Self {
        let python = peer_path("AUTH_TEST_PYTHON");
        let mut process = Process::spawn(
            "smtp-sink",
            Command::new(python)
                .arg(sink_script())
                .args(["--port", &port.to_string(), "--dir"])
                .arg(dir),
        );
        process.wait_for_port(port, Duration::from_secs(15)).await;
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
