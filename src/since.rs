//! "Since this report": the market when a report was published (BTC, ETH, total market cap,
//! BTC dominance, Fear & Greed), to show beside the market now. A value at publication is
//! either recorded from the live snapshot as the report is published, or, for a report from
//! before, read from the providers' daily history (Binance daily klines, alternative.me's
//! index history), fetched once and kept in the store. Nothing is estimated: a value that
//! neither gives stays unknown (total market cap and dominance have no keyless history).

pub mod history;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use self::history::History;
use crate::market::Market;
use crate::market::snapshot::Entry;
use crate::reports::Report;
use crate::reports::publish::{self, Change, Stamp, Subscriber};
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

/// Stamps each report with the market at its publication before the publish path commits it
/// (kept in the same transaction), and wakes the history task when a new report is stored
/// without every value a history can give (a subscriber of the publish path).
pub struct Recorder {
    store: Arc<Store>,
    /// The market whose snapshot is kept (a demo feed's never is).
    market: Market,
    /// Where to say that reports lack values (the history task listens), if it runs.
    wake: Option<mpsc::UnboundedSender<()>>,
}

impl Recorder {
    pub fn new(
        store: Arc<Store>,
        market: Market,
        wake: Option<mpsc::UnboundedSender<()>>,
    ) -> Recorder {
        Recorder {
            store,
            market,
            wake,
        }
    }

    /// Whether the values kept for `id` (if any) lack one a history can give.
    fn lacks_history_fields(&self, id: u64) -> bool {
        match self.store.market_at(id) {
            Ok(Some(bytes)) => postcard::from_bytes::<AtPublication>(&bytes)
                .ok()
                .is_none_or(|at| !at.has_history_fields()),
            Ok(None) | Err(_) => true,
        }
    }
}

impl Stamp for Recorder {
    fn stamp(&self, reports: &[Report]) -> Vec<Option<Vec<u8>>> {
        let snapshot = self.market.current();
        reports
            .iter()
            .map(|r| {
                if snapshot.demo {
                    return None;
                }
                let at = AtPublication::from_snapshot(&snapshot.values, r.created_at);
                if at.is_empty() {
                    return None;
                }
                postcard::to_allocvec(&at).ok()
            })
            .collect()
    }
}

impl Subscriber for Recorder {
    fn changed(&self, change: &Change, origin: publish::Origin) {
        let (Change::Published(published), publish::Origin::Local, Some(wake)) =
            (change, origin, &self.wake)
        else {
            return;
        };
        if published
            .new
            .iter()
            .any(|r| self.lacks_history_fields(r.id))
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
