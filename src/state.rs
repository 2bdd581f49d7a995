//! The application state every handler reaches: the shared parts behind one reference count,
//! and the settings fixed at start-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::assets::Assets;
use crate::cache::PageCache;
use crate::cache::l2::L2;
use crate::cache::redb_tier::RedbTier;
use crate::cluster::Cluster;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::render::{self, Renderer};
use crate::reports::Publisher;
use crate::reports::publish::Subscriber;
use crate::search::{self, Search};
use crate::secret::Secret;
use crate::store::Store;
use crate::tasks::Background;
use crate::{api, live, market, since, sync, workers};

/// Settings the request handlers need, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub admin_token: Option<Secret>,
    pub public_url: String,
    pub cache_bytes: u64,
    /// Bytes the second cache tier's file may hold (0: no second tier of our own).
    pub l2_cache_bytes: u64,
    pub request_timeout: Duration,
    /// A new connection must deliver its first request head within this time (silent and
    /// slow-header clients); HTTP/1.1 also waits at most this long for the next request.
    pub header_timeout: Duration,
    /// A connection with nothing in flight is closed after this long (HTTP/2 above all:
    /// HTTP/1.1 is closed earlier by `header_timeout`).
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Running `demo`: market data is simulated and badged as such.
    pub demo: bool,
    /// Threads, queue and time budget of the searches.
    pub search: search::PoolSettings,
    /// Threads and queue of the page and card renders.
    pub render: workers::PoolSettings,
}

impl Settings {
    pub fn new(public_url: impl Into<String>) -> Settings {
        Settings {
            admin_token: None,
            public_url: public_url.into(),
            cache_bytes: 64 << 20,
            l2_cache_bytes: 32 << 20,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 16_384,
            demo: false,
            search: search::PoolSettings::default(),
            render: crate::pages::render_pool(),
        }
    }
}

/// Everything a handler can reach. One reference count: axum clones the state for every
/// request (handler and middleware), and one atomic increment is far cheaper than one per
/// field on counters that both cores keep pulling from each other.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<Store>,
    /// The one write path of reports; tells the page cache and the live clients.
    pub publisher: Publisher,
    pub pages: Arc<Pages>,
    pub assets: Arc<Assets>,
    pub renderer: Arc<Renderer>,
    pub settings: Arc<Settings>,
    pub market: market::Market,
    pub live: live::Hub,
    /// The PostgreSQL sync, when the server was started with one.
    pub sync: Option<sync::Sync>,
    /// The other instances sharing a Redis, when there are any.
    pub cluster: Option<Cluster>,
    pub health: Arc<api::HealthProbe>,
    pub started: Instant,
    /// Every background task; cancelled once at shutdown.
    pub background: Background,
    pub metrics: Metrics,
    /// Full-text search over the reports; one of the publish path's subscribers.
    pub search: Search,
    /// Where searches run (`settings.search`).
    pub searches: search::Pool,
    /// Where pages and cards not yet cached are drawn (`settings.render`).
    pub renders: workers::Pool,
    /// One backup at a time (`POST /admin/backup`).
    pub backups: Arc<tokio::sync::Semaphore>,
    /// Records the market as reports are published ("since this report").
    pub since: Arc<since::Recorder>,
}

/// The page cache of the handlers (its renders fail with the HTTP edge's error).
pub type Pages = PageCache<AppError>;

/// How long a rendered page may live in memory even without an invalidation.
const PAGE_TTL: Duration = Duration::from_secs(600);

impl AppState {
    pub fn new(store: Store, settings: Settings) -> Result<AppState, render::RenderError> {
        let assets = Assets::load();
        let renderer = Renderer::new(&assets, &settings.public_url)?;
        let background = Background::new();
        let store = Arc::new(store);
        let dir = store
            .path()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let l2: Arc<dyn L2> = RedbTier::open(dir, settings.l2_cache_bytes);
        let pages = Arc::new(PageCache::new(settings.cache_bytes, PAGE_TTL, l2));
        let live = live::Hub::new(live::HubSettings::default(), &background);
        let search = Search::open(Arc::clone(&store));
        let searches = search::Pool::new("search", settings.search);
        let renders = workers::Pool::new("render", settings.render);
        // Inside a runtime (tests, embedders) the index keeps up at once; `serve` starts it
        // with the server.
        if tokio::runtime::Handle::try_current().is_ok() {
            search.start(&background);
        }
        let recorder = Arc::new(since::Recorder::new(Arc::clone(&store)));
        Ok(AppState(Arc::new(Shared {
            publisher: publisher(&store, &pages, &live, &search, &recorder, None),
            store,
            pages,
            assets: Arc::new(assets),
            renderer: Arc::new(renderer),
            settings: Arc::new(settings),
            market: market::Market::idle(),
            live,
            sync: None,
            cluster: None,
            health: Arc::default(),
            started: Instant::now(),
            background,
            metrics: Metrics::new(),
            searches,
            renders,
            backups: Arc::new(tokio::sync::Semaphore::new(1)),
            search,
            since: recorder,
        })))
    }

