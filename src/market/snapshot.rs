//! What the dashboard shows: the coins and indices, value types with their validation, the book
//! of last good values, and the [`Snapshot`] serialized with the field names of SPEC §5.1.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The coins of the dashboard, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Coin {
    Btc,
    Eth,
    Sol,
    Bnb,
    Xrp,
    Ada,
    Link,
}

impl Coin {
    pub const ALL: [Coin; 7] = [
        Coin::Btc,
        Coin::Eth,
        Coin::Sol,
        Coin::Bnb,
        Coin::Xrp,
        Coin::Ada,
        Coin::Link,
    ];

    /// Prefix of the JSON field names (`btc_price_usd`).
    pub fn key(self) -> &'static str {
        ["btc", "eth", "sol", "bnb", "xrp", "ada", "link"][self as usize]
    }

    pub fn symbol(self) -> &'static str {
        ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "LINK"][self as usize]
    }

    pub fn coingecko_id(self) -> &'static str {
        [
            "bitcoin",
            "ethereum",
            "solana",
            "binancecoin",
            "ripple",
            "cardano",
            "chainlink",
        ][self as usize]
    }

    /// CoinMarketCap's id: several coins share a ticker, the id does not.
    pub fn cmc_id(self) -> u64 {
        [1, 1027, 5426, 1839, 52, 2010, 1975][self as usize]
    }

    pub fn binance_symbol(self) -> &'static str {
        [
            "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "LINKUSDT",
        ][self as usize]
    }

    /// A price above this is a bug upstream, not a market.
    pub fn max_price(self) -> f64 {
        [1e7, 1e6, 1e5, 1e5, 1e4, 1e4, 1e5][self as usize]
    }
}

/// The US index ETFs shown next to the coins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Index {
    Dia,
    Spy,
    Qqqm,
}

impl Index {
    pub const ALL: [Index; 3] = [Index::Dia, Index::Spy, Index::Qqqm];

    pub fn symbol(self) -> &'static str {
        ["DIA", "SPY", "QQQM"][self as usize]
    }

    pub fn name(self) -> &'static str {
        [
            "SPDR Dow Jones Industrial Average ETF",
            "SPDR S&P 500 ETF",
            "Invesco NASDAQ 100 ETF",
        ][self as usize]
    }
}

