//! Transactional outbox for events and emails.
//!
//! A handler writes the outbox row in the same transaction as the change it describes, so an event
//! or an email exists exactly when the change committed: a crash can lose neither. Relays deliver
//! rows afterwards with retries and backoff. In the embedded mode events stay in the table (and are
//! logged as they are recorded) and emails are written to a folder; Kafka and SMTP relays plug into
//! the same tables.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::email::{render, Lang, Template};
use crate::events::{Envelope, Event};
use crate::metrics::{Metrics, ResultLabels};
use crate::store::{Conn, Db};

/// Records an event in the outbox (through [`crate::unit_of_work::UnitOfWork::record`]).
pub(crate) async fn record_event(
    conn: &mut Conn,
    topic: &str,
    user_id: Option<&str>,
    event: &Event,
    now: i64,
) -> sqlx::Result<()> {
    // Time-ordered (v7, monotonic within the process): the relay publishes in (created_at,
    // event_id) order, and created_at has one-second resolution, so a random id would reorder one
    // user's events within a second.
    let event_id = uuid::Uuid::now_v7().to_string();
    let event_type = event.event_type();
    let payload = Envelope::new(&event_id, user_id, event, now)
        .to_json()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // The request that caused the event travels with it (Kafka headers), so a consumer's trace
    // joins the request's.
    let context = crate::trace::current();
    sqlx::query(
        "INSERT INTO outbox_events (event_id, topic, event_type, user_id, payload, created_at, status, attempts, next_attempt_at, traceparent, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $6, $7, $8)",
    )
    .bind(&event_id)
    .bind(topic)
    .bind(event_type)
    .bind(user_id)
    .bind(payload)
    .bind(now)
    .bind(context.as_ref().map(|c| c.trace.to_string()))
    .bind(context.map(|c| c.request_id))
    .execute(conn)
    .await?;
    tracing::info!(event_id, event_type, user_id, "event recorded");
    Ok(())
}

/// Queues an email in the outbox; the mail relay sends it after the transaction commits.
pub(crate) async fn queue_email(
    conn: &mut Conn,
    to: &str,
    template: &Template<'_>,
    lang: Lang,
    ttl_minutes: i64,
    now: i64,
) -> sqlx::Result<()> {
    insert_email(conn, to, template, lang, ttl_minutes, now, true).await
}

/// Does the work of [`queue_email`] (rendering, one row) for an email that must not be sent:
/// the branch of a request about an address without an account, so both branches cost the same
/// and their timing reveals nothing. The row is `suppressed`, without bodies, never delivered,
/// and removed by the cleanup.
pub(crate) async fn suppress_email(
    conn: &mut Conn,
    to: &str,
    template: &Template<'_>,
    lang: Lang,
    ttl_minutes: i64,
    now: i64,
) -> sqlx::Result<()> {
    insert_email(conn, to, template, lang, ttl_minutes, now, false).await
}

