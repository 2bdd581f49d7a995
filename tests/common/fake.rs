//! A fake provider server on 127.0.0.1:0: serves the recorded fixtures
//! (tests/fixtures/providers, a copy of shared/fixtures/providers) under one path prefix per
//! provider, records every hit, and injects faults per endpoint key.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crypto_report::market::Config;
use crypto_report::market::alternative_me::AlternativeMe;
use crypto_report::market::binance::Binance;
use crypto_report::market::coingecko::{CoinGecko, Key};
use crypto_report::market::coinmarketcap::CoinMarketCap;
use crypto_report::market::config::{Budgets, Cadence};
use crypto_report::market::finnhub::Finnhub;
use crypto_report::market::guard::{BreakerPolicy, Budget};
use crypto_report::market::http::HttpPolicy;
use crypto_report::market::taapi::Taapi;
use crypto_report::secret::Secret;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers");
pub const CG_KEY: &str = "cg-demo-SECRET-0001";
pub const CMC_KEY: &str = "cmc-SECRET-0002";
pub const TAAPI_SECRET: &str = "taapi-SECRET-0003";
pub const FINNHUB_KEY: &str = "finnhub-SECRET-0004";

#[derive(Clone, Debug)]
pub enum Fault {
    /// Status, body (a fixture file name or literal JSON), Retry-After seconds.
    Status(u16, &'static str, Option<u64>),
    /// 200 with this body.
    Body(String),
    /// Never answers.
    Stall,
    /// 200 with a valid body, one byte every 100 ms.
    Drip,
    /// 200 with a 3 MiB streamed body and no Content-Length.
    Huge,
    /// The normal answer, after this long.
    Delay(Duration),
}

#[derive(Default)]
struct FakeState {
    hits: HashMap<String, Vec<Instant>>,
    queries: HashMap<String, String>,
    headers: HashMap<String, HeaderMap>,
    once: HashMap<String, VecDeque<Fault>>,
    sticky: HashMap<String, Fault>,
    fixture: HashMap<String, &'static str>,
    /// Seconds added to the clock of every `Date` header sent (a provider whose clock, or
    /// ours, is off).
    clock_offset: Option<i64>,
    /// Requests per key whose handler is running now, and the most ever seen at once.
    in_flight: HashMap<String, usize>,
    most_in_flight: HashMap<String, usize>,
}

/// Counts one request of `key` as in flight until dropped.
struct InFlight {
    fake: Fake,
    key: String,
}

impl InFlight {
    fn enter(fake: &Fake, key: &str) -> InFlight {
        let mut st = fake.st();
        let now = st.in_flight.entry(key.to_owned()).or_default();
        *now += 1;
        let now = *now;
        let most = st.most_in_flight.entry(key.to_owned()).or_default();
        *most = (*most).max(now);
        InFlight {
            fake: fake.clone(),
            key: key.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = self.fake.st().in_flight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

fn default_fixture(key: &str) -> &'static str {
    match key {
        "cg.price" => "coingecko_simple_price.json",
        "cg.global" => "coingecko_global.json",
        "cmc.quotes" => "cmc_v2_quotes_latest_btc.json",
        "cmc.global" => "cmc_global_metrics.json",
        "bn.ticker" => "binance_ticker_24hr.json",
        "bn.klines" => "binance_klines_btcusdt_1d.json",
        "bn.hourly" => "binance_klines_btcusdt_1h.json",
        "fng" => "alternative_me_fng.json",
        "taapi" => "taapi_rsi.json",
        "fh.DIA" => "finnhub_quote_dia.json",
        "fh.SPY" => "finnhub_quote_spy.json",
        "fh.QQQM" => "finnhub_quote_qqqm.json",
        "bn.history.BTCUSDT" => "binance_klines_history_btcusdt.json",
        "bn.history.ETHUSDT" => "binance_klines_history_ethusdt.json",
        "fng.history" => "alternative_me_fng_history.json",
        _ => "none",
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    if name.starts_with('{') || name.starts_with('[') {
        return name.as_bytes().to_vec();
    }
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn key_of(path: &str, query: &str) -> String {
    let symbol = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("symbol="))
        .unwrap_or("");
    match path {
        "/cg/api/v3/simple/price" => "cg.price".into(),
        "/cg/api/v3/global" => "cg.global".into(),
        "/cmc/v2/cryptocurrency/quotes/latest" => "cmc.quotes".into(),
        "/cmc/v1/global-metrics/quotes/latest" => "cmc.global".into(),
        "/bn/api/v3/ticker/24hr" => "bn.ticker".into(),
        // The history of an old report's day (a start time) apart from the RSI's candles.
        "/bn/api/v3/klines" if query.contains("startTime=") => format!("bn.history.{symbol}"),
        // The sparkline's day at start.
        "/bn/api/v3/klines" if query.contains("interval=1h") => "bn.hourly".into(),
        "/bn/api/v3/klines" => "bn.klines".into(),
        "/am/fng/" if !query.split('&').any(|kv| kv == "limit=1") => "fng.history".into(),
        "/am/fng/" => "fng".into(),
        "/taapi/rsi" => "taapi".into(),
        "/fh/api/v1/quote" => format!("fh.{symbol}"),
        other => format!("unknown {other}"),
    }
}

async fn serve_fake(State(fake): State<Fake>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    let key = key_of(req.uri().path(), &query);
    let _in_flight = InFlight::enter(&fake, &key);
    let (fault, body) = {
        let mut st = fake.state.lock().expect("fake state");
        st.hits.entry(key.clone()).or_default().push(Instant::now());
        st.queries.insert(key.clone(), query);
        st.headers.insert(key.clone(), req.headers().clone());
        let fault = match st.once.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(f) => Some(f),
            None => st.sticky.get(&key).cloned(),
        };
        let name = st
            .fixture
            .get(&key)
            .copied()
            .unwrap_or(default_fixture(&key));
        (fault, name)
    };
    let ok = || {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            fixture(body),
        )
            .into_response()
    };
    match fault {
        None => ok(),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            ok()
        }
        Some(Fault::Status(code, body, retry_after)) => {
            let mut r =
                (StatusCode::from_u16(code).expect("status"), fixture(body)).into_response();
            if let Some(s) = retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, s.into());
            }
            r
        }
        Some(Fault::Body(b)) => (StatusCode::OK, b).into_response(),
        Some(Fault::Stall) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            ok()
        }
        Some(Fault::Drip) => {
            let bytes = fixture(body);
            let stream = futures_util::stream::unfold(0usize, move |i| {
                let bytes = bytes.clone();
                async move {
                    if i >= bytes.len() {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from(vec![bytes[i]])), i + 1))
                }
            });
            Body::from_stream(stream).into_response()
        }
        Some(Fault::Huge) => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures_util::stream::iter(
                (0..48).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            Body::from_stream(stream).into_response()
        }
    }
}