/// The groups the refresher polls, each on its own cadence and provider chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Prices,
    Global,
    Fng,
    Rsi,
    Indices,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Prices,
        Group::Global,
        Group::Fng,
        Group::Rsi,
        Group::Indices,
    ];

    /// Name in `data_sources` and `/health`.
    pub fn name(self) -> &'static str {
        ["prices", "global", "fng", "rsi", "us_stock_indices"][self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub price: f64,
    /// `None` when the provider says it does not know (CoinGecko's stale signal); never 0.
    pub change_24h: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Global {
    pub market_cap_usd: f64,
    pub market_cap_change_24h: Option<f64>,
    pub volume_24h_usd: f64,
    pub btc_dominance: f64,
    pub eth_dominance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FearGreed {
    pub value: u8,
    pub classification: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexQuote {
    pub price: f64,
    pub change: Option<f64>,
    pub change_percent: Option<f64>,
}

/// A response that parsed but cannot be believed, or did not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn json(e: serde_json::Error) -> Invalid {
        Invalid(format!("malformed JSON: {e}"))
    }
}

/// A price must be a finite number in `(0, max]`.
pub fn check_price(what: &str, v: Option<f64>, max: f64) -> Result<f64, Invalid> {
    match v {
        None => Err(Invalid(format!("{what} is missing"))),
        Some(v) if !v.is_finite() => Err(Invalid(format!("{what} is not a number"))),
        Some(v) if v <= 0.0 => Err(Invalid(format!("{what} is not positive ({v})"))),
        Some(v) if v > max => Err(Invalid(format!("{what} is absurd ({v})"))),
        Some(v) => Ok(v),
    }
}

/// A percentage change may be unknown (`None` stays `None`), but never NaN or below -100 %.
pub fn check_change(what: &str, v: Option<f64>) -> Result<Option<f64>, Invalid> {
    match v {
        None => Ok(None),
        Some(v) if !v.is_finite() => Err(Invalid(format!("{what} is not a number"))),
        Some(v) if !(-100.0..=100_000.0).contains(&v) => {
            Err(Invalid(format!("{what} is absurd ({v})")))
        }
        Some(v) => Ok(Some(v)),
    }
}

/// A share of the whole market, in `(0, 100]`.
pub fn check_share(what: &str, v: Option<f64>) -> Result<f64, Invalid> {
    check_price(what, v, 100.0)
}

impl Global {
    /// Cross-field sanity once each field passed on its own.
    pub fn check(self) -> Result<Global, Invalid> {
        if self.btc_dominance + self.eth_dominance > 100.0 {
            return Err(Invalid(
                "BTC and ETH dominance add up to more than 100 %".into(),
            ));
        }
        Ok(self)
    }
}

/// The coins that passed validation; an error only when none did (a partial answer is a
/// success, and the coins it lacks go to the next provider).
pub fn some_quotes(
    quotes: impl IntoIterator<Item = (Coin, Result<Quote, Invalid>)>,
) -> Result<Vec<(Coin, Quote)>, Invalid> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (coin, quote) in quotes {
        match quote {
            Ok(q) => good.push((coin, q)),
            Err(e) => bad.push(format!("{}: {e}", coin.key())),
        }
    }
    if good.is_empty() {
        return Err(Invalid(if bad.is_empty() {
            "no quotes".into()
        } else {
            bad.join("; ")
        }));
    }
    if !bad.is_empty() {
        tracing::debug!(rejected = %bad.join("; "), "some quotes were rejected");
    }
    Ok(good)
}

/// A value as last fetched: where from, when, and whether it is still believed current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry<T> {
    pub value: T,
    pub source: String,
    pub fetched_at_ms: i64,
    /// Set when restored from the store or when the latest attempt for it failed.
    #[serde(skip)]
    pub stale: bool,
}

impl<T> Entry<T> {
    pub fn new(value: T, source: &str, at: DateTime<Utc>) -> Self {
        Entry {
            value,
            source: source.to_owned(),
            fetched_at_ms: at.timestamp_millis(),
            stale: false,
        }
    }

    fn freshness(&self) -> Freshness<'_> {
        Freshness {
            fetched_at: rfc3339(self.fetched_at_ms),
            stale: self.stale,
            source: &self.source,
        }
    }
}

/// The last good value of every field; `None` means never fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Book {
    pub prices: [Option<Entry<Quote>>; 7],
    pub global: Option<Entry<Global>>,
    pub fng: Option<Entry<FearGreed>>,
    pub rsi: Option<Entry<f64>>,
    pub indices: [Option<Entry<IndexQuote>>; 3],
    /// Groups whose latest attempt left some of their fields without a fresh value.
    pub failing: [bool; 5],
    /// Groups the operator gave no source for (US indices without a Finnhub key): never
    /// attempted, so neither failing nor shown.
    pub unconfigured: [bool; 5],
}

impl Book {
    pub fn price(&self, coin: Coin) -> Option<&Entry<Quote>> {
        self.prices[coin as usize].as_ref()
    }

    pub fn index(&self, index: Index) -> Option<&Entry<IndexQuote>> {
        self.indices[index as usize].as_ref()
    }

