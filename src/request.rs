//! What page and API handlers share about a request: the report id and page number as every
//! route reads them, query parameters, and the cached response (rendered once, kept in the
//! page cache's tiers).

use std::sync::Arc;
use std::time::Duration;

use crate::AppState;
use crate::cache::l2::Strategy;
use crate::cache::{CachedPage, Deps, Tier};
use crate::encoded::Encoded;
use crate::error::AppError;
use crate::workers::{PoolSettings, Refused};

/// Reports on one page of a listing.
pub const PER_PAGE: u64 = 10;

/// The raw value of one query parameter (the ones we read are plain ASCII tokens).
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A positive integer in decimal digits. One too large for `u64` is still a positive
/// integer, just one that names nothing: the caller answers 404 for it, not 400.
fn positive(raw: &str) -> Result<Option<u64>, ()> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    match raw.parse::<u64>() {
        Ok(0) => Err(()),
        Ok(n) => Ok(Some(n)),
        // Only digits, not zero: the only failure left is overflow.
        Err(_) if raw.bytes().any(|b| b != b'0') => Ok(None),
        Err(_) => Err(()),
    }
}

pub(crate) fn parse_id(raw: &str) -> Result<u64, AppError> {
    match positive(raw) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(AppError::NotFound),
        Err(()) => Err(AppError::bad_request(
            "report id must be a positive integer",
        )),
    }
}

/// `page` from the query: absent means 1; anything but a positive integer is a 400, and one
/// past the end (however large) a 404.
pub fn parse_page(query: Option<&str>) -> Result<u64, AppError> {
    page_number(query_param(query, "page").unwrap_or(""))
}

/// A page number as every route reads it: none is page 1; digits only, not zero (`+2`, `2.0`
/// and `0` are a 400); a number too large for any page is a 404.
pub(crate) fn page_number(raw: &str) -> Result<u64, AppError> {
    match raw.trim() {
        "" => Ok(1),
        p => match positive(p) {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(AppError::NotFound),
            Err(()) => Err(AppError::bad_request("page must be a positive integer")),
        },
    }
}

/// Where a page is kept beyond memory: under a key naming this build and what this
/// instance's store holds, so that a page is only read back (after a restart, or by another
/// instance sharing the tier) where the same program renders the same reports. Documents of
/// one report live longer than lists.
fn page_tier(s: &AppState, key: &str) -> Tier {
    let version = s.store.version();
    let store = Arc::clone(&s.store);
    let strategy = if ["frame:", "print:", "print-source:"]
        .iter()
        .any(|p| key.starts_with(p))
    {
        Strategy::LongTerm
    } else {
        Strategy::MediumTerm
    };
    let build = s.renderer.fingerprint();
    Tier {
        l2_key: Some(format!("page:{build}:{}:{key}", version.key())),
        strategy,
        still_valid: Box::new(move || version.still(&store.version())),
    }
}

/// Pages not yet cached that may wait for a render thread by default (`--render-queue`).
pub const RENDER_QUEUE: usize = 64;

/// The render pool's default: one thread per core (drawing is CPU work: more threads draw no
/// faster, and each keeps an allocator heap of its own), [`RENDER_QUEUE`] waiting. A render
/// is never stopped half-way: it is shared by every request for its page.
pub fn render_pool() -> PoolSettings {
    PoolSettings {
        workers: crate::workers::cores(),
        queue: RENDER_QUEUE,
        budget: Duration::from_secs(3600),
    }
}

/// The cached page for `key`, or renders it: store reads, templates and compression run
/// together on a thread of the render pool (a large report costs milliseconds of CPU, which
/// must not stall an async worker), once however many requests ask at the same time. Beyond
/// the pool's queue a page not yet cached is answered 503 with `Retry-After`.
pub(crate) async fn cached(
    s: &AppState,
    key: String,
    render: impl FnOnce(&AppState) -> Result<(Encoded, Deps), AppError> + Send + 'static,
) -> Result<Arc<CachedPage>, AppError> {
    let state = s.clone();
    let page = s
        .pages
        .get_or_render(key.clone(), || page_tier(s, &key), async move {
            let pool = state.renders.clone();
            match pool.run(move |_| render(&state)).await {
                Ok(done) => done,
                Err(Refused::Busy) => Err(AppError::Busy(
                    "too many pages being drawn at once; try again",
                )),
                Err(e) => Err(AppError::Internal(format!("render: {e}"))),
            }
        })
        .await?;
    Ok(page)
}
