//! The simulated market of the `demo` command: a deterministic random walk (seeded, no clock
//! in the numbers) around plausible values, and never an outbound connection.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::snapshot::{Book, Coin, Entry, FearGreed, Global, Index, IndexQuote, Quote};

pub const SOURCE: &str = "demo";

const PRICES: [f64; 7] = [84250.0, 2953.41, 142.63, 865.12, 2.18, 0.641827, 17.86];
const CHANGES: [f64; 7] = [-1.84, -2.61, 3.10, 0.77, -0.96, -3.42, 1.27];
const INDICES: [f64; 3] = [481.27, 702.84, 262.41];
const INDEX_PREV: [f64; 3] = [483.05, 698.93, 260.88];
/// Points of simulated history before the first step (5 min apart: 24 h).
const PREFILL: usize = 288;
const PREFILL_SPACING_MS: i64 = 5 * 60 * 1000;

/// SplitMix64: tiny, fast, and the same sequence on every platform and release.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly standard normal (Irwin-Hall with four terms).
    fn normal(&mut self) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * 3f64.sqrt()
    }
}

#[derive(Debug, Clone)]
pub struct Walk {
    rng: Rng,
    prices: [f64; 7],
    /// Price 24 h ago, the base of each change.
    opens: [f64; 7],
    volume: f64,
    fng: f64,
    rsi: f64,
    indices: [f64; 3],
    history: VecDeque<(i64, f64)>,
}

impl Walk {
    pub fn new(seed: u64, now: DateTime<Utc>) -> Walk {
        let mut walk = Walk {
            rng: Rng(seed),
            prices: PRICES,
            opens: std::array::from_fn(|i| PRICES[i] / (1.0 + CHANGES[i] / 100.0)),
            volume: 118_402_665_193.61,
            fng: 38.0,
            rsi: 44.87,
            indices: INDICES,
            history: VecDeque::new(),
        };
        // Yesterday, walked backwards from today's price.
        let now_ms = now.timestamp_millis();
        let mut p = PRICES[0];
        let mut back = Vec::with_capacity(PREFILL);
        for k in 0..PREFILL {
            back.push((now_ms - k as i64 * PREFILL_SPACING_MS, p));
            p *= (0.003 * walk.rng.normal()).exp();
        }
        walk.history.extend(back.into_iter().rev());
        walk
    }

    /// One tick: every value moves a little, pulled back towards its starting level.
    pub fn step(&mut self, now: DateTime<Utc>) {
        for (i, price) in self.prices.iter_mut().enumerate() {
            let pull = 0.002 * (PRICES[i] / *price).ln();
            *price *= (0.0006 * self.rng.normal() + pull).exp();
        }
        self.volume *= (0.001 * self.rng.normal()).exp();
        self.fng =
            (self.fng + 0.15 * self.rng.normal() + 0.01 * (38.0 - self.fng)).clamp(1.0, 99.0);
        self.rsi =
            (self.rsi + 0.2 * self.rng.normal() + 0.01 * (44.87 - self.rsi)).clamp(5.0, 95.0);
        for (i, v) in self.indices.iter_mut().enumerate() {
            *v *= (0.0002 * self.rng.normal() + 0.002 * (INDICES[i] / *v).ln()).exp();
        }
        let now_ms = now.timestamp_millis();
        self.history.push_back((now_ms, self.prices[0]));
        let keep_from = now_ms - PREFILL as i64 * PREFILL_SPACING_MS;
        while self.history.front().is_some_and(|(t, _)| *t < keep_from) {
            self.history.pop_front();
        }
    }

    pub fn history(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.history.iter().copied()
    }

    /// The current values, every one attributed to the demo feed.
    pub fn book(&self, now: DateTime<Utc>) -> Book {
        let mut book = Book::default();
        for c in Coin::ALL {
            let i = c as usize;
            let quote = Quote {
                price: round(self.prices[i], 6),
                change_24h: Some(round((self.prices[i] / self.opens[i] - 1.0) * 100.0, 4)),
            };
            book.prices[i] = Some(Entry::new(quote, SOURCE, now));
        }
        // Market cap follows the two largest coins; the rest of the market holds still.
        let btc_cap = 1_682_400_000_000.0 * self.prices[0] / PRICES[0];
        let eth_cap = 356_700_000_000.0 * self.prices[1] / PRICES[1];
        let cap = btc_cap + eth_cap + 854_300_000_000.0;
        let cap_open = 2_930_722_000_000.0;
        book.global = Some(Entry::new(
            Global {
                market_cap_usd: round(cap, 0),
                market_cap_change_24h: Some(round((cap / cap_open - 1.0) * 100.0, 4)),
                volume_24h_usd: round(self.volume, 0),
                btc_dominance: round(btc_cap / cap * 100.0, 4),
                eth_dominance: round(eth_cap / cap * 100.0, 4),
            },
            SOURCE,
            now,
        ));
        let fng = self.fng.round().clamp(0.0, 100.0) as u8;
        book.fng = Some(Entry::new(
            FearGreed {
                value: fng,
                classification: classify(fng).into(),
            },
            SOURCE,
            now,
        ));
        book.rsi = Some(Entry::new(round(self.rsi, 2), SOURCE, now));
        for x in Index::ALL {
            let i = x as usize;
            let price = round(self.indices[i], 2);
            book.indices[i] = Some(Entry::new(
                IndexQuote {
                    price,
                    change: Some(round(price - INDEX_PREV[i], 2)),
                    change_percent: Some(round((price / INDEX_PREV[i] - 1.0) * 100.0, 4)),
                },
                SOURCE,
                now,
            ));
        }
        book
    }
}

/// alternative.me's bands.
fn classify(v: u8) -> &'static str {
    match v {
        0..=24 => "Extreme Fear",
        25..=44 => "Fear",
        45..=55 => "Neutral",
        56..=75 => "Greed",
        _ => "Extreme Greed",
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_walk() {
        let now = Utc::now();
        let (mut a, mut b) = (Walk::new(7, now), Walk::new(7, now));
        for _ in 0..100 {
            a.step(now);
            b.step(now);
        }
        assert_eq!(a.book(now), b.book(now));
        let mut c = Walk::new(8, now);
        c.step(now);
        assert_ne!(a.book(now), c.book(now));
    }

    #[test]
    fn stays_plausible_for_a_long_time() {
        let now = Utc::now();
        let mut w = Walk::new(1, now);
        for _ in 0..30_000 {
            w.step(now);
        }
        let book = w.book(now);
        let btc = book.price(Coin::Btc).expect("btc").value.price;
        assert!((40_000.0..170_000.0).contains(&btc), "{btc}");
        let g = book.global.expect("global").value;
        assert!(g.check().is_ok());
        assert!(book.fng.expect("fng").value.value <= 100);
    }
}
