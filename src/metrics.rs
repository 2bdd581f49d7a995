//! `GET /metrics` in the Prometheus text format: every series name is a constant below.
//!
//! Two kinds of series. Those counted as things happen (requests, latency, bytes out) live in
//! [`Metrics`], updated on the request path. Everything that already has an owner (page cache
//! counters, provider counters and breakers, WebSocket hub, store) is read from it at scrape
//! time into a [`Sample`] and encoded then, so no second copy of a counter can drift.
//!
//! To add a series: a name constant here; then either a field of [`Metrics`] registered in
//! [`Metrics::new`] (counted as it happens), or a field of [`Sample`] filled in [`sample`] and
//! encoded in [`Sample::encode`] (read from its owner).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use prometheus_client::collector::Collector;
use std::fmt::Write as _;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::cache::CacheStats;
use crate::live::DropCounts;
use crate::market::guard::ProviderStats;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Series names as registered; counters are exposed with a `_total` suffix.
pub mod names {
    /// Requests answered, by `method`, `route` (template) and `status`.
    pub const HTTP_REQUESTS: &str = "crypto_report_http_requests";
    /// Seconds until the response head, by `route`.
    pub const HTTP_DURATION: &str = "crypto_report_http_request_duration_seconds";
    /// Response body bytes of known length, by `route`.
    pub const HTTP_RESPONSE_BYTES: &str = "crypto_report_http_response_bytes";
    /// Page cache lookups that found the page, by `tier`.
    pub const CACHE_HITS: &str = "crypto_report_cache_hits";
    /// Page cache lookups that did not, by `tier`.
    pub const CACHE_MISSES: &str = "crypto_report_cache_misses";
    /// Misses that waited for another request's render, by `tier`.
    pub const CACHE_COALESCED: &str = "crypto_report_cache_coalesced_waits";
    /// Renders started on a miss, by `tier`.
    pub const CACHE_RENDERS: &str = "crypto_report_cache_renders";
    /// Pages held, by `tier`.
    pub const CACHE_ENTRIES: &str = "crypto_report_cache_entries";
    /// Weighted bytes held, by `tier`.
    pub const CACHE_BYTES: &str = "crypto_report_cache_bytes";
    /// Second-tier writes (`tier="l2"`; the store's redb table, or Redis).
    pub const CACHE_WRITES: &str = "crypto_report_cache_writes";
    /// Second-tier calls that failed or timed out (each served as a miss).
    pub const CACHE_ERRORS: &str = "crypto_report_cache_errors";
    /// 1 while the shared Redis answers, 0 while instances serve without it.
    pub const REDIS_UP: &str = "crypto_report_redis_up";
    /// Calls sent to a market data provider, by `provider`.
    pub const PROVIDER_CALLS: &str = "crypto_report_provider_calls";
    /// Failed provider calls, by `provider`.
    pub const PROVIDER_FAILURES: &str = "crypto_report_provider_failures";
    /// Seconds per provider request attempt, by `provider`.
    pub const PROVIDER_DURATION: &str = "crypto_report_provider_request_duration_seconds";
    /// 1 for the `state` (closed, open, half_open) each `provider`'s breaker is in, else 0.
    pub const PROVIDER_BREAKER: &str = "crypto_report_provider_breaker_state";
    /// Connected WebSocket clients.
    pub const WS_CLIENTS: &str = "crypto_report_websocket_clients";
    /// What slow WebSocket clients lost, by `kind` (client, snapshot, announcement).
    pub const WS_DROPPED: &str = "crypto_report_websocket_dropped";
    /// Reports in the store.
    pub const REPORTS: &str = "crypto_report_reports";
    /// Size of the store file in bytes.
    pub const STORE_BYTES: &str = "crypto_report_store_bytes";
    /// Seconds since the server started.
    pub const UPTIME: &str = "crypto_report_uptime_seconds";
    /// Seconds since the last successful PostgreSQL sync pass started (absent before one).
    pub const SYNC_LAG: &str = "crypto_report_sync_lag_seconds";
    /// PostgreSQL sync passes, by `outcome` (`ok`, `failed`).
    pub const SYNC_PASSES: &str = "crypto_report_sync_passes";
    /// Reports the sync wrote, by `kind` (`new`, `updated`).
    pub const SYNC_REPORTS: &str = "crypto_report_sync_reports";
    /// Announcement deliveries, by `target` and `outcome` (`sent`, `retried`, `failed`).
    pub const ANNOUNCE_DELIVERIES: &str = "crypto_report_announce_deliveries";
    /// Announcements waiting in the outbox, by `target`.
    pub const ANNOUNCE_QUEUED: &str = "crypto_report_announce_queued";
    /// 1, labelled with what this build is: `version`, `commit`, `date`, `target`, `glibc`.
    pub const BUILD_INFO: &str = "crypto_report_build_info";
}

