//! The live feed: polls each group through its provider chain in the fallback order of SPEC
//! §5.2, keeps the last good value of every field (in memory and in the store) and the rolling
//! price history behind the sparkline.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Inner;
use super::chain::{self, Link, ask_in_order, first_of};
use super::config::Config;
use super::feed::{Feed, Fetch, millis};
use super::guard::{Provider, ProviderStats};
use super::http::{Call, FetchError, Upstream};
use super::rsi::{PERIOD, wilder};
use super::snapshot::{Book, Coin, Entry, Group, Index, Invalid, Quote, Snapshot, downsample};
use super::{alternative_me, binance, coingecko, coinmarketcap, finnhub, taapi};
use crate::lock::lock;
use crate::store::Store;
use crate::tasks::Background;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;

/// One row of the rolling history: every coin's price at one moment.
#[derive(Serialize, Deserialize)]
struct HistoryPoint {
    prices: [Option<f64>; 7],
}

#[derive(Debug, Default, Clone)]
struct GroupStatus {
    last_attempt: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    /// Every field of the group got a fresh value in the last attempt.
    complete: Option<bool>,
    errors: Vec<String>,
}

struct Providers {
    coingecko: Provider,
    coinmarketcap: Provider,
    binance: Provider,
    alternative_me: Provider,
    taapi: Provider,
    finnhub: Provider,
}

impl Providers {
    fn all(&self) -> [&Provider; 6] {
        [
            &self.coingecko,
            &self.coinmarketcap,
            &self.binance,
            &self.alternative_me,
            &self.taapi,
            &self.finnhub,
        ]
    }
}

pub(super) struct Live {
    config: Config,
    store: Arc<Store>,
    /// `None` only if the TLS stack could not be initialised; every call then fails.
    upstream: Option<Upstream>,
    providers: Providers,
    book: Mutex<Book>,
    history: Mutex<VecDeque<(i64, f64)>>,
    status: Mutex<[GroupStatus; 5]>,
}

impl Live {
    pub fn new(config: Config, store: Arc<Store>) -> Live {
        let upstream = Upstream::new(config.http)
            .inspect_err(|e| tracing::error!(error = %e, "cannot build the outbound HTTP client"))
            .ok();
        let b = &config.budgets;
        let p = |name, budget| Provider::new(name, budget, config.breaker);
        let providers = Providers {
            coingecko: p(coingecko::NAME, b.coingecko),
            coinmarketcap: p(coinmarketcap::NAME, b.coinmarketcap),
            binance: p(binance::NAME, b.binance),
            alternative_me: p(alternative_me::NAME, b.alternative_me),
            taapi: p(taapi::NAME, b.taapi),
            finnhub: p(finnhub::NAME, b.finnhub),
        };
        let mut book = Book::default();
        book.unconfigured[Group::Indices as usize] = config.finnhub.is_none();
        Live {
            config,
            store,
            upstream,
            providers,
            book: Mutex::new(book),
            history: Mutex::new(VecDeque::new()),
            status: Mutex::new(Default::default()),
        }
    }

    pub fn values(&self) -> Book {
        lock(&self.book).clone()
    }

    pub fn sparkline(&self) -> Vec<(i64, f64)> {
        let bucket = i64::try_from(self.config.sparkline_bucket.as_millis()).unwrap_or(i64::MAX);
        downsample(lock(&self.history).iter().copied(), bucket)
    }

    fn history_ms(&self) -> i64 {
        i64::try_from(self.config.history.as_millis()).unwrap_or(i64::MAX)
    }

