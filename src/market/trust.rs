//! What a market snapshot from another instance (the bus, or the shared cache) must pass
//! before it is shown or recorded: the bounds provider data is held to, field by field, plus
//! plausible times and sizes. One value out of bounds and the whole snapshot is refused: it
//! was not made by a provider chain of ours.

use super::snapshot::{
    Coin, Entry, FearGreed, Index, Invalid, Snapshot, check_change, check_price, check_share,
};

/// Largest market cap or volume believed, in USD (what the providers' parsers accept).
const MAX_TOTAL_USD: f64 = 1e15;
/// Largest index ETF price believed.
const MAX_INDEX_PRICE: f64 = 1e6;
/// A source is a provider's short name.
const MAX_SOURCE_CHARS: usize = 40;
/// Points of the BTC sparkline (a day of prices at most every few seconds).
const MAX_SPARKLINE: usize = 20_000;
/// How far ahead of this clock a time may be (clocks of instances differ a little).
const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;
/// No provider answered before this (2009-01-03, Bitcoin's first block).
const EARLIEST_MS: i64 = 1_230_940_800_000;

fn check_time(what: &str, ms: i64, now_ms: i64) -> Result<(), Invalid> {
    if (EARLIEST_MS..=now_ms.saturating_add(FUTURE_SLACK_MS)).contains(&ms) {
        Ok(())
    } else {
        Err(Invalid(format!("{what} is at an impossible time ({ms})")))
    }
}

fn check_entry<T>(what: &str, e: &Entry<T>, now_ms: i64) -> Result<(), Invalid> {
    let chars = e.source.chars().count();
    if chars == 0 || chars > MAX_SOURCE_CHARS || e.source.chars().any(char::is_control) {
        return Err(Invalid(format!("{what} has an impossible source")));
    }
    check_time(what, e.fetched_at_ms, now_ms)
}

/// `Ok` when every value of `s` is one a provider of ours could have given, at `now_ms`.
pub fn check(s: &Snapshot, now_ms: i64) -> Result<(), Invalid> {
    let b = &s.values;
    for coin in Coin::ALL {
        if let Some(e) = &b.prices[coin as usize] {
            let what = format!("{} price", coin.key());
            check_entry(&what, e, now_ms)?;
            check_price(&what, Some(e.value.price), coin.max_price())?;
            check_change(&what, e.value.change_24h)?;
        }
    }
    if let Some(e) = &b.global {
        let g = &e.value;
        check_entry("global", e, now_ms)?;
        check_price("market cap", Some(g.market_cap_usd), MAX_TOTAL_USD)?;
        check_price("volume", Some(g.volume_24h_usd), MAX_TOTAL_USD)?;
        check_change("market cap change", g.market_cap_change_24h)?;
        check_share("BTC dominance", Some(g.btc_dominance))?;
        check_share("ETH dominance", Some(g.eth_dominance))?;
        g.check()?;
    }
    if let Some(e) = &b.fng {
        check_entry("fear & greed", e, now_ms)?;
        let FearGreed {
            value,
            classification,
        } = &e.value;
        let words = classification.chars().count();
        if *value > 100 || words == 0 || words > 40 || classification.chars().any(char::is_control)
        {
            return Err(Invalid("fear & greed is out of bounds".into()));
        }
    }
    if let Some(e) = &b.rsi {
        check_entry("RSI", e, now_ms)?;
        if !(0.0..=100.0).contains(&e.value) {
            return Err(Invalid(format!("RSI is out of range ({})", e.value)));
        }
    }
    for index in Index::ALL {
        if let Some(e) = &b.indices[index as usize] {
            let what = index.symbol();
            let q = &e.value;
            check_entry(what, e, now_ms)?;
            let price = check_price(what, Some(q.price), MAX_INDEX_PRICE)?;
            if q.change
                .is_some_and(|d| !d.is_finite() || d.abs() >= price * 10.0)
            {
                return Err(Invalid(format!("{what} change is absurd")));
            }
            check_change(what, q.change_percent)?;
        }
    }
    if s.btc_sparkline.len() > MAX_SPARKLINE {
        return Err(Invalid("the sparkline is too long".into()));
    }
    for &(t, p) in &s.btc_sparkline {
        check_time("a sparkline point", t, now_ms)?;
        check_price("a sparkline price", Some(p), Coin::Btc.max_price())?;
    }
    check_time("the snapshot", s.produced_at_ms, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::snapshot::Quote;

    fn snapshot(now: i64) -> Snapshot {
        let mut s = Snapshot::default();
        s.values.prices[Coin::Btc as usize] = Some(Entry {
            value: Quote {
                price: 84_250.0,
                change_24h: Some(-1.8),
            },
            source: "coingecko".into(),
            fetched_at_ms: now - 1000,
            stale: false,
        });
        s.btc_sparkline = vec![(now - 60_000, 84_000.0)];
        s.produced_at_ms = now;
        s
    }

    #[test]
    fn what_a_provider_could_give_passes_the_rest_does_not() {
        let now = 1_800_000_000_000;
        assert!(check(&snapshot(now), now).is_ok());
        let forged = |f: &dyn Fn(&mut Snapshot)| {
            let mut s = snapshot(now);
            f(&mut s);
            check(&s, now).is_err()
        };
        fn btc(s: &mut Snapshot) -> &mut Entry<Quote> {
            s.values.prices[Coin::Btc as usize].as_mut().expect("btc")
        }
        assert!(forged(&|s| btc(s).value.price = 1e300));
        assert!(forged(&|s| btc(s).value.price = f64::NAN));
        assert!(forged(&|s| btc(s).value.price = -1.0));
        assert!(forged(&|s| btc(s).value.change_24h = Some(f64::INFINITY)));
        assert!(forged(&|s| btc(s).fetched_at_ms = i64::MAX));
        assert!(forged(&|s| btc(s).source = "x".repeat(500)));
        assert!(forged(&|s| s.produced_at_ms = now + 3_600_000));
        assert!(forged(&|s| s.btc_sparkline.push((now, 1e300))));
        assert!(forged(&|s| {
            s.values.rsi = Some(Entry {
                value: 250.0,
                source: "taapi".into(),
                fetched_at_ms: now,
                stale: false,
            });
        }));
    }
}