/// Buckets of request latencies (seconds): 100 µs to ~6.5 s.
fn request_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 4.0, 9)
}

/// A route template as a label value. Holds axum's `MatchedPath`, whose clone is a reference
/// count: labelling a request allocates nothing.
#[derive(Clone, Debug)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: Route,
}

type HistogramFamily = Family<RouteLabel, Histogram, fn() -> Histogram>;

/// The series counted on the request path; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    bytes: Family<RouteLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Requests that matched no route share one label, so a scan cannot grow the series.
const UNMATCHED: &str = "unmatched";

impl Metrics {
    pub fn new() -> Metrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(request_buckets()));
        let bytes = Family::<RouteLabel, Counter>::default();
        let mut registry = Registry::default();
        registry.register(names::HTTP_REQUESTS, "Requests answered", requests.clone());
        registry.register(
            names::HTTP_DURATION,
            "Seconds until the response head",
            duration.clone(),
        );
        registry.register(
            names::HTTP_RESPONSE_BYTES,
            "Response body bytes of known length",
            bytes.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            requests,
            duration,
            bytes,
        }
    }

    /// Starts timing `req`; finish with [`Observation::finish`] on its response.
    pub fn observe(&self, req: &Request) -> Observation {
        let route = Route(req.extensions().get::<MatchedPath>().cloned());
        let method = match *req.method() {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            _ => "other",
        };
        Observation {
            started: Instant::now(),
            method,
            route,
        }
    }

    /// The whole exposition: the request series, then `sample`.
    pub fn render(&self, sample: Sample) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(sample));
        prometheus_client::encoding::prometheus_text::encode(&mut out, &scrape)?;
        Ok(out)
    }
}

/// One request being timed.
pub struct Observation {
    started: Instant,
    method: &'static str,
    route: Route,
}

impl Observation {
    /// Time since the request came.
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Counts the response; returns the time since the request came.
    pub fn finish(self, metrics: &Metrics, response: &Response) -> std::time::Duration {
        let elapsed = self.started.elapsed();
        let route = RouteLabel {
            route: self.route.clone(),
        };
        if let Some(len) = axum::body::HttpBody::size_hint(response.body()).exact() {
            metrics.bytes.get_or_create(&route).inc_by(len);
        }
        metrics
            .duration
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
        metrics
            .requests
            .get_or_create(&RequestLabels {
                method: self.method,
                route: self.route,
                status: response.status().as_u16(),
            })
            .inc();
        elapsed
    }
}

/// Everything read from its owner at scrape time.
#[derive(Debug, Default)]
pub struct Sample {
    pub pages: CacheStats,
    pub providers: Vec<(ProviderStats, Histogram)>,
    pub ws_clients: u64,
    pub ws_drops: DropCounts,
    /// `None` when the store could not be read.
    pub reports: Option<u64>,
    pub store_bytes: Option<u64>,
    pub uptime: Duration,
    /// The PostgreSQL sync, when there is one.
    pub sync: Option<crate::sync::Status>,
    /// Per announcement target: its outcomes and what waits for it.
    pub announce: Vec<(String, crate::announce::TargetStatus, u64)>,
}

