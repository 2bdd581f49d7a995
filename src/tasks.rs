//! Every background task of the server (market feed, WebSocket hub and clients, watchdog, and
//! whatever comes next): started by name through one [`Background`], stopped by its one
//! cancellation token, waited for within one grace period.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lock::lock;
use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::Instrument;

/// A scope of background tasks; cheap to clone (all clones are the same scope).
///
/// A task started with [`Background::spawn`] gets the scope's token and must return soon
/// after it is cancelled. [`Background::shutdown`] cancels the token and waits for every task
/// of the scope, bounded. A [`Background::child`] scope (one per market feed, say) can be
/// stopped on its own, and stops with its parent.
#[derive(Clone)]
pub struct Background(Arc<Scope>);

struct Scope {
    token: CancellationToken,
    tracker: TaskTracker,
    /// Names of the running tasks with how many run under each, for the shutdown log.
    running: Mutex<BTreeMap<&'static str, usize>>,
    parent: Option<Background>,
}

impl Default for Background {
    fn default() -> Self {
        Background::new()
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("cancelled", &self.is_cancelled())
            .field("running", &self.running())
            .finish()
    }
}

impl Background {
    /// A root scope: nothing stops it but its own [`Background::shutdown`] or [`cancel`].
    ///
    /// [`cancel`]: Background::cancel
    pub fn new() -> Background {
        Background(Arc::new(Scope {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            running: Mutex::default(),
            parent: None,
        }))
    }

    /// A scope inside this one: cancelled when this one is, and its tasks count as this
    /// one's too (a shutdown of the parent waits for them), but it can be stopped alone.
    pub fn child(&self) -> Background {
        Background(Arc::new(Scope {
            token: self.0.token.child_token(),
            tracker: TaskTracker::new(),
            running: Mutex::default(),
            parent: Some(self.clone()),
        }))
    }

    /// The scope's token, for code that must notice the stop outside a spawned task.
    pub fn token(&self) -> &CancellationToken {
        &self.0.token
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.token.is_cancelled()
    }

    /// Tells every task of the scope (and of its children) to stop; does not wait.
    pub fn cancel(&self) {
        self.0.token.cancel();
    }

    /// Starts `task` on the runtime under `name` (used in its tracing span and in the
    /// shutdown log). `task` receives the scope's token: it must watch `token.cancelled()`
    /// and return promptly once it fires. Must be called inside a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(tasks: crypto_report::tasks::Background) {
    /// tasks.spawn("sync", |stop| async move {
    ///     let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
    ///     loop {
    ///         tokio::select! {
    ///             () = stop.cancelled() => break,
    ///             _ = every.tick() => { /* one round of work */ }
    ///         }
    ///     }
    /// });
    /// # }
    /// ```
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F) -> JoinHandle<()>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let fut = task(self.0.token.clone());
        let held = Held::new(self, name);
        let span = tracing::info_span!("task", name);
        self.0.tracker.spawn(holding(fut, held).instrument(span))
    }

    /// Cancels the scope and waits for all its tasks, at most `grace`. Returns whether they
    /// all ended; the names of those still running are logged. Tasks left running are not
    /// aborted here: they end with the runtime.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.cancel();
        self.0.tracker.close();
        if tokio::time::timeout(grace, self.0.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        tracing::warn!(
            still_running = ?self.running(),
            ?grace,
            "background tasks did not stop within the grace period"
        );
        false
    }

    /// How many tasks of this scope (children included) are running, by name.
    pub fn running(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.0.running).clone()
    }

    /// Every scope from this one up to the root.
    fn chain(&self) -> impl Iterator<Item = &Background> {
        std::iter::successors(Some(self), |b| b.0.parent.as_ref())
    }
}

