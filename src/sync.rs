//! Keeping the store in step with the generator's PostgreSQL while serving: one import pass
//! at start, then on a schedule and on demand (`POST /admin/sync`), each through the one
//! publish path. A failing source never touches serving: the pass fails, is recorded for
//! `/health`, and the next one tries again.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::import::ImportSummary;
use crate::import::postgres::Source;
use crate::lock::lock;
use crate::reports::Publisher;

/// Most skipped rows remembered as already logged (8 bytes each).
const LOGGED_SKIPS: usize = 100_000;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassSummary {
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub duration_ms: u64,
}

impl PassSummary {
    fn of(summary: &ImportSummary, took: Duration) -> PassSummary {
        PassSummary {
            new: summary.new,
            updated: summary.updated,
            unchanged: summary.unchanged,
            skipped: summary.skipped.total(),
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncError {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// The sync's state, for `/health` and the admin endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `host:port/database` (never the password).
    pub source: String,
    pub every_seconds: u64,
    pub running: bool,
    pub passes: u64,
    /// Passes that failed, in all.
    pub failures: u64,
    pub failures_in_a_row: u64,
    /// Reports the sync wrote since the start, new and updated.
    pub written_new: u64,
    pub written_updated: u64,
    /// When the last successful pass started: the store holds everything the source held
    /// then.
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<SyncError>,
    pub last_pass: Option<PassSummary>,
    /// Seconds since `last_success_at`: how far behind the source the site may be.
    pub lag_seconds: Option<i64>,
}

/// The end of one pass, numbered by the requests it answers.
#[derive(Debug, Clone, Default)]
struct Completed {
    generation: u64,
    result: Option<Result<PassSummary, String>>,
}

struct Inner {
    source: Source,
    publisher: Publisher,
    every: Duration,
    status: Mutex<Status>,
    /// Requests for a pass so far; a pass answers every request made before it started.
    requested: AtomicU64,
    wake: Notify,
    completed: watch::Sender<Completed>,
    /// Skipped rows already logged (a hash of id and reason), so a bad row is named once, not
    /// every pass; at most [`LOGGED_SKIPS`] remembered.
    logged: Mutex<HashSet<u64>>,
}

/// Handle to the sync; cheap to clone.
#[derive(Clone)]
pub struct Sync {
    inner: Arc<Inner>,
}

impl Sync {
    pub fn new(source: Source, publisher: Publisher, every: Duration) -> Sync {
        let status = Status {
            source: source.at().to_owned(),
            every_seconds: every.as_secs(),
            running: false,
            passes: 0,
            failures: 0,
            failures_in_a_row: 0,
            written_new: 0,
            written_updated: 0,
            last_success_at: None,
            last_error: None,
            last_pass: None,
            lag_seconds: None,
        };
        Sync {
            inner: Arc::new(Inner {
                source,
                publisher,
                every,
                status: Mutex::new(status),
                requested: AtomicU64::new(0),
                wake: Notify::new(),
                completed: watch::channel(Completed::default()).0,
                logged: Mutex::new(HashSet::new()),
            }),
        }
    }

    pub fn status(&self) -> Status {
        let mut status = lock(&self.inner.status).clone();
        status.lag_seconds = status
            .last_success_at
            .map(|at| (Utc::now() - at).num_seconds().max(0));
        status
    }

    /// Runs a pass now (or right after the one under way) and waits for its outcome.
    pub async fn sync_now(&self) -> Result<PassSummary, String> {
        let mut completed = self.inner.completed.subscribe();
        let want = self.inner.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.wake.notify_one();
        let done = completed
            .wait_for(|c| c.generation >= want)
            .await
            .map_err(|_| "the sync has stopped".to_owned())?;
        done.result
            .clone()
            .unwrap_or_else(|| Err("the sync has stopped".into()))
    }

    /// The sync loop: a pass at once, then one every interval or on request, until `stop`.
    /// A pass cut short by `stop` leaves the store as of its last committed batch.
    pub async fn run(self, stop: CancellationToken) {
        let inner = &self.inner;
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    () = tokio::time::sleep(inner.every) => {}
                    () = inner.wake.notified() => {}
                    () = stop.cancelled() => break,
                }
            }
            first = false;
            let generation = inner.requested.load(Ordering::SeqCst);
            lock(&inner.status).running = true;
            let started = Utc::now();
            let result = tokio::select! {
                r = self.pass() => r,
                () = stop.cancelled() => break,
            };
            self.record(started, &result);
            inner.completed.send_replace(Completed {
                generation,
                result: Some(result),
            });
        }
        lock(&inner.status).running = false;
        // Whoever still waits hears that no pass will come.
        inner.completed.send_replace(Completed {
            generation: u64::MAX,
            result: Some(Err("the server is shutting down".into())),
        });
    }

    async fn pass(&self) -> Result<PassSummary, String> {
        let inner = &self.inner;
        let clock = Instant::now();
        let mut summary = ImportSummary::default();
        let result = match inner.source.connect().await {
            Ok(conn) => conn
                .import(&inner.publisher, &mut summary, &mut |_| {})
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let pass = PassSummary::of(&summary, clock.elapsed());
        self.log_skipped(&summary);
        if result.is_ok() {
            // The archive is in: what the next passes bring is new and gets announced.
            inner.publisher.announcements().arm();
        }
        match &result {
            Ok(()) if pass.new + pass.updated > 0 => {
                tracing::info!(
                    new = pass.new,
                    updated = pass.updated,
                    unchanged = pass.unchanged,
                    skipped = pass.skipped,
                    ms = pass.duration_ms,
                    "sync pass imported reports"
                );
            }
            Ok(()) => {
                tracing::debug!(
                    unchanged = pass.unchanged,
                    skipped = pass.skipped,
                    ms = pass.duration_ms,
                    "sync pass: nothing new"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, new = pass.new, updated = pass.updated, "sync pass failed; the site keeps serving what it has");
            }
        }
        result.map(|()| pass)
    }

    fn log_skipped(&self, summary: &ImportSummary) {
        let mut logged = lock(&self.inner.logged);
        for s in summary.skipped.named() {
            // Bounded: past that many rows, the ones seen before may be named again.
            if logged.len() >= LOGGED_SKIPS {
                logged.clear();
            }
            let mut hasher = std::hash::DefaultHasher::new();
            (s.id, &s.reason).hash(&mut hasher);
            if logged.insert(hasher.finish()) {
                tracing::warn!("sync: {s}");
            }
        }
    }

    fn record(&self, started: DateTime<Utc>, result: &Result<PassSummary, String>) {
        let mut status = lock(&self.inner.status);
        status.running = false;
        status.passes += 1;
        match result {
            Ok(pass) => {
                status.last_success_at = Some(started);
                status.written_new += pass.new;
                status.written_updated += pass.updated;
                status.last_pass = Some(pass.clone());
                status.failures_in_a_row = 0;
            }
            Err(message) => {
                status.failures += 1;
                status.failures_in_a_row += 1;
                status.last_error = Some(SyncError {
                    at: Utc::now(),
                    message: message.clone(),
                });
            }
        }
    }
}
