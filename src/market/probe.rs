//! One bounded call to each configured provider, for `doctor`: the same request the refresher
//! makes, once, outside any budget or breaker. Says whether the provider answered with data
//! it could parse, whether it refused the key, and what time its `Date` header gave.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::config::Config;
use super::http::{Call, FetchError, HttpPolicy, Upstream};
use super::snapshot::{Coin, Index, Invalid};
use super::{alternative_me, binance, coingecko, coinmarketcap, finnhub, taapi};

/// What one provider said.
#[derive(Debug)]
pub struct Answer {
    pub provider: &'static str,
    /// A key is configured for it (its failure is the operator's to fix).
    pub keyed: bool,
    pub outcome: Outcome,
    /// The provider's clock, from its `Date` header (whatever the status).
    pub date: Option<DateTime<Utc>>,
    /// When `date` was received, to compare with the local clock.
    pub received: DateTime<Utc>,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub enum Outcome {
    /// Data that parsed.
    Ok,
    /// HTTP 401 or 403: the key (or the lack of one) was refused.
    KeyRefused { status: u16, message: String },
    /// HTTP 429: answering, but not to this address right now.
    RateLimited,
    /// No usable answer.
    Failed(FetchError),
}

/// One call per configured provider, all at once, each bounded by `timeout`.
pub async fn probe_all(config: &Config, timeout: Duration) -> Result<Vec<Answer>, FetchError> {
    let upstream = Upstream::new(HttpPolicy {
        connect_timeout: timeout.min(Duration::from_secs(5)),
        total_timeout: timeout,
        attempts: 1,
        ..HttpPolicy::default()
    })?;
    let keyless = config.coingecko.key.is_none();
    let mut calls: Vec<(&'static str, bool, Result<Call, Invalid>, Parse)> = vec![
        (
            coingecko::NAME,
            !keyless,
            config.coingecko.prices(&[Coin::Btc]),
            |b| coingecko::parse_prices(b, &[Coin::Btc]).map(drop),
        ),
        (
            binance::NAME,
            false,
            config.binance.ticker(&[Coin::Btc]),
            |b| binance::parse_ticker(b, &[Coin::Btc]).map(drop),
        ),
        (
            alternative_me::NAME,
            false,
            config.alternative_me.fng(),
            |b| alternative_me::parse_fng(b).map(drop),
        ),
    ];
    if let Some(cmc) = &config.coinmarketcap {
        calls.push((coinmarketcap::NAME, true, cmc.global(), |b| {
            coinmarketcap::parse_global(b).map(drop)
        }));
    }
    if let Some(t) = &config.taapi {
        calls.push((taapi::NAME, true, t.rsi(), |b| {
            taapi::parse_rsi(b).map(drop)
        }));
    }
    if let Some(f) = &config.finnhub {
        calls.push((finnhub::NAME, true, f.quote(Index::Spy), |b| {
            finnhub::parse_quote(b).map(drop)
        }));
    }
    let probes = calls.into_iter().map(|(provider, keyed, call, parse)| {
        let upstream = upstream.clone();
        async move {
            let started = Instant::now();
            let (date, outcome) = match call {
                Ok(call) => {
                    let (date, result) = upstream.probe(&call).await;
                    (date, outcome_of(result, parse))
                }
                Err(e) => (None, Outcome::Failed(FetchError::Invalid(e.0))),
            };
            Answer {
                provider,
                keyed,
                outcome,
                date: date.as_deref().and_then(parse_http_date),
                received: Utc::now(),
                elapsed: started.elapsed(),
            }
        }
    });
    Ok(futures_util::future::join_all(probes).await)
}

type Parse = fn(&[u8]) -> Result<(), Invalid>;

fn outcome_of(result: Result<Vec<u8>, FetchError>, parse: Parse) -> Outcome {
    match result {
        Ok(body) => match parse(&body) {
            Ok(()) => Outcome::Ok,
            Err(e) => Outcome::Failed(FetchError::Invalid(e.0)),
        },
        Err(FetchError::Status {
            status: status @ (401 | 403),
            message,
        }) => Outcome::KeyRefused { status, message },
        Err(FetchError::Status { status: 429, .. }) => Outcome::RateLimited,
        Err(e) => Outcome::Failed(e),
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110's preferred form).
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        let d = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(d.to_rfc3339(), "1994-11-06T08:49:37+00:00");
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn statuses_say_what_went_wrong() {
        let parse: Parse = |_| Ok(());
        let refused = FetchError::Status {
            status: 401,
            message: "bad key".into(),
        };
        assert!(matches!(
            outcome_of(Err(refused), parse),
            Outcome::KeyRefused { status: 401, .. }
        ));
        let limited = FetchError::Status {
            status: 429,
            message: String::new(),
        };
        assert!(matches!(
            outcome_of(Err(limited), parse),
            Outcome::RateLimited
        ));
        let garbage: Parse = |_| Err(Invalid("not json".into()));
        assert!(matches!(
            outcome_of(Ok(b"<html>".to_vec()), garbage),
            Outcome::Failed(FetchError::Invalid(_))
        ));
    }
}
