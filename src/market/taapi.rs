//! TAAPI.IO: BTC/USDT daily RSI(14). The secret can only travel in the query string, so every
//! URL shown anywhere goes through `http::redact_url`.

use serde_json::Value;

use super::http::Call;
use super::rsi::PERIOD;
use super::snapshot::Invalid;
use crate::secret::Secret;

pub const NAME: &str = "taapi";
pub const DEFAULT_URL: &str = "https://api.taapi.io";

#[derive(Debug, Clone)]
pub struct Taapi {
    pub base: String,
    pub secret: Secret,
}

impl Taapi {
    pub fn rsi(&self) -> Result<Call, Invalid> {
        Ok(Call::get(
            &self.base,
            "/rsi",
            &[
                ("exchange", "binance"),
                ("symbol", "BTC/USDT"),
                ("interval", "1d"),
                ("period", &PERIOD.to_string()),
            ],
        )?
        .secret_query("secret", &self.secret))
    }
}

/// `{"value": 44.8}`; a body with `error` is a failure even with status 200.
pub fn parse_rsi(body: &[u8]) -> Result<f64, Invalid> {
    let v: Value = serde_json::from_slice(body).map_err(Invalid::json)?;
    if let Some(err) = v.get("error") {
        return Err(Invalid(format!("provider error: {err}")));
    }
    match v.get("value").and_then(Value::as_f64) {
        Some(rsi) if (0.0..=100.0).contains(&rsi) => Ok(rsi),
        Some(rsi) => Err(Invalid(format!("RSI out of range ({rsi})"))),
        None => Err(Invalid("value is missing".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_or_error() {
        let ok = include_bytes!("../../tests/fixtures/providers/taapi_rsi.json");
        assert_eq!(parse_rsi(ok).ok(), Some(44.87126034991531));
        let limited =
            include_bytes!("../../tests/fixtures/providers/taapi_error_ratelimit_http200.json");
        assert!(parse_rsi(limited).is_err());
        assert!(parse_rsi(br#"{"value":140}"#).is_err());
        assert!(parse_rsi(br#"{}"#).is_err());
    }
}
