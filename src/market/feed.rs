//! Where a market's values come from: the [`Feed`] trait and its three kinds (the live
//! providers in `refresher.rs`, the demo's walk here, the relay of an instance among several
//! in `elected.rs`), and the [`Fetch`] trait of the two that fetch (a relay fetches through
//! the live feed it runs while it holds the lease).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::{Value, json};

use super::demo::Walk;
use super::guard::ProviderStats;
use super::snapshot::{Group, Snapshot, downsample};
use super::{Inner, lock};
use crate::tasks::Background;

/// What a market needs from where its values come from. The market owns the snapshot, the
/// one-run-per-group slots and the forced-refresh limit; a feed owns its values and tasks.
pub(super) trait Feed: Send + Sync + 'static {
    /// `live`, `demo` or `elected`, for `/health`.
    fn mode(&self) -> &'static str;

    /// Whether its values are simulated.
    fn demo(&self) -> bool {
        false
    }

    /// Starts the feed's own tasks in `scope`; they publish into `market`.
    fn start(self: Arc<Self>, market: &Arc<Inner>, scope: &Background);

    /// What fetches now, with the scope its work runs in: the feed itself in `scope`, or,
    /// for a relay, the feed it runs while it polls (None while it follows).
    fn active(self: Arc<Self>, scope: &Background) -> Option<(Arc<dyn Fetch>, Background)>;

    /// The snapshot to show next, given the one shown now; None when there is nothing new.
    fn snapshot(&self, current: &Snapshot) -> Option<Snapshot>;

    /// A relay's role (`leading` or `following`); None for the others.
    fn role(&self) -> Option<&'static str> {
        None
    }

    /// Starts fetching in a scope of `market`'s (a relay given the lease). Returns whether it
    /// started now.
    fn start_polling(&self, _market: &Arc<Inner>) -> bool {
        false
    }

    /// Stops fetching (a relay whose lease went elsewhere). Returns whether it stopped now.
    fn stop_polling(&self) -> bool {
        false
    }

    /// Whether a snapshot relayed by another instance is shown now.
    fn takes_relayed(&self) -> bool {
        false
    }
}

/// What a feed that fetches does when the market asks (see [`Feed::active`]).
pub(super) trait Fetch: Send + Sync + 'static {
    /// Fetches `group` once (only a live feed has anything to fetch).
    fn poll(&self, _group: Group) -> BoxFuture<'_, ()> {
        futures_util::future::ready(()).boxed()
    }

    /// Brings every group up to date now, publishing into `market`.
    fn refresh<'a>(&'a self, market: &'a Arc<Inner>) -> BoxFuture<'a, ()>;

    /// The shortest time between two forced refreshes (the demo's tick is also its period).
    fn min_refresh(&self) -> Duration;

    /// The feed's part of `/health`.
    fn health(&self) -> Value;

    /// Counters, breaker and latency of every provider it calls.
    fn provider_stats(&self) -> Vec<(ProviderStats, Histogram)> {
        Vec::new()
    }
}

/// The simulated feed of `demo`. Opens no connection.
pub(super) struct Demo {
    walk: Mutex<Walk>,
    tick: Duration,
}

impl Demo {
    /// A deterministic walk from `seed`, one step every `tick`.
    pub fn new(seed: u64, tick: Duration) -> Demo {
        Demo {
            walk: Mutex::new(Walk::new(seed, Utc::now())),
            tick,
        }
    }

    fn step(&self, market: &Inner) {
        lock(&self.walk).step(Utc::now());
        market.publish();
    }
}

impl Feed for Demo {
    fn mode(&self) -> &'static str {
        "demo"
    }

    fn demo(&self) -> bool {
        true
    }

    fn start(self: Arc<Self>, market: &Arc<Inner>, scope: &Background) {
        market.publish();
        let market = Arc::clone(market);
        scope.spawn("market demo", |stop| async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(self.tick) => self.step(&market),
                    () = stop.cancelled() => break,
                }
            }
        });
    }

    fn active(self: Arc<Self>, scope: &Background) -> Option<(Arc<dyn Fetch>, Background)> {
        Some((self, scope.clone()))
    }

    fn snapshot(&self, _current: &Snapshot) -> Option<Snapshot> {
        let walk = lock(&self.walk);
        Some(Snapshot {
            values: walk.book(Utc::now()),
            btc_sparkline: downsample(walk.history(), 15 * 60 * 1000),
            demo: true,
            refresh_ms: millis(self.tick),
            ..Snapshot::default()
        })
    }
}

impl Fetch for Demo {
    fn refresh<'a>(&'a self, market: &'a Arc<Inner>) -> BoxFuture<'a, ()> {
        self.step(market);
        futures_util::future::ready(()).boxed()
    }

    fn min_refresh(&self) -> Duration {
        self.tick
    }

    fn health(&self) -> Value {
        json!({ "data_age_seconds": 0 })
    }
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
