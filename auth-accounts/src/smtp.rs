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
use secrecy::ExposeSecret as _;

use crate::config::{EmailConfig, SmtpTls};
use crate::outbox::{DeliveryError, DeliveryFuture, Mailer, OutgoingEmail};

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("SMTP_HOST is not set")]
    NoHost,
    #[error("TLS parameters: {0}")]
    Tls(#[from] lettre::transport::smtp::Error),
    #[error("SMTP_FROM_EMAIL/SMTP_FROM_NAME: {0}")]
    From(#[from] lettre::address::AddressError),
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(config: &EmailConfig) -> Result<Self, SmtpError> {
        let smtp = &config.smtp;
        let host = smtp.host.clone().ok_or(SmtpError::NoHost)?;
        let tls_params = || TlsParameters::new(host.clone());
        let tls = match smtp.tls {
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(tls_params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(pass)) = (&smtp.user, &smtp.pass) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                pass.expose_secret().to_string(),
            ));
        }
        let from: Mailbox = config.from_header().parse()?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    fn message(&self, email: &OutgoingEmail) -> Result<Message, DeliveryError> {
        let to: Mailbox = email.recipient.parse()?;
        Ok(Message::builder()
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
            )?)
    }
}

impl Mailer for SmtpMailer {
    fn deliver<'a>(&'a self, email: &'a OutgoingEmail) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let message = self.message(email)?;
            self.transport.send(message).await?;
            Ok(())
        })
    }
}

impl SmtpMailer {
    /// Whether the server answers (for health).
    pub async fn ping(&self) -> bool {
        self.transport.test_connection().await.unwrap_or(false)
    }
}
