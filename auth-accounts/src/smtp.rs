//! SMTP delivery for the email outbox (lettre), used when `SMTP_HOST` is set.
//!
//! Each message carries `Message-ID: <email_id@auth-accounts>`: a relay that crashes between the
//! server's acceptance and marking the row sent will send it again, and the id lets a mail system
//! (or a test) recognise the duplicate.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, SmtpTls};
use crate::outbox::{DeliveryFuture, Mailer, OutgoingEmail};

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(config: &Config) -> Result<Self, String> {
        let host = config.smtp_host.clone().ok_or("SMTP_HOST is not set")?;
        let tls_params = || TlsParameters::new(host.clone()).map_err(|e| e.to_string());
        let tls = match config.smtp_tls {
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(tls_params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(config.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(pass)) = (&config.smtp_user, &config.smtp_pass) {
            builder =
                builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
        }
        let from = format!("{} <{}>", config.smtp_from_name, config.smtp_from_email)
            .parse::<Mailbox>()
            .map_err(|e| format!("SMTP_FROM_EMAIL/SMTP_FROM_NAME: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    fn message(&self, email: &OutgoingEmail) -> Result<Message, String> {
        let to: Mailbox = email
            .recipient
            .parse()
            .map_err(|e| format!("recipient: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{}@auth-accounts>", email.email_id)))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.body_text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.body_html.clone()),
                    ),
            )
            .map_err(|e| e.to_string())
    }
}

impl Mailer for SmtpMailer {
    fn deliver<'a>(&'a self, email: &'a OutgoingEmail) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let message = self.message(email)?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

impl SmtpMailer {
    /// Whether the server answers (for health).
    pub async fn ping(&self) -> bool {
        self.transport.test_connection().await.unwrap_or(false)
    }
}