/// Encodes one series of several label sets.
fn series<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = ([(&'static str, String); 1], M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One series without labels.
fn single<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: M,
) -> Result<(), std::fmt::Error> {
    let kind = value.metric_type();
    value.encode(encoder.encode_descriptor(name, help, None, kind)?)
}

fn tier(value: u64) -> Option<([(&'static str, String); 1], ConstCounter)> {
    Some(([("tier", "l1".to_owned())], ConstCounter::new(value)))
}

fn gauge(value: u64) -> ConstGauge {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

impl Collector for Sample {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter as C, Gauge as G, Histogram as H};
        let p = &self.pages;
        let l2 = &p.l2;
        let both = |l1: u64, l2v: u64| {
            [
                ([("tier", "l1".to_owned())], ConstCounter::new(l1)),
                ([("tier", "l2".to_owned())], ConstCounter::new(l2v)),
            ]
        };
        series(
            &mut e,
            names::CACHE_HITS,
            "Page cache hits.",
            C,
            both(p.hits, l2.hits),
        )?;
        series(
            &mut e,
            names::CACHE_MISSES,
            "Page cache misses.",
            C,
            both(p.misses, l2.misses),
        )?;
        let l2_only = |v: u64| Some(([("tier", "l2".to_owned())], ConstCounter::new(v)));
        series(
            &mut e,
            names::CACHE_WRITES,
            "Second-tier writes.",
            C,
            l2_only(l2.puts),
        )?;
        series(
            &mut e,
            names::CACHE_ERRORS,
            "Second-tier calls that failed (served as misses).",
            C,
            l2_only(l2.errors),
        )?;
        if l2.tier == "redis" {
            let up = gauge(u64::from(!l2.state.starts_with("degraded")));
            single(&mut e, names::REDIS_UP, "1 while Redis answers.", up)?;
        }
        for (name, help, value) in [
            (
                names::CACHE_COALESCED,
                "Misses that waited for another render.",
                p.coalesced,
            ),
            (
                names::CACHE_RENDERS,
                "Renders started on a miss.",
                p.renders,
            ),
        ] {
            series(&mut e, name, help, C, tier(value))?;
        }
        for (name, help, value) in [
            (names::CACHE_ENTRIES, "Pages held.", p.entries),
            (names::CACHE_BYTES, "Weighted bytes held.", p.weighted_bytes),
        ] {
            let row = ([("tier", "l1".to_owned())], gauge(value));
            series(&mut e, name, help, G, Some(row))?;
        }
        let by_provider = |f: fn(&ProviderStats) -> u64| {
            self.providers
                .iter()
                .map(move |(s, _)| ([("provider", s.name.to_owned())], ConstCounter::new(f(s))))
        };
        series(
            &mut e,
            names::PROVIDER_CALLS,
            "Provider calls sent.",
            C,
            by_provider(|s| s.calls),
        )?;
        series(
            &mut e,
            names::PROVIDER_FAILURES,
            "Provider calls failed.",
            C,
            by_provider(|s| s.failures),
        )?;
        let latency = self
            .providers
            .iter()
            .map(|(s, h)| ([("provider", s.name.to_owned())], h.clone()));
        series(
            &mut e,
            names::PROVIDER_DURATION,
            "Seconds per provider request.",
            H,
            latency,
        )?;
        let mut breaker = e.encode_descriptor(
            names::PROVIDER_BREAKER,
            "1 for the state each provider's circuit breaker is in.",
            None,
            G,
        )?;
        for (s, _) in &self.providers {
            for state in ["closed", "open", "half_open"] {
                let labels = [("provider", s.name), ("state", state)];
                ConstGauge::new(i64::from(s.breaker == state))
                    .encode(breaker.encode_family(&labels)?)?;
            }
        }
        single(
            &mut e,
            names::WS_CLIENTS,
            "Connected WebSocket clients.",
            gauge(self.ws_clients),
        )?;
        let d = self.ws_drops;
        let drops = [
            ("client", d.slow_clients),
            ("snapshot", d.skipped_snapshots),
            ("announcement", d.missed_announcements),
        ]
        .map(|(kind, n)| ([("kind", kind.to_owned())], ConstCounter::new(n)));
        series(
            &mut e,
            names::WS_DROPPED,
            "What slow WebSocket clients lost.",
            C,
            drops,
        )?;
        if let Some(n) = self.reports {
            single(&mut e, names::REPORTS, "Reports in the store.", gauge(n))?;
        }
        if let Some(n) = self.store_bytes {
            single(
                &mut e,
                names::STORE_BYTES,
                "Size of the store file.",
                gauge(n),
            )?;
        }
        if let Some(sync) = &self.sync {
            if let Some(lag) = sync.lag_seconds {
                let help = "Seconds since the last successful sync pass started.";
                single(&mut e, names::SYNC_LAG, help, gauge(lag.max(0) as u64))?;
            }
            let passes = [
                ("ok", sync.passes - sync.failures),
                ("failed", sync.failures),
            ]
            .map(|(o, n)| ([("outcome", o.to_owned())], ConstCounter::new(n)));
            series(&mut e, names::SYNC_PASSES, "Sync passes.", C, passes)?;
            let written = [("new", sync.written_new), ("updated", sync.written_updated)]
                .map(|(k, n)| ([("kind", k.to_owned())], ConstCounter::new(n)));
            series(
                &mut e,
                names::SYNC_REPORTS,
                "Reports the sync wrote.",
                C,
                written,
            )?;
        }
        if !self.announce.is_empty() {
            let mut deliveries = e.encode_descriptor(
                names::ANNOUNCE_DELIVERIES,
                "Announcement deliveries by target and outcome.",
                None,
                C,
            )?;
            for (target, s, _) in &self.announce {
                for (outcome, n) in [
                    ("sent", s.sent),
                    ("retried", s.retried),
                    ("failed", s.failed),
                ] {
                    let labels = [("target", target.as_str()), ("outcome", outcome)];
                    ConstCounter::new(n).encode(deliveries.encode_family(&labels)?)?;
                }
            }
            let queued = self
                .announce
                .iter()
                .map(|(t, _, q)| ([("target", t.clone())], gauge(*q)));
            series(
                &mut e,
                names::ANNOUNCE_QUEUED,
                "Announcements waiting in the outbox.",
                G,
                queued,
            )?;
        }
        let uptime = ConstGauge::new(self.uptime.as_secs_f64());
        single(&mut e, names::UPTIME, "Seconds since start.", uptime)?;
        let b = crate::build_info::BuildInfo::get();
        let (commit, glibc) = (b.commit_label(), b.glibc.to_string());
        let labels = [
            ("version", b.version),
            ("commit", commit.as_str()),
            ("date", b.date),
            ("target", b.target),
            ("glibc", glibc.as_str()),
        ];
        let mut info = e.encode_descriptor(names::BUILD_INFO, "What this build is.", None, G)?;
        ConstGauge::new(1).encode(info.encode_family(&labels)?)
    }
}

/// Reads every scrape-time series from `state`.
pub async fn sample(state: &crate::AppState) -> Sample {
    let store = Arc::clone(&state.store);
    let reports = store.call(|s| s.count()).await;
    if let Err(e) = &reports {
        tracing::warn!(error = %e, "metrics: cannot count the reports");
    }
    let store_bytes = std::fs::metadata(state.store.path()).map(|m| m.len()).ok();
    Sample {
        pages: state.pages.stats().await,
        providers: state.market.provider_stats(),
        ws_clients: u64::try_from(state.live.clients()).unwrap_or(u64::MAX),
        ws_drops: state.live.drops(),
        reports: reports.ok(),
        store_bytes,
        uptime: state.started.elapsed(),
        sync: state.sync.as_ref().map(crate::sync::Sync::status),
        announce: match &state.announcer {
            Some(a) => a.per_target().await,
            None => Vec::new(),
        },
    }
}
