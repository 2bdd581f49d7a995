//! The second cache tier as one small interface: values are bytes (postcard, encoded by the
//! caller) with a time to live and tags, and invalidation is data that can cross a process
//! boundary. The store (redb) implements it for one instance, Redis for several.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Generic lifetimes of cached data (the product's cache strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// 5 minutes.
    ShortTerm,
    /// 1 hour: lists and feeds, which change when a report is published.
    MediumTerm,
    /// 3 hours: what is addressed by content and cannot go stale, only unused.
    LongTerm,
}

impl Strategy {
    pub fn ttl(self) -> Duration {
        match self {
            Strategy::ShortTerm => Duration::from_secs(5 * 60),
            Strategy::MediumTerm => Duration::from_secs(60 * 60),
            Strategy::LongTerm => Duration::from_secs(3 * 60 * 60),
        }
    }
}

/// What to drop from a cache: plain data, so one instance can tell the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Invalidation {
    /// Every entry carrying one of these tags (`report:7`, `listing`).
    Tags(Vec<String>),
    All,
}

#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error("the second cache tier did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the second cache tier is unavailable: {0}")]
    Unavailable(String),
    #[error("second cache tier: {0}")]
    Failed(String),
}

pub type L2Future<'a, T> = Pin<Box<dyn Future<Output = Result<T, L2Error>> + Send + 'a>>;

/// A second cache tier.
pub trait L2: Send + Sync {
    /// `redb` or `redis`, for health and metrics.
    fn name(&self) -> &'static str;
    /// The value under `key`, if present and not expired.
    fn get<'a>(&'a self, key: &'a str) -> L2Future<'a, Option<Vec<u8>>>;
    /// Stores `value` under `key` for `ttl`; values over the tier's size cap are not stored.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &'a [String],
    ) -> L2Future<'a, ()>;
    /// Drops what `what` names; returns how many entries went (when the tier can tell).
    fn invalidate<'a>(&'a self, what: &'a Invalidation) -> L2Future<'a, u64>;
    fn stats(&self) -> L2Stats;
    /// Drops expired entries where the tier does not do it by itself; returns how many.
    fn purge_expired(&self) -> L2Future<'_, u64> {
        Box::pin(async { Ok(0) })
    }
    /// Makes what the tier holds survive a restart, where it does not by itself (shutdown).
    fn flush(&self) -> L2Future<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// How often [`L2::purge_expired`] runs.
pub const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Counters of a tier, with its state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct L2Stats {
    pub tier: &'static str,
    pub hits: u64,
    pub misses: u64,
    pub puts: u64,
    /// Values not stored: over the size cap, or the tier was full.
    pub skipped: u64,
    /// Calls that failed or timed out (each counted as a miss by the caller).
    pub errors: u64,
    /// `ok`, or why the tier is being skipped (degraded, not down: pages keep working).
    pub state: String,
    /// Bytes held against the tier's budget, where it keeps one (the redb file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::store::PageCacheUsage>,
}

/// The counters every tier keeps.
#[derive(Debug, Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub puts: AtomicU64,
    pub skipped: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a read as a hit or a miss, and hands its result on.
    pub fn looked_up<T>(&self, found: Option<T>) -> Option<T> {
        Counters::bump(match found {
            Some(_) => &self.hits,
            None => &self.misses,
        });
        found
    }

    /// Whether a value of `len` bytes may be stored (at most [`MAX_VALUE_BYTES`]); one that
    /// may not is counted as skipped.
    pub fn admits(&self, len: usize) -> bool {
        let admitted = len <= MAX_VALUE_BYTES;
        if !admitted {
            Counters::bump(&self.skipped);
        }
        admitted
    }

    pub fn stats(&self, tier: &'static str, state: String) -> L2Stats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        L2Stats {
            tier,
            hits: load(&self.hits),
            misses: load(&self.misses),
            puts: load(&self.puts),
            skipped: load(&self.skipped),
            errors: load(&self.errors),
            state,
            usage: None,
        }
    }
}

/// The largest value a tier stores (a rendered report page with its two compressed bodies is
/// well under a megabyte).
pub const MAX_VALUE_BYTES: usize = 4 << 20;