    /// Takes every value of `from` at least as recent as this book's (or that it lacks), and
    /// `from`'s failing groups: `from` is the authority, but not for values it has older.
    pub fn merge_newer(&mut self, from: &Book) {
        fn take<T: Clone>(mine: &mut Option<Entry<T>>, theirs: &Option<Entry<T>>) {
            if let Some(t) = theirs
                && mine
                    .as_ref()
                    .is_none_or(|m| t.fetched_at_ms >= m.fetched_at_ms)
            {
                *mine = Some(t.clone());
            }
        }
        for (m, t) in self.prices.iter_mut().zip(&from.prices) {
            take(m, t);
        }
        take(&mut self.global, &from.global);
        take(&mut self.fng, &from.fng);
        take(&mut self.rsi, &from.rsi);
        for (m, t) in self.indices.iter_mut().zip(&from.indices) {
            take(m, t);
        }
        self.failing = from.failing;
        self.unconfigured = from.unconfigured;
    }

    /// Marks every value of `group` stale (all its providers failed for them).
    pub fn mark_stale(&mut self, group: Group) {
        fn stale<T>(e: &mut Option<Entry<T>>) {
            if let Some(e) = e {
                e.stale = true;
            }
        }
        match group {
            Group::Prices => self.prices.iter_mut().for_each(stale),
            Group::Global => stale(&mut self.global),
            Group::Fng => stale(&mut self.fng),
            Group::Rsi => stale(&mut self.rsi),
            Group::Indices => self.indices.iter_mut().for_each(stale),
        }
    }

    /// The group's values as store records (key, postcard bytes).
    pub fn records(&self, group: Group) -> Vec<(String, Vec<u8>)> {
        fn rec<T: Serialize>(out: &mut Vec<(String, Vec<u8>)>, key: String, e: &Option<Entry<T>>) {
            if let Some(e) = e
                && let Ok(bytes) = postcard::to_allocvec(e)
            {
                out.push((key, bytes));
            }
        }
        let mut out = Vec::new();
        match group {
            Group::Prices => {
                for c in Coin::ALL {
                    rec(
                        &mut out,
                        format!("price.{}", c.key()),
                        &self.prices[c as usize],
                    );
                }
            }
            Group::Global => rec(&mut out, "global".into(), &self.global),
            Group::Fng => rec(&mut out, "fng".into(), &self.fng),
            Group::Rsi => rec(&mut out, "rsi".into(), &self.rsi),
            Group::Indices => {
                for i in Index::ALL {
                    rec(
                        &mut out,
                        format!("index.{}", i.symbol()),
                        &self.indices[i as usize],
                    );
                }
            }
        }
        out
    }

    /// Puts back one record written by [`Book::records`], marked stale until refreshed.
    pub fn restore(&mut self, key: &str, bytes: &[u8]) -> Result<(), Invalid> {
        fn load<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<Option<Entry<T>>, Invalid> {
            let mut e: Entry<T> =
                postcard::from_bytes(bytes).map_err(|e| Invalid(e.to_string()))?;
            e.stale = true;
            Ok(Some(e))
        }
        if let Some(coin) = key.strip_prefix("price.") {
            let coin = Coin::ALL
                .into_iter()
                .find(|c| c.key() == coin)
                .ok_or_else(|| Invalid(format!("unknown coin {coin}")))?;
            self.prices[coin as usize] = load(bytes)?;
        } else if let Some(sym) = key.strip_prefix("index.") {
            let index = Index::ALL
                .into_iter()
                .find(|i| i.symbol() == sym)
                .ok_or_else(|| Invalid(format!("unknown index {sym}")))?;
            self.indices[index as usize] = load(bytes)?;
        } else {
            match key {
                "global" => self.global = load(bytes)?,
                "fng" => self.fng = load(bytes)?,
                "rsi" => self.rsi = load(bytes)?,
                other => return Err(Invalid(format!("unknown market field {other}"))),
            }
        }
        Ok(())
    }

