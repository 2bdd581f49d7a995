//! "Since this report": the market when a report was published (BTC, ETH, total market cap,
//! BTC dominance, Fear & Greed), to show beside the market now. A value at publication is
//! either recorded from the live snapshot as the report is published, or, for a report from
//! before, read from the providers' daily history (Binance daily klines, alternative.me's
//! index history), fetched once and kept in the store. Nothing is estimated: a value that
//! neither gives stays unknown (total market cap and dominance have no keyless history).

pub mod history;

use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use self::history::History;
use crate::market::Market;
use crate::market::snapshot::Entry;
use crate::reports::publish::{Published, Subscriber};
use crate::store::{Store, StoreError};

/// Daily history series in the store.
pub const BTC: &str = "binance:BTCUSDT";
pub const ETH: &str = "binance:ETHUSDT";
pub const FNG: &str = "alternative.me:fng";

/// A live value counts as "at publication" when it was fetched this close to the report's
/// date; further away, the report is left to the daily history.
const RECORD_WINDOW_MS: i64 = 2 * 3600 * 1000;
/// A daily value counts as "at publication" when its day began at most this long before
/// the report (the day's own opening value, or the previous day's where a day is missing).
const DAILY_WINDOW_MS: i64 = 36 * 3600 * 1000;
pub const DAY_MS: i64 = 86_400_000;

/// Where a value at publication came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The live snapshot as the report was published.
    Snapshot,
    /// A provider's daily history: the value at the start of that UTC day.
    DailyOpen,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub value: f64,
    /// When the value was true (fetched, or the day's start), unix ms.
    pub at_ms: i64,
    pub source: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FearGreed {
    pub value: u8,
    pub classification: String,
    pub at_ms: i64,
    pub source: String,
    pub origin: Origin,
}

/// The market at one report's publication; `None` is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AtPublication {
    pub btc: Option<Value>,
    pub eth: Option<Value>,
    pub market_cap: Option<Value>,
    pub btc_dominance: Option<Value>,
    pub fng: Option<FearGreed>,
}

impl AtPublication {
    /// Whether every value a history can give is known (BTC, ETH, Fear & Greed).
    fn has_history_fields(&self) -> bool {
        self.btc.is_some() && self.eth.is_some() && self.fng.is_some()
    }

    /// The values of `snapshot` fetched within the window around `created_at`.
    pub fn from_snapshot(book: &crate::market::snapshot::Book, created_at: DateTime<Utc>) -> Self {
        let at = created_at.timestamp_millis();
        let near = |e_at: i64| (e_at - at).abs() <= RECORD_WINDOW_MS;
        let value = |v: f64, e_at: i64, source: &str| {
            near(e_at).then(|| Value {
                value: v,
                at_ms: e_at,
                source: source.to_owned(),
                origin: Origin::Snapshot,
            })
        };
        let price = |e: Option<&Entry<crate::market::snapshot::Quote>>| {
            e.and_then(|e| value(e.value.price, e.fetched_at_ms, &e.source))
        };
        let global = book.global.as_ref();
        AtPublication {
            btc: price(book.price(crate::market::Coin::Btc)),
            eth: price(book.price(crate::market::Coin::Eth)),
            market_cap: global
                .and_then(|e| value(e.value.market_cap_usd, e.fetched_at_ms, &e.source)),
            btc_dominance: global
                .and_then(|e| value(e.value.btc_dominance, e.fetched_at_ms, &e.source)),
            fng: book.fng.as_ref().and_then(|e| {
                near(e.fetched_at_ms).then(|| FearGreed {
                    value: e.value.value,
                    classification: e.value.classification.clone(),
                    at_ms: e.fetched_at_ms,
                    source: e.source.clone(),
                    origin: Origin::Snapshot,
                })
            }),
        }
    }

    fn is_empty(&self) -> bool {
        *self == AtPublication::default()
    }
}

/// A daily value as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Daily {
    pub value: f64,
    /// The index's classification (Fear & Greed only).
    pub label: Option<String>,
}

