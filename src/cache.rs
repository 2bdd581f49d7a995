//! The page cache in two tiers. L1 is in memory (moka): rendered responses with their
//! compressed variants, bounded by bytes. L2 ([`l2::L2`]: the store's redb table, or Redis for
//! several instances) keeps the same responses as bytes, so that a restarted instance, or
//! another one, serves a page without rendering or compressing it again.
//!
//! A miss in L1 is one load per key however many requests wait for it (a map of loads in
//! flight): L2 first, promoted to L1 on a hit, else one render, kept in both tiers. L1 entries
//! are invalidated by the reports they show; L2 entries are keyed by what the instance's
//! store holds (its content digest), so a page is only ever read back by an instance holding
//! the same reports, and are dropped by tag in the background.

pub mod l2;
pub mod redb_tier;
pub mod redis_tier;

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use moka::future::Cache;
use serde::{Deserialize, Serialize};

use self::l2::{Invalidation, L2, L2Stats, Strategy};
use crate::encoded::{Encoded, EncodedParts};
use crate::reports::publish::{Change, Origin, Subscriber};

/// How long an L2 read may take before the page is rendered instead.
const L2_READ_TIMEOUT: Duration = Duration::from_millis(300);

/// What a cached page was built from, so a change invalidates exactly the pages it affects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The L2 tags of a page with these dependencies.
    fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self.reports.iter().map(|id| report_tag(*id)).collect();
        if self.listing {
            tags.push(LISTING_TAG.into());
        }
        tags
    }
}

const LISTING_TAG: &str = "listing";

fn report_tag(id: u64) -> String {
    format!("report:{id}")
}

/// What invalidates in L2 the pages of a published change.
pub fn invalidation_of(affected: &[u64]) -> Invalidation {
    let mut tags: Vec<String> = affected.iter().map(|id| report_tag(*id)).collect();
    tags.push(LISTING_TAG.into());
    Invalidation::Tags(tags)
}

#[derive(Debug)]
pub struct CachedPage {
    pub body: Encoded,
    pub deps: Deps,
}

/// A page as L2 keeps it: its parts, and a seal over them and the key they are kept under.
#[derive(Serialize, Deserialize)]
struct StoredPage {
    /// postcard [`PageParts`].
    parts: Vec<u8>,
    seal: [u8; 32],
}

/// What a cached page is made of: every encoding of its body, its headers, its dependencies.
#[derive(Serialize, Deserialize)]
struct PageParts<'a> {
    body: EncodedParts<'a>,
    deps: Cow<'a, Deps>,
}

/// The seal of `parts` kept under `key`: an entry moved to another key, or with any part
/// replaced (an encoding, a header), no longer matches it and is not served. It is a check
/// of integrity, not a signature: whoever can write Redis can write a sealed entry.
fn seal(key: &str, parts: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("crypto-report page cache entry v1");
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key.as_bytes());
    hasher.update(parts);
    *hasher.finalize().as_bytes()
}

/// Where a page is kept beyond L1, and for how long.
pub struct Tier {
    /// The L2 key, naming what the page was built from; `None` keeps the page in L1 only.
    pub l2_key: Option<String>,
    pub strategy: Strategy,
    /// Asked after a render: false when what the render read may not belong to `l2_key`
    /// (the store changed meanwhile), and the page is then not shared.
    pub still_valid: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Tier {
    /// Memory only (values keyed by something only this process knows).
    pub fn l1_only() -> Tier {
        Tier {
            l2_key: None,
            strategy: Strategy::ShortTerm,
            still_valid: Box::new(|| true),
        }
    }
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct CacheStats {
    pub entries: u64,
    pub weighted_bytes: u64,
    pub capacity_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub renders: u64,
    /// Misses that waited for another request's load instead of loading.
    pub coalesced: u64,
    pub invalidations: u64,
    /// L1 misses answered by L2.
    pub l2_hits: u64,
    pub l2: L2Stats,
}

/// Counters and the epoch, shared with the loads in flight.
#[derive(Default)]
struct State {
    /// Bumped by every invalidation; a load that straddles one is not kept.
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    renders: AtomicU64,
    coalesced: AtomicU64,
    invalidations: AtomicU64,
    l2_hits: AtomicU64,
}

/// A load in flight: its number (so that it only ever removes its own entry) and its result,
/// shared by every request waiting for it.
type Load<E> = (
    u64,
    Shared<BoxFuture<'static, Result<Arc<CachedPage>, Arc<E>>>>,
);

/// A load that ended without a result: its task panicked or was cancelled (at shutdown).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the page could not be built: {0}")]
pub struct Abandoned(pub String);

/// The two tiers; `E` is the error a render can end with (returned to every waiter).
pub struct PageCache<E> {
    pages: Cache<String, Arc<CachedPage>>,
    l2: Arc<dyn L2>,
    loading: Arc<DashMap<String, Load<E>>>,
    next_load: AtomicU64,
    state: Arc<State>,
    capacity_bytes: u64,
}

impl<E: From<Abandoned> + Send + Sync + 'static> PageCache<E> {
    pub fn new(capacity_bytes: u64, ttl: Duration, l2: Arc<dyn L2>) -> Self {
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
            l2,
            loading: Arc::default(),
            next_load: AtomicU64::new(0),
            state: Arc::default(),
            capacity_bytes,
        }
    }