    /// Distinct sources of a group's present values, in first-seen order.
    fn sources(&self, group: Group) -> Option<String> {
        let all: Vec<&str> = match group {
            Group::Prices => self
                .prices
                .iter()
                .flatten()
                .map(|e| e.source.as_str())
                .collect(),
            Group::Global => self.global.iter().map(|e| e.source.as_str()).collect(),
            Group::Fng => self.fng.iter().map(|e| e.source.as_str()).collect(),
            Group::Rsi => self.rsi.iter().map(|e| e.source.as_str()).collect(),
            Group::Indices => self
                .indices
                .iter()
                .flatten()
                .map(|e| e.source.as_str())
                .collect(),
        };
        let mut names: Vec<&str> = Vec::new();
        for s in all {
            if !names.contains(&s) {
                names.push(s);
            }
        }
        (!names.is_empty()).then(|| names.join(","))
    }

    fn newest_ms(&self) -> Option<i64> {
        let p = self.prices.iter().flatten().map(|e| e.fetched_at_ms);
        let i = self.indices.iter().flatten().map(|e| e.fetched_at_ms);
        p.chain(i)
            .chain(self.global.iter().map(|e| e.fetched_at_ms))
            .chain(self.fng.iter().map(|e| e.fetched_at_ms))
            .chain(self.rsi.iter().map(|e| e.fetched_at_ms))
            .max()
    }

    fn any_stale(&self) -> bool {
        self.prices.iter().flatten().any(|e| e.stale)
            || self.indices.iter().flatten().any(|e| e.stale)
            || self.global.as_ref().is_some_and(|e| e.stale)
            || self.fng.as_ref().is_some_and(|e| e.stale)
            || self.rsi.as_ref().is_some_and(|e| e.stale)
    }
}

/// Everything the dashboard shows at one moment; serializes to the SPEC §5.1 JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub values: Book,
    /// BTC price over the last 24 h: (unix ms, price), oldest first, at most one per bucket.
    pub btc_sparkline: Vec<(i64, f64)>,
    /// Simulated data of the `demo` command.
    pub demo: bool,
    /// How often the feed refreshes its fastest group (prices), in ms; 0 when unknown. A
    /// newest value older than that tells readers the data is delayed.
    pub refresh_ms: u64,
    /// Bumped on every change; not serialized.
    pub version: u64,
    /// When this snapshot was made, in unix ms, on the instance that made it (the lease
    /// holder's clock for a relayed one): the `timestamp` of its live updates. Not serialized.
    pub produced_at_ms: i64,
}

impl Snapshot {
    /// Whether `self` and `other` show the same data (version and time aside).
    pub fn same_data(&self, other: &Snapshot) -> bool {
        self.values == other.values
            && self.btc_sparkline == other.btc_sparkline
            && self.demo == other.demo
            && self.refresh_ms == other.refresh_ms
    }
}

impl Snapshot {
    /// `true` when some field is stale or a group's latest attempt failed.
    pub fn partial_failure(&self) -> bool {
        self.values.any_stale() || self.values.failing.iter().any(|f| *f)
    }

