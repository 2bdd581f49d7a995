//! The application state every handler reaches: the shared parts behind one reference count,
//! and the settings fixed at start-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::assets::Assets;
use crate::cache::PageCache;
use crate::cluster::Cluster;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::render::Renderer;
use crate::reports::Publisher;
use crate::search::{self, Search};
use crate::secret::Secret;
use crate::store::Store;
use crate::tasks::Background;
use crate::{api, live, market, sync, workers};

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
    /// URLs per sitemap file: the protocol's limit, 50,000. Past it `/sitemap.xml` becomes
    /// an index of numbered parts (tests lower it to see that happen).
    pub sitemap_urls: usize,
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
            render: crate::request::render_pool(),
            sitemap_urls: 50_000,
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

/// The parts of [`AppState`], built once by `app::Parts::build`.
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
    /// Announces new reports, when targets are configured (`--announce`).
    pub announcer: Option<crate::announce::Announcer>,
}

/// The page cache of the handlers (its renders fail with the HTTP edge's error).
pub type Pages = PageCache<AppError>;

impl AppState {
    /// The state of these parts; built once, by `app::Parts::build`.
    pub(crate) fn from_shared(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }

    /// The scope of every background task: `state.background().spawn(name, |stop| ...)`.
    pub fn background(&self) -> &Background {
        &self.0.background
    }
}