    pub fn l2(&self) -> &Arc<dyn L2> {
        &self.l2
    }

    /// The cached page for `key`, from L1, else from L2, else rendered. `tier` says where the
    /// page is kept beyond memory; it is only asked on a miss. Concurrent callers for one
    /// missing key share a single load, which runs to its end as a task of its own even if
    /// they all give up; an error is returned to all of them and nothing is cached.
    pub async fn get_or_render<F>(
        &self,
        key: String,
        tier: impl FnOnce() -> Tier,
        render: F,
    ) -> Result<Arc<CachedPage>, Arc<E>>
    where
        F: Future<Output = Result<(Encoded, Deps), E>> + Send + 'static,
    {
        if let Some(page) = self.pages.get(&key).await {
            self.state.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(page);
        }
        self.state.misses.fetch_add(1, Ordering::Relaxed);
        let load = match self.loading.entry(key.clone()) {
            dashmap::Entry::Occupied(e) => {
                self.state.coalesced.fetch_add(1, Ordering::Relaxed);
                e.get().1.clone()
            }
            dashmap::Entry::Vacant(v) => {
                // The epoch first: whatever the tier reads next is at least this recent.
                let epoch = self.state.epoch.load(Ordering::Acquire);
                let id = self.next_load.fetch_add(1, Ordering::Relaxed);
                let task = tokio::spawn(self.load(id, key, epoch, tier(), render));
                let load = async move {
                    task.await
                        .unwrap_or_else(|e| Err(Arc::new(E::from(Abandoned(e.to_string())))))
                }
                .boxed()
                .shared();
                v.insert((id, load.clone()));
                load
            }
        };
        load.await
    }

    /// One load: L2, else the render; keeps the result in memory unless an invalidation came
    /// meanwhile, and in L2 unless the store changed meanwhile. Removes its own entry from the
    /// loads in flight when done.
    fn load<F>(
        &self,
        id: u64,
        key: String,
        epoch: u64,
        tier: Tier,
        render: F,
    ) -> impl Future<Output = Result<Arc<CachedPage>, Arc<E>>> + Send + 'static
    where
        F: Future<Output = Result<(Encoded, Deps), E>> + Send + 'static,
    {
        let pages = self.pages.clone();
        let l2 = Arc::clone(&self.l2);
        let state = Arc::clone(&self.state);
        let loading = Arc::clone(&self.loading);
        async move {
            let current = |state: &State| state.epoch.load(Ordering::Acquire) == epoch;
            // Kept in memory only while no invalidation came since the load began; checked
            // again after the insert, which an invalidation running meanwhile would miss.
            let keep = |page: Arc<CachedPage>| {
                let (pages, state, key) = (pages.clone(), Arc::clone(&state), key.clone());
                async move {
                    if current(&state) {
                        pages.insert(key.clone(), page).await;
                        if !current(&state) {
                            pages.invalidate(&key).await;
                        }
                    }
                }
            };
            let from_l2 = match &tier.l2_key {
                Some(l2_key) => read_l2(&*l2, l2_key).await,
                None => None,
            };
            let result = if let Some(page) = from_l2 {
                state.l2_hits.fetch_add(1, Ordering::Relaxed);
                let page = Arc::new(page);
                // Read under the key of the store as it was: kept only if it still is.
                if (tier.still_valid)() {
                    keep(Arc::clone(&page)).await;
                }
                Ok(page)
            } else {
                state.renders.fetch_add(1, Ordering::Relaxed);
                match render.await {
                    Ok((body, deps)) => {
                        let page = Arc::new(CachedPage { body, deps });
                        keep(Arc::clone(&page)).await;
                        if current(&state)
                            && let Some(l2_key) = tier.l2_key.filter(|_| (tier.still_valid)())
                        {
                            write_l2(l2, l2_key, tier.strategy, Arc::clone(&page));
                        }
                        Ok(page)
                    }
                    Err(e) => Err(Arc::new(e)),
                }
            };
            loading.remove_if(&key, |_, (load, _)| *load == id);
            result
        }
    }