/// `fut`, releasing `held` once it is done. A combinator, not `async move { fut.await;
/// drop(held) }`: an async block keeps the future it captured and, once it awaits it, a second
/// copy, so every task took twice its future's size (a WebSocket client 3.9 KB instead of 2).
fn holding<Fut: Future<Output = ()>>(fut: Fut, held: Held) -> impl Future<Output = ()> {
    fut.map(move |()| drop(held))
}

/// A task's place in the scopes above its own (their trackers and name counts); released
/// when the task ends however it ends (returned, panicked or dropped with the runtime).
struct Held {
    name: &'static str,
    scopes: Vec<(Background, Option<TaskTrackerToken>)>,
}

impl Held {
    fn new(scope: &Background, name: &'static str) -> Held {
        let scopes = scope
            .chain()
            .enumerate()
            .map(|(depth, s)| {
                *lock(&s.0.running).entry(name).or_default() += 1;
                // The scope's own tracker already counts the task it spawns.
                let token = (depth > 0).then(|| s.0.tracker.token());
                (s.clone(), token)
            })
            .collect();
        Held { name, scopes }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for (scope, _) in &self.scopes {
            let mut running = lock(&scope.0.running);
            if let Some(n) = running.get_mut(self.name) {
                *n -= 1;
                if *n == 0 {
                    running.remove(self.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_the_size_of_its_future_not_twice() {
        let tasks = Background::new();
        let fut = async {
            let buf = [7u8; 4096];
            tokio::task::yield_now().await;
            assert_eq!(std::hint::black_box(buf)[4095], 7);
        };
        let alone = std::mem::size_of_val(&fut);
        assert!(alone >= 4096);
        let held = Held::new(&tasks, "sized");
        let wrapped = holding(fut, held).instrument(tracing::info_span!("task"));
        assert!(
            std::mem::size_of_val(&wrapped) < alone + 128,
            "{} for a future of {alone}",
            std::mem::size_of_val(&wrapped)
        );
    }

    #[tokio::test]
    async fn shutdown_cancels_and_waits_for_every_task() {
        let tasks = Background::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..3 {
            let tx = tx.clone();
            tasks.spawn("worker", move |stop| async move {
                stop.cancelled().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(());
            });
        }
        drop(tx);
        assert_eq!(tasks.running().get("worker"), Some(&3));
        assert!(tasks.shutdown(Duration::from_secs(5)).await);
        let mut ended = 0;
        while rx.recv().await.is_some() {
            ended += 1;
        }
        assert_eq!(
            ended, 3,
            "every task finished its cleanup before shutdown returned"
        );
        assert!(tasks.running().is_empty());
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_token_bounds_the_wait() {
        let tasks = Background::new();
        tasks.spawn("stubborn", |_stop| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let started = tokio::time::Instant::now();
        assert!(!tasks.shutdown(Duration::from_millis(100)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(tasks.running().get("stubborn"), Some(&1));
    }

    #[tokio::test]
    async fn a_child_stops_alone_or_with_its_parent() {
        let root = Background::new();
        let child = root.child();
        let sibling = root.child();
        for scope in [&child, &sibling] {
            scope.spawn("feed", |stop| async move { stop.cancelled().await });
        }
        assert_eq!(root.running().get("feed"), Some(&2));
        assert!(child.shutdown(Duration::from_secs(5)).await);
        assert!(!root.is_cancelled() && !sibling.is_cancelled());
        assert_eq!(root.running().get("feed"), Some(&1));
        // The parent's shutdown reaches the sibling and waits for it.
        assert!(root.shutdown(Duration::from_secs(5)).await);
        assert!(sibling.is_cancelled());
        assert!(root.running().is_empty());
    }

    #[tokio::test]
    async fn a_panicking_task_is_released() {
        let tasks = Background::new();
        let handle = tasks.spawn("faulty", |_| async { panic!("boom") });
        assert!(handle.await.is_err());
        assert!(tasks.running().is_empty());
        assert!(tasks.shutdown(Duration::from_secs(1)).await);
    }
}
