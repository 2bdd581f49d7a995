//! Daily history from the providers, beside their other calls: the daily opens of a coin from
//! Binance's klines and alternative.me's index history, for the days a caller names. Out of
//! budget is a wait here, not a failure: a history backfill is in no hurry.

use std::time::Duration;

use super::alternative_me::{self, AlternativeMe};
use super::binance::{self, Binance, KLINES_MAX};
use super::config::Config;
use super::guard::{Budget, Provider};
use super::http::{FetchError, Upstream};
use super::snapshot::{Coin, FearGreed};

/// How long to wait for a budget to refill, and how many times.
const BUDGET_WAIT: Duration = Duration::from_secs(1);
const BUDGET_WAITS: usize = 60;
const DAY_MS: i64 = 86_400_000;
/// Days of Fear & Greed history asked for at most: the index starts in February 2018.
const FNG_MAX_DAYS: i64 = 5_000;

pub struct DailyHistory {
    binance: Binance,
    alternative_me: AlternativeMe,
    upstream: Upstream,
    /// Budgets and breakers of their own: a backfill never eats the dashboard's allowance.
    bn: Provider,
    am: Provider,
}

impl DailyHistory {
    pub fn new(config: &Config) -> Result<DailyHistory, FetchError> {
        Ok(DailyHistory {
            binance: config.binance.clone(),
            alternative_me: config.alternative_me.clone(),
            upstream: Upstream::new(config.http)?,
            // Binance allows 6,000 weight a minute (2 a call), alternative.me 60 calls: a
            // pass needs a handful, spread by the refill when it needs more.
            bn: Provider::new(binance::NAME, Budget::new(10, 1_000), config.breaker),
            am: Provider::new(alternative_me::NAME, Budget::new(5, 2_000), config.breaker),
        })
    }

    /// The Fear & Greed index of every day from `from` (unix ms of a day's start) to today,
    /// as (unix ms within its day, value), newest first as the provider gives them.
    pub async fn fng(&self, from: i64, today: i64) -> Result<Vec<(i64, FearGreed)>, FetchError> {
        // `limit=0` asks the provider for every day it has: never send it, and never ask for
        // more days than the index has existed, whatever date an imported report carries.
        let days = u32::try_from(((today - from) / DAY_MS + 2).clamp(1, FNG_MAX_DAYS)).unwrap_or(1);
        let call = self.alternative_me.fng_history(days);
        patiently(|| {
            self.upstream
                .request(&self.am, call.clone(), alternative_me::parse_fng_history)
        })
        .await
    }

    /// The opening price of `coin` (BTC or ETH) on every day from `from` to `to` (unix ms of
    /// the days' starts) that Binance lists, in pages of at most [`KLINES_MAX`] days.
    pub async fn opens(
        &self,
        coin: Coin,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, f64)>, FetchError> {
        let mut out = Vec::new();
        let mut start = from;
        // Bounded: each call moves past the days it returned.
        for _ in 0..64 {
            let call = self
                .binance
                .daily_history(coin.binance_symbol(), start, to + DAY_MS - 1);
            let rows = patiently(|| {
                self.upstream.request(&self.bn, call.clone(), |b| {
                    binance::parse_daily_opens(b, coin)
                })
            })
            .await?;
            let full = rows.len() >= KLINES_MAX;
            let last = rows.last().map(|(d, _)| *d);
            out.extend(rows);
            match last {
                Some(last) if full && last < to => start = last + DAY_MS,
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Runs `ask` again while the provider's budget is spent, a bounded number of times.
async fn patiently<T, F>(ask: impl Fn() -> F) -> Result<T, FetchError>
where
    F: Future<Output = Result<T, FetchError>>,
{
    for _ in 0..BUDGET_WAITS {
        match ask().await {
            Err(FetchError::Budget) => tokio::time::sleep(BUDGET_WAIT).await,
            other => return other,
        }
    }
    Err(FetchError::Budget)
}