    pub fn last_updated(&self) -> Option<String> {
        self.values.newest_ms().and_then(rfc3339)
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

#[derive(Serialize)]
struct Freshness<'a> {
    fetched_at: Option<String>,
    stale: bool,
    source: &'a str,
}

#[derive(Serialize)]
struct IndexJson {
    symbol: &'static str,
    name: &'static str,
    price: Option<f64>,
    change: Option<f64>,
    change_percent: Option<f64>,
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = &self.values;
        let mut fresh: BTreeMap<String, Option<Freshness<'_>>> = BTreeMap::new();
        let mut m = s.serialize_map(None)?;
        for c in Coin::ALL {
            let e = v.price(c);
            m.serialize_entry(&format!("{}_price_usd", c.key()), &e.map(|e| e.value.price))?;
            m.serialize_entry(
                &format!("{}_change_24h", c.key()),
                &e.and_then(|e| e.value.change_24h),
            )?;
            for field in ["price_usd", "change_24h"] {
                fresh.insert(format!("{}_{field}", c.key()), e.map(Entry::freshness));
            }
        }
        let g = v.global.as_ref();
        let global: [(&str, Option<f64>); 5] = [
            ("market_cap_usd", g.map(|e| e.value.market_cap_usd)),
            (
                "market_cap_change_percentage_24h_usd",
                g.and_then(|e| e.value.market_cap_change_24h),
            ),
            ("volume_24h_usd", g.map(|e| e.value.volume_24h_usd)),
            (
                "btc_market_cap_percentage",
                g.map(|e| e.value.btc_dominance),
            ),
            (
                "eth_market_cap_percentage",
                g.map(|e| e.value.eth_dominance),
            ),
        ];
        for (name, value) in global {
            m.serialize_entry(name, &value)?;
            fresh.insert(name.to_owned(), g.map(Entry::freshness));
        }
        let fng = v.fng.as_ref();
        m.serialize_entry("fng_value", &fng.map(|e| e.value.value))?;
        m.serialize_entry(
            "fng_value_classification",
            &fng.map(|e| e.value.classification.as_str()),
        )?;
        let rsi = v.rsi.as_ref();
        m.serialize_entry("rsi_14", &rsi.map(|e| e.value))?;
        m.serialize_entry("btc_rsi_14", &rsi.map(|e| e.value))?;
        for name in ["fng_value", "fng_value_classification"] {
            fresh.insert(name.to_owned(), fng.map(Entry::freshness));
        }
        for name in ["rsi_14", "btc_rsi_14"] {
            fresh.insert(name.to_owned(), rsi.map(Entry::freshness));
        }
        let mut indices = BTreeMap::new();
        for i in Index::ALL {
            let e = v.index(i);
            indices.insert(
                i.symbol(),
                IndexJson {
                    symbol: i.symbol(),
                    name: i.name(),
                    price: e.map(|e| e.value.price),
                    change: e.and_then(|e| e.value.change),
                    change_percent: e.and_then(|e| e.value.change_percent),
                },
            );
            fresh.insert(
                format!("us_stock_indices.{}", i.symbol()),
                e.map(Entry::freshness),
            );
        }
        m.serialize_entry("us_stock_indices", &indices)?;
        let sources: BTreeMap<&str, Option<String>> = Group::ALL
            .into_iter()
            .map(|g| (g.name(), v.sources(g)))
            .collect();
        m.serialize_entry("data_sources", &sources)?;
        let unconfigured: Vec<&str> = Group::ALL
            .into_iter()
            .filter(|g| v.unconfigured[*g as usize])
            .map(Group::name)
            .collect();
        m.serialize_entry("unconfigured", &unconfigured)?;
        m.serialize_entry("refresh_seconds", &(self.refresh_ms as f64 / 1000.0))?;
        m.serialize_entry("partial_failure", &self.partial_failure())?;
        m.serialize_entry("last_updated", &self.last_updated())?;
        m.serialize_entry("freshness", &fresh)?;
        m.serialize_entry("demo", &self.demo)?;
        m.serialize_entry("btc_sparkline", &self.btc_sparkline)?;
        m.end()
    }
}

