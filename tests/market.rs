//! The market refresher against a fake provider server on 127.0.0.1:0 that serves the recorded
//! fixtures (tests/fixtures/providers, a copy of shared/fixtures/providers) and injects faults
//! per test. Nothing here touches the internet; every wait is bounded.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{StatusCode, header};
use common::fake::{
    CG_KEY, CMC_KEY, FINNHUB_KEY, FIXTURES, Fake, Fault, TAAPI_SECRET, config, fixture, with_cmc,
};
use common::request;
use crypto_report::market::binance;
use crypto_report::market::guard::{BreakerPolicy, Budget};
use crypto_report::market::{Config, Group, Market, Refresh, Snapshot, rsi};
use crypto_report::secret::Secret;
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::tasks::Background;
use crypto_report::{Parts, Settings};
use futures_util::future::join_all;
use serde_json::Value;

const SHARED_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/providers");
const ADMIN: &str = "market-test-admin-token-0123";
/// Upper bound of every wait; generous so a loaded CI machine does not flake.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Helpers

/// The fake provider server, with this binary's log capture installed first.
async fn fake_server() -> Fake {
    logs();
    Fake::start().await
}

struct Running {
    market: Market,
    _dir: tempfile::TempDir,
}

fn start(config: Config) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("store"));
    Running {
        market: Market::start(config, store, &Background::new()),
        _dir: dir,
    }
}

