//! `serve` and `demo`: the parts of the server from the command line, then
//! [`crate::app::launch`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::{password_advice, runtime};
use crate::app::{Feed, Parts, SyncFrom, launch};
use crate::cluster::Cluster;
use crate::config::{ClusterArgs, ConfigError, HttpArgs, ServeArgs, SyncArgs};
use crate::import::postgres::Source;
use crate::market;
use crate::reports::Publisher;
use crate::state::Settings;
use crate::store::Store;
use crate::{live, shutdown_signal};

/// `crypto-report serve`: the live market, its history, the sync and the other instances.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.http.validate()?;
    let listen = args.http.listen_addr()?;
    let config = args
        .market
        .clone()
        .with_upstream_fallbacks()
        .market_config();
    let source = sync_source(&args.sync)?;
    let announce = args.announce.settings()?;
    let path = args.store.store_path();
    let store = Store::open(&path)?;
    tracing::info!(store = %path.display(), "store open");
    let mut parts = Parts::new(store, settings(&args.http, listen, false));
    parts.hub = hub(&args.http);
    let store = Arc::clone(&parts.store);
    let start = config.clone();
    parts.feed = Feed::Start(Box::new(move || {
        market::Source::live(start.clone(), Arc::clone(&store))
    }));
    parts.history = Some(config);
    parts.announce = Some(announce);
    parts.sync = source.map(|source| SyncFrom {
        source,
        every: args.sync.sync_every,
    });
    run(parts, &args.http, &args.cluster)
}

/// `crypto-report demo`: the sample reports in a temporary store beside a simulated market.
pub fn demo(http: HttpArgs, tick: Duration, cluster: &ClusterArgs) -> anyhow::Result<()> {
    http.validate()?;
    let listen = http.listen_addr()?;
    let (dir, store) = crate::demo::open()?;
    let store = Arc::new(store);
    let summary = crate::demo::seed(&Publisher::new(Arc::clone(&store)))?;
    tracing::info!(store = %dir.path().display(), %summary, "demo store seeded with the sample reports");
    let mut parts = Parts::new(store, settings(&http, listen, true));
    parts.hub = hub(&http);
    parts.feed = Feed::Start(Box::new(move || {
        market::Source::demo(market::DEMO_SEED, tick)
    }));
    let result = run(parts, &http, cluster);
    drop(dir);
    result
}

/// Joins the other instances (inside the runtime: Redis needs it), binds the sockets and
/// launches `parts` until a shutdown signal.
fn run(mut parts: Parts, http: &HttpArgs, cluster: &ClusterArgs) -> anyhow::Result<()> {
    let listen = http.listen_addr()?;
    let metrics = http.metrics_listen;
    let named = http.public_url.is_some();
    let redis = cluster.url();
    let prefix = cluster.redis_prefix.clone();
    runtime()?.block_on(async move {
        if let Some(url) = redis {
            let cluster = Cluster::new(&url, &prefix).map_err(|reason| ConfigError {
                option: "--redis-url / CR_REDIS_URL / REDIS_URL",
                reason,
            })?;
            tracing::info!(redis = %cluster.health()["redis"]["at"], "one of several instances sharing Redis");
            parts.cluster = Some(cluster);
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        if !named {
            // Port 0 picks a free port: links and feeds name the one the system gave.
            parts.settings.public_url = format!("http://{}", listener.local_addr()?);
        }
        if let Some(addr) = metrics {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
            parts.metrics = Some(listener);
        }
        launch(parts, listener, shutdown_signal()).await
    })
}

fn settings(http: &HttpArgs, listen: std::net::SocketAddr, demo: bool) -> Settings {
    Settings {
        admin_token: http.admin_token.clone(),
        cache_bytes: http.cache_mb << 20,
        l2_cache_bytes: http.l2_cache_mb << 20,
        request_timeout: http.request_timeout(),
        max_connections: usize::try_from(http.max_connections).unwrap_or(usize::MAX),
        demo,
        search: http.search_pool(),
        render: http.render_pool(),
        ..Settings::new(http.public_url_or(listen))
    }
}

fn hub(http: &HttpArgs) -> live::HubSettings {
    live::HubSettings {
        max_clients: usize::try_from(http.ws_max_clients).unwrap_or(usize::MAX),
        ..live::HubSettings::default()
    }
}

/// Whether `value` was given on this process's command line (where `ps` shows it), not in
/// the environment.
fn on_command_line(value: &str) -> bool {
    std::env::args_os().any(|a| a.to_string_lossy().contains(value))
}

/// The PostgreSQL source of `serve --sync-from` (or `CR_PG_URL`, or `DATABASE_URL`).
fn sync_source(args: &SyncArgs) -> Result<Option<Source>, ConfigError> {
    let Some(url) = args.source() else {
        return Ok(None);
    };
    let source = Source::parse(url.expose(), args.pg_timeout()).map_err(|e| ConfigError {
        option: "--sync-from / CR_PG_URL / DATABASE_URL",
        reason: e.to_string(),
    })?;
    if source.password_in_url() && on_command_line(url.expose()) {
        tracing::warn!("{}", password_advice("--sync-from"));
    }
    Ok(Some(source))
}