/// At most one point per `bucket_ms`, the latest of each, oldest first.
pub fn downsample(points: impl IntoIterator<Item = (i64, f64)>, bucket_ms: i64) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    let bucket_ms = bucket_ms.max(1);
    for (t, p) in points {
        match out.last_mut() {
            Some(last) if last.0.div_euclid(bucket_ms) == t.div_euclid(bucket_ms) => *last = (t, p),
            _ => out.push((t, p)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::wire::SnapshotWire;

    #[test]
    fn never_fetched_is_null_not_zero() {
        let json = serde_json::to_value(Snapshot::default()).expect("json");
        for c in Coin::ALL {
            assert!(json[format!("{}_price_usd", c.key())].is_null());
            assert!(json[format!("{}_change_24h", c.key())].is_null());
        }
        for f in [
            "market_cap_usd",
            "market_cap_change_percentage_24h_usd",
            "volume_24h_usd",
            "btc_market_cap_percentage",
            "eth_market_cap_percentage",
            "fng_value",
            "fng_value_classification",
            "rsi_14",
            "btc_rsi_14",
            "last_updated",
        ] {
            assert!(json[f].is_null(), "{f}");
        }
        assert!(json["us_stock_indices"]["SPY"]["price"].is_null());
        assert_eq!(json["us_stock_indices"]["SPY"]["symbol"], "SPY");
        assert!(json["data_sources"]["prices"].is_null());
        assert!(json["freshness"]["btc_price_usd"].is_null());
        assert_eq!(json["partial_failure"], false);
        assert_eq!(json["demo"], false);
    }

    #[test]
    fn records_round_trip_as_stale() {
        let mut book = Book::default();
        book.prices[0] = Some(Entry::new(
            Quote {
                price: 84250.0,
                change_24h: None,
            },
            "coingecko",
            Utc::now(),
        ));
        book.fng = Some(Entry::new(
            FearGreed {
                value: 38,
                classification: "Fear".into(),
            },
            "alternative.me",
            Utc::now(),
        ));
        let mut back = Book::default();
        for g in Group::ALL {
            for (k, v) in book.records(g) {
                back.restore(&k, &v).expect("restore");
            }
        }
        let btc = back.price(Coin::Btc).expect("btc");
        assert!(btc.stale);
        assert_eq!(btc.value.change_24h, None);
        assert_eq!(back.fng.as_ref().map(|e| e.value.value), Some(38));
        assert!(back.restore("nonsense", &[]).is_err());
    }

    #[test]
    fn validation_rejects_nonsense() {
        assert!(check_price("p", Some(0.0), 10.0).is_err());
        assert!(check_price("p", Some(-1.0), 10.0).is_err());
        assert!(check_price("p", Some(f64::NAN), 10.0).is_err());
        assert!(check_price("p", Some(f64::INFINITY), 10.0).is_err());
        assert!(check_price("p", Some(11.0), 10.0).is_err());
        assert!(check_price("p", None, 10.0).is_err());
        assert_eq!(check_price("p", Some(5.0), 10.0).ok(), Some(5.0));
        assert_eq!(check_change("c", None).ok(), Some(None));
        assert!(check_change("c", Some(f64::NAN)).is_err());
        assert!(check_change("c", Some(-101.0)).is_err());
        assert!(check_share("d", Some(100.5)).is_err());
    }

    #[test]
    fn downsample_keeps_the_latest_per_bucket() {
        let pts = [(0, 1.0), (5, 2.0), (10, 3.0), (19, 4.0), (20, 5.0)];
        assert_eq!(downsample(pts, 10), vec![(5, 2.0), (19, 4.0), (20, 5.0)]);
    }

    #[test]
    fn a_snapshot_travels_whole() {
        let mut book = Book::default();
        let at = "2026-11-20T08:00:00Z".parse().expect("date");
        book.prices[Coin::Eth as usize] = Some(Entry {
            stale: true,
            ..Entry::new(
                Quote {
                    price: 3000.0,
                    change_24h: Some(-1.5),
                },
                "binance",
                at,
            )
        });
        book.fng = Some(Entry::new(
            FearGreed {
                value: 38,
                classification: "Fear".into(),
            },
            "alternative.me",
            at,
        ));
        book.failing[2] = true;
        book.unconfigured[4] = true;
        let snapshot = Snapshot {
            values: book,
            btc_sparkline: vec![(1, 90_000.0)],
            demo: false,
            refresh_ms: 30_000,
            version: 0,
            produced_at_ms: 1_794_960_000_123,
        };
        let bytes = postcard::to_allocvec(&SnapshotWire::from(&snapshot)).expect("encode");
        let back: SnapshotWire = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back.into_snapshot(), Some(snapshot));
    }
}
