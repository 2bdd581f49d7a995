//! Pools of threads of their own for work that must not crowd the blocking pool (searches,
//! page and card renders): a fixed number of threads, a bounded queue in front of them, and a
//! cancellation that reaches the work when its request ends early (answered 408 by the request
//! timeout, or its client gone). Beyond the queue work is refused at once
//! ([`Refused::Busy`]: the edge answers 503 with `Retry-After`).
//!
//! Few threads also bound memory: every thread that allocates keeps an allocator heap of its
//! own, and the blocking pool grows to a thread per task waiting on it. A pool's threads start
//! with work and end after [`IDLE_EXIT`] without any: a parked thread would keep its stack and
//! its heap's pages (among them memory other threads freed into it, which the allocator takes
//! back only when the owner allocates again) for the life of the process.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A pool thread that had no job for this long ends; the next job starts one again.
pub const IDLE_EXIT: Duration = Duration::from_secs(2);

/// How many jobs run at once, how many may wait, and how long one may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub workers: usize,
    pub queue: usize,
    pub budget: Duration,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            workers: cores(),
            queue: 32,
            budget: Duration::from_secs(3),
        }
    }
}

/// The machine's cores (2 when it cannot be told).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Why the pool did not run a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("every worker is busy and the queue is full")]
    Busy,
    #[error("the workers could not be started")]
    NoWorkers,
    #[error("the work failed (a bug; see the log)")]
    Failed,
}

/// What the pool has done, for `/health` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    pub workers: usize,
    /// Threads alive now: up to `workers` (for a moment more, while one leaves), none after a
    /// while without work.
    pub threads: usize,
    pub queue: usize,
    /// Running now.
    pub running: usize,
    /// Accepted, not started yet.
    pub waiting: usize,
    /// Refused because the queue was full.
    pub refused: u64,
    /// Given up by their request (answered 408, or the client went away) before they ended.
    pub abandoned: u64,
    /// Given up by their request before they started: never run.
    pub dropped: u64,
    /// Given up by their request while running, and stopped.
    pub cancelled: u64,
}

/// Why a job stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It ran longer than its budget.
    OutOfTime,
    /// Nobody waits for it any more.
    Cancelled,
}

/// The deadline and the cancellation of one job; clones share the cancellation. Work that
/// can stop early asks it as it goes.
#[derive(Debug, Clone)]
pub struct Budget {
    deadline: Instant,
    cancelled: Arc<AtomicBool>,
}

impl Budget {
    /// `time` from now, cancelled through `cancelled`.
    pub fn new(time: Duration, cancelled: Arc<AtomicBool>) -> Budget {
        let now = Instant::now();
        Budget {
            deadline: now
                .checked_add(time)
                .unwrap_or(now + Duration::from_secs(3600)),
            cancelled,
        }
    }