/// The market at the publication of the report `id` dated `created_at`: what was recorded
/// then, completed from the stored daily history.
pub fn at_publication(
    store: &Store,
    id: u64,
    created_at: DateTime<Utc>,
) -> Result<AtPublication, StoreError> {
    let mut out = match store.market_at(id)? {
        Some(bytes) => postcard::from_bytes(&bytes).unwrap_or_else(|e| {
            tracing::warn!(id, error = %e, "unreadable market values at publication; ignored");
            AtPublication::default()
        }),
        None => AtPublication::default(),
    };
    let at = created_at.timestamp_millis();
    let daily = |series: &str| -> Result<Option<(i64, Daily)>, StoreError> {
        Ok(store
            .daily_at(series, at, at - DAILY_WINDOW_MS)?
            .and_then(|(day, bytes)| postcard::from_bytes::<Daily>(&bytes).ok().map(|d| (day, d))))
    };
    let history_value = |(day, d): (i64, Daily)| Value {
        value: d.value,
        at_ms: day,
        source: "binance".into(),
        origin: Origin::DailyOpen,
    };
    if out.btc.is_none() {
        out.btc = daily(BTC)?.map(history_value);
    }
    if out.eth.is_none() {
        out.eth = daily(ETH)?.map(history_value);
    }
    if out.fng.is_none() {
        out.fng = daily(FNG)?.and_then(|(day, d)| {
            Some(FearGreed {
                value: u8::try_from(d.value.round() as i64)
                    .ok()
                    .filter(|v| *v <= 100)?,
                classification: d.label?,
                at_ms: day,
                source: "alternative.me".into(),
                origin: Origin::DailyOpen,
            })
        });
    }
    Ok(out)
}

/// Records the market as reports are published (a subscriber of the publish path, placed
/// before the page cache so that a report's first cached page already shows them), and
/// wakes the history task for reports it could not record.
pub struct Recorder {
    store: Arc<Store>,
    market: RwLock<Option<Market>>,
    wake: RwLock<Option<mpsc::UnboundedSender<()>>>,
}

impl Recorder {
    pub fn new(store: Arc<Store>) -> Recorder {
        Recorder {
            store,
            market: RwLock::new(None),
            wake: RwLock::new(None),
        }
    }

    /// The market whose snapshot is recorded (the live feed; a demo feed is never recorded).
    pub fn set_market(&self, market: Market) {
        *self.market.write().unwrap_or_else(PoisonError::into_inner) = Some(market);
    }

    /// Where to say that reports lack values (the history task listens).
    pub fn set_wake(&self, wake: mpsc::UnboundedSender<()>) {
        *self.wake.write().unwrap_or_else(PoisonError::into_inner) = Some(wake);
    }
}

impl Subscriber for Recorder {
    fn published(&self, change: &Published) {
        if change.new.is_empty() {
            return;
        }
        let snapshot = self
            .market
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(Market::current)
            .filter(|s| !s.demo);
        let mut records = Vec::new();
        let mut incomplete = false;
        for r in &change.new {
            let at = snapshot
                .as_ref()
                .map(|s| AtPublication::from_snapshot(&s.values, r.created_at))
                .unwrap_or_default();
            incomplete |= !at.has_history_fields();
            if !at.is_empty()
                && let Ok(bytes) = postcard::to_allocvec(&at)
            {
                records.push((r.id, bytes));
            }
        }
        if !records.is_empty()
            && let Err(e) = self.store.market_at_put(&records)
        {
            tracing::warn!(error = %e, "cannot record the market at publication");
        }
        if incomplete && let Some(wake) = &*self.wake.read().unwrap_or_else(PoisonError::into_inner)
        {
            let _ = wake.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::snapshot::{Book, FearGreed as Fg, Global, Quote};

    #[test]
    fn only_values_fetched_near_the_publication_are_recorded() {
        let created: DateTime<Utc> = "2026-11-20T08:00:00Z".parse().expect("date");
        let mut book = Book::default();
        book.prices[0] = Some(Entry::new(
            Quote {
                price: 84_000.0,
                change_24h: None,
            },
            "coingecko",
            created + chrono::TimeDelta::minutes(3),
        ));
        // Fetched the day before: not the market at publication.
        book.prices[1] = Some(Entry::new(
            Quote {
                price: 3_100.0,
                change_24h: None,
            },
            "coingecko",
            created - chrono::TimeDelta::hours(20),
        ));
        book.global = Some(Entry::new(
            Global {
                market_cap_usd: 2.9e12,
                market_cap_change_24h: None,
                volume_24h_usd: 1e11,
                btc_dominance: 58.1,
                eth_dominance: 12.0,
            },
            "coingecko",
            created - chrono::TimeDelta::minutes(30),
        ));
        book.fng = Some(Entry::new(
            Fg {
                value: 52,
                classification: "Neutral".into(),
            },
            "alternative.me",
            created,
        ));
        let at = AtPublication::from_snapshot(&book, created);
        assert_eq!(at.btc.as_ref().map(|v| v.value), Some(84_000.0));
        assert_eq!(at.btc.as_ref().map(|v| v.origin), Some(Origin::Snapshot));
        assert_eq!(at.eth, None);
        assert_eq!(at.market_cap.as_ref().map(|v| v.value), Some(2.9e12));
        assert_eq!(at.btc_dominance.as_ref().map(|v| v.value), Some(58.1));
        assert_eq!(at.fng.as_ref().map(|f| f.value), Some(52));
        assert!(!at.has_history_fields());
        assert!(AtPublication::from_snapshot(&Book::default(), created).is_empty());
    }
}
