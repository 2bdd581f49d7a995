//! CoinGecko: `simple/price` (coin prices, 24 h change) and `global` (market cap, volume,
//! dominance). Keyless, or a demo key, or a pro key on the pro host.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::http::Call;
use super::snapshot::{Coin, Global, Invalid, Quote, check_change, check_price, check_share};
use crate::secret::Secret;

pub const NAME: &str = "coingecko";
pub const DEFAULT_URL: &str = "https://api.coingecko.com";
pub const PRO_URL: &str = "https://pro-api.coingecko.com";

#[derive(Debug, Clone)]
pub enum Key {
    /// Sent as `x-cg-demo-api-key` to the public host.
    Demo(Secret),
    /// Sent as `x-cg-pro-api-key` to the pro host.
    Pro(Secret),
}

#[derive(Debug, Clone)]
pub struct CoinGecko {
    pub base: String,
    pub key: Option<Key>,
}

impl CoinGecko {
    fn call(&self, path: &str, query: &[(&str, &str)]) -> Result<Call, Invalid> {
        let call = Call::get(&self.base, path, query)?;
        Ok(match &self.key {
            None => call,
            Some(Key::Demo(k)) => call.secret_header("x-cg-demo-api-key", k),
            Some(Key::Pro(k)) => call.secret_header("x-cg-pro-api-key", k),
        })
    }

    pub fn prices(&self, coins: &[Coin]) -> Result<Call, Invalid> {
        let ids: Vec<&str> = coins.iter().map(|c| c.coingecko_id()).collect();
        self.call(
            "/api/v3/simple/price",
            &[
                ("ids", &ids.join(",")),
                ("vs_currencies", "usd"),
                ("include_24hr_change", "true"),
            ],
        )
    }

    pub fn global(&self) -> Result<Call, Invalid> {
        self.call("/api/v3/global", &[])
    }
}

#[derive(Deserialize)]
struct SimplePrice {
    usd: Option<f64>,
    usd_24h_change: Option<f64>,
}

/// Quotes keyed by coin id; an id left out is a failure for that coin only.
pub fn parse_prices(body: &[u8], coins: &[Coin]) -> Result<Vec<(Coin, Quote)>, Invalid> {
    let map: HashMap<String, Value> = serde_json::from_slice(body).map_err(Invalid::json)?;
    let quotes = coins.iter().map(|&coin| {
        let quote = match map.get(coin.coingecko_id()) {
            None => Err(Invalid(format!("{} is missing", coin.coingecko_id()))),
            Some(v) => SimplePrice::deserialize(v)
                .map_err(Invalid::json)
                .and_then(|p| {
                    Ok(Quote {
                        price: check_price(coin.coingecko_id(), p.usd, coin.max_price())?,
                        change_24h: check_change("usd_24h_change", p.usd_24h_change)?,
                    })
                }),
        };
        (coin, quote)
    });
    super::snapshot::some_quotes(quotes)
}

#[derive(Deserialize)]
struct GlobalBody {
    data: GlobalData,
}

#[derive(Deserialize)]
struct GlobalData {
    total_market_cap: HashMap<String, Value>,
    total_volume: HashMap<String, Value>,
    market_cap_percentage: HashMap<String, Value>,
    market_cap_change_percentage_24h_usd: Option<f64>,
}

pub fn parse_global(body: &[u8]) -> Result<Global, Invalid> {
    let b: GlobalBody = serde_json::from_slice(body).map_err(Invalid::json)?;
    let d = b.data;
    let num = |m: &HashMap<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
    let global = Global {
        market_cap_usd: check_price(
            "total_market_cap.usd",
            num(&d.total_market_cap, "usd"),
            1e15,
        )?,
        market_cap_change_24h: check_change(
            "market_cap_change_percentage_24h_usd",
            d.market_cap_change_percentage_24h_usd,
        )?,
        volume_24h_usd: check_price("total_volume.usd", num(&d.total_volume, "usd"), 1e15)?,
        btc_dominance: check_share(
            "market_cap_percentage.btc",
            num(&d.market_cap_percentage, "btc"),
        )?,
        eth_dominance: check_share(
            "market_cap_percentage.eth",
            num(&d.market_cap_percentage, "eth"),
        )?,
    };
    global.check()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: &[u8] =
        include_bytes!("../../tests/fixtures/providers/coingecko_simple_price.json");
    const NULL_CHANGE: &[u8] =
        include_bytes!("../../tests/fixtures/providers/coingecko_simple_price_null_change.json");
    const GLOBAL: &[u8] = include_bytes!("../../tests/fixtures/providers/coingecko_global.json");

    #[test]
    fn parses_every_coin() {
        let q = parse_prices(PRICES, &Coin::ALL).expect("prices");
        assert_eq!(q.len(), 7);
        assert_eq!(
            q[0],
            (
                Coin::Btc,
                Quote {
                    price: 84250.0,
                    change_24h: Some(-1.8423516724190832)
                }
            )
        );
        assert_eq!(q[6].1.price, 17.86);
    }

    #[test]
    fn null_change_stays_unknown_and_missing_ids_are_left_out() {
        let q = parse_prices(NULL_CHANGE, &Coin::ALL).expect("prices");
        assert_eq!(q.len(), 3);
        assert_eq!(
            q[2],
            (
                Coin::Sol,
                Quote {
                    price: 142.63,
                    change_24h: None
                }
            )
        );
        assert!(parse_prices(b"{}", &Coin::ALL).is_err());
    }

    #[test]
    fn rejects_zero_negative_absurd() {
        for bad in [
            r#"{"bitcoin":{"usd":0,"usd_24h_change":1}}"#,
            r#"{"bitcoin":{"usd":-5,"usd_24h_change":1}}"#,
            r#"{"bitcoin":{"usd":20000000,"usd_24h_change":1}}"#,
            r#"{"bitcoin":{"usd":null,"usd_24h_change":1}}"#,
            r#"{"bitcoin":{"usd":NaN,"usd_24h_change":1}}"#,
            r#"{"bitcoin":{"usd":"84250","usd_24h_change":1}}"#,
            r#"{"status":{"error_code":429,"error_message":"slow down"}}"#,
        ] {
            assert!(parse_prices(bad.as_bytes(), &[Coin::Btc]).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_global() {
        let g = parse_global(GLOBAL).expect("global");
        assert_eq!(g.market_cap_usd, 2893417720518.4);
        assert_eq!(g.volume_24h_usd, 118402665193.61);
        assert_eq!(g.btc_dominance, 58.1447105113275);
        assert_eq!(g.eth_dominance, 12.3291846603172);
        assert_eq!(g.market_cap_change_24h, Some(-1.27304881170432));
        let absurd = r#"{"data":{"total_market_cap":{"usd":1},"total_volume":{"usd":1},"market_cap_percentage":{"btc":140,"eth":1}}}"#;
        assert!(parse_global(absurd.as_bytes()).is_err());
    }

    #[test]
    fn keys_go_in_headers() {
        let cg = CoinGecko {
            base: PRO_URL.into(),
            key: Some(Key::Pro(Secret::new("pro-key"))),
        };
        let call = cg.prices(&[Coin::Btc, Coin::Eth]).expect("call");
        assert_eq!(
            call.url.as_str(),
            "https://pro-api.coingecko.com/api/v3/simple/price?ids=bitcoin%2Cethereum&vs_currencies=usd&include_24hr_change=true"
        );
        assert_eq!(
            call.headers.get("x-cg-pro-api-key").map(|v| v.as_bytes()),
            Some(&b"pro-key"[..])
        );
    }
}
