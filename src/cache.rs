//! In-memory page cache (L1): rendered responses with their compressed variants, bounded by
//! bytes, one render per key under concurrent misses, invalidated by the reports they show.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use serde::Serialize;

use crate::encoded::Encoded;
use crate::reports::publish::{Published, Subscriber};

/// What a cached page was built from, so a change invalidates exactly the pages it affects.
#[derive(Debug, Clone, Default)]
pub struct Deps {
    /// Reports whose content or position the page shows.
    pub reports: Vec<u64>,
    /// The page lists reports (home, list pages, feeds, the latest report), so any new or
    /// changed report affects it.
    pub listing: bool,
}

impl Deps {
    pub fn listing() -> Deps {
        Deps {
            reports: Vec::new(),
            listing: true,
        }
    }

    pub fn reports(ids: Vec<u64>) -> Deps {
        Deps {
            reports: ids,
            listing: false,
        }
    }
}

#[derive(Debug)]
pub struct CachedPage {
    pub body: Encoded,
    pub deps: Deps,
    /// The invalidation epoch when its render started.
    epoch: u64,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct CacheStats {
    pub entries: u64,
    pub weighted_bytes: u64,
    pub capacity_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub renders: u64,
    /// Misses that waited for another request's render instead of rendering.
    pub coalesced: u64,
    pub invalidations: u64,
}

pub struct PageCache {
    pages: Cache<String, Arc<CachedPage>>,
    capacity_bytes: u64,
    /// Bumped by every invalidation; a render that straddles one is not kept.
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    renders: AtomicU64,
    coalesced: AtomicU64,
    invalidations: AtomicU64,
}

impl PageCache {
    pub fn new(capacity_bytes: u64, ttl: Duration) -> Self {
        let pages = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &String, page: &Arc<CachedPage>| {
                u32::try_from(key.len() + page.body.weight()).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .support_invalidation_closures()
            .build();
        PageCache {
            pages,
            capacity_bytes,
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            renders: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    /// The cached page for `key`, or renders it. Concurrent callers for one missing key wait
    /// for a single render; an error is returned to all of them and nothing is cached.
    pub async fn get_or_render<E, F>(
        &self,
        key: String,
        render: F,
    ) -> Result<Arc<CachedPage>, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<(Encoded, Deps), E>>,
    {
        if let Some(page) = self.pages.get(&key).await {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(page);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let mut rendered_here = false;
        let page = self
            .pages
            .try_get_with_by_ref(&key, async {
                rendered_here = true;
                self.renders.fetch_add(1, Ordering::Relaxed);
                let epoch = self.epoch.load(Ordering::Acquire);
                let (body, deps) = render.await?;
                Ok(Arc::new(CachedPage { body, deps, epoch }))
            })
            .await?;
        if !rendered_here {
            self.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        if page.epoch != self.epoch.load(Ordering::Acquire) {
            // The store changed while this page was rendered from it: serve it this once.
            self.pages.invalidate(&key).await;
        }
        Ok(page)
    }

    /// Drops every page that shows one of the `changed` reports or lists reports.
    pub fn invalidate(&self, changed: &[u64]) {
        if changed.is_empty() {
            return;
        }
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let changed = changed.to_vec();
        let result = self.pages.invalidate_entries_if(move |_, page| {
            page.deps.listing || page.deps.reports.iter().any(|id| changed.contains(id))
        });
        if result.is_err() {
            // Only possible without support_invalidation_closures; fall back to everything.
            self.pages.invalidate_all();
        }
    }

    /// Drops every page whose key starts with `prefix` except `current`: for resources
    /// keyed by version, whose older versions will never be asked for again.
    pub fn drop_older(&self, prefix: &str, current: &str) {
        let (prefix, current) = (prefix.to_owned(), current.to_owned());
        let _ = self
            .pages
            .invalidate_entries_if(move |key, _| key.starts_with(&prefix) && *key != current);
    }

    pub fn clear(&self) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.pages.invalidate_all();
    }

    pub async fn stats(&self) -> CacheStats {
        self.pages.run_pending_tasks().await;
        CacheStats {
            entries: self.pages.entry_count(),
            weighted_bytes: self.pages.weighted_size(),
            capacity_bytes: self.capacity_bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            renders: self.renders.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }

    #[cfg(test)]
    async fn contains(&self, key: &str) -> bool {
        self.pages.run_pending_tasks().await;
        self.pages.contains_key(key)
    }
}

impl Subscriber for PageCache {
    fn published(&self, change: &Published) {
        self.invalidate(&change.affected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoded::Quality;
    use std::sync::atomic::AtomicUsize;

    fn page(text: &str) -> Encoded {
        Encoded::new("text/plain", text.to_owned(), Quality::Fast)
    }

    #[tokio::test]
    async fn concurrent_misses_render_once() {
        let cache = Arc::new(PageCache::new(1 << 20, Duration::from_secs(60)));
        let renders = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let cache = Arc::clone(&cache);
            let renders = Arc::clone(&renders);
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_render("k".into(), async {
                        renders.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>((page("hello"), Deps::default()))
                    })
                    .await
                    .map(|p| p.body.identity().clone())
            }));
        }
        for t in tasks {
            assert_eq!(&t.await.expect("join").expect("render")[..], b"hello");
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        let stats = cache.stats().await;
        assert_eq!(stats.renders, 1);
        assert!(stats.misses > 1);
        assert_eq!(
            stats.coalesced,
            stats.misses - 1,
            "every other miss waited for the one render"
        );
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = PageCache::new(1 << 20, Duration::from_secs(60));
        let failed = cache
            .get_or_render("k".into(), async { Err::<(Encoded, Deps), _>("boom") })
            .await;
        assert!(failed.is_err());
        assert!(!cache.contains("k").await);
    }

    #[tokio::test]
    async fn invalidation_hits_only_affected_pages() {
        let cache = PageCache::new(1 << 20, Duration::from_secs(60));
        let entries = [
            ("report-1", vec![1, 2], false),
            ("report-5", vec![5], false),
            ("list", vec![], true),
        ];
        for (key, reports, listing) in entries {
            cache
                .get_or_render(key.into(), async move {
                    Ok::<_, ()>((page(key), Deps { reports, listing }))
                })
                .await
                .expect("render");
        }
        cache.invalidate(&[2]);
        assert!(!cache.contains("report-1").await);
        assert!(cache.contains("report-5").await);
        assert!(!cache.contains("list").await);
    }
}
