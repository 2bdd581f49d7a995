//! A market snapshot as it travels between instances on the bus: every value with its
//! source, time and staleness, in a shape of its own so the snapshot's JSON can change freely.

use serde::{Deserialize, Serialize};

use super::snapshot::{Book, Entry, FearGreed, Global, IndexQuote, Quote, Snapshot};

/// A snapshot as it travels between instances: every value with its source, time and
/// staleness (the store's records leave staleness out; it is decided again on restore).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotWire {
    prices: Vec<Option<WireEntry<Quote>>>,
    global: Option<WireEntry<Global>>,
    fng: Option<WireEntry<FearGreed>>,
    rsi: Option<WireEntry<f64>>,
    indices: Vec<Option<WireEntry<IndexQuote>>>,
    failing: [bool; 5],
    unconfigured: [bool; 5],
    btc_sparkline: Vec<(i64, f64)>,
    demo: bool,
    refresh_ms: u64,
    produced_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireEntry<T> {
    value: T,
    source: String,
    fetched_at_ms: i64,
    stale: bool,
}

impl<T: Clone> WireEntry<T> {
    fn of(e: &Option<Entry<T>>) -> Option<WireEntry<T>> {
        e.as_ref().map(|e| WireEntry {
            value: e.value.clone(),
            source: e.source.clone(),
            fetched_at_ms: e.fetched_at_ms,
            stale: e.stale,
        })
    }

    fn entry(self) -> Entry<T> {
        Entry {
            value: self.value,
            source: self.source,
            fetched_at_ms: self.fetched_at_ms,
            stale: self.stale,
        }
    }
}

impl From<&Snapshot> for SnapshotWire {
    fn from(s: &Snapshot) -> SnapshotWire {
        let b = &s.values;
        SnapshotWire {
            prices: b.prices.iter().map(WireEntry::of).collect(),
            global: WireEntry::of(&b.global),
            fng: WireEntry::of(&b.fng),
            rsi: WireEntry::of(&b.rsi),
            indices: b.indices.iter().map(WireEntry::of).collect(),
            failing: b.failing,
            unconfigured: b.unconfigured,
            btc_sparkline: s.btc_sparkline.clone(),
            demo: s.demo,
            refresh_ms: s.refresh_ms,
            produced_at_ms: s.produced_at_ms,
        }
    }
}

impl SnapshotWire {
    /// The snapshot (version 0: the receiver numbers its own), or `None` when the shape is
    /// not this build's.
    pub fn into_snapshot(self) -> Option<Snapshot> {
        fn array<T: Clone, const N: usize>(
            v: Vec<Option<WireEntry<T>>>,
        ) -> Option<[Option<Entry<T>>; N]> {
            v.into_iter()
                .map(|e| e.map(WireEntry::entry))
                .collect::<Vec<_>>()
                .try_into()
                .ok()
        }
        Some(Snapshot {
            values: Book {
                prices: array(self.prices)?,
                global: self.global.map(WireEntry::entry),
                fng: self.fng.map(WireEntry::entry),
                rsi: self.rsi.map(WireEntry::entry),
                indices: array(self.indices)?,
                failing: self.failing,
                unconfigured: self.unconfigured,
            },
            btc_sparkline: self.btc_sparkline,
            demo: self.demo,
            refresh_ms: self.refresh_ms,
            version: 0,
            produced_at_ms: self.produced_at_ms,
        })
    }
}
