//! The unit of work: one database transaction that also records the events and queues the emails
//! describing its change (transactional outbox), so they exist exactly when the change committed.
//!
//! ```ignore
//! let mut uow = state.unit_of_work().await?;
//! uow.revoke_session(&id, &user_id).await?;   // revocations go through the unit of work
//! uow.record(Some(&user_id), Event::Logout { session_id: id }).await?;
//! uow.commit().await?;   // wakes the email relay (an email was queued) and the revocation feed
//!                        // (a session was revoked)
//! ```
//!
//! Other queries take `&mut Conn`: `users::find_by_email(&mut uow, ..)`.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Config;
use crate::email::{Lang, Template};
use crate::events::Event;
use crate::outbox;
use crate::store::{sessions, Conn, Db, Tx};

pub struct UnitOfWork {
    tx: Tx,
    topic: String,
    now: i64,
    /// Woken after a commit that queued an email.
    mail_notify: Option<Arc<Notify>>,
    queued_email: bool,
    /// Woken after a commit that revoked a session: the feed reads the log at once, so edges
    /// hear within milliseconds instead of at the next safety-net poll.
    revocation_notify: Option<Arc<Notify>>,
    revoked: bool,
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
            revocation_notify: None,
            revoked: false,
        })
    }

    /// Wakes `notify` after a commit that queued an email (the relay sends it at once).
    pub fn notify_mail(mut self, notify: Arc<Notify>) -> Self {
        self.mail_notify = Some(notify);
        self
    }

    /// Wakes `notify` after a commit that revoked a session (the revocation feed's poller).
    pub fn notify_revocations(mut self, notify: Arc<Notify>) -> Self {
        self.revocation_notify = Some(notify);
        self
    }

    /// Revokes one live session of this user; `false` if there is none (see
    /// [`sessions::revoke`]).
    pub async fn revoke_session(&mut self, session_id: &str, user_id: &str) -> sqlx::Result<bool> {
        let now = self.now;
        let done = sessions::revoke(&mut self.tx, session_id, user_id, now).await?;
        self.revoked |= done;
        Ok(done)
    }

    /// Revokes every live session of the user except `keep`; the ids it revoked (see
    /// [`sessions::revoke_all`]).
    pub async fn revoke_all_sessions(
        &mut self,
        user_id: &str,
        keep: Option<&str>,
    ) -> sqlx::Result<Vec<String>> {
        let now = self.now;
        let ids = sessions::revoke_all(&mut self.tx, user_id, keep, now).await?;
        self.revoked |= !ids.is_empty();
        Ok(ids)
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
        // This replica's feed at once; other replicas hear through the database (PostgreSQL's
        // NOTIFY from the revocation log trigger), and every feed polls as a safety net.
        if let (true, Some(notify)) = (self.revoked, &self.revocation_notify) {
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