async fn insert_email(
    conn: &mut Conn,
    to: &str,
    template: &Template<'_>,
    lang: Lang,
    ttl_minutes: i64,
    now: i64,
    deliver: bool,
) -> sqlx::Result<()> {
    let rendered = render(template, lang, ttl_minutes);
    let (status, text, html) = if deliver {
        ("pending", rendered.text, rendered.html)
    } else {
        ("suppressed", String::new(), String::new())
    };
    sqlx::query(
        "INSERT INTO email_outbox (email_id, kind, recipient, subject, body_text, body_html, created_at, status, attempts, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(template.kind())
    .bind(to)
    .bind(rendered.subject)
    .bind(text)
    .bind(html)
    .bind(now)
    .bind(status)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Undelivered rows of each outbox: (`events` or `emails`, count, oldest `created_at`).
pub(crate) async fn backlog(db: &Db) -> sqlx::Result<Vec<(&'static str, i64, Option<i64>)>> {
    let mut out = Vec::new();
    for (name, table) in [("events", "outbox_events"), ("emails", "email_outbox")] {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(&format!(
            "SELECT COUNT(*), MIN(created_at) FROM {table} WHERE status = 'pending'"
        ))
        .fetch_one(db)
        .await?;
        out.push((name, count, oldest));
    }
    Ok(out)
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OutgoingEmail {
    pub email_id: String,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

/// Why one email was not delivered (stored in `last_error`, retried with backoff).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("writing the email file: {0}")]
    File(#[from] std::io::Error),
    #[error("bad address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("building the message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

pub(crate) type DeliveryFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Where emails go: a folder in the embedded mode, an SMTP server in production.
pub(crate) trait Mailer: Send + Sync + 'static {
    fn deliver<'a>(&'a self, email: &'a OutgoingEmail) -> DeliveryFuture<'a>;
}

/// Writes each email as an RFC 5322 `.eml` file into a folder, and logs where (and, outside
/// production, the link in it, so a developer can click through without a mail server).
pub(crate) struct FileMailer {
    pub dir: PathBuf,
    pub from: String,
    pub log_links: bool,
}

impl Mailer for FileMailer {
    fn deliver<'a>(&'a self, email: &'a OutgoingEmail) -> DeliveryFuture<'a> {
        Box::pin(async move { self.write(email) })
    }
}

impl FileMailer {
    fn write(&self, email: &OutgoingEmail) -> Result<(), DeliveryError> {
        std::fs::create_dir_all(&self.dir)?;
        let boundary = format!("b-{}", email.email_id);
        let message = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@auth-accounts>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
             --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{boundary}--\r\n",
            from = self.from,
            to = email.recipient,
            subject = email.subject,
            date = chrono::DateTime::from_timestamp(email.created_at, 0).unwrap_or_default().to_rfc2822(),
            id = email.email_id,
            text = email.body_text,
            html = email.body_html,
        );
        let path = self
            .dir
            .join(format!("{}-{}.eml", email.created_at, email.email_id));
        let tmp = path.with_extension("tmp");
        // Write then rename: a reader never sees half a message.
        std::fs::write(&tmp, message)?;
        std::fs::rename(&tmp, &path)?;
        let link = email
            .body_text
            .lines()
            .rev()
            .find(|l| l.starts_with("http"))
            .unwrap_or("");
        if self.log_links && !link.is_empty() {
            tracing::info!(kind = %email.kind, to = %email.recipient, path = %path.display(), link, "email written");
        } else {
            tracing::info!(kind = %email.kind, to = %email.recipient, path = %path.display(), "email written");
        }
        Ok(())
    }
}

/// After this many failed attempts an email is marked `dead` and left for an operator.
const MAX_ATTEMPTS: i64 = 8;
/// A claimed row is invisible to other relays this long; a crashed relay's claims expire.
const LEASE_SECS: i64 = 60;

/// Everything the email relay needs.
#[derive(Clone)]
pub(crate) struct EmailRelay {
    pub db: Db,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Emails the server accepted that are not marked sent yet (the database was away): marked
    /// when it answers, never sent again. (A crash between the server's acceptance and the mark
    /// still re-sends one email; SMTP has no way to ask whether a message arrived.)
    pub unmarked: Arc<std::sync::Mutex<Vec<(String, i64)>>>,
}

impl EmailRelay {
    /// Delivers pending emails until `shutdown`. Woken at once by `notify` after a commit, and
    /// polls every second as a safety net (another replica's rows, retries that came due).
    pub(crate) async fn run(self, notify: Arc<Notify>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.run_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "email relay: database error"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Marks sent the emails delivered while the database was away.
    async fn mark_unmarked(&self) -> sqlx::Result<()> {
        loop {
            let next = self
                .unmarked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .last()
                .cloned();
            let Some((email_id, sent_at)) = next else {
                return Ok(());
            };
            sqlx::query(
                // The bodies carry one-time links: once delivered they are not kept at rest.
                "UPDATE email_outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL,
                     body_text = '', body_html = '' WHERE email_id = $2 AND status = 'pending'",
            )
            .bind(sent_at)
            .bind(&email_id)
            .execute(&self.db)
            .await?;
            self.unmarked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|(id, _)| *id != email_id);
        }
    }

    /// One pass over due emails; returns how many it handled.
    pub(crate) async fn run_once(&self) -> sqlx::Result<usize> {
        self.mark_unmarked().await?;
        let db = &self.db;
        let now = self.clock.now();
        let due: Vec<OutgoingEmail> = sqlx::query_as(
            "SELECT email_id, kind, recipient, subject, body_text, body_html, created_at, attempts, next_attempt_at
             FROM email_outbox WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY created_at LIMIT 50",
        )
        .bind(now)
        .fetch_all(db)
        .await?;
        let mut handled = 0;
        for email in due {
            // Claim with a compare-and-set on next_attempt_at so two relays never send the same row.
            let claimed = sqlx::query(
                "UPDATE email_outbox SET next_attempt_at = $1 WHERE email_id = $2 AND status = 'pending' AND next_attempt_at = $3",
            )
            .bind(now + LEASE_SECS)
            .bind(&email.email_id)
            .bind(email.next_attempt_at)
            .execute(db)
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            handled += 1;
            match self.mailer.deliver(&email).await {
                Ok(()) => {
                    self.metrics
                        .email_deliveries
                        .get_or_create(&ResultLabels {
                            result: "sent".into(),
                        })
                        .inc();
                    // Remembered until marked: a database error now must not send it again.
                    self.unmarked
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((email.email_id.clone(), self.clock.now()));
                    self.mark_unmarked().await?;
                }
                Err(err) => {
                    let attempts = email.attempts + 1;
                    let status = if attempts >= MAX_ATTEMPTS {
                        "dead"
                    } else {
                        "pending"
                    };
                    let result = if status == "dead" { "dead" } else { "retry" };
                    self.metrics
                        .email_deliveries
                        .get_or_create(&ResultLabels {
                            result: result.into(),
                        })
                        .inc();
                    // 10 s, 20 s, 40 s ... capped at about 1.5 h.
                    let backoff = 5i64.saturating_mul(1 << attempts.min(10));
                    tracing::warn!(email_id = %email.email_id, attempts, status, error = %err, "email delivery failed");
                    sqlx::query(
                        // A dead letter keeps its metadata for the operator, not its one-time links.
                        "UPDATE email_outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4,
                             body_text = CASE WHEN $1 = 'dead' THEN '' ELSE body_text END,
                             body_html = CASE WHEN $1 = 'dead' THEN '' ELSE body_html END
                         WHERE email_id = $5",
                    )
                    .bind(status)
                    .bind(attempts)
                    .bind(self.clock.now() + backoff)
                    .bind(err.to_string())
                    .bind(&email.email_id)
                    .execute(db)
                    .await?;
                }
            }
        }
        Ok(handled)
    }
}
