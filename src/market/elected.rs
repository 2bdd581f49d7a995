//! The market feed of an instance among several: only the instance that holds the lease polls
//! the providers (a live feed of its own, started when it leads and stopped when it no longer
//! does); the others show the snapshots the leader relays. Which instance leads is decided
//! elsewhere (the cluster's lease); this file only follows its decisions.

use std::sync::Mutex;

use super::{Market, Snapshot, lock};
use crate::tasks::Background;

/// Starts the feed this instance runs while it leads, in the scope it is given.
pub type Start = Box<dyn Fn(&Background) -> Market + Send + Sync>;

pub(super) struct Elected {
    start: Start,
    leading: Mutex<Option<Leading>>,
}

/// The live feed this instance runs while it leads, in a scope of its own.
struct Leading {
    poller: Market,
    scope: Background,
}

impl Elected {
    pub fn new(start: Start) -> Elected {
        Elected {
            start,
            leading: Mutex::new(None),
        }
    }

    pub fn poller(&self) -> Option<Market> {
        lock(&self.leading).as_ref().map(|l| l.poller.clone())
    }

    pub fn is_leading(&self) -> bool {
        lock(&self.leading).is_some()
    }

    /// Starts polling in a child scope of `tasks`, the poller's snapshots merged into
    /// `market`'s (newer values win, so a fresh relayed value is not replaced by an older one
    /// the poller restored from its store). Returns false when already leading.
    pub fn lead(&self, market: &Market, tasks: &Background) -> bool {
        let mut leading = lock(&self.leading);
        if leading.is_some() {
            return false;
        }
        let scope = tasks.child();
        let poller = (self.start)(&scope);
        let mut snapshots = poller.subscribe();
        let target = market.clone();
        scope.spawn("market forward", |stop| async move {
            loop {
                let latest = snapshots.borrow_and_update().clone();
                target.merge_newer(&latest);
                tokio::select! {
                    changed = snapshots.changed() => if changed.is_err() { break },
                    () = stop.cancelled() => break,
                }
            }
        });
        *leading = Some(Leading { poller, scope });
        true
    }

    /// Stops polling (the lease went elsewhere). Returns false when not leading.
    pub fn follow(&self) -> bool {
        match lock(&self.leading).take() {
            Some(l) => {
                l.scope.cancel();
                true
            }
            None => false,
        }
    }
}

impl Market {
    /// Takes the values of `from` that are newer than this market's (or that it lacks).
    pub(super) fn merge_newer(&self, from: &Snapshot) {
        let mut next = (*self.current()).clone();
        next.values.merge_newer(&from.values);
        let last = |s: &[(i64, f64)]| s.last().map(|p| p.0);
        if last(&from.btc_sparkline) >= last(&next.btc_sparkline) {
            next.btc_sparkline.clone_from(&from.btc_sparkline);
        }
        next.demo = from.demo;
        self.inner.replace(next, from.produced_at_ms);
    }
}
