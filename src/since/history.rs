//! The history task: fetches, once, the daily values (BTC and ETH opens from Binance, the
//! Fear & Greed index from alternative.me, through `market::daily`) that the stored history
//! lacks for the reports' dates, keeps them in the store, and has the pages of the reports they complete rendered
//! again. A failed fetch leaves the values unknown and is retried later, with backoff.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AtPublication, BTC, DAY_MS, Daily, ETH, FNG};
use crate::market::daily::DailyHistory;
use crate::market::http::FetchError;
use crate::market::{Coin, Config};
use crate::store::{Store, StoreError};

/// What a pass can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{series}: {source}")]
    Fetch {
        series: &'static str,
        source: FetchError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Called with the reports whose values at publication became known.
pub type Invalidate = Arc<dyn Fn(Vec<u64>) + Send + Sync>;

pub struct History {
    store: Arc<Store>,
    daily: DailyHistory,
    invalidate: Invalidate,
    pub retry_min: Duration,
    pub retry_max: Duration,
}

fn day_floor(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

impl History {
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        invalidate: Invalidate,
    ) -> Result<History, FetchError> {
        Ok(History {
            store,
            daily: DailyHistory::new(config)?,
            invalidate,
            retry_min: Duration::from_secs(300),
            retry_max: Duration::from_secs(6 * 3600),
        })
    }

    /// One pass at start, then one whenever `wake` says reports lack values, or after a
    /// backoff when a pass failed; ends when `stop` fires.
    pub async fn run(self, mut wake: mpsc::UnboundedReceiver<()>, stop: CancellationToken) {
        let mut backoff = self.retry_min;
        let mut listening = true;
        loop {
            let retry = match self.pass().await {
                Ok(ids) => {
                    if !ids.is_empty() {
                        tracing::info!(
                            reports = ids.len(),
                            "market history fetched for older reports"
                        );
                    }
                    backoff = self.retry_min;
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot fetch the market history; values at publication stay unknown for now");
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.retry_max);
                    Some(wait)
                }
            };
            let sleep = tokio::time::sleep(retry.unwrap_or(Duration::from_secs(365 * 86_400)));
            tokio::select! {
                () = stop.cancelled() => break,
                () = sleep => {}
                woken = wake.recv(), if listening => {
                    if woken.is_none() {
                        listening = false;
                    }
                    // A burst of publications is one pass.
                    while wake.try_recv().is_ok() {}
                }
            }
        }
    }

    /// Fetches what the history lacks for the reports' dates, and has the pages of the
    /// reports in the days it fetched rendered again; returns those reports. A series that
    /// fails does not keep the others from being fetched; the pass then ends with its error.
    pub async fn pass(&self) -> Result<Vec<u64>, HistoryError> {
        let mut failed = None;
        let affected = self.fetch_all(&mut failed).await?;
        if !affected.is_empty() {
            (self.invalidate)(affected.clone());
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(affected),
        }
    }

    async fn fetch_all(&self, failed: &mut Option<HistoryError>) -> Result<Vec<u64>, HistoryError> {
        let store = Arc::clone(&self.store);
        let Some((oldest, newest)) = store.call(|s| s.date_span()).await? else {
            return Ok(Vec::new());
        };
        let today = day_floor(Utc::now().timestamp_millis());
        let need_from = day_floor(oldest.created_at.timestamp_millis());
        let need_to = day_floor(newest.created_at.timestamp_millis()).min(today);
        let mut affected = Vec::new();
        for series in [BTC, ETH, FNG] {
            let covered = store.call(move |s| s.daily_covered(series)).await?;
            let mut gaps = Vec::new();
            match covered {
                None => gaps.push((need_from, need_to)),
                Some((first, last)) => {
                    if need_from < first {
                        gaps.push((need_from, first - DAY_MS));
                    }
                    if need_to > last && self.lacking(last + DAY_MS, need_to + DAY_MS).await? {
                        gaps.push((last + DAY_MS, need_to));
                    }
                }
            }
            for (from, to) in gaps {
                let points = match self.fetch(series, from, to, today).await {
                    Ok(p) => p,
                    Err(source) => {
                        failed.get_or_insert(HistoryError::Fetch { series, source });
                        break;
                    }
                };
                // Days asked for and not answered before the newest one answered do not
                // exist (before a listing); the days after it may still come: ask again.
                let answered_to = points.last().map_or(from - DAY_MS, |(d, _)| *d);
                let span = match covered {
                    None => (from, answered_to.max(from - DAY_MS)),
                    Some((first, last)) => (first.min(from), last.max(answered_to)),
                };
                let rows: Vec<(i64, Vec<u8>)> = points
                    .iter()
                    .filter_map(|(d, v)| postcard::to_allocvec(v).ok().map(|b| (*d, b)))
                    .collect();
                let ids = store
                    .call(move |s| {
                        s.daily_put(series, &rows, span)?;
                        s.published_between(from, to + DAY_MS)
                    })
                    .await?;
                affected.extend(ids.into_iter().map(|r| r.id));
            }
        }
        affected.sort_unstable();
        affected.dedup();
        Ok(affected)
    }

    /// Whether a report published in `[from_ms, to_ms)` lacks a value the history gives.
    async fn lacking(&self, from_ms: i64, to_ms: i64) -> Result<bool, StoreError> {
        self.store
            .call(move |s| {
                for r in s.published_between(from_ms, to_ms)? {
                    let recorded: Option<AtPublication> = s
                        .market_at(r.id)?
                        .and_then(|b| postcard::from_bytes(&b).ok());
                    if !recorded.is_some_and(|a| a.has_history_fields()) {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .await
    }

    /// The daily values of `series` for the days `from..=to` (unix ms of their starts).
    async fn fetch(
        &self,
        series: &'static str,
        from: i64,
        to: i64,
        today: i64,
    ) -> Result<Vec<(i64, Daily)>, FetchError> {
        let in_range = |d: &i64| (from..=to).contains(d);
        let points = match series {
            FNG => self
                .daily
                .fng(from, today)
                .await?
                .into_iter()
                .map(|(d, f)| {
                    let value = f64::from(f.value);
                    (
                        day_floor(d),
                        Daily {
                            value,
                            label: Some(f.classification),
                        },
                    )
                })
                .collect::<Vec<_>>(),
            _ => {
                let coin = if series == BTC { Coin::Btc } else { Coin::Eth };
                self.daily
                    .opens(coin, from, to)
                    .await?
                    .into_iter()
                    .map(|(d, value)| (d, Daily { value, label: None }))
                    .collect()
            }
        };
        Ok(points.into_iter().filter(|(d, _)| in_range(d)).collect())
    }
}
