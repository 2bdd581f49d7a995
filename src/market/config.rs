//! Settings of the market refresher: providers with their base URLs and keys, cadences,
//! outbound budgets, timeouts and breaker policy. Built from the command line (in
//! `crate::config`) or by tests.

use std::time::Duration;

use super::alternative_me::AlternativeMe;
use super::binance::Binance;
use super::coingecko::{self, CoinGecko};
use super::coinmarketcap::CoinMarketCap;
use super::finnhub::Finnhub;
use super::guard::{BreakerPolicy, Budget};
use super::http::HttpPolicy;
use super::snapshot::Group;
use super::taapi::Taapi;
use super::{alternative_me, binance, coinmarketcap, finnhub, taapi};

/// How often each group is polled.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    pub prices: Duration,
    pub global: Duration,
    pub fng: Duration,
    pub rsi: Duration,
    pub indices: Duration,
}

impl Cadence {
    pub fn of(&self, group: Group) -> Duration {
        match group {
            Group::Prices => self.prices,
            Group::Global => self.global,
            Group::Fng => self.fng,
            Group::Rsi => self.rsi,
            Group::Indices => self.indices,
        }
    }
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            prices: Duration::from_secs(30),
            global: Duration::from_secs(300),
            fng: Duration::from_secs(1800),
            rsi: Duration::from_secs(900),
            indices: Duration::from_secs(60),
        }
    }
}

/// Outbound budget per provider, inside its free tier (see the provider fixtures README).
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub coingecko: Budget,
    pub coinmarketcap: Budget,
    pub binance: Budget,
    pub alternative_me: Budget,
    pub taapi: Budget,
    pub finnhub: Budget,
}

impl Budgets {
    /// CoinGecko's allowance depends on its key: keyless is per IP with no promised number
    /// (older docs: 5-30/min), a demo key has 10,000 credits a month (one call per ~4.5 min
    /// sustained), a pro key (Analyst plan: 500,000 a month) about one call per 6 s.
    pub fn for_coingecko_key(key: Option<&coingecko::Key>) -> Budgets {
        let coingecko = match key {
            None => Budget::new(3, 10_000),
            Some(coingecko::Key::Demo(_)) => Budget::new(3, 270_000),
            Some(coingecko::Key::Pro(_)) => Budget::new(5, 6_000),
        };
        Budgets {
            coingecko,
            // Basic: 30/min but 10,000 credits a month, so ~one call per 4.5 min sustained.
            coinmarketcap: Budget::new(3, 270_000),
            // Weight 6000/min per IP, 2 per call: far below, and shared with other tenants.
            binance: Budget::new(10, 1_000),
            // 60/min.
            alternative_me: Budget::new(5, 2_000),
            // Free: 1 request per 15 s (an older page said 1/min): stay under both.
            taapi: Budget::new(1, 60_000),
            // 60/min and 30/s; one call per symbol.
            finnhub: Budget::new(6, 2_000),
        }
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets::for_coingecko_key(None)
    }
}

/// Everything the refresher needs; providers without a key are `None` and skipped.
#[derive(Debug, Clone)]
pub struct Config {
    pub coingecko: CoinGecko,
    pub coinmarketcap: Option<CoinMarketCap>,
    pub binance: Binance,
    pub alternative_me: AlternativeMe,
    pub taapi: Option<Taapi>,
    pub finnhub: Option<Finnhub>,
    pub cadence: Cadence,
    pub budgets: Budgets,
    pub http: HttpPolicy,
    pub breaker: BreakerPolicy,
    /// Shortest interval between two forced refreshes.
    pub refresh_min_interval: Duration,
    /// How much history the sparkline covers, and its resolution.
    pub history: Duration,
    pub sparkline_bucket: Duration,
}

impl Default for Config {
    /// The real hosts, keyless.
    fn default() -> Self {
        Config {
            coingecko: CoinGecko {
                base: coingecko::DEFAULT_URL.into(),
                key: None,
            },
            coinmarketcap: None,
            binance: Binance {
                base: binance::DEFAULT_URL.into(),
            },
            alternative_me: AlternativeMe {
                base: alternative_me::DEFAULT_URL.into(),
            },
            taapi: None,
            finnhub: None,
            cadence: Cadence::default(),
            budgets: Budgets::default(),
            http: HttpPolicy::default(),
            breaker: BreakerPolicy {
                threshold: 3,
                cooldown: Duration::from_secs(60),
            },
            refresh_min_interval: Duration::from_secs(15),
            history: Duration::from_secs(24 * 3600),
            sparkline_bucket: Duration::from_secs(15 * 60),
        }
    }
}

impl Config {
    /// Which providers have what they need, by name.
    pub fn configured(&self) -> [(&'static str, bool); 6] {
        [
            (coingecko::NAME, true),
            (coinmarketcap::NAME, self.coinmarketcap.is_some()),
            (binance::NAME, true),
            (alternative_me::NAME, true),
            (taapi::NAME, self.taapi.is_some()),
            (finnhub::NAME, self.finnhub.is_some()),
        ]
    }
}
