//! One server, built once. [`Parts`] says what it is made of (the store, the settings, the
//! market feed, and optionally the market history, a Redis shared with other instances and a
//! PostgreSQL sync); [`Parts::build`] makes everything in dependency order, writes the
//! publisher's subscriber list and lists what runs in the background; [`launch`] starts that
//! list and serves until shutdown.
//!
//! A feature with a task of its own (a delivery queue, say) adds one subscriber line to
//! [`Parts::build`]'s list and one entry to its task list.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::announce::claims::Claims;
use crate::announce::{self, Announcer};
use crate::assets::Assets;
use crate::cache::PageCache;
use crate::cache::l2::L2;
use crate::cache::redb_tier::RedbTier;
use crate::cluster::Cluster;
use crate::import::postgres::Source;
use crate::market::{self, Market};
use crate::metrics::Metrics;
use crate::render::{RenderError, Renderer};
use crate::reports::Publisher;
use crate::reports::outbox::Announcing;
use crate::reports::publish::{Change, Origin, Stamp, Subscriber};
use crate::search::{self, Search};
use crate::since::{self, History, Recorder};
use crate::state::{AppState, Settings, Shared};
use crate::store::Store;
use crate::tasks::Background;
use crate::{live, sync, workers};

/// How long a rendered page may live in memory even without an invalidation.
const PAGE_TTL: Duration = Duration::from_secs(600);

/// What one server is made of. [`Parts::new`] gives a server of `store` with no market, no
/// history, no other instances and no sync; set the fields to add them.
pub struct Parts {
    pub store: Arc<Store>,
    pub settings: Settings,
    pub hub: live::HubSettings,
    /// The scope of every background task, cancelled once at shutdown. Made here so that a
    /// feed given as [`Feed::Running`] can run in it.
    pub background: Background,
    pub feed: Feed,
    /// Fetch the providers' daily history for reports published before their market was
    /// recorded (`serve` only: `demo` makes no outbound call).
    pub history: Option<market::Config>,
    /// The other instances sharing a Redis: the shared second cache tier, the bus, the lease
    /// that elects the instance whose feed runs.
    pub cluster: Option<Cluster>,
    /// Reports synced from PostgreSQL.
    pub sync: Option<SyncFrom>,
    /// The `--metrics-listen` socket: only `GET /metrics`.
    pub metrics: Option<TcpListener>,
    /// Where new reports are announced (`--announce`): nowhere without targets.
    pub announce: Option<announce::Settings>,
}

/// The market the dashboard shows.
pub enum Feed {
    /// None (tests, embedders).
    Idle,
    /// A market already made, in [`Parts::background`] (tests driving their own).
    Running(Market),
    /// A market made in the app's task scope: at once alone, or only while this instance
    /// holds the lease of a [`Parts::cluster`].
    Start(market::elected::Start),
}