    /// Drops every page that shows one of the `changed` reports or lists reports (L1).
    pub fn invalidate(&self, changed: &[u64]) {
        if changed.is_empty() {
            return;
        }
        self.state.invalidations.fetch_add(1, Ordering::Relaxed);
        self.state.epoch.fetch_add(1, Ordering::AcqRel);
        // Loads under way read the store before this change: later requests start afresh.
        self.loading.clear();
        let changed = changed.to_vec();
        let result = self.pages.invalidate_entries_if(move |_, page| {
            page.deps.listing || page.deps.reports.iter().any(|id| changed.contains(id))
        });
        if result.is_err() {
            // Only possible without support_invalidation_closures; fall back to everything.
            self.pages.invalidate_all();
        }
    }

    /// Drops what `what` names from L2, in the background (a slow tier delays nobody).
    pub fn invalidate_l2(&self, what: Invalidation) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let l2 = Arc::clone(&self.l2);
        runtime.spawn(async move {
            if let Err(e) = l2.invalidate(&what).await {
                tracing::debug!(error = %e, "L2 invalidation failed; its entries expire on their own");
            }
        });
    }

    /// Drops every page whose key starts with `prefix` except `current`: for resources
    /// keyed by version, whose older versions will never be asked for again.
    pub fn drop_older(&self, prefix: &str, current: &str) {
        let (prefix, current) = (prefix.to_owned(), current.to_owned());
        let _ = self
            .pages
            .invalidate_entries_if(move |key, _| key.starts_with(&prefix) && *key != current);
    }

    /// Empties L1 (L2 is emptied with [`PageCache::invalidate_l2`]).
    pub fn clear(&self) {
        self.state.invalidations.fetch_add(1, Ordering::Relaxed);
        self.state.epoch.fetch_add(1, Ordering::AcqRel);
        self.loading.clear();
        self.pages.invalidate_all();
    }

    pub async fn stats(&self) -> CacheStats {
        self.pages.run_pending_tasks().await;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            entries: self.pages.entry_count(),
            weighted_bytes: self.pages.weighted_size(),
            capacity_bytes: self.capacity_bytes,
            hits: load(&self.state.hits),
            misses: load(&self.state.misses),
            renders: load(&self.state.renders),
            coalesced: load(&self.state.coalesced),
            invalidations: load(&self.state.invalidations),
            l2_hits: load(&self.state.l2_hits),
            l2: self.l2.stats(),
        }
    }

    #[cfg(test)]
    async fn contains(&self, key: &str) -> bool {
        self.pages.run_pending_tasks().await;
        self.pages.contains_key(key)
    }
}

/// A page from L2, if it is there and usable; anything else (absent, slow, failing, written
/// by another version, damaged) is a miss.
async fn read_l2(l2: &dyn L2, key: &str) -> Option<CachedPage> {
    let bytes = match tokio::time::timeout(L2_READ_TIMEOUT, l2.get(key)).await {
        Ok(Ok(Some(bytes))) => bytes,
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "L2 read failed; rendering");
            return None;
        }
        Err(_) => {
            tracing::debug!("L2 read timed out; rendering");
            return None;
        }
    };
    let stored: StoredPage = match postcard::from_bytes(&bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(key, error = %e, "unusable L2 entry; rendering");
            return None;
        }
    };
    if seal(key, &stored.parts) != stored.seal {
        tracing::warn!(
            key,
            "an L2 entry does not match its seal (moved to another key, or altered); rendering"
        );
        return None;
    }
    let parts: PageParts = match postcard::from_bytes(&stored.parts) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(key, error = %e, "unusable L2 entry; rendering");
            return None;
        }
    };
    match Encoded::from_parts(parts.body) {
        Ok(body) => Some(CachedPage {
            body,
            deps: parts.deps.into_owned(),
        }),
        Err(e) => {
            tracing::debug!(key, error = %e, "unusable L2 entry; rendering");
            None
        }
    }
}