    /// Puts back the last good values and the history from the store, all marked stale.
    pub async fn restore(&self) {
        let since = Utc::now()
            .timestamp_millis()
            .saturating_sub(self.history_ms());
        let loaded = self
            .store
            .call(move |s| Ok((s.market_all()?, s.history_since(since)?)))
            .await;
        let (fields, points) = match loaded {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot restore the last market values");
                return;
            }
        };
        let mut book = lock(&self.book);
        for (key, bytes) in &fields {
            if let Err(e) = book.restore(key, bytes) {
                tracing::warn!(key, error = %e, "skipping an unreadable stored market value");
            }
        }
        let mut history = lock(&self.history);
        for (t, bytes) in points {
            if let Ok(HistoryPoint {
                prices: [Some(btc), ..],
            }) = postcard::from_bytes(&bytes)
            {
                history.push_back((t, btc));
            }
        }
        tracing::info!(
            fields = fields.len(),
            history = history.len(),
            "restored market values"
        );
    }

    /// Fills the sparkline's day from Binance's hourly candles, in one call, unless the
    /// stored history already covers it. Candles only fill hours without a point of our own.
    pub async fn backfill(&self) {
        let now = Utc::now().timestamp_millis();
        let from = now.saturating_sub(self.history_ms());
        const HOUR: i64 = 3_600_000;
        let covered = {
            let h = lock(&self.history);
            let starts_early = h.front().is_some_and(|(t, _)| *t <= from + HOUR);
            let gaps = h
                .iter()
                .zip(h.iter().skip(1))
                .any(|(a, b)| b.0 - a.0 > HOUR);
            starts_early && !gaps && h.back().is_some_and(|(t, _)| now - *t <= HOUR)
        };
        if covered {
            return;
        }
        let parse = |b: &[u8]| binance::parse_hourly_prices(b, now);
        let candles = match self
            .call(
                &self.providers.binance,
                self.config.binance.hourly_klines(),
                parse,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fill the sparkline from hourly candles");
                return;
            }
        };
        let mut h = lock(&self.history);
        let mut points: Vec<(i64, f64)> = h.iter().copied().collect();
        let added = candles
            .into_iter()
            .filter(|(t, _)| *t >= from && *t <= now)
            .filter(|(t, _)| !h.iter().any(|(o, _)| (o - t).abs() < HOUR / 2))
            .inspect(|p| points.push(*p))
            .count();
        points.sort_by_key(|(t, _)| *t);
        *h = points.into();
        tracing::info!(added, "sparkline filled from hourly candles");
    }

    async fn call<T>(
        &self,
        provider: &Provider,
        call: Result<Call, Invalid>,
        parse: impl Fn(&[u8]) -> Result<T, Invalid>,
    ) -> Result<T, FetchError> {
        chain::fetch(self.upstream.as_ref(), provider, call, parse).await
    }

    /// Polls `group` once through its chain and records what came back.
    pub async fn run(&self, group: Group) {
        let started = Utc::now();
        let (errors, complete, fresh) = match group {
            Group::Prices => self.prices().await,
            Group::Global => self.global().await,
            Group::Fng => self.fng().await,
            Group::Rsi => self.rsi().await,
            Group::Indices => self.indices().await,
        };
        let records = {
            let mut book = lock(&self.book);
            book.failing[group as usize] = !complete;
            if fresh {
                book.records(group)
            } else {
                Vec::new()
            }
        };
        {
            let mut status = lock(&self.status);
            let s = &mut status[group as usize];
            s.last_attempt = Some(started);
            if fresh {
                s.last_success = Some(Utc::now());
            }
            s.complete = Some(complete);
            s.errors = errors;
        }
        if !records.is_empty()
            && let Err(e) = self.store.call(move |s| s.market_put(&records)).await
        {
            tracing::warn!(error = %e, "cannot persist market values");
        }
    }

    /// CoinGecko, then CoinMarketCap, then Binance; each asked only for the coins still missing.
    async fn prices(&self) -> (Vec<String>, bool, bool) {
        let (p, c) = (&self.providers, &self.config);
        let chain = [
            Some(Link::asking(coingecko::NAME, &p.coingecko, |want| {
                (c.coingecko.prices(want), coingecko::parse_prices)
            })),
            c.coinmarketcap.as_ref().map(|cmc| {
                Link::asking(coinmarketcap::NAME, &p.coinmarketcap, |want| {
                    (cmc.quotes(want), coinmarketcap::parse_quotes)
                })
            }),
            Some(Link::asking(binance::NAME, &p.binance, |want| {
                (c.binance.ticker(want), binance::parse_ticker)
            })),
        ];
        let mut missing = Coin::ALL.to_vec();
        let mut got: Vec<(Coin, Quote, &'static str)> = Vec::new();
        let errors = ask_in_order(
            self.upstream.as_ref(),
            chain.into_iter().flatten(),
            &mut missing,
            Vec::is_empty,
            |missing, quotes: Vec<(Coin, Quote)>, name| {
                missing.retain(|c| !quotes.iter().any(|(q, _)| q == c));
                got.extend(quotes.into_iter().map(|(c, q)| (c, q, name)));
            },
        )
        .await;
        let now = Utc::now();
        let mut btc = None;
        {
            let mut book = lock(&self.book);
            for (coin, quote, source) in &got {
                book.prices[*coin as usize] = Some(Entry::new(*quote, source, now));
                if *coin == Coin::Btc {
                    btc = Some(quote.price);
                }
            }
            for coin in &missing {
                if let Some(e) = &mut book.prices[*coin as usize] {
                    e.stale = true;
                }
            }
        }
        if btc.is_some() {
            self.push_history(now, &got).await;
        }
        (errors, missing.is_empty(), !got.is_empty())
    }

    async fn push_history(&self, now: DateTime<Utc>, got: &[(Coin, Quote, &'static str)]) {
        let mut prices = [None; 7];
        for (c, q, _) in got {
            prices[*c as usize] = Some(q.price);
        }
        let at = now.timestamp_millis();
        let keep_from = at.saturating_sub(self.history_ms());
        {
            let mut h = lock(&self.history);
            if let Some(btc) = prices[0] {
                h.push_back((at, btc));
            }
            while h.front().is_some_and(|(t, _)| *t < keep_from) {
                h.pop_front();
            }
        }
        let Ok(bytes) = postcard::to_allocvec(&HistoryPoint { prices }) else {
            return;
        };
        if let Err(e) = self
            .store
            .call(move |s| s.history_push(at, &bytes, keep_from))
            .await
        {
            tracing::warn!(error = %e, "cannot persist market history");
        }
    }

    /// CoinGecko, then CoinMarketCap.
    async fn global(&self) -> (Vec<String>, bool, bool) {
        let (p, c) = (&self.providers, &self.config);
        let chain = [
            Some(Link::once(
                coingecko::NAME,
                &p.coingecko,
                c.coingecko.global(),
                coingecko::parse_global,
            )),
            c.coinmarketcap.as_ref().map(|cmc| {
                Link::once(
                    coinmarketcap::NAME,
                    &p.coinmarketcap,
                    cmc.global(),
                    coinmarketcap::parse_global,
                )
            }),
        ];
        let (found, errors) = first_of(self.upstream.as_ref(), chain.into_iter().flatten()).await;
        let ok = found.is_some();
        let mut book = lock(&self.book);
        match found {
            Some((g, source)) => book.global = Some(Entry::new(g, source, Utc::now())),
            None => book.mark_stale(Group::Global),
        }
        (errors, ok, ok)
    }

    async fn fng(&self) -> (Vec<String>, bool, bool) {
        let chain = [Link::once(
            alternative_me::NAME,
            &self.providers.alternative_me,
            self.config.alternative_me.fng(),
            alternative_me::parse_fng,
        )];
        let (found, errors) = first_of(self.upstream.as_ref(), chain).await;
        let ok = found.is_some();
        let mut book = lock(&self.book);
        match found {
            Some((f, source)) => book.fng = Some(Entry::new(f, source, Utc::now())),
            None => book.mark_stale(Group::Fng),
        }
        (errors, ok, ok)
    }

    /// TAAPI when it has a secret, else (or when it fails) RSI(14) from Binance daily klines.
    async fn rsi(&self) -> (Vec<String>, bool, bool) {
        let (p, c) = (&self.providers, &self.config);
        let local = |b: &[u8]| {
            let closes = binance::parse_closes(b)?;
            wilder(&closes, PERIOD).ok_or_else(|| Invalid("too few klines for RSI".into()))
        };
        let chain = [
            c.taapi
                .as_ref()
                .map(|t| Link::once(taapi::NAME, &p.taapi, t.rsi(), taapi::parse_rsi)),
            Some(Link::once(
                binance::KLINES_RSI,
                &p.binance,
                c.binance.daily_klines(),
                local,
            )),
        ];
        let (found, errors) = first_of(self.upstream.as_ref(), chain.into_iter().flatten()).await;
        let ok = found.is_some();
        let mut book = lock(&self.book);
        match found {
            Some((v, source)) => book.rsi = Some(Entry::new(v, source, Utc::now())),
            None => book.mark_stale(Group::Rsi),
        }
        (errors, ok, ok)
    }

    /// Finnhub, one call per symbol: one failing does not drop the others.
    async fn indices(&self) -> (Vec<String>, bool, bool) {
        let Some(fh) = &self.config.finnhub else {
            return (Vec::new(), true, false);
        };
        let results = join_all(Index::ALL.map(|i| async move {
            (
                i,
                self.call(&self.providers.finnhub, fh.quote(i), finnhub::parse_quote)
                    .await,
            )
        }))
        .await;
        let now = Utc::now();
        let mut book = lock(&self.book);
        let mut errors = Vec::new();
        let mut fresh = false;
        for (i, result) in results {
            match result {
                Ok(q) => {
                    book.indices[i as usize] = Some(Entry::new(q, finnhub::NAME, now));
                    fresh = true;
                }
                Err(e) => {
                    errors.push(format!("{} {}: {e}", finnhub::NAME, i.symbol()));
                    if let Some(e) = &mut book.indices[i as usize] {
                        e.stale = true;
                    }
                }
            }
        }
        let complete = errors.is_empty();
        (errors, complete, fresh)
    }

    fn describe(&self) -> Value {
        let now = Utc::now();
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let status = lock(&self.status).clone();
        let book = self.values();
        let groups: serde_json::Map<String, Value> = Group::ALL
            .into_iter()
            .map(|g| {
                let s = &status[g as usize];
                let v = json!({
                    "configured": !book.unconfigured[g as usize],
                    "cadence_seconds": self.config.cadence.of(g).as_secs_f64(),
                    "last_attempt": ts(s.last_attempt),
                    "last_success": ts(s.last_success),
                    "complete": s.complete,
                    "errors": s.errors,
                });
                (g.name().to_owned(), v)
            })
            .collect();
        let configured = self.config.configured();
        let providers: serde_json::Map<String, Value> = self
            .providers
            .all()
            .into_iter()
            .zip(configured)
            .map(|(p, (_, on))| {
                let mut v = p.health();
                v["configured"] = json!(on);
                (p.name.to_owned(), v)
            })
            .collect();
        let newest = book
            .prices
            .iter()
            .flatten()
            .map(|e| e.fetched_at_ms)
            .chain(book.global.iter().map(|e| e.fetched_at_ms))
            .max();
        json!({
            "client": self.upstream.is_some(),
            "data_age_seconds": newest.map(|t| (now.timestamp_millis() - t).max(0) / 1000),
            "groups": groups,
            "providers": providers,
        })
    }
}

impl Feed for Live {
    fn mode(&self) -> &'static str {
        "live"
    }

    /// Restores the stored values, then polls every group on its cadence and fills the
    /// sparkline's day.
    fn start(self: Arc<Self>, market: &Arc<Inner>, scope: &Background) {
        let market = Arc::clone(market);
        let tasks = scope.clone();
        scope.spawn("market start", |stop| async move {
            tokio::select! {
                () = self.restore() => {}
                () = stop.cancelled() => return,
            }
            market.publish();
            market.poll_groups(&self.config.cadence, &tasks);
            tasks.spawn("sparkline backfill", |stop| async move {
                tokio::select! {
                    () = self.backfill() => market.publish(),
                    () = stop.cancelled() => {}
                }
            });
        });
    }

    fn active(self: Arc<Self>, scope: &Background) -> Option<(Arc<dyn Fetch>, Background)> {
        Some((self, scope.clone()))
    }

    fn snapshot(&self, _current: &Snapshot) -> Option<Snapshot> {
        Some(Snapshot {
            values: self.values(),
            btc_sparkline: self.sparkline(),
            refresh_ms: millis(self.config.cadence.prices),
            ..Snapshot::default()
        })
    }
}

impl Fetch for Live {
    fn poll(&self, group: Group) -> BoxFuture<'_, ()> {
        self.run(group).boxed()
    }

    fn refresh<'a>(&'a self, market: &'a Arc<Inner>) -> BoxFuture<'a, ()> {
        join_all(Group::ALL.map(|g| market.run_group(g)))
            .map(|_| ())
            .boxed()
    }

    fn min_refresh(&self) -> std::time::Duration {
        self.config.refresh_min_interval
    }

    fn health(&self) -> Value {
        self.describe()
    }

    fn provider_stats(&self) -> Vec<(ProviderStats, Histogram)> {
        self.providers.all().map(Provider::stats).to_vec()
    }
}
