//! Market data: the snapshot readers see, the background refresher with its fallback order,
//! and the simulated feed of the demo.
//!
//! Interface used by the rest of the application (keep it stable):
//! - [`Market::current`] returns the latest [`Snapshot`];
//! - [`Market::subscribe`] yields every new snapshot (the WebSocket hub listens here);
//! - [`Market::refresh`] forces one coalesced refresh of every group.
//!
//! Page and API requests only ever read the snapshot; only the refresher's tasks call
//! providers.

pub mod alternative_me;
pub mod binance;
mod chain;
pub mod coingecko;
pub mod coinmarketcap;
pub mod config;
pub mod daily;
pub mod demo;
pub mod elected;
mod feed;
pub mod finnhub;
pub mod guard;
pub mod http;
pub mod probe;
mod refresher;
pub mod rsi;
pub mod snapshot;
pub mod taapi;
pub mod trust;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use prometheus_client::metrics::histogram::Histogram;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use self::config::Config;
use self::feed::{Demo, Feed, Fetch};
use self::refresher::Live;
pub use self::snapshot::{Coin, Group, Index, Snapshot};
use crate::lock::lock;
use crate::store::Store;
use crate::tasks::Background;

/// Seed of the `demo` command's simulated feed (its tick is `--demo-interval-ms`).
pub const DEMO_SEED: u64 = 0x00C0_FFEE;
/// How long [`Market::stop`] waits for the feed's tasks.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

type Run = Shared<BoxFuture<'static, ()>>;

/// What a call to [`Market::refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// This call started a refresh and waited for it.
    Ran,
    /// A refresh was already running; this call waited for it instead of starting another.
    Joined,
    /// The previous forced refresh was too recent; try again after this long.
    TooSoon(Duration),
    /// There is no feed to refresh (an idle market).
    Unavailable,
    /// Another instance polls the providers (it holds the lease).
    Elsewhere,
}

#[derive(Default)]
struct Forced {
    running: Option<Run>,
    last_started: Option<Instant>,
}

struct Inner {
    /// None: an idle market.
    feed: Option<Arc<dyn Feed>>,
    tx: watch::Sender<Arc<Snapshot>>,
    /// The feed's own scope of tasks (poll loops, runs, the demo walk).
    tasks: Background,
    forced: Mutex<Forced>,
    /// One in-flight run per group, shared by the poll loop and forced refreshes.
    runs: [Mutex<Option<Run>>; 5],
}

/// Handle to the market data; cheap to clone.
#[derive(Clone)]
pub struct Market {
    inner: Arc<Inner>,
}

/// A feed, named by the code that assembles the application (what a relay runs while it
/// holds the lease).
pub struct Source(Arc<dyn Feed>);

impl Source {
    /// The providers of `config`, with the last good values kept in `store`.
    pub fn live(config: Config, store: Arc<Store>) -> Source {
        Source(Arc::new(Live::new(config, store)))
    }

    /// The demo's deterministic walk from `seed`, one step every `tick`.
    pub fn demo(seed: u64, tick: Duration) -> Source {
        Source(Arc::new(Demo::new(seed, tick)))
    }
}

impl Market {
    fn with_feed(feed: Option<Arc<dyn Feed>>, tasks: Background) -> Market {
        let demo = feed.as_ref().is_some_and(|f| f.demo());
        let (tx, _) = watch::channel(Arc::new(Snapshot {
            demo,
            ..Snapshot::default()
        }));
        let market = Market {
            inner: Arc::new(Inner {
                feed,
                tx,
                tasks,
                forced: Mutex::new(Forced::default()),
                runs: Default::default(),
            }),
        };
        if let Some(feed) = &market.inner.feed {
            Arc::clone(feed).start(&market.inner, &market.inner.tasks);
        }
        market
    }

    /// A market with nothing fetched yet and no feed.
    pub fn idle() -> Market {
        Market::with_feed(None, Background::new())
    }