    /// The scope of every background task: `state.background().spawn(name, |stop| ...)`.
    /// What the cluster acts on in this instance.
    pub fn cluster_parts(&self) -> crate::cluster::Parts {
        crate::cluster::Parts {
            store: Arc::clone(&self.store),
            pages: Arc::clone(&self.pages),
            market: self.market.clone(),
            live: self.live.clone(),
        }
    }

    pub fn background(&self) -> &Background {
        &self.0.background
    }

    /// The same state serving `market` (the live refresher or the demo feed), which should
    /// run in [`AppState::background`] so that shutdown stops it.
    pub fn with_market(self, market: market::Market) -> AppState {
        self.0.since.set_market(market.clone());
        let mut shared = (*self.0).clone();
        shared.market = market;
        AppState(Arc::new(shared))
    }

    /// The same state with changed settings.
    pub fn with_settings(self, change: impl FnOnce(&mut Settings)) -> AppState {
        let mut shared = (*self.0).clone();
        let mut settings = (*shared.settings).clone();
        change(&mut settings);
        shared.settings = Arc::new(settings);
        AppState(Arc::new(shared))
    }

    /// The same state with a WebSocket hub of these settings, in the state's task scope.
    pub fn with_hub(self, settings: live::HubSettings) -> AppState {
        let mut shared = (*self.0).clone();
        shared.live = live::Hub::new(settings, &shared.background);
        AppState::rewired(shared)
    }

    /// The same state with another second cache tier (Redis, for several instances); the
    /// page cache starts empty.
    pub fn with_l2(self, l2: Arc<dyn L2>) -> AppState {
        let mut shared = (*self.0).clone();
        shared.pages = Arc::new(PageCache::new(shared.settings.cache_bytes, PAGE_TTL, l2));
        AppState::rewired(shared)
    }

    /// The same state as one of several instances: published changes also go to the others.
    /// Set it before [`AppState::with_sync`], whose publisher it joins.
    pub fn with_cluster(self, cluster: Cluster) -> AppState {
        let mut shared = (*self.0).clone();
        shared.cluster = Some(cluster);
        AppState::rewired(shared)
    }

    /// `shared` with its publisher telling the subscribers it now holds.
    fn rewired(mut shared: Shared) -> AppState {
        shared.publisher = publisher(
            &shared.store,
            &shared.pages,
            &shared.live,
            &shared.search,
            &shared.since,
            shared.cluster.as_ref(),
        );
        AppState(Arc::new(shared))
    }

    /// The same state with a PostgreSQL sync (reachable from `/health` and `/admin/sync`);
    /// start it with [`sync::Sync::run`] in [`AppState::background`].
    pub fn with_sync(self, sync: sync::Sync) -> AppState {
        let mut shared = (*self.0).clone();
        shared.sync = Some(sync);
        AppState(Arc::new(shared))
    }
}

impl AppState {
    /// Starts the task that fetches the providers' daily history for reports published
    /// before their market was recorded (`serve` only: `demo` makes no outbound call).
    pub fn start_market_history(&self, config: &market::Config) {
        let pages = Arc::clone(&self.0.pages);
        let invalidate: since::history::Invalidate = Arc::new(move |ids: Vec<u64>| {
            pages.published(&crate::reports::publish::Published {
                affected: ids,
                ..Default::default()
            });
        });
        match since::History::new(config, Arc::clone(&self.0.store), invalidate) {
            Ok(history) => {
                let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
                self.0.since.set_wake(wake);
                self.background()
                    .spawn("market history", move |stop| history.run(woken, stop));
            }
            Err(e) => tracing::error!(error = %e, "cannot start the market history task"),
        }
    }
}

/// Writes reports into `store` and tells the market recorder, the search index, the page
/// cache, the other instances (with several) and the live clients.
fn publisher(
    store: &Arc<Store>,
    pages: &Arc<Pages>,
    live: &live::Hub,
    search: &Search,
    recorder: &Arc<since::Recorder>,
    cluster: Option<&Cluster>,
) -> Publisher {
    // The recorder before the page cache: a report's first cached page has its values.
    let publisher = Publisher::new(Arc::clone(store))
        .with(Arc::clone(recorder) as Arc<dyn Subscriber>)
        .with(Arc::new(search.clone()))
        .with(Arc::clone(pages) as Arc<dyn Subscriber>);
    // The cluster before the hub: it records a new report as announced before the hub tells
    // this instance's clients, so an announcement from another instance is not repeated.
    let publisher = match cluster {
        Some(c) => publisher.with(Arc::new(c.clone())),
        None => publisher,
    };
    publisher.with(Arc::new(live.clone()))
}
