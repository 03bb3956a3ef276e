//! Background tasks (relays, pollers, cleanup, key reloads): spawned on one tracker and ended by one
//! cancellation token, so a clean shutdown stops them and waits for them instead of abandoning
//! them mid-write when the runtime goes away.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The process's background tasks.
#[derive(Clone, Debug, Default)]
pub struct Background {
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when shutdown begins; every task's loop watches it.
    pub fn token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Signals every task to stop and waits up to `grace` for them to finish their current step.
    /// `false` when some were still running at the deadline (the process exits anyway).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tracker.close();
        let finished = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                tasks = self.tracker.len(),
                "background tasks still running at shutdown"
            );
        }
        finished
    }
}

/// Sleeps for `period`; `false` when shutdown began first, and the caller's loop ends.
pub(crate) async fn pause(shutdown: &CancellationToken, period: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(period) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_ends_looping_tasks() {
        let background = Background::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let token = background.token();
        background.spawn(async move {
            while pause(&token, Duration::from_secs(3600)).await {}
            let _ = done_tx.send(());
        });
        assert!(background.shutdown(Duration::from_secs(5)).await);
        assert!(done_rx.await.is_ok(), "the loop saw the cancellation");
    }

    #[tokio::test]
    async fn a_stuck_task_does_not_hold_shutdown_forever() {
        let background = Background::new();
        background.spawn(std::future::pending());
        assert!(!background.shutdown(Duration::from_millis(50)).await);
    }
}