/// Waits until every group has been attempted and none is in flight.
async fn settle(m: &Market) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let h = m.health();
        let done = Group::ALL.iter().all(|g| {
            let s = &h["groups"][g.name()];
            !s["last_attempt"].is_null() && s["running"] == false
        });
        if done {
            return json(&m.current());
        }
        assert!(Instant::now() < deadline, "market never settled: {h:#}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `check` on the market until it holds.
async fn until(m: &Market, what: &str, check: impl Fn(&Value, &Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (snap, health) = (json(&m.current()), m.health());
        if check(&snap, &health) {
            return snap;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {snap:#}\n{health:#}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn json(s: &Snapshot) -> Value {
    serde_json::to_value(s).expect("snapshot json")
}

fn source(snap: &Value, field: &str) -> String {
    snap["freshness"][field]["source"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

/// A port where nothing listens.
async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

fn get(uri: &str) -> axum::http::Request<Body> {
    axum::http::Request::get(uri)
        .body(Body::empty())
        .expect("request")
}

fn post(uri: &str, token: Option<&str>) -> axum::http::Request<Body> {
    let mut b = axum::http::Request::post(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

/// The parts of a server on its own store; a live market is started on `parts.store`, in
/// `parts.background`.
fn app_parts(admin: bool) -> (Parts, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
    let mut settings = Settings::new("https://reports.example");
    if admin {
        settings.admin_token = Some(Secret::new(ADMIN));
    }
    (Parts::new(store, settings), dir)
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn primary_providers_fill_every_field() {
    let fake = fake_server().await;
    let run = start(with_cmc(config(&fake), &fake));
    let s = settle(&run.market).await;

    let expect = [
        ("btc_price_usd", 84250.0),
        ("btc_change_24h", -1.8423516724190832),
        ("eth_price_usd", 2953.41),
        ("sol_price_usd", 142.63),
        ("bnb_price_usd", 865.12),
        ("xrp_price_usd", 2.18),
        ("ada_price_usd", 0.641827),
        ("link_price_usd", 17.86),
        ("link_change_24h", 1.2679331877291),
        ("market_cap_usd", 2893417720518.4),
        ("market_cap_change_percentage_24h_usd", -1.27304881170432),
        ("volume_24h_usd", 118402665193.61),
        ("btc_market_cap_percentage", 58.1447105113275),
        ("eth_market_cap_percentage", 12.3291846603172),
        ("fng_value", 38.0),
        ("rsi_14", 44.87126034991531),
        ("btc_rsi_14", 44.87126034991531),
    ];
    for (field, want) in expect {
        assert_eq!(s[field].as_f64(), Some(want), "{field}");
        assert_eq!(s["freshness"][field]["stale"], false, "{field}");
    }
    assert_eq!(s["fng_value_classification"], "Fear");
    let dia = &s["us_stock_indices"]["DIA"];
    assert_eq!(
        (dia["symbol"].as_str(), dia["price"].as_f64()),
        (Some("DIA"), Some(481.27))
    );
    assert_eq!(
        (dia["change"].as_f64(), dia["change_percent"].as_f64()),
        (Some(-1.78), Some(-0.3685))
    );
    assert_eq!(
        s["us_stock_indices"]["QQQM"]["price"].as_f64(),
        Some(262.41)
    );
    assert_eq!(
        s["data_sources"],
        serde_json::json!({
            "prices": "coingecko", "global": "coingecko", "fng": "alternative.me",
            "rsi": "taapi", "us_stock_indices": "finnhub"
        })
    );
    assert_eq!(s["partial_failure"], false);
    assert_eq!(s["demo"], false);
    assert!(s["last_updated"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(s["btc_sparkline"].as_array().map(Vec::len), Some(1));
    assert_eq!(s["btc_sparkline"][0][1].as_f64(), Some(84250.0));

    // The fallbacks were never needed.
    for key in ["cmc.quotes", "cmc.global", "bn.ticker", "bn.klines"] {
        assert_eq!(fake.hits(key), 0, "{key}");
    }
    // Credentials where each provider wants them; Finnhub's never in the URL.
    assert_eq!(
        fake.header("cg.price", "x-cg-demo-api-key").as_deref(),
        Some(CG_KEY)
    );
    assert_eq!(
        fake.header("fh.SPY", "x-finnhub-token").as_deref(),
        Some(FINNHUB_KEY)
    );
    assert_eq!(fake.query("fh.SPY"), "symbol=SPY");
    assert!(
        fake.query("taapi")
            .contains(&format!("secret={TAAPI_SECRET}"))
    );
    assert!(
        fake.query("taapi").contains("symbol=BTC%2FUSDT")
            && fake.query("taapi").contains("interval=1d")
    );
    assert!(fake.query("cg.price").contains("include_24hr_change=true"));
    let ua = fake.header("fng", "user-agent").unwrap_or_default();
    assert!(ua.starts_with("crypto-report/"), "{ua}");

    let h = run.market.health();
    assert_eq!(h["mode"], "live");
    assert_eq!(h["providers"]["coingecko"]["breaker"], "closed");
    assert_eq!(h["providers"]["coinmarketcap"]["configured"], true);
    assert!(h["data_age_seconds"].as_i64().is_some_and(|a| a < 5));
    run.market.stop().await;
}

#[tokio::test]
async fn prices_fall_back_coingecko_then_cmc_then_binance() {
    for cmc_shape in [
        "cmc_v2_quotes_latest_btc.json",
        "cmc_v1_quotes_latest_btc.json",
    ] {
        let fake = fake_server().await;
        fake.sticky("cg.price", Fault::Status(500, "{}", None));
        fake.serve("cmc.quotes", cmc_shape);
        let run = start(with_cmc(config(&fake), &fake));
        let s = settle(&run.market).await;
        // The CMC fixture knows only BTC (and, in v2, an impostor BTC it must skip).
        assert_eq!(
            s["btc_price_usd"].as_f64(),
            Some(84262.91374027163),
            "{cmc_shape}"
        );
        assert_eq!(s["btc_change_24h"].as_f64(), Some(-1.79211466));
        assert_eq!(source(&s, "btc_price_usd"), "coinmarketcap");
        assert_eq!(s["eth_price_usd"].as_f64(), Some(2953.42));
        assert_eq!(s["eth_change_24h"].as_f64(), Some(-2.62));
        assert_eq!(source(&s, "eth_price_usd"), "binance");
        assert_eq!(s["data_sources"]["prices"], "coinmarketcap,binance");
        assert_eq!(s["partial_failure"], false);
        // Order: CoinGecko (retried once), then CMC for all, then Binance for what was left.
        let (cg, cmc, bn) = (
            fake.times("cg.price"),
            fake.times("cmc.quotes"),
            fake.times("bn.ticker"),
        );
        assert_eq!((cg.len(), cmc.len(), bn.len()), (2, 1, 1));
        assert!(cg[1] <= cmc[0] && cmc[0] <= bn[0]);
        assert_eq!(
            fake.query("cmc.quotes"),
            "symbol=BTC%2CETH%2CSOL%2CBNB%2CXRP%2CADA%2CLINK"
        );
        assert_eq!(
            fake.header("cmc.quotes", "x-cmc_pro_api_key").as_deref(),
            Some(CMC_KEY)
        );
        let q = fake.query("bn.ticker");
        assert!(
            q.starts_with("symbols=%5B%22ETHUSDT%22") && !q.contains("BTC"),
            "{q}"
        );
        run.market.stop().await;
    }
}

#[tokio::test]
async fn global_falls_back_to_cmc_and_is_null_without_it() {
    let fake = fake_server().await;
    fake.sticky("cg.global", Fault::Status(503, "{}", None));
    let run = start(with_cmc(config(&fake), &fake));
    let s = settle(&run.market).await;
    assert_eq!(s["market_cap_usd"].as_f64(), Some(2911640317724.118));
    assert_eq!(
        s["market_cap_change_percentage_24h_usd"].as_f64(),
        Some(-1.309833089572121)
    );
    assert_eq!(
        s["btc_market_cap_percentage"].as_f64(),
        Some(57.831923370142)
    );
    assert_eq!(s["data_sources"]["global"], "coinmarketcap");
    assert_eq!(
        fake.header("cmc.global", "x-cmc_pro_api_key").as_deref(),
        Some(CMC_KEY)
    );
    run.market.stop().await;

    let run = start(config(&fake));
    let s = settle(&run.market).await;
    assert!(s["market_cap_usd"].is_null() && s["volume_24h_usd"].is_null());
    assert!(s["data_sources"]["global"].is_null());
    assert_eq!(s["partial_failure"], true);
    assert_eq!(
        s["btc_price_usd"].as_f64(),
        Some(84250.0),
        "other groups unaffected"
    );
    run.market.stop().await;
}

#[tokio::test]
async fn rsi_falls_back_to_local_klines() {
    let closes = binance::parse_closes(&fixture("binance_klines_btcusdt_1d.json")).expect("closes");
    let local = rsi::wilder(&closes, rsi::PERIOD).expect("rsi");

    // TAAPI's free tier answers a rate limit with 200 and an error body.
    let fake = fake_server().await;
    fake.sticky(
        "taapi",
        Fault::Body(
            String::from_utf8(fixture("taapi_error_ratelimit_http200.json")).expect("utf8"),
        ),
    );
    let run = start(config(&fake));
    let s = settle(&run.market).await;
    assert_eq!(s["rsi_14"].as_f64(), Some(local));
    assert_eq!(s["btc_rsi_14"].as_f64(), Some(local));
    assert_eq!(s["data_sources"]["rsi"], "binance_klines");
    assert_eq!(fake.hits("taapi"), 1, "an error body is not retried");
    assert_eq!(
        fake.query("bn.klines"),
        "symbol=BTCUSDT&interval=1d&limit=100"
    );
    run.market.stop().await;

    // Without a TAAPI secret the klines are the only source, and TAAPI is never called.
    let fake = fake_server().await;
    let mut c = config(&fake);
    c.taapi = None;
    let run = start(c);
    let s = settle(&run.market).await;
    assert_eq!(s["rsi_14"].as_f64(), Some(local));
    assert_eq!((fake.hits("taapi"), fake.hits("bn.klines")), (0, 1));
    assert_eq!(s["partial_failure"], false);
    run.market.stop().await;
}

#[tokio::test]
async fn a_finnhub_symbol_without_data_fails_alone() {
    let fake = fake_server().await;
    fake.serve("fh.QQQM", "finnhub_quote_unknown_symbol.json");
    let run = start(config(&fake));
    let s = settle(&run.market).await;
    let idx = &s["us_stock_indices"];
    assert_eq!(idx["SPY"]["price"].as_f64(), Some(702.84));
    assert_eq!(idx["DIA"]["price"].as_f64(), Some(481.27));
    assert!(idx["QQQM"]["price"].is_null() && idx["QQQM"]["change"].is_null());
    assert_eq!(idx["QQQM"]["symbol"], "QQQM");
    assert!(s["freshness"]["us_stock_indices.QQQM"].is_null());
    assert_eq!(s["partial_failure"], true);
    assert_eq!(
        (
            fake.hits("fh.DIA"),
            fake.hits("fh.SPY"),
            fake.hits("fh.QQQM")
        ),
        (1, 1, 1)
    );
    run.market.stop().await;
}

/// What the operator never configured is not a failure: without a Finnhub key the indices
/// are "unconfigured" in the snapshot and in /health, never failing, and never called.
#[tokio::test]
async fn a_source_never_configured_is_not_failing() {
    let fake = fake_server().await;
    let mut c = config(&fake);
    c.finnhub = None;
    let prices_every = c.cadence.prices;
    let run = start(c);
    let s = settle(&run.market).await;
    assert_eq!(s["unconfigured"], serde_json::json!(["us_stock_indices"]));
    assert_eq!(s["partial_failure"], false, "{s}");
    assert_eq!(
        s["refresh_seconds"].as_f64(),
        Some(prices_every.as_secs_f64())
    );
    let h = run.market.health();
    let indices = &h["groups"]["us_stock_indices"];
    assert_eq!(indices["configured"], false);
    assert_eq!(indices["errors"], serde_json::json!([]));
    assert_eq!(h["groups"]["prices"]["configured"], true);
    assert_eq!(fake.hits("fh.SPY"), 0);
    run.market.stop().await;

    // With a key the group is configured like the others.
    let run = start(config(&fake));
    let s = settle(&run.market).await;
    assert_eq!(s["unconfigured"], serde_json::json!([]));
    run.market.stop().await;
}

/// Binance's hourly candles of the last day, as its API writes them, ending now.
fn hourly_candles() -> String {
    const HOUR: i64 = 3_600_000;
    let now = chrono::Utc::now().timestamp_millis();
    let first = now - now % HOUR - 23 * HOUR;
    let rows: Vec<Value> = (0..24)
        .map(|i| {
            let open = first + i * HOUR;
            let (start, close) = (83_000.0 + 50.0 * i as f64, 83_040.0 + 50.0 * i as f64);
            let (start, close) = (format!("{start:.2}"), format!("{close:.2}"));
            serde_json::json!([
                open,
                start,
                close,
                start,
                close,
                "1.0",
                open + HOUR - 1,
                "1.0",
                1,
                "1.0",
                "1.0",
                "0"
            ])
        })
        .collect();
    Value::Array(rows).to_string()
}

/// The sparkline has the last day at start: one call for Binance's hourly candles fills the
/// hours the store's history lacks; a failing call leaves the line as it was.
#[tokio::test]
async fn the_sparkline_starts_with_the_last_day_from_hourly_candles() {
    let fake = fake_server().await;
    fake.sticky("bn.hourly", Fault::Body(hourly_candles()));
    let run = start(config(&fake));
    let s = until(&run.market, "a day of candles", |s, _| {
        s["btc_sparkline"].as_array().is_some_and(|a| a.len() >= 24)
    })
    .await;
    let line = s["btc_sparkline"].as_array().expect("sparkline");
    let first = line[0][0].as_i64().expect("time");
    let last = line[line.len() - 1][0].as_i64().expect("time");
    // From the first candle's open (23 hours before this hour began) to now.
    assert!(last - first >= 23 * 3_600_000, "{first} .. {last}");
    assert_eq!(line[0][1].as_f64(), Some(83_000.0));
    assert!(
        line.windows(2).all(|w| w[0][0].as_i64() < w[1][0].as_i64()),
        "oldest first"
    );
    assert_eq!(fake.hits("bn.hourly"), 1, "one call");
    assert_eq!(
        fake.query("bn.hourly"),
        "symbol=BTCUSDT&interval=1h&limit=24"
    );
    run.market.stop().await;

    // Candles older than the day (the recorded fixture's) or a failing call add nothing.
    for fault in [None, Some(Fault::Status(500, "{}", None))] {
        let fake = fake_server().await;
        if let Some(f) = fault {
            fake.sticky("bn.hourly", f);
        }
        let run = start(config(&fake));
        settle(&run.market).await;
        until(&run.market, "the call made", |_, _| {
            fake.hits("bn.hourly") >= 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let s = json(&run.market.current());
        // Only the live price points (one per 15-minute bucket) of these few seconds.
        assert!(
            s["btc_sparkline"].as_array().is_some_and(|a| a.len() <= 2),
            "{}",
            s["btc_sparkline"]
        );
        run.market.stop().await;
    }
}

#[tokio::test]
async fn a_null_change_stays_null() {
    let fake = fake_server().await;
    fake.serve("cg.price", "coingecko_simple_price_null_change.json");
    let run = start(config(&fake));
    let s = settle(&run.market).await;
    assert_eq!(s["sol_price_usd"].as_f64(), Some(142.63));
    assert!(s["sol_change_24h"].is_null(), "{}", s["sol_change_24h"]);
    assert_eq!(source(&s, "sol_change_24h"), "coingecko");
    // Coins CoinGecko left out came from the next provider, with their own changes.
    assert_eq!(source(&s, "bnb_price_usd"), "binance");
    assert_eq!(s["bnb_change_24h"].as_f64(), Some(0.788));
    run.market.stop().await;
}

#[tokio::test]
async fn bad_answers_are_failures_that_trigger_the_fallback() {
    let cases: Vec<(&str, Fault)> = vec![
        (
            "zero",
            Fault::Body(r#"{"bitcoin":{"usd":0,"usd_24h_change":1.0}}"#.into()),
        ),
        (
            "negative",
            Fault::Body(r#"{"bitcoin":{"usd":-84250,"usd_24h_change":1.0}}"#.into()),
        ),
        (
            "NaN",
            Fault::Body(r#"{"bitcoin":{"usd":NaN,"usd_24h_change":1.0}}"#.into()),
        ),
        (
            "absurd",
            Fault::Body(r#"{"bitcoin":{"usd":2.5e7,"usd_24h_change":1.0}}"#.into()),
        ),
        (
            "missing",
            Fault::Body(r#"{"bitcoin":{"usd_24h_change":1.0}}"#.into()),
        ),
        (
            "invalid JSON",
            Fault::Body(r#"{"bitcoin": {"usd": 84250"#.into()),
        ),
        ("oversized", Fault::Huge),
        ("dripping", Fault::Drip),
        ("stalled", Fault::Stall),
        ("500", Fault::Status(500, "{}", None)),
    ];
    let started = Instant::now();
    join_all(cases.into_iter().map(|(name, fault)| async move {
        let fake = fake_server().await;
        fake.sticky("cg.price", fault);
        let mut c = config(&fake);
        if name == "oversized" {
            // Time enough that only the size cap can stop it, even on a loaded machine.
            c.http.total_timeout = Duration::from_secs(5);
        }
        let run = start(c);
        let s = settle(&run.market).await;
        assert_eq!(s["btc_price_usd"].as_f64(), Some(84251.37), "{name}");
        assert_eq!(source(&s, "btc_price_usd"), "binance", "{name}");
        let h = run.market.health();
        let err = h["providers"]["coingecko"]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(!err.is_empty(), "{name}: failure recorded");
        if name == "oversized" {
            assert!(err.contains("larger than"), "{err}");
        }
        if name == "stalled" || name == "dripping" {
            assert!(err.contains("timed out"), "{name}: {err}");
        }
        run.market.stop().await;
    }))
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "timeouts bound every call"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_client_errors_are_not_retried() {
    // 429 with Retry-After: 1 s, then success: two calls at least a second apart.
    let fake = fake_server().await;
    fake.once(
        "cg.price",
        Fault::Status(429, "coingecko_error_429.json", Some(1)),
    );
    let run = start(config(&fake));
    let s = settle(&run.market).await;
    let t = fake.times("cg.price");
    assert_eq!(t.len(), 2);
    assert!(
        t[1] - t[0] >= Duration::from_millis(1000),
        "{:?}",
        t[1] - t[0]
    );
    assert_eq!(source(&s, "btc_price_usd"), "coingecko");
    run.market.stop().await;

    // A Retry-After longer than we wait inside a call: fall back now, leave the provider
    // alone until it passes.
    let fake = fake_server().await;
    fake.sticky(
        "cg.price",
        Fault::Status(429, "coingecko_error_429.json", Some(30)),
    );
    let run = start(config(&fake));
    let s = settle(&run.market).await;
    assert_eq!(source(&s, "btc_price_usd"), "binance");
    assert_eq!(run.market.refresh().await, Refresh::Ran);
    assert_eq!(fake.hits("cg.price"), 1, "cooling down, not called again");
    let h = run.market.health();
    let wait = h["providers"]["coingecko"]["retry_after_seconds"].as_u64();
    assert!(wait.is_some_and(|s| s > 20), "{h}");
    run.market.stop().await;

    // 401 from CMC and 400 from Binance: one call each, no retry.
    let fake = fake_server().await;
    fake.sticky("cg.price", Fault::Status(500, "{}", None));
    fake.sticky("cmc.quotes", Fault::Status(401, "cmc_error_401.json", None));
    fake.sticky(
        "bn.ticker",
        Fault::Status(400, "binance_error_400_invalid_symbol.json", None),
    );
    let run = start(with_cmc(config(&fake), &fake));
    let s = settle(&run.market).await;
    assert_eq!(
        (
            fake.hits("cg.price"),
            fake.hits("cmc.quotes"),
            fake.hits("bn.ticker")
        ),
        (2, 1, 1)
    );
    assert!(s["btc_price_usd"].is_null());
    let h = run.market.health();
    let err = h["providers"]["coinmarketcap"]["last_error"]
        .as_str()
        .unwrap_or("");
    assert!(
        err.contains("401") && err.contains("This API Key is invalid."),
        "{err}"
    );
    run.market.stop().await;
}

#[tokio::test]
async fn the_breaker_opens_and_recovers_through_a_half_open_probe() {
    let fake = fake_server().await;
    fake.sticky("cg.price", Fault::Status(500, "{}", None));
    fake.sticky("cg.global", Fault::Status(500, "{}", None));
    let cg_hits = || fake.hits("cg.price") + fake.hits("cg.global");
    let mut c = config(&fake);
    c.cadence.prices = Duration::from_millis(20);
    c.http.attempts = 1;
    c.breaker = BreakerPolicy {
        threshold: 2,
        cooldown: Duration::from_millis(400),
    };
    let run = start(c);
    let breaker = |h: &Value| {
        h["providers"]["coingecko"]["breaker"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    until(&run.market, "the breaker to open", |_, h| {
        breaker(h) == "open"
    })
    .await;
    let opened = cg_hits();
    assert_eq!(
        opened, 2,
        "opens after exactly `threshold` consecutive failures"
    );
    // Open: no calls, yet prices keep coming from the fallback.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cg_hits(), opened);
    let s = json(&run.market.current());
    assert_eq!(source(&s, "btc_price_usd"), "binance");
    // After the cool-down one probe goes out; it fails, so the circuit opens again.
    until(&run.market, "a failed probe", |_, _| {
        cg_hits() == opened + 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cg_hits(), opened + 1, "only one probe");
    assert_eq!(breaker(&run.market.health()), "open");
    // The provider heals: the next probe closes the circuit and CoinGecko is primary again.
    fake.heal("cg.price");
    fake.heal("cg.global");
    until(&run.market, "recovery", |s, h| {
        breaker(h) == "closed" && source(s, "btc_price_usd") == "coingecko"
    })
    .await;
    run.market.stop().await;
}

#[tokio::test]
async fn last_good_values_are_kept_and_marked_stale() {
    let fake = fake_server().await;
    let run = start(config(&fake));
    settle(&run.market).await;
    for key in [
        "cg.price",
        "bn.ticker",
        "cg.global",
        "fng",
        "taapi",
        "bn.klines",
        "fh.SPY",
    ] {
        fake.sticky(key, Fault::Status(500, "{}", None));
    }
    assert_eq!(run.market.refresh().await, Refresh::Ran);
    let s = json(&run.market.current());
    assert_eq!(s["btc_price_usd"].as_f64(), Some(84250.0));
    assert_eq!(s["market_cap_usd"].as_f64(), Some(2893417720518.4));
    assert_eq!(s["fng_value"].as_u64(), Some(38));
    assert_eq!(s["rsi_14"].as_f64(), Some(44.87126034991531));
    assert_eq!(s["us_stock_indices"]["SPY"]["price"].as_f64(), Some(702.84));
    for field in [
        "btc_price_usd",
        "market_cap_usd",
        "fng_value",
        "rsi_14",
        "us_stock_indices.SPY",
    ] {
        assert_eq!(s["freshness"][field]["stale"], true, "{field}");
    }
    assert_eq!(s["freshness"]["us_stock_indices.DIA"]["stale"], false);
    assert_eq!(s["freshness"]["btc_price_usd"]["source"], "coingecko");
    assert_eq!(s["partial_failure"], true);
    // Healing clears the marks.
    for key in [
        "cg.price",
        "bn.ticker",
        "cg.global",
        "fng",
        "taapi",
        "bn.klines",
        "fh.SPY",
    ] {
        fake.heal(key);
    }
    assert_eq!(run.market.refresh().await, Refresh::Ran);
    let s = json(&run.market.current());
    assert_eq!(s["freshness"]["btc_price_usd"]["stale"], false);
    assert_eq!(s["partial_failure"], false);
    run.market.stop().await;
}

#[tokio::test]
async fn nothing_is_made_up() {
    // Every provider unreachable: every field null, never a zero.
    let dead = dead_url().await;
    let fake = fake_server().await;
    let mut c = with_cmc(config(&fake), &fake);
    c.coingecko.base = dead.clone();
    c.binance.base = dead.clone();
    c.alternative_me.base = dead.clone();
    for p in [
        c.taapi.as_mut().map(|t| &mut t.base),
        c.finnhub.as_mut().map(|f| &mut f.base),
        c.coinmarketcap.as_mut().map(|m| &mut m.base),
    ]
    .into_iter()
    .flatten()
    {
        *p = dead.clone();
    }
    let run = start(c);
    let s = settle(&run.market).await;
    let obj = s.as_object().expect("object");
    for (k, v) in obj {
        let allowed_non_null = [
            "us_stock_indices",
            "data_sources",
            "freshness",
            "partial_failure",
            "demo",
            "btc_sparkline",
            // Configuration, not market data: the refresh period and the sources without a key.
            "refresh_seconds",
            "unconfigured",
        ];
        if !allowed_non_null.contains(&k.as_str()) {
            assert!(v.is_null(), "{k} = {v}");
        }
    }
    for (_, idx) in s["us_stock_indices"].as_object().expect("indices") {
        assert!(
            idx["price"].is_null() && idx["change"].is_null() && idx["change_percent"].is_null()
        );
    }
    assert!(
        s["data_sources"]
            .as_object()
            .expect("sources")
            .values()
            .all(Value::is_null)
    );
    assert!(
        s["freshness"]
            .as_object()
            .expect("freshness")
            .values()
            .all(Value::is_null)
    );
    assert_eq!(s["btc_sparkline"], serde_json::json!([]));
    assert!(s["refresh_seconds"].as_f64().is_some_and(|r| r > 0.0));
    assert_eq!(s["partial_failure"], true);
    let h = run.market.health();
    let err = h["groups"]["prices"]["errors"][0].as_str().unwrap_or("");
    assert!(err.contains("cannot connect"), "{err}");
    run.market.stop().await;

    // A NaN decimal string from Binance leaves BTC unknown and the rest intact.
    let fake = fake_server().await;
    fake.sticky("cg.price", Fault::Status(500, "{}", None));
    let ticker = String::from_utf8(fixture("binance_ticker_24hr.json"))
        .expect("utf8")
        .replace("\"84251.37000000\"", "\"NaN\"");
    fake.sticky("bn.ticker", Fault::Body(ticker));
    let run = start(config(&fake));
    let s = settle(&run.market).await;
    assert!(s["btc_price_usd"].is_null() && s["btc_change_24h"].is_null());
    assert_eq!(s["eth_price_usd"].as_f64(), Some(2953.42));
    run.market.stop().await;
}

#[tokio::test]
async fn outbound_budgets_cap_the_calls() {
    let fake = fake_server().await;
    let mut c = config(&fake);
    // The prices loop asks far more often than the budgets allow.
    c.cadence.prices = Duration::from_millis(5);
    let budget = Budget::new(2, 200);
    c.budgets.coingecko = budget;
    c.budgets.binance = budget;
    let window = Instant::now();
    let run = start(c);
    let skips = |h: &Value, p: &str| h["providers"][p]["budget_skips"].as_u64().unwrap_or(0);
    until(&run.market, "demand well over the budget", |_, h| {
        skips(h, "coingecko") >= 20 && skips(h, "binance") >= 20
    })
    .await;
    run.market.stop().await;
    let elapsed = window.elapsed();
    // At most the burst plus one token per 200 ms of the window, for each provider (the
    // global call shares CoinGecko's bucket), however fast the loop runs.
    let cap = 2 + (elapsed.as_millis() / 200) as usize;
    let cg = fake.hits("cg.price") + fake.hits("cg.global");
    let bn = fake.hits("bn.ticker") + fake.hits("bn.klines");
    assert!(
        cg <= cap && bn <= cap,
        "coingecko {cg}, binance {bn}, cap {cap} in {elapsed:?}"
    );
    assert!(
        cg >= 2 && bn >= 1,
        "the budget is used, not just refused: {cg}, {bn}"
    );
}

#[tokio::test]
async fn values_and_history_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    let fake = fake_server().await;
    {
        let store = Arc::new(Store::open(&path).expect("store"));
        let market = Market::start(config(&fake), Arc::clone(&store), &Background::new());
        settle(&market).await;
        market.stop().await;
    }
    // Reopening the file proves the stopped market let go of the store.
    let store = Arc::new(Store::open(&path).expect("reopen after stop"));
    let dead = dead_url().await;
    let mut c = config(&fake);
    c.coingecko.base = dead.clone();
    c.binance.base = dead.clone();
    c.alternative_me.base = dead.clone();
    c.taapi = None;
    c.finnhub = None;
    let market = Market::start(c, store, &Background::new());
    let s = settle(&market).await;
    assert_eq!(s["btc_price_usd"].as_f64(), Some(84250.0));
    assert_eq!(s["market_cap_usd"].as_f64(), Some(2893417720518.4));
    assert_eq!(s["fng_value_classification"], "Fear");
    assert_eq!(s["rsi_14"].as_f64(), Some(44.87126034991531));
    assert_eq!(s["us_stock_indices"]["DIA"]["price"].as_f64(), Some(481.27));
    assert_eq!(s["freshness"]["btc_price_usd"]["stale"], true);
    assert_eq!(s["freshness"]["btc_price_usd"]["source"], "coingecko");
    assert_eq!(s["partial_failure"], true);
    assert_eq!(s["btc_sparkline"][0][1].as_f64(), Some(84250.0));
    market.stop().await;
}

#[tokio::test]
async fn a_thousand_concurrent_reads_during_a_refresh_cost_one_call_per_key() {
    let fake = fake_server().await;
    let (parts, _dir) = app_parts(true);
    // The fake provider and the 1,000 reads share this test's runtime, so on a loaded machine
    // a 300 ms answer can take seconds to be polled. With the fake's 1.5 s timeout and two
    // attempts, that was a timed-out first attempt and its retry: two calls per key, all of
    // them inside the forced refresh (the schedule here is hourly). This test is about
    // coalescing, so no deadline short enough for load to turn into a retry.
    let mut c = with_cmc(config(&fake), &fake);
    c.http.total_timeout = WAIT;
    c.http.attempts = 1;
    let market = Market::start(c, Arc::clone(&parts.store), &parts.background);
    let state = common::with_market(parts, &market);
    settle(&market).await;
    fake.reset_hits();
    for key in [
        "cg.price",
        "cg.global",
        "fng",
        "taapi",
        "fh.DIA",
        "fh.SPY",
        "fh.QQQM",
    ] {
        fake.sticky(key, Fault::Delay(Duration::from_millis(300)));
    }
    let refreshes = (0..5).map(|_| {
        request(
            &state,
            post("/api/crypto/dashboard-summary/refresh", Some(ADMIN)),
        )
    });
    let reads = (0..1000).map(|i| {
        let uri = if i % 2 == 0 {
            "/api/crypto/dashboard-summary"
        } else {
            "/api/dashboard/data"
        };
        request(&state, get(uri))
    });
    let (refreshes, reads) = tokio::join!(join_all(refreshes), join_all(reads));
    assert!(reads.iter().all(|r| r.status == StatusCode::OK));
    let statuses: Vec<u16> = refreshes.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, vec![200; 5]);
    let ran = refreshes
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(&r.body).expect("json")["coalesced"] == false)
        .count();
    assert_eq!(ran, 1, "one refresh ran, the others joined it");
    let health = market.health();
    for g in Group::ALL {
        let s = &health["groups"][g.name()];
        assert!(s["complete"] == true, "{}: {s}", g.name());
    }
    let mut hits = fake.all_hits();
    // The sparkline's one call at start may land after `settle`; it is no refresh's.
    hits.retain(|k, n| *n > 0 && k != "bn.hourly");
    let want: HashMap<String, usize> = [
        "cg.price",
        "cg.global",
        "fng",
        "taapi",
        "fh.DIA",
        "fh.SPY",
        "fh.QQQM",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), 1))
    .collect();
    assert_eq!(hits, want);
    market.stop().await;
}

/// A poll that falls due while a forced refresh runs joins it (and the other way round): one
/// group never has two provider calls in flight, whatever the phase of the schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_poll_never_runs_beside_a_forced_refresh() {
    let fake = fake_server().await;
    let keys = ["cg.price", "cg.global", "fng", "taapi", "fh.DIA"];
    for key in keys {
        fake.sticky(key, Fault::Delay(Duration::from_millis(60)));
    }
    let mut c = config(&fake);
    let every = Duration::from_millis(25);
    c.cadence.prices = every;
    c.cadence.global = every;
    c.cadence.fng = every;
    c.cadence.rsi = every;
    c.cadence.indices = every;
    c.http.total_timeout = WAIT;
    c.http.attempts = 1;
    let run = start(c);
    settle(&run.market).await;
    fake.reset_hits();
    let mut forced = 0;
    // Refreshes land at every phase: during a poll's call and during its pause.
    for i in 0..24u64 {
        if run.market.refresh().await == Refresh::Ran {
            forced += 1;
        }
        tokio::time::sleep(Duration::from_millis(i * 7 % 40)).await;
    }
    run.market.stop().await;
    assert!(forced > 0, "no forced refresh ran");
    let most = fake.most_in_flight();
    for key in keys {
        assert!(fake.hits(key) >= 10, "{key}: the schedule kept polling");
        assert_eq!(most.get(key), Some(&1), "{key}: calls at once");
    }
}

#[tokio::test]
async fn the_api_serves_the_snapshot_and_guards_the_refresh() {
    let market = Market::demo(7, Duration::from_secs(60), &Background::new());
    let (parts, _dir) = app_parts(true);
    let state = common::with_market(parts, &market);

    let a = request(&state, get("/api/crypto/dashboard-summary")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-cache");
    assert!(
        a.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("application/json")
    );
    let etag = a.headers[header::ETAG].clone();
    let b = request(&state, get("/api/dashboard/data")).await;
    assert_eq!(a.body, b.body, "the alias serves the same snapshot");
    let mut conditional = get("/api/crypto/dashboard-summary");
    conditional
        .headers_mut()
        .insert(header::IF_NONE_MATCH, etag);
    assert_eq!(
        request(&state, conditional).await.status,
        StatusCode::NOT_MODIFIED
    );
    let s: Value = serde_json::from_slice(&a.body).expect("json");
    assert_eq!(s["demo"], true);

    let uri = "/api/crypto/dashboard-summary/refresh";
    assert_eq!(
        request(&state, post(uri, None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        request(&state, post(uri, Some("wrong-token-wrong-token")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        request(&state, get(uri)).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let ok = request(&state, post(uri, Some(ADMIN))).await;
    assert_eq!(ok.status, StatusCode::OK);
    let again = request(&state, post(uri, Some(ADMIN))).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = again.headers[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    let after = request(&state, get("/api/crypto/dashboard-summary")).await;
    assert_ne!(after.body, a.body, "the forced refresh moved the demo feed");

    // Without a configured token the endpoint is refused outright.
    let (closed, _dir2) = app_parts(false);
    let closed = common::with_market(closed, &market);
    assert_eq!(
        request(&closed, post(uri, Some(ADMIN))).await.status,
        StatusCode::FORBIDDEN
    );

    let health: Value =
        serde_json::from_slice(&request(&state, get("/health")).await.body).expect("json");
    assert_eq!(health["market"]["mode"], "demo");
    market.stop().await;
}

#[tokio::test]
async fn the_demo_feed_is_deterministic_badged_and_moving() {
    let strip = |mut v: Value| {
        let obj = v.as_object_mut().expect("object");
        for k in ["freshness", "last_updated", "btc_sparkline"] {
            obj.remove(k);
        }
        v
    };
    let (a, b) = (
        Market::demo(42, Duration::from_millis(50), &Background::new()),
        Market::demo(42, Duration::from_millis(50), &Background::new()),
    );
    let (sa, sb) = (json(&a.current()), json(&b.current()));
    assert_eq!(strip(sa.clone()), strip(sb));
    assert_eq!(sa["demo"], true);
    assert!(
        sa["data_sources"]
            .as_object()
            .expect("sources")
            .values()
            .all(|v| v == "demo")
    );
    for field in ["btc_price_usd", "market_cap_usd", "fng_value", "rsi_14"] {
        assert!(sa[field].is_number(), "{field}");
    }
    assert!(
        sa["btc_sparkline"]
            .as_array()
            .is_some_and(|s| s.len() >= 90)
    );
    let mut rx = a.subscribe();
    let changed = tokio::time::timeout(Duration::from_secs(2), rx.changed()).await;
    assert!(matches!(changed, Ok(Ok(()))), "a new snapshot every tick");
    assert_ne!(json(&a.current())["btc_price_usd"], sa["btc_price_usd"]);
    assert_eq!(a.health()["mode"], "demo");
    a.stop().await;
    b.stop().await;
}

/// A `MakeWriter` that keeps every log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every log line of this test binary. A global subscriber, installed before any market starts:
/// a thread-scoped one misses events whose call sites other tests registered first.
fn logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
}

#[tokio::test]
async fn secrets_never_reach_logs_errors_or_health() {
    let logs = logs();
    let fake = fake_server().await;
    // Each provider echoes its own credential in its error body.
    for (key, secret) in [
        ("taapi", TAAPI_SECRET),
        ("fh.SPY", FINNHUB_KEY),
        ("cmc.quotes", CMC_KEY),
        ("cg.price", CG_KEY),
        ("cg.global", CG_KEY),
    ] {
        let echo = format!(r#"{{"error":"bad secret {secret}"}}"#);
        fake.sticky(
            key,
            Fault::Status(401, Box::leak(echo.into_boxed_str()), None),
        );
    }
    fake.sticky("fh.DIA", Fault::Stall);
    let run = start(with_cmc(config(&fake), &fake));
    let s = settle(&run.market).await;
    let health = run.market.health().to_string();
    let snapshot = s.to_string();
    let config_debug = format!("{:?}", with_cmc(config(&fake), &fake));
    let logged = String::from_utf8(logs.0.lock().expect("log").clone()).expect("utf8");
    assert!(
        logged.contains("provider call failed"),
        "the failures were logged: {logged}"
    );
    assert!(
        logged.contains("secret=***"),
        "TAAPI's URL is logged redacted: {logged}"
    );
    for secret in [TAAPI_SECRET, FINNHUB_KEY, CMC_KEY, CG_KEY] {
        for (what, text) in [
            ("health", &health),
            ("snapshot", &snapshot),
            ("config", &config_debug),
            ("logs", &logged),
        ] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {what}: {text}"
            );
        }
    }
    assert!(health.contains("bad secret ***"), "{health}");
    run.market.stop().await;
}

#[test]
fn the_fixture_copy_matches_shared() {
    let entries = match std::fs::read_dir(SHARED_FIXTURES) {
        Ok(entries) => entries,
        // CI always has shared/ beside the clone: a missing folder there is a failure.
        Err(e) if std::env::var_os("CI").is_some_and(|v| v != "false" && !v.is_empty()) => {
            panic!("{SHARED_FIXTURES} is missing in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {SHARED_FIXTURES}: {e} (shared/ is not beside this clone)");
            return;
        }
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let ours = std::fs::read(format!("{FIXTURES}/{name}"))
            .unwrap_or_else(|e| panic!("{name} missing from the copy: {e}"));
        assert_eq!(
            ours,
            std::fs::read(&path).expect("shared fixture"),
            "{name} differs from shared/"
        );
    }
}