/// Writes a rendered page to L2 in the background: the requests waiting for it are answered
/// without waiting for its entry to be made.
fn write_l2(l2: Arc<dyn L2>, key: String, strategy: Strategy, page: Arc<CachedPage>) {
    tokio::spawn(async move {
        let Ok(bytes) = entry(&key, &page) else {
            return;
        };
        let tags = page.deps.tags();
        drop(page);
        if let Err(e) = l2.put(&key, bytes, strategy.ttl(), &tags).await {
            tracing::debug!(error = %e, "L2 write failed");
        }
    });
}

/// The L2 entry of `page` under `key`: a [`StoredPage`] of its [`PageParts`], written in one
/// buffer, so each body is copied once, into the entry.
fn entry(key: &str, page: &CachedPage) -> Result<Vec<u8>, postcard::Error> {
    let parts = PageParts {
        body: page.body.to_parts(),
        deps: Cow::Borrowed(&page.deps),
    };
    let size = postcard::serialize_with_flavor(&parts, postcard::ser_flavors::Size::default())?;
    // As `StoredPage` is encoded: the parts' length, the parts, the seal.
    let out = postcard::to_extend(&size, Vec::with_capacity(size + 48))?;
    let start = out.len();
    let mut out = postcard::to_extend(&parts, out)?;
    let seal = seal(key, &out[start..]);
    out.extend_from_slice(&seal);
    Ok(out)
}

