//! Shared fixtures for the integration tests: a temp store with reports, a request helper, a
//! real server on 127.0.0.1:0 (`server`) and the fake provider server (`fake`).
#![allow(dead_code)]

pub mod fake;
pub mod pg;
pub mod process;
pub mod receiver;
pub mod redis;
pub mod server;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use crypto_report::market::Market;
use crypto_report::reports::{Batch, Report};
use crypto_report::secret::Secret;
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::workers::{Pool, PoolStats};
use crypto_report::{AppState, Feed, Parts, Settings};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Report `id`, published `id` days after 2026-01-01, whose Vietnamese body is `words`
/// pseudo-random hex words (at most `mask` each) drawn from `noise`: pages that compress badly
/// and differ from report to report, for cache and transfer budgets.
pub fn noisy_report(id: u64, words: usize, mask: u64, noise: &mut u64) -> Report {
    let mut r = report(id, "2026-01-01T08:00:00Z");
    r.created_at += chrono::TimeDelta::days(i64::try_from(id).expect("id"));
    let words: Vec<String> = (0..words)
        .map(|_| {
            *noise ^= *noise << 13;
            *noise ^= *noise >> 7;
            *noise ^= *noise << 17;
            format!("{:x}", *noise & mask)
        })
        .collect();
    r.html_content = format!(
        "<section id=\"a\"><h2>Báo cáo {id}</h2><p>{}</p></section>",
        words.join(" ")
    );
    r
}

pub fn report(id: u64, created_at: &str) -> Report {
    Report {
        id,
        html_content: format!(
            "<section id=\"tong-quan\"><h2>Tổng quan {id}</h2><p>Thị trường hôm nay số {id}.</p></section><section id=\"btc\"><h2>Phân tích BTC</h2><p>Giá BTC.</p></section>"
        ),
        css_content: Some(".x{color:red}".into()),
        js_content: Some("function initializeAllVisuals_report(l){}".into()),
        html_content_en: Some(format!(
            "<section id=\"overview\"><h2>Overview {id}</h2><p>Today's market number {id}.</p></section>"
        )),
        js_content_en: None,
        created_at: created_at.parse().expect("timestamp"),
    }
}

/// The reports of a fixture folder under `tests/fixtures/`, laid out like `data/samples/`
/// (a folder per report with `meta.json`, `vi.html`, and optionally `en.html`, `style.css`,
/// `report.js`), in id order.
pub fn fixture_reports(name: &str) -> Vec<Report> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut reports: Vec<Report> = std::fs::read_dir(&root)
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            let meta: serde_json::Value =
                serde_json::from_str(&read("meta.json").expect("meta.json")).expect("meta");
            Report {
                id: meta["id"].as_u64().expect("id"),
                html_content: read("vi.html").expect("vi.html"),
                css_content: read("style.css"),
                js_content: read("report.js"),
                html_content_en: read("en.html"),
                js_content_en: None,
                created_at: crypto_report::import::parse_created_at(
                    meta["created_at"].as_str().expect("created_at"),
                )
                .expect("date"),
            }
        })
        .collect();
    reports.sort_by_key(|r| r.id);
    reports
}

pub struct TestApp {
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// A store with `n` reports, ids 1..=n, one day apart (id n is the newest).
    pub fn with_reports(n: u64) -> TestApp {
        Self::build(n, true)
    }

    pub fn build(n: u64, admin: bool) -> TestApp {
        Self::build_with(n, admin, |_| {})
    }