/// Where `serve --sync-from` reads reports, and how often.
pub struct SyncFrom {
    pub source: Source,
    pub every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(
        "several instances elect the one whose market feed runs: give the feed as one to start, not one already running"
    )]
    FeedNotElectable,
    #[error("cannot start announcing new reports: {0}")]
    Announce(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// One background task: started once the state exists, in its task scope.
type Task = (&'static str, Box<dyn FnOnce(&AppState) + Send>);

/// A built server whose background tasks have not started yet.
pub struct App {
    pub state: AppState,
    tasks: Vec<Task>,
}

impl Parts {
    pub fn new(store: impl Into<Arc<Store>>, settings: Settings) -> Parts {
        Parts {
            store: store.into(),
            settings,
            hub: live::HubSettings::default(),
            background: Background::new(),
            feed: Feed::Idle,
            history: None,
            cluster: None,
            sync: None,
            metrics: None,
            announce: None,
        }
    }

    /// Everything, once, each part after what it needs.
    pub fn build(self) -> Result<App, BuildError> {
        let Parts {
            store,
            settings,
            hub,
            background,
            feed,
            history,
            cluster,
            sync,
            metrics,
            announce,
        } = self;
        let assets = Assets::load();
        let renderer = Renderer::new(&assets, &settings.public_url)?;
        let market = match (feed, &cluster) {
            (Feed::Idle, None) => Market::idle(),
            (Feed::Running(market), None) => market,
            (Feed::Start(start), None) => Market::from_source(start(), &background),
            (Feed::Start(start), Some(_)) => Market::elected(start, &background),
            (Feed::Idle | Feed::Running(_), Some(_)) => return Err(BuildError::FeedNotElectable),
        };
        let l2: Arc<dyn L2> = match &cluster {
            Some(cluster) => cluster.l2(),
            None => RedbTier::open(beside(&store), settings.l2_cache_bytes),
        };
        let pages = Arc::new(PageCache::new(settings.cache_bytes, PAGE_TTL, l2));
        let live = live::Hub::new(hub, &background);
        let search = Search::open(Arc::clone(&store));
        let (wake, woken) = match history {
            Some(_) => {
                let (wake, woken) = mpsc::unbounded_channel();
                (Some(wake), Some(woken))
            }
            None => (None, None),
        };
        let recorder = Arc::new(Recorder::new(Arc::clone(&store), market.clone(), wake));

        // Who hears of every change, local or sent by another instance. The page cache comes
        // before the hub: a client told of a new report must not get its stale page.
        let mut subscribers: Vec<Arc<dyn Subscriber>> = vec![
            Arc::new(search.clone()),
            Arc::clone(&pages) as Arc<dyn Subscriber>,
        ];
        if let Some(cluster) = &cluster {
            subscribers.push(Arc::new(cluster.clone()));
        }
        subscribers.push(Arc::new(live.clone()));
        subscribers.push(Arc::clone(&recorder) as Arc<dyn Subscriber>);
        let stamp = Arc::clone(&recorder) as Arc<dyn Stamp>;
        // New reports get their announcements in the commit that stores them (an outbox
        // record per target), delivered by the "announce" task below.
        let announcer = match announce.filter(|a| !a.targets.is_empty()) {
            Some(a) => Some(announcer(a, &store, &settings, cluster.as_ref())?),
            None => None,
        };
        let publisher = Publisher::telling(Arc::clone(&store), Some(stamp), subscribers)
            .announcing(
                announcer
                    .as_ref()
                    .map(|a| a.announcing().clone())
                    .unwrap_or_default(),
            );

        // What runs in the background, started by `App::start` in this order.
        let mut tasks: Vec<Task> = Vec::new();
        tasks.push((
            "search index",
            Box::new(|s: &AppState| s.search.start(s.background())),
        ));
        tasks.push(("l2 purge", Box::new(purge_l2)));
        tasks.push(("report cards", Box::new(fill_cards)));
        if let (Some(config), Some(woken)) = (history, woken) {
            let notify = publisher.clone();
            let refreshed: since::history::Invalidate = Arc::new(move |affected| {
                notify.notify(&Change::Refreshed { affected }, Origin::Local);
            });
            match History::new(&config, Arc::clone(&store), refreshed) {
                Ok(history) => tasks.push((
                    "market history",
                    Box::new(move |s: &AppState| {
                        s.background()
                            .spawn("market history", move |stop| history.run(woken, stop));
                    }),
                )),
                Err(e) => tracing::error!(error = %e, "cannot start the market history task"),
            }
        }
        if let Some(cluster) = &cluster {
            let (cluster, parts) = (
                cluster.clone(),
                crate::cluster::ActsOn {
                    publisher: publisher.clone(),
                    market: market.clone(),
                },
            );
            tasks.push((
                "cluster",
                Box::new(move |s: &AppState| cluster.start(&parts, s.background())),
            ));
        }
        let sync = sync.map(|from| {
            tracing::info!(source = from.source.at(), every = ?from.every, "syncing reports from PostgreSQL");
            sync::Sync::new(from.source, publisher.clone(), from.every)
        });
        if let Some(sync) = sync.clone() {
            tasks.push((
                "sync",
                Box::new(move |s: &AppState| {
                    s.background()
                        .spawn("sync", |stop| async move { sync.run(stop).await });
                }),
            ));
        }
        if let Some(announcer) = announcer.clone() {
            tasks.push((
                "announce",
                Box::new(move |s: &AppState| {
                    s.background().spawn("announce", |stop| announcer.run(stop));
                }),
            ));
        }
        if let Some(listener) = metrics {
            tasks.push((
                "metrics listener",
                Box::new(move |s: &AppState| serve_metrics(s, listener)),
            ));
        }
        tasks.push(("systemd", Box::new(crate::systemd::start)));

        let searches = search::Pool::new("search", settings.search);
        let renders = workers::Pool::new("render", settings.render);
        let state = AppState::from_shared(Shared {
            store,
            publisher,
            pages,
            assets: Arc::new(assets),
            renderer: Arc::new(renderer),
            settings: Arc::new(settings),
            market,
            live,
            sync,
            cluster,
            health: Arc::default(),
            started: Instant::now(),
            background,
            metrics: Metrics::new(),
            search,
            searches,
            renders,
            backups: Arc::new(tokio::sync::Semaphore::new(1)),
            announcer,
        });
        Ok(App { state, tasks })
    }
}

/// The announcer of `settings`' targets. A store that already holds reports announces what
/// is new from the start; an empty one only after its first sync pass (the first import of an
/// archive announces nothing). With other instances, only the lease holder delivers, each
/// delivery claimed in their Redis first.
fn announcer(
    settings: announce::Settings,
    store: &Arc<Store>,
    server: &Settings,
    cluster: Option<&Cluster>,
) -> Result<Announcer, BuildError> {
    let armed = store.count()? > 0;
    for t in &settings.targets {
        tracing::info!(target = %t.name, url = %t.redacted(), "announcing new reports");
    }
    let announcing = Announcing::new(settings.names(), armed);
    let claims = cluster.map(|c| Claims::new(c.redis(), Arc::new(c.clone())));
    Announcer::new(
        Arc::clone(store),
        settings,
        &server.public_url,
        announcing,
        announce::Clock::default(),
        claims,
    )
    .map_err(|e| BuildError::Announce(format!("{e:#}")))
}

impl App {
    /// Starts every background task, in the state's task scope. Must be called inside a
    /// Tokio runtime.
    pub fn start(self) -> AppState {
        for (name, start) in self.tasks {
            tracing::debug!(task = name, "starting");
            start(&self.state);
        }
        self.state
    }
}

impl AppState {
    /// A server of `store` with no market, no history, no other instances and no sync (tests,
    /// embedders), its tasks running when called inside a Tokio runtime.
    pub fn new(store: Store, settings: Settings) -> Result<AppState, BuildError> {
        let app = Parts::new(store, settings).build()?;
        Ok(if tokio::runtime::Handle::try_current().is_ok() {
            app.start()
        } else {
            app.state
        })
    }
}

/// Builds the server of `parts`, starts its tasks and serves `listener` until `shutdown`;
/// then stops every task and makes the second cache tier durable.
pub async fn launch(
    parts: Parts,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = parts.build()?.start();
    tracing::info!(address = %listener.local_addr()?, "listening");
    // Tell systemd (Type=notify) we are ready: the store is open and the socket bound.
    // Outside systemd NOTIFY_SOCKET is unset and this does nothing.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let l2 = Arc::clone(state.pages.l2());
    crate::server::serve(listener, state, async {
        shutdown.await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    })
    .await
    .context("the server failed")?;
    // Second-tier writes are not durable one by one: one durable commit keeps them.
    if let Err(e) = l2.flush().await {
        tracing::warn!(error = %e, "cannot flush the page cache at shutdown");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The folder of the store, where the second cache tier's own file lives.
fn beside(store: &Store) -> &std::path::Path {
    store
        .path()
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// Fills in the cards of reports stored before cards were kept (see `reports::cards`).
fn fill_cards(state: &AppState) {
    let store = Arc::clone(&state.store);
    state.background().spawn("report cards", |stop| async move {
        if let Err(e) = crate::reports::cards::fill_in_background(store, stop).await {
            tracing::warn!(error = %e, "report cards could not all be filled in; lists compute the missing ones");
        }
    });
}

/// Drops expired second-tier entries every [`crate::cache::l2::PURGE_EVERY`]. Holds the tier
/// weakly: the task ends with the last state that uses it (its file can then be opened again).
fn purge_l2(state: &AppState) {
    let l2 = Arc::downgrade(state.pages.l2());
    state.background().spawn("l2 purge", |stop| async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(crate::cache::l2::PURGE_EVERY) => {}
            }
            let Some(l2) = l2.upgrade() else { break };
            match l2.purge_expired().await {
                Ok(n) if n > 0 => tracing::debug!(purged = n, "expired L2 entries dropped"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot purge the L2 tier"),
            }
        }
    });
}

/// Serves `GET /metrics` on `listener`, stopped with every other task.
fn serve_metrics(state: &AppState, listener: TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(address = %addr, "metrics listening");
    }
    let app = crate::routes::metrics_app(state.clone());
    state
        .background()
        .spawn("metrics listener", |stop| async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
}
