//! The relay feed of an instance among several: only the instance that holds the lease polls
//! the providers (a feed of its own, started when it takes the lease and stopped when it loses
//! it); the others show the snapshots the polling instance relays. Which instance polls is
//! decided elsewhere (the cluster's lease); this file only follows its decisions.

use std::sync::{Arc, Mutex};

use super::feed::{Feed, Fetch};
use super::snapshot::Snapshot;
use super::{Inner, Source, lock};
use crate::tasks::Background;

/// Makes the feed this instance runs while it holds the lease.
pub type Start = Box<dyn Fn() -> Source + Send + Sync>;

pub(super) struct Elected {
    start: Start,
    polling: Mutex<Option<Polling>>,
}

/// The feed this instance runs while it holds the lease, in a scope of its own.
struct Polling {
    feed: Arc<dyn Feed>,
    scope: Background,
}

impl Elected {
    pub fn new(start: Start) -> Elected {
        Elected {
            start,
            polling: Mutex::new(None),
        }
    }

    fn polling(&self) -> Option<(Arc<dyn Feed>, Background)> {
        lock(&self.polling)
            .as_ref()
            .map(|p| (Arc::clone(&p.feed), p.scope.clone()))
    }
}

impl Feed for Elected {
    fn mode(&self) -> &'static str {
        "elected"
    }

    /// Nothing runs until the lease is taken.
    fn start(self: Arc<Self>, _market: &Arc<Inner>, _scope: &Background) {}

    /// The feed run while this instance holds the lease fetches; none while it follows.
    fn active(self: Arc<Self>, _scope: &Background) -> Option<(Arc<dyn Fetch>, Background)> {
        let (feed, scope) = self.polling()?;
        feed.active(&scope)
    }

    /// The polling feed's values where they are newer than those shown (or missing), so a
    /// fresh relayed value is not replaced by an older one the feed restored from its store.
    fn snapshot(&self, current: &Snapshot) -> Option<Snapshot> {
        let (feed, _) = self.polling()?;
        let from = feed.snapshot(current)?;
        let mut next = current.clone();
        next.values.merge_newer(&from.values);
        let last = |s: &[(i64, f64)]| s.last().map(|p| p.0);
        if last(&from.btc_sparkline) >= last(&next.btc_sparkline) {
            next.btc_sparkline = from.btc_sparkline;
        }
        next.demo = from.demo;
        Some(next)
    }

    fn role(&self) -> Option<&'static str> {
        Some(if lock(&self.polling).is_some() {
            "leading"
        } else {
            "following"
        })
    }

    /// Starts the feed `start` makes in a child scope of `market`'s. Returns false when
    /// already polling.
    fn start_polling(&self, market: &Arc<Inner>) -> bool {
        let mut polling = lock(&self.polling);
        if polling.is_some() {
            return false;
        }
        let scope = market.tasks.child();
        let feed = (self.start)().0;
        *polling = Some(Polling {
            feed: Arc::clone(&feed),
            scope: scope.clone(),
        });
        drop(polling);
        feed.start(market, &scope);
        true
    }

    fn stop_polling(&self) -> bool {
        match lock(&self.polling).take() {
            Some(p) => {
                p.scope.cancel();
                true
            }
            None => false,
        }
    }

    fn takes_relayed(&self) -> bool {
        lock(&self.polling).is_none()
    }
}
