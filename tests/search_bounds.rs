//! What one search may ask for and spend, against real servers: the `demo` binary for the
//! query bounds (memory of the process included), a server on 127.0.0.1:0 for the search
//! pool (queue limit, 503 with Retry-After, and the work given up when a request is answered
//! 408 or its client goes away).

mod common;

use std::time::{Duration, Instant};

use common::process::Instance;
use common::server::{RunningServer, raw_get};
use common::{occupy, until};
use crypto_report::search::PoolSettings;
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::{AppState, Settings};
use tokio::io::AsyncWriteExt;

/// Upper bound of every wait.
const WAIT: Duration = Duration::from_secs(20);
/// Peak memory the demo server may reach under the hostile searches: it starts near 100 MiB
/// (a debug build); the unbounded sloppy phrase alone took 2.4 GB.
const PEAK_RSS_KIB: u64 = 400 * 1024;

fn encode(q: &str) -> String {
    percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn hostile_searches_are_refused_with_the_bound_or_stay_cheap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Instance::demo(dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client");
    // Fifty different words (the grammar folds repeated ones into one) in under 200 characters.
    let fifty = (0..50)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let ten_slop = "\"the usd 2 1 btc 0 3 tỷ giá năm\"~4294967295";
    let long = "giá ".repeat(60);
    // (query, status, what the error says)
    let cases: Vec<(&str, u16, &str)> = vec![
        (&fifty, 400, "words"),
        (&long, 400, "characters"),
        ("\"a b\" \"c d\" \"e f\" \"g h\" \"i j\"", 400, "phrases"),
        ("a b, c d, e f, g h, i j", 400, "phrases"),
        // tantivy's grammar made these costly (a slop carried every position within it, a
        // range read every posting list); in ours they are words and phrases: answered, cheap.
        ("\"the usd 2 1 btc 0 3 tỷ\"~4294967295", 200, ""),
        (ten_slop, 200, ""),
        ("\"btc usd\"~9", 200, ""),
        ("all:[a TO zzzz]", 200, ""),
        ("all:/.*/", 200, ""),
        ("btc~4294967295", 200, ""),
        ("\"bitcoin gi\"*", 200, ""),
        ("lạm phát", 200, ""),
    ];
    runtime.block_on(async {
        let hits = |q: &'static str| {
            let url = server.url(&format!("/api/search?q={}", encode(q)));
            let client = client.clone();
            async move {
                let body: serde_json::Value = client
                    .get(&url)
                    .send()
                    .await
                    .expect("answer")
                    .json()
                    .await
                    .expect("json");
                body["total"].as_u64().expect("total")
            }
        };
        // The demo indexes its samples after it starts answering: the hostile searches run
        // against the whole index.
        let deadline = Instant::now() + WAIT;
        let mut bitcoin = hits("bitcoin").await;
        while bitcoin == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            bitcoin = hits("bitcoin").await;
        }
        assert!(bitcoin > 0, "the samples never became searchable");
        for (q, status, says) in &cases {
            let url = server.url(&format!("/api/search?q={}", encode(q)));
            let response = client.get(&url).send().await.expect("answered in time");
            assert_eq!(response.status().as_u16(), *status, "{q}");
            let body: serde_json::Value = response.json().await.expect("json");
            if *status == 200 {
                assert!(body["hits"].is_array(), "{q}: {body}");
            } else {
                let message = body["error"].as_str().unwrap_or("");
                assert!(message.contains(says), "{q}: {body}");
            }
            // The page refuses the same way, as a page.
            let page = server.url(&format!("/search?q={}", encode(q)));
            let response = client.get(&page).send().await.expect("answered in time");
            assert_eq!(response.status().as_u16(), *status, "page {q}");
        }
        // `~` is punctuation, not a fuzzy distance: the word alone, the same hits.
        assert_eq!(hits("bitcoin~").await, bitcoin);
        assert_eq!(hits("~bitcoin~2~").await, hits("bitcoin 2").await);
    });
    let peak = server.peak_rss_kib();
    assert!(
        peak < PEAK_RSS_KIB,
        "peak RSS {} MiB under hostile searches",
        peak / 1024
    );
}

/// The bundled samples in a temporary store, with these search and timeout settings.
fn samples_with(search: PoolSettings, request_timeout: Duration) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
    let mut settings = Settings::new("https://reports.example");
    settings.search = search;
    settings.request_timeout = request_timeout;
    let state = AppState::new(store, settings).expect("state");
    crypto_report::demo::seed(&state.publisher).expect("seed");
    (state, dir)
}

fn one_thread(queue: usize) -> PoolSettings {
    PoolSettings {
        workers: 1,
        queue,
        budget: Duration::from_secs(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_beyond_the_queue_get_503_with_retry_after() {
    let (state, _dir) = samples_with(one_thread(0), Duration::from_secs(30));
    let server = RunningServer::start(state.clone()).await;
    let release = occupy(&state.searches).await;
    for path in ["/api/search?q=bitcoin", "/search?q=bitcoin"] {
        let response = raw_get(server.addr, path).await;
        assert!(response.starts_with("HTTP/1.1 503"), "{path}: {response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("\r\nretry-after: 1\r\n"),
            "{path}: {response}"
        );
    }
    assert_eq!(state.searches.stats().refused, 2);
    // Store reads do not wait behind searches: their own pool.
    assert!(
        raw_get(server.addr, "/crypto_reports_list")
            .await
            .starts_with("HTTP/1.1 200")
    );
    drop(release);
    until(&state.searches, "the thread is free", |s| s.running == 0).await;
    let response = raw_get(server.addr, "/api/search?q=bitcoin").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_answered_408_is_given_up_not_run() {
    let (state, _dir) = samples_with(one_thread(4), Duration::from_secs(1));
    let server = RunningServer::start(state.clone()).await;
    let release = occupy(&state.searches).await;
    let response = raw_get(server.addr, "/api/search?q=bitcoin").await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(state.searches.stats().abandoned, 1);
    drop(release);
    until(&state.searches, "the queued search is dropped", |s| {
        s.dropped == 1 && s.waiting == 0
    })
    .await;
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_whose_client_went_away_is_given_up_not_run() {
    let (state, _dir) = samples_with(one_thread(4), Duration::from_secs(30));
    let server = RunningServer::start(state.clone()).await;
    let release = occupy(&state.searches).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /api/search?q=bitcoin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    until(&state.searches, "the search waits", |s| s.waiting == 1).await;
    drop(stream);
    until(&state.searches, "the request is given up", |s| {
        s.abandoned == 1
    })
    .await;
    drop(release);
    until(&state.searches, "the queued search is dropped", |s| {
        s.dropped == 1 && s.waiting == 0
    })
    .await;
    server.stop().await.expect("stop");
}
