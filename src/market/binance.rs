//! Binance (keyless): the 24 h ticker as the last price fallback, daily BTC klines from
//! which RSI(14) is computed locally when TAAPI is unavailable, and the hourly BTC klines that
//! fill the sparkline's last day at start. Numbers are decimal strings.

use serde::Deserialize;
use serde_json::Value;

use super::http::Call;
use super::snapshot::{Coin, Invalid, Quote, check_change, check_price};

pub const NAME: &str = "binance";
/// Source name of the RSI computed here from Binance's klines.
pub const KLINES_RSI: &str = "binance_klines";
pub const DEFAULT_URL: &str = "https://data-api.binance.vision";
/// Daily candles fetched for the local RSI: plenty for Wilder's smoothing to settle.
pub const KLINES: usize = 100;

#[derive(Debug, Clone)]
pub struct Binance {
    pub base: String,
}

impl Binance {
    /// `symbols=["BTCUSDT",…]`, URL-encoded; costs weight 2 for up to 20 symbols.
    pub fn ticker(&self, coins: &[Coin]) -> Result<Call, Invalid> {
        let symbols: Vec<String> = coins
            .iter()
            .map(|c| format!("\"{}\"", c.binance_symbol()))
            .collect();
        Call::get(
            &self.base,
            "/api/v3/ticker/24hr",
            &[("symbols", &format!("[{}]", symbols.join(",")))],
        )
    }

    pub fn daily_klines(&self) -> Result<Call, Invalid> {
        Call::get(
            &self.base,
            "/api/v3/klines",
            &[
                ("symbol", "BTCUSDT"),
                ("interval", "1d"),
                ("limit", &KLINES.to_string()),
            ],
        )
    }
}

/// Hourly candles that cover the sparkline's day.
pub const HOURLY: usize = 24;

impl Binance {
    /// The last [`HOURLY`] hourly BTC candles (weight 2): the sparkline's day at start.
    pub fn hourly_klines(&self) -> Result<Call, Invalid> {
        Call::get(
            &self.base,
            "/api/v3/klines",
            &[
                ("symbol", "BTCUSDT"),
                ("interval", "1h"),
                ("limit", &HOURLY.to_string()),
            ],
        )
    }
}

/// Most candles Binance returns per klines call.
pub const KLINES_MAX: usize = 1000;

impl Binance {
    /// Daily candles of `symbol` (`BTCUSDT`) opening in `[start_ms, end_ms]`, at most
    /// [`KLINES_MAX`]: the history behind the market at an old report's publication.
    pub fn daily_history(&self, symbol: &str, start_ms: i64, end_ms: i64) -> Result<Call, Invalid> {
        Call::get(
            &self.base,
            "/api/v3/klines",
            &[
                ("symbol", symbol),
                ("interval", "1d"),
                ("startTime", &start_ms.to_string()),
                ("endTime", &end_ms.to_string()),
                ("limit", &KLINES_MAX.to_string()),
            ],
        )
    }
}

/// Each daily candle's open time (unix ms, midnight UTC) and opening price, oldest first:
/// the price as the day began, known before anything published that day.
pub fn parse_daily_opens(body: &[u8], coin: Coin) -> Result<Vec<(i64, f64)>, Invalid> {
    klines(body, |open, row| {
        let price = check_price(
            "open",
            decimal(row.get(1).and_then(Value::as_str)),
            coin.max_price(),
        )?;
        Ok((open, price))
    })
}

