//! The second cache tier in the instance's own store (a redb table): survives restarts, so a
//! restarted server serves what it had rendered without rendering it again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::l2::{Counters, Invalidation, L2, L2Error, L2Future, L2Stats};
use crate::store::Store;

pub struct RedbTier {
    store: Arc<Store>,
    counters: Counters,
}

impl RedbTier {
    pub fn new(store: Arc<Store>) -> RedbTier {
        RedbTier {
            store,
            counters: Counters::default(),
        }
    }
}

fn failed(e: crate::store::StoreError) -> L2Error {
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
            let found = self.store.call(move |s| s.cache_get(&owned, now)).await;
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
                .store
                .call(move |s| s.cache_put(&key, &value, expires, &tags))
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
            self.store
                .call(move |s| match &what {
                    Invalidation::Keys(keys) => s.cache_remove(Some(keys)),
                    Invalidation::Tags(tags) => s.cache_remove_tagged(tags),
                    Invalidation::All => s.cache_remove(None),
                })
                .await
                .map_err(failed)
        })
    }

    fn stats(&self) -> L2Stats {
        self.counters.stats("redb", "ok".into())
    }

    fn purge_expired(&self) -> L2Future<'_, u64> {
        Box::pin(async move {
            let now = Utc::now().timestamp_millis();
            self.store
                .call(move |s| s.cache_purge_expired(now))
                .await
                .map_err(failed)
        })
    }
}