    /// The feed `source` in a scope of `tasks` (it stops with them). Must be called inside a
    /// Tokio runtime.
    pub fn from_source(source: Source, tasks: &Background) -> Market {
        Market::with_feed(Some(source.0), tasks.child())
    }

    /// The live feed: restores the last good values from `store` (stale until refreshed), then
    /// polls every group on its cadence, in a scope of `tasks` (it stops with them). Must be
    /// called inside a Tokio runtime.
    pub fn start(config: Config, store: Arc<Store>, tasks: &Background) -> Market {
        Market::from_source(Source::live(config, store), tasks)
    }

    /// The feed of an instance among several: shows relayed snapshots until told to poll
    /// ([`Market::start_polling`]), then runs the feed `start` makes until told to stop.
    pub fn elected(start: elected::Start, tasks: &Background) -> Market {
        Market::with_feed(Some(Arc::new(elected::Elected::new(start))), tasks.child())
    }

    /// The simulated feed of `demo`: a deterministic walk from `seed`, one step every `tick`,
    /// badged `demo: true`, in a scope of `tasks`. Opens no connection. Must be called inside a
    /// Tokio runtime.
    pub fn demo(seed: u64, tick: Duration, tasks: &Background) -> Market {
        Market::from_source(Source::demo(seed, tick), tasks)
    }

    /// Starts polling the providers (this instance now holds the lease). Returns whether it
    /// started now; false when already polling or not an elected feed.
    pub fn start_polling(&self) -> bool {
        self.inner
            .feed
            .as_ref()
            .is_some_and(|f| f.start_polling(&self.inner))
    }

    /// Stops polling (another instance holds the lease). Returns whether it stopped now.
    pub fn stop_polling(&self) -> bool {
        self.inner.feed.as_ref().is_some_and(|f| f.stop_polling())
    }

    /// Shows a snapshot relayed by the polling instance; ignored unless this one relays.
    pub fn relay(&self, snapshot: &Snapshot) {
        if self.inner.feed.as_ref().is_some_and(|f| f.takes_relayed()) {
            self.inner
                .replace(snapshot.clone(), snapshot.produced_at_ms);
        }
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.inner.tx.borrow().clone()
    }

    /// Sees a new value whenever the snapshot changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.tx.subscribe()
    }

    /// Refreshes every group now. Concurrent callers share one run, and a new run starts at
    /// most once per `refresh_min_interval`, so this cannot be used to hammer the providers
    /// (their own budgets and breakers still apply).
    pub async fn refresh(&self) -> Refresh {
        let (run, joined) = {
            let mut forced = lock(&self.inner.forced);
            if let Some(run) = &forced.running {
                (run.clone(), true)
            } else {
                let Some(feed) = &self.inner.feed else {
                    return Refresh::Unavailable;
                };
                let Some((active, scope)) = Arc::clone(feed).active(&self.inner.tasks) else {
                    return Refresh::Elsewhere;
                };
                let min_refresh = active.min_refresh();
                if let Some(at) = forced.last_started {
                    let since = at.elapsed();
                    if since < min_refresh {
                        return Refresh::TooSoon(min_refresh - since);
                    }
                }
                let inner = Arc::clone(&self.inner);
                let task = scope.spawn("market refresh", |_| async move {
                    active.refresh(&inner).await;
                    lock(&inner.forced).running = None;
                });
                let run = async move {
                    let _ = task.await;
                }
                .boxed()
                .shared();
                forced.running = Some(run.clone());
                forced.last_started = Some(Instant::now());
                (run, false)
            }
        };
        run.await;
        if joined {
            Refresh::Joined
        } else {
            Refresh::Ran
        }
    }

    /// Stops the feed's tasks (in-flight provider calls are abandoned) and waits for them, at
    /// most a few seconds. Stopping the scope the feed was started in does the same.
    pub async fn stop(&self) {
        self.inner.tasks.shutdown(STOP_TIMEOUT).await;
    }

    /// Counters, breaker state and latency of every provider the feed calls now.
    pub fn provider_stats(&self) -> Vec<(guard::ProviderStats, Histogram)> {
        self.inner
            .active()
            .map(|(f, _)| f.provider_stats())
            .unwrap_or_default()
    }

    /// Feed mode, per-group and per-provider state (breaker, last success and failure, errors)
    /// and the age of the data, for `/health`.
    pub fn health(&self) -> serde_json::Value {
        let snap = self.current();
        let running = !self.inner.tasks.is_cancelled();
        let mut out = json!({
            "running": running,
            "partial_failure": snap.partial_failure(),
            "last_updated": snap.last_updated(),
        });
        let extra = match &self.inner.feed {
            None => json!({ "mode": "idle" }),
            Some(feed) => {
                let mut v = match self.inner.active() {
                    Some((active, _)) => active.health(),
                    None => json!({}),
                };
                if let Some(groups) = v.get_mut("groups") {
                    for g in Group::ALL {
                        let running = lock(&self.inner.runs[g as usize]).is_some();
                        groups[g.name()]["running"] = json!(running);
                    }
                }
                v["mode"] = json!(feed.mode());
                if let Some(role) = feed.role() {
                    v["role"] = json!(role);
                }
                v
            }
        };
        if let (Some(out), serde_json::Value::Object(extra)) = (out.as_object_mut(), extra) {
            out.extend(extra);
        }
        out
    }
}

