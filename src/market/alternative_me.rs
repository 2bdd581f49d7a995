//! alternative.me (keyless): the crypto fear & greed index, 0-100 with its classification.

use serde_json::Value;

use super::http::Call;
use super::snapshot::{FearGreed, Invalid};

pub const NAME: &str = "alternative.me";
pub const DEFAULT_URL: &str = "https://api.alternative.me";

#[derive(Debug, Clone)]
pub struct AlternativeMe {
    pub base: String,
}

impl AlternativeMe {
    pub fn fng(&self) -> Result<Call, Invalid> {
        Call::get(&self.base, "/fng/", &[("limit", "1")])
    }
}

/// `data[0].value` is a string of 0-100 (a number is accepted too).
pub fn parse_fng(body: &[u8]) -> Result<FearGreed, Invalid> {
    let v: Value = serde_json::from_slice(body).map_err(Invalid::json)?;
    if let Some(err) = v.pointer("/metadata/error").filter(|e| !e.is_null()) {
        return Err(Invalid(format!("provider error: {err}")));
    }
    let first = v
        .pointer("/data/0")
        .ok_or_else(|| Invalid("data[0] is missing".into()))?;
    let value = match first.get("value") {
        Some(Value::String(s)) => s.trim().parse::<u8>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        _ => None,
    }
    .filter(|v| *v <= 100)
    .ok_or_else(|| Invalid("value is not an integer 0-100".into()))?;
    let classification = first
        .get("value_classification")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 40)
        .ok_or_else(|| Invalid("value_classification is missing".into()))?;
    Ok(FearGreed {
        value,
        classification: classification.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fixture() {
        let body = include_bytes!("../../tests/fixtures/providers/alternative_me_fng.json");
        assert_eq!(
            parse_fng(body).expect("fng"),
            FearGreed {
                value: 38,
                classification: "Fear".into()
            }
        );
    }

    #[test]
    fn rejects_out_of_range_and_errors() {
        for bad in [
            r#"{"data":[{"value":"101","value_classification":"Greed"}],"metadata":{"error":null}}"#,
            r#"{"data":[{"value":"-1","value_classification":"Greed"}]}"#,
            r#"{"data":[{"value":"x","value_classification":"Greed"}]}"#,
            r#"{"data":[{"value":"50"}]}"#,
            r#"{"data":[]}"#,
            r#"{"data":[{"value":"50","value_classification":"Neutral"}],"metadata":{"error":"down"}}"#,
        ] {
            assert!(parse_fng(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