    /// [`TestApp::build`], with `configure` changing the parts before they are built (a market
    /// feed, settings).
    pub fn build_with(n: u64, admin: bool, configure: impl FnOnce(&mut Parts)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
        let reports: Vec<Report> = (1..=n)
            .map(|i| {
                let day = chrono::DateTime::parse_from_rfc3339("2026-01-01T08:00:00Z")
                    .expect("date")
                    .to_utc()
                    + chrono::Duration::days(i as i64);
                let mut r = report(i, "2026-01-01T08:00:00Z");
                r.created_at = day;
                r
            })
            .collect();
        let mut settings = Settings::new("https://reports.example");
        if admin {
            settings.admin_token = Some(Secret::new(ADMIN_TOKEN));
        }
        let mut parts = Parts::new(store, settings);
        configure(&mut parts);
        let state = start(parts);
        if !reports.is_empty() {
            state.publisher.publish(Batch::of(reports)).expect("seed");
        }
        TestApp { state, _dir: dir }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.request(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        let mut builder = Request::get(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        self.request(builder.body(Body::empty()).expect("request"))
            .await
    }

    pub async fn request(&self, req: Request<Body>) -> Reply {
        request(&self.state, req).await
    }
}

/// The server of `parts`, its tasks running.
pub fn start(parts: Parts) -> AppState {
    parts.build().expect("state").start()
}

/// The server of `parts` showing `market` (made in `parts.background`, or anywhere the test
/// drives it).
pub fn with_market(mut parts: Parts, market: &Market) -> AppState {
    parts.feed = Feed::Running(market.clone());
    start(parts)
}

/// Writes reports through the one publish path, as every importer does.
pub async fn publish(state: &AppState, reports: Vec<Report>) {
    state
        .publisher
        .publish_async(Batch::of(reports))
        .await
        .expect("publish");
}

/// A state holding the bundled samples (ids 101-107, 14-21 Nov 2026) in a temporary store,
/// with no market feed.
pub fn samples() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
    let state = AppState::new(store, Settings::new("https://reports.example")).expect("state");
    crypto_report::demo::seed(&state.publisher).expect("seed");
    (state, dir)
}

/// A server started on a store already holding the bundled samples (as `serve` starts on its
/// store), with `configure` changing the parts before they are built (a market feed, the
/// market history, other instances).
pub fn samples_with(configure: impl FnOnce(&mut Parts)) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    crypto_report::demo::seed(&crypto_report::reports::Publisher::new(
        std::sync::Arc::clone(&store),
    ))
    .expect("seed");
    let mut parts = Parts::new(store, Settings::new("https://reports.example"));
    configure(&mut parts);
    (start(parts), dir)
}

/// `GET uri` through `app(state)`.
pub async fn get(state: &AppState, uri: &str) -> Reply {
    request(
        state,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

/// Runs one request through `app(state)` and collects the whole response. Like every real
/// HTTP/1.1 client, it sends a `Host` header unless the test set one (or several).
pub async fn request(state: &AppState, mut req: Request<Body>) -> Reply {
    if !req.headers().contains_key(header::HOST) {
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("reports.example"));
    }
    let response = crypto_report::app(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// Upper bound of the waits of [`occupy`] and [`until`].
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Holds the one thread of `pool` until the returned sender is dropped or used.
pub async fn occupy(pool: &Pool) -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let pool = pool.clone();
    tokio::spawn(async move {
        pool.run(move |_| {
            let _ = started_tx.send(());
            let _ = held.recv_timeout(POOL_WAIT);
        })
        .await
    });
    tokio::time::timeout(POOL_WAIT, started)
        .await
        .expect("the holding job starts")
        .expect("started");
    release
}

/// Waits until `check` holds for the stats of `pool` (at most 20 s).
pub async fn until(pool: &Pool, what: &str, check: impl Fn(&PoolStats) -> bool) {
    let deadline = std::time::Instant::now() + POOL_WAIT;
    while !check(&pool.stats()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {:?}",
            pool.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Marks the store at `path` as written by a later release with a newer schema, as that
/// release would (a test stands in for a program this one does not know).
pub fn from_a_newer_release(path: &std::path::Path, release: &str) {
    use redb::TableDefinition;
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let db = redb::Database::create(path).expect("open");
    let tx = db.begin_write().expect("tx");
    {
        let mut meta = tx.open_table(META).expect("meta");
        let newer = crypto_report::store::SCHEMA_VERSION + 1;
        meta.insert("schema_version", newer.to_le_bytes().as_slice())
            .expect("schema");
        meta.insert("written_by", release.as_bytes())
            .expect("writer");
    }
    tx.commit().expect("commit");
}
