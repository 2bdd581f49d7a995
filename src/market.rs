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
pub mod coingecko;
pub mod coinmarketcap;
pub mod config;
pub mod demo;
pub mod elected;
pub mod finnhub;
pub mod guard;
pub mod http;
pub mod probe;
mod refresher;
pub mod rsi;
pub mod snapshot;
pub mod taapi;
pub mod trust;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use prometheus_client::metrics::histogram::Histogram;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use self::config::Config;
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

enum Feed {
    Idle,
    Live(Box<Live>),
    Demo(Mutex<demo::Walk>),
    /// One of several instances: polls while it holds the lease, relays otherwise.
    Elected(Box<elected::Elected>),
}

#[derive(Default)]
struct Forced {
    running: Option<Run>,
    last_started: Option<Instant>,
}

struct Inner {
    feed: Feed,
    tx: watch::Sender<Arc<Snapshot>>,
    /// The feed's own scope of tasks (poll loops, runs, the demo walk).
    tasks: Background,
    forced: Mutex<Forced>,
    /// One in-flight run per group, shared by the poll loop and forced refreshes.
    runs: [Mutex<Option<Run>>; 5],
    min_refresh: Duration,
}

/// Handle to the market data; cheap to clone.
#[derive(Clone)]
pub struct Market {
    inner: Arc<Inner>,
}

impl Market {
    fn with_feed(feed: Feed, min_refresh: Duration, tasks: Background) -> Market {
        let demo = matches!(feed, Feed::Demo(_));
        let (tx, _) = watch::channel(Arc::new(Snapshot {
            demo,
            ..Snapshot::default()
        }));
        Market {
            inner: Arc::new(Inner {
                feed,
                tx,
                tasks,
                forced: Mutex::new(Forced::default()),
                runs: Default::default(),
                min_refresh,
            }),
        }
    }

    /// A market with nothing fetched yet and no feed.
    pub fn idle() -> Market {
        Market::with_feed(Feed::Idle, Duration::ZERO, Background::new())
    }

    /// The live feed: restores the last good values from `store` (stale until refreshed), then
    /// polls every group on its cadence, in a scope of `tasks` (it stops with them). Must be
    /// called inside a Tokio runtime.
    pub fn start(config: Config, store: Arc<Store>, tasks: &Background) -> Market {
        let min_refresh = config.refresh_min_interval;
        let feed = Feed::Live(Box::new(Live::new(config, store)));
        let market = Market::with_feed(feed, min_refresh, tasks.child());
        let inner = Arc::clone(&market.inner);
        market.inner.tasks.spawn("market start", |stop| async move {
            let Feed::Live(live) = &inner.feed else {
                return;
            };
            tokio::select! {
                () = live.restore() => {}
                () = stop.cancelled() => return,
            }
            inner.publish();
            for group in Group::ALL {
                let every = live.config.cadence.of(group);
                let poller = Arc::clone(&inner);
                inner
                    .tasks
                    .spawn("market poll", move |stop| poll(poller, group, every, stop));
            }
            let filler = Arc::clone(&inner);
            inner.tasks.spawn("sparkline backfill", |stop| async move {
                let Feed::Live(live) = &filler.feed else {
                    return;
                };
                tokio::select! {
                    () = live.backfill() => filler.publish(),
                    () = stop.cancelled() => {}
                }
            });
        });
        market
    }

    /// The feed of an instance among several: follows relayed snapshots until told to lead
    /// ([`Market::lead`]), then runs the feed `start` makes (a [`Market::start`], or the
    /// demo's walk) until told to follow.
    pub fn elected(start: elected::Start, tasks: &Background) -> Market {
        let feed = Feed::Elected(Box::new(elected::Elected::new(start)));
        Market::with_feed(feed, Duration::ZERO, tasks.child())
    }

    /// Starts polling the providers (this instance now holds the lease). Returns whether it
    /// started now; false when already leading or not an elected feed.
    pub fn lead(&self) -> bool {
        match &self.inner.feed {
            Feed::Elected(e) => e.lead(self, &self.inner.tasks),
            _ => false,
        }
    }

    /// Stops polling (another instance holds the lease). Returns whether it stopped now.
    pub fn follow(&self) -> bool {
        match &self.inner.feed {
            Feed::Elected(e) => e.follow(),
            _ => false,
        }
    }

    /// Whether this market polls providers itself (a live feed, or an elected one leading).
    pub fn is_polling(&self) -> bool {
        match &self.inner.feed {
            Feed::Live(_) => true,
            Feed::Elected(e) => e.is_leading(),
            Feed::Idle | Feed::Demo(_) => false,
        }
    }

    /// Shows a snapshot relayed by the leading instance; ignored while this one leads.
    pub fn relay(&self, snapshot: &Snapshot) {
        let Feed::Elected(e) = &self.inner.feed else {
            return;
        };
        if e.is_leading() {
            return;
        }
        self.inner
            .replace(snapshot.clone(), snapshot.produced_at_ms);
    }