    /// `time` from now, with a cancellation of its own.
    pub fn of(time: Duration) -> Budget {
        Budget::new(time, Arc::default())
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// `Err` once the job should stop.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.is_cancelled() {
            Err(Stopped::Cancelled)
        } else if Instant::now() >= self.deadline {
            Err(Stopped::OutOfTime)
        } else {
            Ok(())
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A pool; cheap to clone. Its threads (named `<name>-<n>`) start with work, end after
/// [`IDLE_EXIT`] without any, and end when the last clone is dropped.
#[derive(Clone)]
pub struct Pool(Arc<Inner>);

struct Inner {
    name: &'static str,
    settings: PoolSettings,
    idle_exit: Duration,
    jobs: SyncSender<Job>,
    next: Arc<Mutex<Receiver<Job>>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    /// Threads alive (started and not yet ended).
    threads: AtomicUsize,
    /// Searches taken in and not yet finished: running or waiting (at most workers + queue).
    admitted: AtomicUsize,
    running: AtomicUsize,
    waiting: AtomicUsize,
    refused: AtomicU64,
    abandoned: AtomicU64,
    dropped: AtomicU64,
    cancelled: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pool").field(&self.stats()).finish()
    }
}

/// Cancels the job when the request waiting for it is dropped before its answer.
struct CancelOnDrop {
    budget: Budget,
    counts: Arc<Counts>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.budget.cancel();
            self.counts.abandoned.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Pool {
    pub fn new(name: &'static str, settings: PoolSettings) -> Pool {
        Pool::with_idle_exit(name, settings, IDLE_EXIT)
    }

    /// [`Pool::new`] whose threads end after `idle_exit` without work.
    pub fn with_idle_exit(name: &'static str, settings: PoolSettings, idle_exit: Duration) -> Pool {
        let settings = PoolSettings {
            workers: settings.workers.max(1),
            ..settings
        };
        // Admission is counted (`Counts::admitted`), not left to the channel: a rendezvous
        // channel would refuse a job whenever a free worker is not parked in `recv` at that
        // instant (starting, or between two jobs). With room for every admitted job, a send
        // never waits.
        let (jobs, next) = sync_channel(settings.workers + settings.queue);
        Pool(Arc::new(Inner {
            name,
            settings,
            idle_exit,
            jobs,
            next: Arc::new(Mutex::new(next)),
            counts: Arc::default(),
        }))
    }

    pub fn settings(&self) -> PoolSettings {
        self.0.settings
    }

    pub fn stats(&self) -> PoolStats {
        let c = &self.0.counts;
        PoolStats {
            workers: self.0.settings.workers,
            threads: c.threads.load(Ordering::Acquire),
            queue: self.0.settings.queue,
            running: c.running.load(Ordering::Acquire),
            waiting: c.waiting.load(Ordering::Acquire),
            refused: c.refused.load(Ordering::Acquire),
            abandoned: c.abandoned.load(Ordering::Acquire),
            dropped: c.dropped.load(Ordering::Acquire),
            cancelled: c.cancelled.load(Ordering::Acquire),
        }
    }

    /// Runs `work` on a pool thread with a budget of the pool's time, cancelled if this future
    /// is dropped first (before `work` starts, `work` never runs).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Budget) -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop {
            budget: Budget::new(Duration::ZERO, Arc::clone(&cancelled)),
            counts: Arc::clone(&self.0.counts),
            armed: true,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let counts = Arc::clone(&self.0.counts);
        let time = self.0.settings.budget;
        let name = self.0.name;
        let job: Job = Box::new(move || {
            counts.waiting.fetch_sub(1, Ordering::AcqRel);
            // Out of the pool before the answer is sent or the running count falls: whoever
            // sees either may submit again at once.
            let leaves = Leaves(&counts.admitted);
            if cancelled.load(Ordering::Acquire) {
                counts.dropped.fetch_add(1, Ordering::AcqRel);
                return;
            }
            let budget = Budget::new(time, cancelled);
            counts.running.fetch_add(1, Ordering::AcqRel);
            let out = catch_unwind(AssertUnwindSafe(|| work(&budget)));
            drop(leaves);
            counts.running.fetch_sub(1, Ordering::AcqRel);
            if budget.is_cancelled() {
                counts.cancelled.fetch_add(1, Ordering::AcqRel);
            }
            match out {
                Ok(out) => {
                    let _ = tx.send(out);
                }
                Err(_) => tracing::error!(pool = name, "a job panicked"),
            }
        });
        let capacity = self.0.settings.workers + self.0.settings.queue;
        let admitted = self
            .0
            .counts
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.0.counts.waiting.fetch_add(1, Ordering::AcqRel);
        }
        let sent = admitted
            && match self.0.jobs.try_send(job) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.0.counts.waiting.fetch_sub(1, Ordering::AcqRel);
                    self.0.counts.admitted.fetch_sub(1, Ordering::AcqRel);
                    false
                }
            };
        if !sent {
            guard.armed = false;
            self.0.counts.refused.fetch_add(1, Ordering::AcqRel);
            return Err(Refused::Busy);
        }
        // After the send: a thread that ends from now on finds this job first (see `work`).
        if !self.staffed() {
            guard.armed = false;
            return Err(Refused::NoWorkers);
        }
        let out = rx.await.map_err(|_| Refused::Failed);
        guard.armed = false;
        out
    }

    /// Starts one more thread while fewer than the pool's workers are alive; false when none
    /// is alive and none could be started (the jobs waiting are then dropped: their callers
    /// get [`Refused::Failed`], not a wait without end).
    fn staffed(&self) -> bool {
        let counts = &self.0.counts;
        let Ok(n) = counts
            .threads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.0.settings.workers).then_some(n + 1)
            })
        else {
            return true;
        };
        let next = Arc::clone(&self.0.next);
        let threads = Arc::clone(counts);
        let idle_exit = self.0.idle_exit;
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", self.0.name))
            .spawn(move || work(&next, &threads.threads, idle_exit));
        if let Err(e) = spawned {
            tracing::error!(error = %e, pool = self.0.name, "cannot start a thread");
            if counts.threads.fetch_sub(1, Ordering::SeqCst) == 1 {
                // Dropped unrun: they leave the pool's counts here, not when they end.
                let waiting = crate::lock::lock(&self.0.next);
                while waiting.try_recv().is_ok() {
                    counts.waiting.fetch_sub(1, Ordering::AcqRel);
                    counts.admitted.fetch_sub(1, Ordering::AcqRel);
                }
                return false;
            }
        }
        true
    }
}

/// Counts a job out of the pool when it ends, however it ends.
struct Leaves<'a>(&'a AtomicUsize);

