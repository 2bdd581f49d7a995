//! The second cache tier of one instance: a redb file of its own beside the store
//! (`store::PageCacheFile`), bounded by `--l2-cache-mb`. It survives restarts, so a restarted
//! server serves what it had rendered without rendering it again; it never grows the reports'
//! file or its backups.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::l2::{Counters, Invalidation, L2, L2Error, L2Future, L2Stats};
use crate::store::{PageCacheFile, StoreError};

pub struct RedbTier {
    file: Arc<PageCacheFile>,
    counters: Counters,
}

impl RedbTier {
    /// The tier in `dir`, holding at most `budget` bytes; [`Off`] when the budget is zero or
    /// the file cannot be opened (pages are then rendered, or served from memory).
    pub fn open(dir: &Path, budget: u64) -> Arc<dyn L2> {
        if budget == 0 {
            return Arc::new(Off::default());
        }
        match PageCacheFile::open(dir, budget) {
            Ok(file) => Arc::new(RedbTier {
                file: Arc::new(file),
                counters: Counters::default(),
            }),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "the page cache file cannot be opened; the second cache tier is off");
                Arc::new(Off::default())
            }
        }
    }
}

fn failed(e: StoreError) -> L2Error {
    L2Error::Failed(e.to_string())
}

impl L2 for RedbTier {
    fn name(&self) -> &'static str {
        "redb"
    }

    fn get<'a>(&'a self, key: &'a str) -> L2Future<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let owned = key.to_owned();
            let now = Utc::now().timestamp_millis();
            let found = self.file.call(move |f| f.get(&owned, now)).await;
            match found {
                Ok(found) => Ok(self.counters.looked_up(found)),
                Err(e) => {
                    Counters::bump(&self.counters.errors);
                    Err(failed(e))
                }
            }
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &'a [String],
    ) -> L2Future<'a, ()> {
        Box::pin(async move {
            if !self.counters.admits(value.len()) {
                return Ok(());
            }
            let (key, tags) = (key.to_owned(), tags.to_vec());
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            let expires = Utc::now().timestamp_millis().saturating_add(ttl_ms);
            let stored = self
                .file
                .call(move |f| f.put(&key, &value, expires, &tags))
                .await;
            match stored {
                Ok(true) => {
                    Counters::bump(&self.counters.puts);
                    Ok(())
                }
                Ok(false) => {
                    Counters::bump(&self.counters.skipped);
                    Ok(())
                }
                Err(e) => {
                    Counters::bump(&self.counters.errors);
                    Err(failed(e))
                }
            }
        })
    }

    fn invalidate<'a>(&'a self, what: &'a Invalidation) -> L2Future<'a, u64> {
        Box::pin(async move {
            let what = what.clone();
            self.file
                .call(move |f| match &what {
                    Invalidation::Tags(tags) => f.remove_tagged(tags),
                    Invalidation::All => f.clear(),
                })
                .await
                .map_err(failed)
        })
    }

    fn stats(&self) -> L2Stats {
        let mut stats = self.counters.stats("redb", "ok".into());
        stats.usage = Some(self.file.usage());
        stats
    }

    fn purge_expired(&self) -> L2Future<'_, u64> {
        Box::pin(async move {
            let now = Utc::now().timestamp_millis();
            self.file
                .call(move |f| f.purge_expired(now))
                .await
                .map_err(failed)
        })
    }

    fn flush(&self) -> L2Future<'_, ()> {
        Box::pin(async move { self.file.call(|f| f.sync()).await.map_err(failed) })
    }
}

/// No second tier (`--l2-cache-mb 0`, or its file could not be opened).
#[derive(Default)]
pub struct Off {
    counters: Counters,
}

impl L2 for Off {
    fn name(&self) -> &'static str {
        "off"
    }

    fn get<'a>(&'a self, _key: &'a str) -> L2Future<'a, Option<Vec<u8>>> {
        Box::pin(async move { Ok(self.counters.looked_up(None)) })
    }

    fn put<'a>(
        &'a self,
        _key: &'a str,
        _value: Vec<u8>,
        _ttl: Duration,
        _tags: &'a [String],
    ) -> L2Future<'a, ()> {
        Counters::bump(&self.counters.skipped);
        Box::pin(async { Ok(()) })
    }

    fn invalidate<'a>(&'a self, _what: &'a Invalidation) -> L2Future<'a, u64> {
        Box::pin(async { Ok(0) })
    }

    fn stats(&self) -> L2Stats {
        self.counters.stats("off", "off".into())
    }
}
