//! Finnhub: quotes of the US index ETFs, one call per symbol. The key goes in the
//! `X-Finnhub-Token` header, never in the URL.

use serde::Deserialize;

use super::http::Call;
use super::snapshot::{Index, IndexQuote, Invalid, check_change, check_price};
use crate::secret::Secret;

pub const NAME: &str = "finnhub";
pub const DEFAULT_URL: &str = "https://finnhub.io";

#[derive(Debug, Clone)]
pub struct Finnhub {
    pub base: String,
    pub key: Secret,
}

impl Finnhub {
    pub fn quote(&self, index: Index) -> Result<Call, Invalid> {
        Ok(
            Call::get(&self.base, "/api/v1/quote", &[("symbol", index.symbol())])?
                .secret_header("x-finnhub-token", &self.key),
        )
    }
}

#[derive(Deserialize)]
struct Quote {
    c: Option<f64>,
    d: Option<f64>,
    dp: Option<f64>,
    pc: Option<f64>,
    t: Option<i64>,
    error: Option<String>,
}

/// An unknown symbol answers 200 with zeros and `t` 0: no data, not a price of zero.
pub fn parse_quote(body: &[u8]) -> Result<IndexQuote, Invalid> {
    let q: Quote = serde_json::from_slice(body).map_err(Invalid::json)?;
    if let Some(e) = q.error {
        return Err(Invalid(format!("provider error: {e}")));
    }
    if q.t.unwrap_or(0) <= 0 || q.c.unwrap_or(0.0) == 0.0 {
        return Err(Invalid("no data for this symbol".into()));
    }
    let price = check_price("c", q.c, 1e6)?;
    check_price("pc", q.pc, 1e6)?;
    let change = match q.d {
        Some(d) if !d.is_finite() || d.abs() >= price * 10.0 => {
            return Err(Invalid(format!("d is absurd ({d})")));
        }
        d => d,
    };
    Ok(IndexQuote {
        price,
        change,
        change_percent: check_change("dp", q.dp)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/providers/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).expect("fixture")
    }

    #[test]
    fn parses_quotes() {
        let spy = parse_quote(&fixture("finnhub_quote_spy.json")).expect("spy");
        assert_eq!(
            spy,
            IndexQuote {
                price: 702.84,
                change: Some(3.91),
                change_percent: Some(0.5594)
            }
        );
        assert!(parse_quote(&fixture("finnhub_quote_dia.json")).is_ok());
        assert!(parse_quote(&fixture("finnhub_quote_qqqm.json")).is_ok());
    }

    #[test]
    fn zeros_and_errors_are_failures() {
        assert!(parse_quote(&fixture("finnhub_quote_unknown_symbol.json")).is_err());
        assert!(parse_quote(&fixture("finnhub_error_429.json")).is_err());
        assert!(parse_quote(br#"{"c":-3,"d":1,"dp":1,"pc":4,"t":5}"#).is_err());
    }

    #[test]
    fn key_is_a_header() {
        let f = Finnhub {
            base: DEFAULT_URL.into(),
            key: Secret::new("fh-key"),
        };
        let call = f.quote(Index::Spy).expect("call");
        assert_eq!(
            call.url.as_str(),
            "https://finnhub.io/api/v1/quote?symbol=SPY"
        );
        assert!(call.headers.contains_key("x-finnhub-token"));
    }
}