/// The `Date` header of the fake's clock, when it was set off.
async fn dated(State(fake): State<Fake>, mut response: Response) -> Response {
    let offset = fake.st().clock_offset;
    if let Some(secs) = offset {
        let at = chrono::Utc::now() + chrono::Duration::seconds(secs);
        let value = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(v) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::DATE, v);
        }
    }
    response
}

impl Fake {
    /// Sends every `Date` header `secs` off the real time.
    pub fn set_clock_offset(&self, secs: i64) {
        self.st().clock_offset = Some(secs);
    }

    pub async fn start() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let fake = Fake {
            addr: listener.local_addr().expect("addr"),
            state: Arc::default(),
        };
        let app = Router::new()
            .fallback(serve_fake)
            .layer(axum::middleware::map_response_with_state(
                fake.clone(),
                dated,
            ))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    fn st(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }

    pub fn sticky(&self, key: &str, fault: Fault) {
        self.st().sticky.insert(key.into(), fault);
    }

    pub fn once(&self, key: &str, fault: Fault) {
        self.st()
            .once
            .entry(key.into())
            .or_default()
            .push_back(fault);
    }

    pub fn heal(&self, key: &str) {
        let mut st = self.st();
        st.sticky.remove(key);
        st.once.remove(key);
    }

    pub fn serve(&self, key: &str, fixture: &'static str) {
        self.st().fixture.insert(key.into(), fixture);
    }

    pub fn hits(&self, key: &str) -> usize {
        self.st().hits.get(key).map_or(0, Vec::len)
    }

    pub fn times(&self, key: &str) -> Vec<Instant> {
        self.st().hits.get(key).cloned().unwrap_or_default()
    }

    pub fn all_hits(&self) -> HashMap<String, usize> {
        self.st()
            .hits
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }

    pub fn reset_hits(&self) {
        let mut st = self.st();
        st.hits.clear();
        st.most_in_flight.clear();
    }

    /// The most requests of each key the fake was answering at the same time.
    pub fn most_in_flight(&self) -> HashMap<String, usize> {
        self.st().most_in_flight.clone()
    }

    pub fn query(&self, key: &str) -> String {
        self.st().queries.get(key).cloned().unwrap_or_default()
    }

    pub fn header(&self, key: &str, name: &str) -> Option<String> {
        let st = self.st();
        let v = st.headers.get(key)?.get(name)?;
        v.to_str().ok().map(str::to_owned)
    }
}

pub const HOUR: Duration = Duration::from_secs(3600);

/// Every provider at the fake, keys for all of them but CoinMarketCap, one poll per group (long
/// cadences), short timeouts, generous budgets.
pub fn config(fake: &Fake) -> Config {
    let generous = Budget::new(1000, 1);
    Config {
        coingecko: CoinGecko {
            base: fake.url("/cg"),
            key: Some(Key::Demo(Secret::new(CG_KEY))),
        },
        coinmarketcap: None,
        binance: Binance {
            base: fake.url("/bn"),
        },
        alternative_me: AlternativeMe {
            base: fake.url("/am"),
        },
        taapi: Some(Taapi {
            base: fake.url("/taapi"),
            secret: Secret::new(TAAPI_SECRET),
        }),
        finnhub: Some(Finnhub {
            base: fake.url("/fh"),
            key: Secret::new(FINNHUB_KEY),
        }),
        cadence: Cadence {
            prices: HOUR,
            global: HOUR,
            fng: HOUR,
            rsi: HOUR,
            indices: HOUR,
        },
        budgets: Budgets {
            coingecko: generous,
            coinmarketcap: generous,
            binance: generous,
            alternative_me: generous,
            taapi: generous,
            finnhub: generous,
        },
        http: HttpPolicy {
            connect_timeout: Duration::from_millis(500),
            total_timeout: Duration::from_millis(1500),
            max_body: 256 * 1024,
            attempts: 2,
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(2),
        },
        breaker: BreakerPolicy {
            threshold: 3,
            cooldown: Duration::from_secs(60),
        },
        refresh_min_interval: Duration::ZERO,
        ..Config::default()
    }
}

pub fn with_cmc(mut c: Config, fake: &Fake) -> Config {
    c.coinmarketcap = Some(CoinMarketCap {
        base: fake.url("/cmc"),
        key: Secret::new(CMC_KEY),
    });
    c
}