    /// The simulated feed of `demo`: a deterministic walk from `seed`, one step every `tick`,
    /// badged `demo: true`, in a scope of `tasks`. Opens no connection. Must be called inside a
    /// Tokio runtime.
    pub fn demo(seed: u64, tick: Duration, tasks: &Background) -> Market {
        let walk = demo::Walk::new(seed, Utc::now());
        let market = Market::with_feed(Feed::Demo(Mutex::new(walk)), tick, tasks.child());
        market.inner.publish();
        let inner = Arc::clone(&market.inner);
        market.inner.tasks.spawn("market demo", |stop| async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(tick) => inner.demo_step(),
                    () = stop.cancelled() => break,
                }
            }
        });
        market
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
        if let Feed::Elected(e) = &self.inner.feed {
            return match e.poller() {
                Some(poller) => Box::pin(poller.refresh()).await,
                None => Refresh::Elsewhere,
            };
        }
        let (run, joined) = {
            let mut forced = lock(&self.inner.forced);
            if let Some(run) = &forced.running {
                (run.clone(), true)
            } else {
                if matches!(self.inner.feed, Feed::Idle) {
                    return Refresh::Unavailable;
                }
                if let Some(at) = forced.last_started {
                    let since = at.elapsed();
                    if since < self.inner.min_refresh {
                        return Refresh::TooSoon(self.inner.min_refresh - since);
                    }
                }
                let inner = Arc::clone(&self.inner);
                let task = self.inner.tasks.spawn("market refresh", |_| async move {
                    inner.refresh_all().await;
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

    /// Counters, breaker state and latency of every provider of a live feed (none otherwise).
    pub fn provider_stats(&self) -> Vec<(guard::ProviderStats, Histogram)> {
        match &self.inner.feed {
            Feed::Live(live) => live.provider_stats(),
            Feed::Elected(e) => e.poller().map(|p| p.provider_stats()).unwrap_or_default(),
            Feed::Idle | Feed::Demo(_) => Vec::new(),
        }
    }

    /// Feed mode, per-group and per-provider state (breaker, last success and failure, errors)
    /// and the age of the data, for `/health`.
    pub fn health(&self) -> serde_json::Value {
        let snap = self.current();
        let running = !self.inner.tasks.is_cancelled();
        let base = json!({
            "running": running,
            "partial_failure": snap.partial_failure(),
            "last_updated": snap.last_updated(),
        });
        let extra = match &self.inner.feed {
            Feed::Idle => json!({ "mode": "idle" }),
            Feed::Demo(_) => json!({ "mode": "demo", "data_age_seconds": 0 }),
            Feed::Elected(e) => match e.poller() {
                Some(poller) => {
                    let mut v = poller.health();
                    v["mode"] = json!("elected");
                    v["role"] = json!("leading");
                    v
                }
                None => json!({ "mode": "elected", "role": "following" }),
            },
            Feed::Live(live) => {
                let mut v = live.health();
                v["mode"] = json!("live");
                for g in Group::ALL {
                    let running = lock(&self.inner.runs[g as usize]).is_some();
                    v["groups"][g.name()]["running"] = json!(running);
                }
                v
            }
        };
        let mut out = base;
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
    /// Runs `group` once, or joins the run already in flight. The run is a task of its own, so
    /// a caller that gives up does not cancel it for the others.
    fn run_group(self: &Arc<Self>, group: Group) -> Run {
        let mut slot = lock(&self.runs[group as usize]);
        if let Some(run) = &*slot {
            return run.clone();
        }
        let inner = Arc::clone(self);
        let task = self.tasks.spawn("market run", |stop| async move {
            if let Feed::Live(live) = &inner.feed {
                tokio::select! {
                    () = live.run(group) => inner.publish(),
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

    async fn refresh_all(self: &Arc<Self>) {
        match &self.feed {
            Feed::Idle | Feed::Elected(_) => {}
            Feed::Demo(_) => self.demo_step(),
            Feed::Live(_) => {
                join_all(Group::ALL.map(|g| self.run_group(g))).await;
            }
        }
    }

    fn demo_step(&self) {
        if let Feed::Demo(walk) = &self.feed {
            lock(walk).step(Utc::now());
            self.publish();
        }
    }

    /// Rebuilds the snapshot from the feed and sends it if anything changed.
    fn publish(&self) {
        let (values, btc_sparkline, demo, refresh) = match &self.feed {
            Feed::Idle | Feed::Elected(_) => return,
            Feed::Live(live) => (
                live.values(),
                live.sparkline(),
                false,
                live.config.cadence.prices,
            ),
            Feed::Demo(walk) => {
                let walk = lock(walk);
                let now = Utc::now();
                let spark = snapshot::downsample(walk.history(), 15 * 60 * 1000);
                // The demo's tick is its refresh period.
                (walk.book(now), spark, true, self.min_refresh)
            }
        };
        let next = Snapshot {
            values,
            btc_sparkline,
            demo,
            refresh_ms: u64::try_from(refresh.as_millis()).unwrap_or(u64::MAX),
            ..Snapshot::default()
        };
        self.replace(next, Utc::now().timestamp_millis());
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
