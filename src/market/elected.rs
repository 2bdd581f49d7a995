//! The market feed of an instance among several: only the instance that holds the lease polls
//! the providers (a live feed of its own, started when it leads and stopped when it no longer
//! does); the others show the snapshots the leader relays. Which instance leads is decided
//! elsewhere (the cluster's lease); this file only follows its decisions.

use std::sync::{Arc, Mutex};

use super::{Config, Market, Snapshot, lock};
use crate::store::Store;
use crate::tasks::Background;

pub(super) struct Elected {
    config: Config,
    store: Arc<Store>,
    leading: Mutex<Option<Leading>>,
}

/// The live feed this instance runs while it leads, in a scope of its own.
struct Leading {
    poller: Market,
    scope: Background,
}

impl Elected {
    pub fn new(config: Config, store: Arc<Store>) -> Elected {
        Elected {
            config,
            store,
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
        let poller = Market::start(self.config.clone(), Arc::clone(&self.store), &scope);
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
        self.inner.tx.send_if_modified(|current| {
            let mut next = (**current).clone();
            next.values.merge_newer(&from.values);
            let last = |s: &[(i64, f64)]| s.last().map(|p| p.0);
            if last(&from.btc_sparkline) >= last(&next.btc_sparkline) {
                next.btc_sparkline.clone_from(&from.btc_sparkline);
            }
            next.demo = from.demo;
            if next == **current {
                return false;
            }
            next.version = current.version + 1;
            *current = Arc::new(next);
            true
        });
    }
}
