//! CoinMarketCap: `quotes/latest` (coin prices, a fallback; v1 and v2 shapes) and
//! `global-metrics/quotes/latest` (market cap, volume, dominance). Key in `X-CMC_PRO_API_KEY`.

use serde_json::Value;

use super::http::Call;
use super::snapshot::{Coin, Global, Invalid, Quote, check_change, check_price, check_share};
use crate::secret::Secret;

pub const NAME: &str = "coinmarketcap";
pub const DEFAULT_URL: &str = "https://pro-api.coinmarketcap.com";

#[derive(Debug, Clone)]
pub struct CoinMarketCap {
    pub base: String,
    pub key: Secret,
}

impl CoinMarketCap {
    pub fn quotes(&self, coins: &[Coin]) -> Result<Call, Invalid> {
        let symbols: Vec<&str> = coins.iter().map(|c| c.symbol()).collect();
        Ok(Call::get(
            &self.base,
            "/v2/cryptocurrency/quotes/latest",
            &[("symbol", &symbols.join(","))],
        )?
        .secret_header("x-cmc_pro_api_key", &self.key))
    }

    pub fn global(&self) -> Result<Call, Invalid> {
        Ok(
            Call::get(&self.base, "/v1/global-metrics/quotes/latest", &[])?
                .secret_header("x-cmc_pro_api_key", &self.key),
        )
    }
}

/// `data` of a CMC body, after checking `status.error_code` (a 200 may still be an error).
fn data(body: &[u8]) -> Result<Value, Invalid> {
    let mut v: Value = serde_json::from_slice(body).map_err(Invalid::json)?;
    let code = v
        .pointer("/status/error_code")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if code != 0 {
        let msg = v
            .pointer("/status/error_message")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(Invalid(format!("error {code}: {msg}")));
    }
    v.get_mut("data")
        .map(Value::take)
        .ok_or_else(|| Invalid("data is missing".into()))
}

/// v1 gives `data.BTC` as one object, v2 as an array of every coin using the ticker: the one
/// with the coin's CMC id is taken either way, never merely the first.
pub fn parse_quotes(body: &[u8], coins: &[Coin]) -> Result<Vec<(Coin, Quote)>, Invalid> {
    let data = data(body)?;
    let quotes = coins.iter().map(|&coin| {
        let wanted = |v: &&Value| v.get("id").and_then(Value::as_u64) == Some(coin.cmc_id());
        let entry = match data.get(coin.symbol()) {
            Some(Value::Array(all)) => all.iter().find(wanted),
            Some(one @ Value::Object(_)) => Some(one).filter(wanted),
            _ => None,
        };
        let quote = match entry.and_then(|e| e.pointer("/quote/USD")) {
            None => Err(Invalid(format!(
                "{} (id {}) is missing",
                coin.symbol(),
                coin.cmc_id()
            ))),
            Some(usd) => check_price(
                coin.symbol(),
                usd.get("price").and_then(Value::as_f64),
                coin.max_price(),
            )
            .and_then(|price| {
                let change = usd.get("percent_change_24h").and_then(Value::as_f64);
                Ok(Quote {
                    price,
                    change_24h: check_change("percent_change_24h", change)?,
                })
            }),
        };
        (coin, quote)
    });
    super::snapshot::some_quotes(quotes)
}

pub fn parse_global(body: &[u8]) -> Result<Global, Invalid> {
    let d = data(body)?;
    let f = |p: &str| d.pointer(p).and_then(Value::as_f64);
    Global {
        market_cap_usd: check_price("total_market_cap", f("/quote/USD/total_market_cap"), 1e15)?,
        market_cap_change_24h: check_change(
            "total_market_cap_yesterday_percentage_change",
            f("/quote/USD/total_market_cap_yesterday_percentage_change"),
        )?,
        volume_24h_usd: check_price("total_volume_24h", f("/quote/USD/total_volume_24h"), 1e15)?,
        btc_dominance: check_share("btc_dominance", f("/btc_dominance"))?,
        eth_dominance: check_share("eth_dominance", f("/eth_dominance"))?,
    }
    .check()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &[u8] =
        include_bytes!("../../tests/fixtures/providers/cmc_v1_quotes_latest_btc.json");
    const V2: &[u8] =
        include_bytes!("../../tests/fixtures/providers/cmc_v2_quotes_latest_btc.json");
    const GLOBAL: &[u8] = include_bytes!("../../tests/fixtures/providers/cmc_global_metrics.json");
    const E429: &[u8] = include_bytes!("../../tests/fixtures/providers/cmc_error_429.json");

    #[test]
    fn v1_and_v2_give_bitcoin() {
        let want = Quote {
            price: 84262.91374027163,
            change_24h: Some(-1.79211466),
        };
        assert_eq!(
            parse_quotes(V1, &[Coin::Btc]).expect("v1"),
            vec![(Coin::Btc, want)]
        );
        assert_eq!(
            parse_quotes(V2, &[Coin::Btc]).expect("v2"),
            vec![(Coin::Btc, want)]
        );
        // Coins the body lacks are left for the next provider.
        assert_eq!(parse_quotes(V2, &Coin::ALL).expect("partial").len(), 1);
    }

    #[test]
    fn v2_never_takes_the_impostor() {
        let mut v: Value = serde_json::from_slice(V2).expect("json");
        let btc = |v: &mut Value| -> Vec<Value> {
            v.pointer_mut("/data/BTC")
                .and_then(Value::as_array_mut)
                .map(std::mem::take)
                .expect("array")
        };
        let mut arr = btc(&mut v);
        arr.reverse();
        v["data"]["BTC"] = Value::Array(arr.clone());
        let body = serde_json::to_vec(&v).expect("json");
        let q = parse_quotes(&body, &[Coin::Btc]).expect("quotes");
        assert_eq!(q[0].1.price, 84262.91374027163);
        arr.retain(|e| e["id"] != 1);
        v["data"]["BTC"] = Value::Array(arr);
        let body = serde_json::to_vec(&v).expect("json");
        assert!(parse_quotes(&body, &[Coin::Btc]).is_err());
    }

    #[test]
    fn global_metrics() {
        let g = parse_global(GLOBAL).expect("global");
        assert_eq!(g.market_cap_usd, 2911640317724.118);
        assert_eq!(g.volume_24h_usd, 123644791827.56);
        assert_eq!(g.btc_dominance, 57.831923370142);
        assert_eq!(g.eth_dominance, 12.209713405611);
        assert_eq!(g.market_cap_change_24h, Some(-1.309833089572121));
    }

    #[test]
    fn error_status_is_a_failure() {
        let e = parse_global(E429).expect_err("error body");
        assert!(e.0.contains("1008"), "{e}");
    }
}