/// A change drops the pages it touches from memory; one made here also drops them from the
/// second tier (a change from another instance was dropped there by its sender: the tier is
/// shared). The second tier is emptied by the admin clear itself, which reports what it
/// removed.
impl<E: From<Abandoned> + Send + Sync + 'static> Subscriber for PageCache<E> {
    fn changed(&self, change: &Change, origin: Origin) {
        match change {
            Change::Cleared => self.clear(),
            Change::Published(_) | Change::Refreshed { .. } => {
                self.invalidate(change.affected());
                if origin == Origin::Local {
                    self.invalidate_l2(invalidation_of(change.affected()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::l2::{Counters, L2Future};
    use crate::encoded::Quality;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    /// Value and tags of an entry.
    type Entry = (Vec<u8>, Vec<String>);

    /// An L2 in memory, shared by the caches of one test as Redis is by instances.
    #[derive(Default)]
    struct Memory {
        values: Mutex<HashMap<String, Entry>>,
        counters: Counters,
    }

    impl L2 for Memory {
        fn name(&self) -> &'static str {
            "memory"
        }
        fn get<'a>(&'a self, key: &'a str) -> L2Future<'a, Option<Vec<u8>>> {
            let v = self
                .values
                .lock()
                .expect("lock")
                .get(key)
                .map(|(v, _)| v.clone());
            Box::pin(async move { Ok(v) })
        }
        fn put<'a>(
            &'a self,
            key: &'a str,
            value: Vec<u8>,
            _ttl: Duration,
            tags: &'a [String],
        ) -> L2Future<'a, ()> {
            self.values
                .lock()
                .expect("lock")
                .insert(key.to_owned(), (value, tags.to_vec()));
            Box::pin(async { Ok(()) })
        }
        fn invalidate<'a>(&'a self, what: &'a Invalidation) -> L2Future<'a, u64> {
            let mut values = self.values.lock().expect("lock");
            let before = values.len();
            match what {
                Invalidation::All => values.clear(),
                Invalidation::Tags(tags) => {
                    values.retain(|_, (_, t)| !t.iter().any(|x| tags.contains(x)))
                }
            }
            let gone = (before - values.len()) as u64;
            Box::pin(async move { Ok(gone) })
        }
        fn stats(&self) -> L2Stats {
            self.counters.stats("memory", "ok".into())
        }
    }

    fn page(text: &str) -> Encoded {
        Encoded::new("text/plain", text.to_owned(), Quality::Fast)
    }

    /// A render's error in these tests.
    #[derive(Debug, PartialEq)]
    struct Failed(String);

    impl From<Abandoned> for Failed {
        fn from(e: Abandoned) -> Failed {
            Failed(e.to_string())
        }
    }

    fn cache(l2: &Arc<Memory>) -> PageCache<Failed> {
        PageCache::new(
            1 << 20,
            Duration::from_secs(60),
            Arc::clone(l2) as Arc<dyn L2>,
        )
    }

    fn shared(key: &str) -> Tier {
        Tier {
            l2_key: Some(format!("v1:{key}")),
            strategy: Strategy::LongTerm,
            still_valid: Box::new(|| true),
        }
    }

    #[tokio::test]
    async fn concurrent_misses_load_once() {
        let l2 = Arc::new(Memory::default());
        let cache = Arc::new(cache(&l2));
        let renders = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let cache = Arc::clone(&cache);
            let renders = Arc::clone(&renders);
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_render("k".into(), || shared("k"), async move {
                        renders.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok((page("hello"), Deps::default()))
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
            "every other miss waited for the one load"
        );
    }

    #[tokio::test]
    async fn another_cache_over_the_same_l2_serves_without_rendering() {
        let l2 = Arc::new(Memory::default());
        let first = cache(&l2);
        first
            .get_or_render("k".into(), || shared("k"), async {
                Ok((page("rendered once"), Deps::reports(vec![7])))
            })
            .await
            .expect("render");
        // The L2 write runs in the background.
        for _ in 0..100 {
            if !l2.values.lock().expect("lock").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let second = cache(&l2);
        let got = second
            .get_or_render("k".into(), || shared("k"), async {
                Err::<(Encoded, Deps), _>(Failed("must not render".into()))
            })
            .await
            .expect("from L2");
        assert_eq!(&got.body.identity()[..], b"rendered once");
        assert_eq!(got.deps, Deps::reports(vec![7]));
        let stats = second.stats().await;
        assert_eq!((stats.renders, stats.l2_hits), (0, 1));
        assert!(second.contains("k").await, "promoted to L1");

        // A change to report 7 drops it from both tiers.
        second.changed(
            &Change::Published(crate::reports::publish::Published {
                affected: vec![7],
                ..Default::default()
            }),
            Origin::Local,
        );
        assert!(!second.contains("k").await);
        for _ in 0..100 {
            if l2.values.lock().expect("lock").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(l2.values.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_page_read_while_the_store_changed_is_not_shared() {
        let l2 = Arc::new(Memory::default());
        let cache = cache(&l2);
        let tier = Tier {
            still_valid: Box::new(|| false),
            ..shared("k")
        };
        cache
            .get_or_render("k".into(), || tier, async {
                Ok((page("x"), Deps::default()))
            })
            .await
            .expect("served");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(cache.contains("k").await, "kept in memory");
        assert!(l2.values.lock().expect("lock").is_empty(), "not shared");
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let l2 = Arc::new(Memory::default());
        let cache = cache(&l2);
        let failed = cache
            .get_or_render("k".into(), || shared("k"), async {
                Err::<(Encoded, Deps), _>(Failed("boom".into()))
            })
            .await;
        assert!(failed.is_err());
        assert!(!cache.contains("k").await);
        assert!(cache.loading.is_empty());
    }

    #[tokio::test]
    async fn invalidation_hits_only_affected_pages() {
        let l2 = Arc::new(Memory::default());
        let cache = cache(&l2);
        let entries = [
            ("report-1", vec![1, 2], false),
            ("report-5", vec![5], false),
            ("list", vec![], true),
        ];
        for (key, reports, listing) in entries {
            cache
                .get_or_render(key.into(), Tier::l1_only, async move {
                    Ok((page(key), Deps { reports, listing }))
                })
                .await
                .expect("render");
        }
        cache.invalidate(&[2]);
        assert!(!cache.contains("report-1").await);
        assert!(cache.contains("report-5").await);
        assert!(!cache.contains("list").await);
    }

    #[tokio::test]
    async fn a_load_whose_requests_all_gave_up_still_ends_and_leaves_nothing_behind() {
        let l2 = Arc::new(Memory::default());
        let cache = Arc::new(cache(&l2));
        let waiting = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                cache
                    .get_or_render("k".into(), || shared("k"), async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok((page("late"), Deps::default()))
                    })
                    .await
                    .map(|_| ())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiting.abort(); // the only request gives up (a client that went away)
        for _ in 0..100 {
            if cache.loading.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(cache.loading.is_empty(), "the load ended by itself");
        assert!(cache.contains("k").await, "and its page was kept");
    }

    #[tokio::test]
    async fn an_invalidation_during_a_load_sends_later_requests_to_a_new_one() {
        let l2 = Arc::new(Memory::default());
        let cache = Arc::new(cache(&l2));
        let first = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                cache
                    .get_or_render("k".into(), Tier::l1_only, async {
                        tokio::time::sleep(Duration::from_millis(80)).await;
                        Ok((page("old"), Deps::listing()))
                    })
                    .await
                    .map(|p| p.body.identity().clone())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        cache.invalidate(&[1]);
        let second = cache
            .get_or_render("k".into(), Tier::l1_only, async {
                Ok((page("new"), Deps::listing()))
            })
            .await
            .expect("second");
        assert_eq!(&second.body.identity()[..], b"new");
        assert_eq!(&first.await.expect("join").expect("first")[..], b"old");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let third = cache
            .get_or_render("k".into(), Tier::l1_only, async {
                Err::<(Encoded, Deps), _>(Failed("cached: must not render".into()))
            })
            .await
            .expect("third");
        assert_eq!(
            &third.body.identity()[..],
            b"new",
            "the old load was not kept"
        );
    }

    /// Entries written to the shared tier by someone else: a valid entry moved under another
    /// key, one whose gzip body or headers were replaced. None is served; each is rendered.
    #[tokio::test]
    async fn forged_l2_entries_are_not_served() {
        let l2 = Arc::new(Memory::default());
        let first = cache(&l2);
        for (key, text) in [("a", "report A"), ("b", "report B")] {
            first
                .get_or_render(key.into(), || shared(key), async move {
                    let page = page(&text.repeat(64)).with_header(
                        axum::http::header::CONTENT_SECURITY_POLICY,
                        axum::http::HeaderValue::from_static("sandbox"),
                    );
                    Ok((page, Deps::reports(vec![1])))
                })
                .await
                .expect("render");
        }
        for _ in 0..100 {
            if l2.values.lock().expect("lock").len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stored = |key: &str| l2.values.lock().expect("lock")[key].clone();
        let (a, tags) = stored("v1:a");
        let forgeries: Vec<(&str, Vec<u8>)> = vec![
            ("another key's page", a.clone()),
            ("a replaced gzip body", tamper(&stored("v1:b").0, "gzip")),
            ("headers taken away", tamper(&stored("v1:b").0, "headers")),
        ];
        for (what, forged) in forgeries {
            l2.values
                .lock()
                .expect("lock")
                .insert("v1:b".into(), (forged, tags.clone()));
            let reader = cache(&l2);
            let got = reader
                .get_or_render("b".into(), || shared("b"), async {
                    Ok((page("rendered again"), Deps::reports(vec![1])))
                })
                .await
                .expect("page");
            assert_eq!(&got.body.identity()[..], b"rendered again", "{what}");
        }
    }

    /// `entry` with one field of its page's parts changed, keeping everything else.
    fn tamper(entry: &[u8], field: &str) -> Vec<u8> {
        let (mut parts, deps, seal) = opened(entry);
        let mut json = serde_json::to_value(&parts).expect("json");
        json[field] = match field {
            "gzip" => serde_json::json!([
                31, 139, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]),
            _ => serde_json::json!([]),
        };
        parts = serde_json::from_value(json).expect("parts");
        sealed_again(parts, deps, seal)
    }

    #[test]
    fn an_entry_is_the_stored_page_of_its_parts_and_reads_back() {
        let page = CachedPage {
            body: Encoded::new("text/html", "<p>a page</p>".repeat(400), Quality::Fast),
            deps: Deps::reports(vec![1, 2]),
        };
        let made = entry("page:k", &page).expect("entry");
        let parts = postcard::to_allocvec(&PageParts {
            body: page.body.to_parts(),
            deps: Cow::Borrowed(&page.deps),
        })
        .expect("parts");
        let stored = StoredPage {
            seal: seal("page:k", &parts),
            parts,
        };
        assert_eq!(made, postcard::to_allocvec(&stored).expect("stored"));
        let (body, deps, _) = opened(&made);
        assert_eq!(body, page.body.to_parts());
        assert_eq!(deps, page.deps);
    }

    /// The parts of an entry, and its seal.
    fn opened(entry: &[u8]) -> (EncodedParts<'static>, Deps, [u8; 32]) {
        let stored: StoredPage = postcard::from_bytes(entry).expect("entry");
        let parts: PageParts = postcard::from_bytes(&stored.parts).expect("parts");
        (parts.body, parts.deps.into_owned(), stored.seal)
    }

    /// An entry of these parts under an old seal.
    fn sealed_again(body: EncodedParts<'_>, deps: Deps, seal: [u8; 32]) -> Vec<u8> {
        let parts = postcard::to_allocvec(&PageParts {
            body,
            deps: Cow::Owned(deps),
        })
        .expect("parts");
        postcard::to_allocvec(&StoredPage { parts, seal }).expect("entry")
    }
}
