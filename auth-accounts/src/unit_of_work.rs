//! The unit of work: one database transaction that also records the events and queues the emails
//! describing its change (transactional outbox), so they exist exactly when the change committed.
//!
//! ```ignore
//! let mut uow = state.unit_of_work().await?;
//! sessions::revoke(&mut uow, &id, &user_id, uow.now()).await?;   // queries take `&mut Conn`
//! uow.record(Some(&user_id), Event::Logout { session_id: id }).await?;
//! uow.commit().await?;   // and wakes the email relay if an email was queued
//! ```

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Config;
use crate::email::{Lang, Template};
use crate::events::Event;
use crate::outbox;
use crate::store::{Conn, Db, Tx};

pub struct UnitOfWork {
    tx: Tx,
    topic: String,
    now: i64,
    /// Woken after a commit that queued an email.
    mail_notify: Option<Arc<Notify>>,
    queued_email: bool,
}

impl UnitOfWork {
    /// Starts the transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`): a
    /// deferred transaction that read first and writes later fails at once with "database is
    /// locked" when another writer got in between, instead of waiting for its turn.
    pub async fn begin(db: &Db, config: &Config, now: i64) -> sqlx::Result<Self> {
        let tx = if config.is_sqlite() {
            db.begin_with("BEGIN IMMEDIATE").await?
        } else {
            db.begin().await?
        };
        Ok(Self {
            tx,
            topic: config.kafka.topic.clone(),
            now,
            mail_notify: None,
            queued_email: false,
        })
    }

    /// Wakes `notify` after a commit that queued an email (the relay sends it at once).
    pub fn notify_mail(mut self, notify: Arc<Notify>) -> Self {
        self.mail_notify = Some(notify);
        self
    }

    /// The time of this unit of work (unix seconds): every row and event in it carries it.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Records `event` (about `user_id`, if any) to be published after the commit.
    pub async fn record(&mut self, user_id: Option<&str>, event: Event) -> sqlx::Result<()> {
        outbox::record_event(&mut self.tx, &self.topic, user_id, &event, self.now).await
    }

    /// Queues an email to be sent after the commit.
    pub async fn email(
        &mut self,
        to: &str,
        template: &Template<'_>,
        lang: Lang,
        ttl_minutes: i64,
    ) -> sqlx::Result<()> {
        outbox::queue_email(&mut self.tx, to, template, lang, ttl_minutes, self.now).await?;
        self.queued_email = true;
        Ok(())
    }

    /// The same work as [`UnitOfWork::email`] for an email that is never sent (see
    /// [`outbox::suppress_email`]).
    pub async fn suppressed_email(
        &mut self,
        to: &str,
        template: &Template<'_>,
        lang: Lang,
        ttl_minutes: i64,
    ) -> sqlx::Result<()> {
        outbox::suppress_email(&mut self.tx, to, template, lang, ttl_minutes, self.now).await
    }

    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await?;
        if let (true, Some(notify)) = (self.queued_email, &self.mail_notify) {
            notify.notify_one();
        }
        Ok(())
    }
}

/// Queries run inside the unit of work: `users::find_by_email(&mut uow, ..)`.
impl Deref for UnitOfWork {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl DerefMut for UnitOfWork {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}