/// Each candle of a klines answer through `read` with its open time, checking that the open
/// times rise.
fn klines<T>(
    body: &[u8],
    mut read: impl FnMut(i64, &[Value]) -> Result<T, Invalid>,
) -> Result<Vec<T>, Invalid> {
    let rows: Vec<Vec<Value>> = serde_json::from_slice(body).map_err(Invalid::json)?;
    let mut last_open = i64::MIN;
    rows.iter()
        .map(|row| {
            let open = row
                .first()
                .and_then(Value::as_i64)
                .ok_or_else(|| Invalid("kline without open time".into()))?;
            if open <= last_open {
                return Err(Invalid("klines out of order".into()));
            }
            last_open = open;
            read(open, row)
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ticker {
    symbol: String,
    last_price: Option<String>,
    price_change_percent: Option<String>,
}

fn decimal(s: Option<&str>) -> Option<f64> {
    s.and_then(|s| s.trim().parse::<f64>().ok())
}

pub fn parse_ticker(body: &[u8], coins: &[Coin]) -> Result<Vec<(Coin, Quote)>, Invalid> {
    let tickers: Vec<Ticker> = serde_json::from_slice(body).map_err(Invalid::json)?;
    let quotes = coins.iter().map(|&coin| {
        let quote = match tickers.iter().find(|t| t.symbol == coin.binance_symbol()) {
            None => Err(Invalid(format!("{} is missing", coin.binance_symbol()))),
            Some(t) => check_price(
                coin.binance_symbol(),
                decimal(t.last_price.as_deref()),
                coin.max_price(),
            )
            .and_then(|price| {
                let change = match t.price_change_percent.as_deref() {
                    None => None,
                    Some(s) => {
                        Some(decimal(Some(s)).ok_or_else(|| Invalid(format!("bad change {s:?}")))?)
                    }
                };
                Ok(Quote {
                    price,
                    change_24h: check_change("priceChangePercent", change)?,
                })
            }),
        };
        (coin, quote)
    });
    super::snapshot::some_quotes(quotes)
}

/// Closing prices, oldest first, each a believable BTC price.
pub fn parse_closes(body: &[u8]) -> Result<Vec<f64>, Invalid> {
    klines(body, |_, row| {
        check_price(
            "close",
            decimal(row.get(4).and_then(Value::as_str)),
            Coin::Btc.max_price(),
        )
    })
}

/// The price line of the candles' span, oldest first: each candle's open price at its open
/// time, then the newest candle's close at its close time (or now, while it is still open).
/// 24 hourly candles thus span the whole last day, not the 23 hours between their closes.
pub fn parse_hourly_prices(body: &[u8], now_ms: i64) -> Result<Vec<(i64, f64)>, Invalid> {
    let candles = klines(body, |open, row| {
        let price = |name, at| {
            check_price(
                name,
                decimal(row.get(at).and_then(Value::as_str)),
                Coin::Btc.max_price(),
            )
        };
        Ok((open, price("open", 1)?, price("close", 4)?))
    })?;
    let mut points: Vec<(i64, f64)> = candles.iter().map(|&(t, open, _)| (t, open)).collect();
    if let Some(&(t, _, close)) = candles.last() {
        points.push(((t + 3_600_000).min(now_ms).max(t), close));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICKER: &[u8] = include_bytes!("../../tests/fixtures/providers/binance_ticker_24hr.json");
    const KLINES_BODY: &[u8] =
        include_bytes!("../../tests/fixtures/providers/binance_klines_btcusdt_1d.json");

    #[test]
    fn ticker_strings_are_decimals() {
        let q = parse_ticker(TICKER, &Coin::ALL).expect("ticker");
        assert_eq!(q.len(), 7);
        assert_eq!(
            q[0],
            (
                Coin::Btc,
                Quote {
                    price: 84251.37,
                    change_24h: Some(-1.851)
                }
            )
        );
        for bad in ["\"NaN\"", "\"0.00000000\"", "\"-3\"", "\"abc\"", "null"] {
            let body =
                format!(r#"[{{"symbol":"BTCUSDT","lastPrice":{bad},"priceChangePercent":"1.0"}}]"#);
            assert!(
                parse_ticker(body.as_bytes(), &[Coin::Btc]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn symbols_are_url_encoded() {
        let call = Binance {
            base: DEFAULT_URL.into(),
        }
        .ticker(&[Coin::Btc, Coin::Eth])
        .expect("call");
        assert_eq!(
            call.url.query(),
            Some("symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D")
        );
    }

    #[test]
    fn daily_opens_of_the_history() {
        let body =
            include_bytes!("../../tests/fixtures/providers/binance_klines_history_btcusdt.json");
        let opens = parse_daily_opens(body, Coin::Btc).expect("opens");
        assert_eq!(opens.len(), 21);
        assert_eq!(opens[0], (1_794_182_400_000, 88_120.55));
        assert!(opens.windows(2).all(|w| w[1].0 - w[0].0 == 86_400_000));
        assert!(parse_daily_opens(br#"[[1,"0","1","1","1","1"]]"#, Coin::Btc).is_err());
        assert!(parse_daily_opens(br#"[[1,"5e7","1","1","1","1"]]"#, Coin::Btc).is_err());
        let call = Binance {
            base: DEFAULT_URL.into(),
        }
        .daily_history("ETHUSDT", 1, 2)
        .expect("call");
        assert_eq!(
            call.url.query(),
            Some("symbol=ETHUSDT&interval=1d&startTime=1&endTime=2&limit=1000")
        );
    }

    #[test]
    fn hourly_prices_span_the_candles_from_the_first_open_to_now() {
        const HOUR: i64 = 3_600_000;
        let body =
            br#"[[0,"80000.5","1","1","80100","1"],[3600000,"80100","1","1","80200.25","1"]]"#;
        let now = HOUR + 600_000;
        assert_eq!(
            parse_hourly_prices(body, now).expect("prices"),
            vec![(0, 80_000.5), (HOUR, 80_100.0), (now, 80_200.25)]
        );
        // A closed last candle ends at its close time.
        let later = parse_hourly_prices(body, 5 * HOUR).expect("prices");
        assert_eq!(later.last(), Some(&(2 * HOUR, 80_200.25)));
        assert_eq!(parse_hourly_prices(b"[]", now).expect("empty"), vec![]);
        assert!(parse_hourly_prices(br#"[[0,"0","1","1","80100","1"]]"#, now).is_err());
        assert!(parse_hourly_prices(br#"[[0,"80000","1","1","NaN","1"]]"#, now).is_err());
    }

    #[test]
    fn klines_closes() {
        let closes = parse_closes(KLINES_BODY).expect("closes");
        assert_eq!(closes.len(), KLINES);
        assert!(closes.iter().all(|c| *c > 10_000.0));
        assert!(parse_closes(br#"[[2,"1","1","1","0","1"]]"#).is_err());
        assert!(parse_closes(br#"[[2,"1","1","1","5","1"],[1,"1","1","1","5","1"]]"#).is_err());
    }
}