/// The poll loop of one group.
async fn poll(inner: Arc<Inner>, group: Group, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = inner.run_group(group) => {}
            () = stop.cancelled() => break,
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => break,
        }
    }
}

impl Inner {
    /// The feed that fetches now and the scope its work runs in (None: idle, or following).
    fn active(&self) -> Option<(Arc<dyn Fetch>, Background)> {
        Arc::clone(self.feed.as_ref()?).active(&self.tasks)
    }

    /// Starts the poll loop of every group in `scope`.
    fn poll_groups(self: &Arc<Self>, cadence: &config::Cadence, scope: &Background) {
        for group in Group::ALL {
            let every = cadence.of(group);
            let poller = Arc::clone(self);
            scope.spawn("market poll", move |stop| poll(poller, group, every, stop));
        }
    }

    /// Runs `group` once, or joins the run already in flight. The run is a task of its own, so
    /// a caller that gives up does not cancel it for the others.
    fn run_group(self: &Arc<Self>, group: Group) -> Run {
        let mut slot = lock(&self.runs[group as usize]);
        if let Some(run) = &*slot {
            return run.clone();
        }
        let inner = Arc::clone(self);
        let active = self.active();
        let scope = active.as_ref().map_or(&self.tasks, |(_, s)| s).clone();
        let task = scope.spawn("market run", |stop| async move {
            if let Some((feed, _)) = active {
                tokio::select! {
                    () = feed.poll(group) => inner.publish(),
                    () = stop.cancelled() => {}
                }
            }
            *lock(&inner.runs[group as usize]) = None;
        });
        let run = async move {
            let _ = task.await;
        }
        .boxed()
        .shared();
        *slot = Some(run.clone());
        run
    }

    /// Rebuilds the snapshot from the feed and sends it if anything changed.
    fn publish(&self) {
        let Some(feed) = &self.feed else {
            return;
        };
        let current = self.tx.borrow().clone();
        if let Some(next) = feed.snapshot(&current) {
            self.replace(next, Utc::now().timestamp_millis());
        }
    }

    /// Makes `next` the current snapshot if it shows other data, numbered after the current
    /// one and stamped `produced_at_ms`.
    fn replace(&self, mut next: Snapshot, produced_at_ms: i64) -> bool {
        self.tx.send_if_modified(|current| {
            if current.same_data(&next) {
                return false;
            }
            next.version = current.version + 1;
            next.produced_at_ms = produced_at_ms;
            *current = Arc::new(next);
            true
        })
    }
}