impl Drop for Leaves<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A worker: takes jobs until the pool is gone or none came for `idle_exit`.
fn work(next: &Mutex<Receiver<Job>>, threads: &AtomicUsize, idle_exit: Duration) {
    loop {
        let job = crate::lock::lock(next).recv_timeout(idle_exit);
        match job {
            Ok(job) => job(),
            Err(RecvTimeoutError::Timeout) => {
                threads.fetch_sub(1, Ordering::SeqCst);
                // A job sent before the count fell may have been left to this thread by a
                // caller that still counted it: take it before leaving. One sent after is
                // the caller's to staff.
                let late = crate::lock::lock(next).try_recv();
                match late {
                    Ok(job) => {
                        threads.fetch_add(1, Ordering::SeqCst);
                        job();
                    }
                    Err(_) => return,
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                threads.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn pool(workers: usize, queue: usize) -> Pool {
        Pool::new(
            "test",
            PoolSettings {
                workers,
                queue,
                budget: Duration::from_secs(60),
            },
        )
    }

    /// A job that holds its worker until `release` is sent; reports it started.
    fn hold(
        pool: &Pool,
    ) -> (
        tokio::task::JoinHandle<Result<(), Refused>>,
        mpsc::Sender<()>,
        mpsc::Receiver<()>,
    ) {
        let (release, held) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let p = pool.clone();
        let task = tokio::spawn(async move {
            p.run(move |_| {
                let _ = started_tx.send(());
                let _ = held.recv();
            })
            .await
        });
        (task, release, started)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_a_job_is_refused_at_once() {
        let pool = pool(1, 1);
        let (first, release, started) = hold(&pool);
        started
            .recv_timeout(Duration::from_secs(10))
            .expect("the first job runs");
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(|_| 7).await });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.stats().waiting < 1 {
            assert!(std::time::Instant::now() < deadline, "{:?}", pool.stats());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.run(|_| 8).await, Err(Refused::Busy));
        assert_eq!(pool.stats().refused, 1);
        release.send(()).expect("release");
        assert_eq!(first.await.expect("join"), Ok(()));
        assert_eq!(queued.await.expect("join"), Ok(7));
        assert_eq!(pool.run(|_| 9).await, Ok(9), "free again");
    }

    /// A free worker always takes a job, even without a queue: not only when it happens
    /// to be parked in `recv` (it may be starting, or between two jobs).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_free_worker_takes_a_job_without_a_queue() {
        let pool = pool(1, 0);
        for n in 0..500 {
            assert_eq!(pool.run(move |_| n).await, Ok(n), "{:?}", pool.stats());
        }
        assert_eq!(pool.stats().refused, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_given_up_before_it_starts_never_runs() {
        let pool = pool(1, 4);
        let (first, release, started) = hold(&pool);
        started
            .recv_timeout(Duration::from_secs(10))
            .expect("the first job runs");
        let ran = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let gave_up = tokio::time::timeout(
            Duration::from_millis(50),
            pool.run(move |_| r.store(true, Ordering::Release)),
        )
        .await;
        assert!(gave_up.is_err(), "still queued");
        release.send(()).expect("release");
        first.await.expect("join").expect("ran");
        assert_eq!(pool.run(|_| ()).await, Ok(()));
        assert!(!ran.load(Ordering::Acquire));
        assert_eq!(pool.stats().dropped, 1);
        assert_eq!(pool.stats().abandoned, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_job_whose_request_is_dropped_is_cancelled() {
        let pool = pool(1, 1);
        let (stopped_tx, stopped) = mpsc::channel();
        let running = pool.run(move |budget: &Budget| {
            let begun = std::time::Instant::now();
            while budget.check().is_ok() && begun.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = stopped_tx.send(budget.check());
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), running)
                .await
                .is_err()
        );
        let why = stopped
            .recv_timeout(Duration::from_secs(10))
            .expect("the job stopped");
        assert_eq!(why, Err(Stopped::Cancelled));
        assert_eq!(pool.run(|_| 1).await, Ok(1), "the worker is free");
        assert_eq!(pool.stats().cancelled, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn threads_end_when_idle_and_start_again_with_work() {
        let settings = PoolSettings {
            workers: 2,
            queue: 4,
            budget: Duration::from_secs(60),
        };
        let pool = Pool::with_idle_exit("idle", settings, Duration::from_millis(50));
        assert_eq!(pool.stats().threads, 0, "no thread before any work");
        let jobs: Vec<_> = (0..6)
            .map(|n| {
                let p = pool.clone();
                tokio::spawn(async move { p.run(move |_| n * 2).await })
            })
            .collect();
        for (n, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.await.expect("join"), Ok(n * 2));
        }
        // Two, and for a moment up to twice that: a thread leaving takes a job sent as it
        // left, while the job's caller starts another.
        assert!(pool.stats().threads <= 4, "{:?}", pool.stats());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.stats().threads > 0 {
            assert!(std::time::Instant::now() < deadline, "{:?}", pool.stats());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Work after the threads ended starts them again, whenever it comes.
        for n in 0..200 {
            assert_eq!(pool.run(move |_| n).await, Ok(n), "{:?}", pool.stats());
            if n % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(40 + n as u64 / 5)).await;
            }
        }
        assert_eq!(pool.stats().refused, 0);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let pool = pool(1, 1);
        let failed = pool.run(|_| -> u8 { panic!("boom") }).await;
        assert_eq!(failed, Err(Refused::Failed));
        assert_eq!(pool.run(|_| 2).await, Ok(2));
    }
}
