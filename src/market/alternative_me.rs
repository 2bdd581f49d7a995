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

impl AlternativeMe {
    /// The daily index for the last `days` days, newest first (`limit=0`: all of it).
    pub fn fng_history(&self, days: u32) -> Result<Call, Invalid> {
        Call::get(&self.base, "/fng/", &[("limit", &days.to_string())])
    }
}

/// Every day of a history answer: (the day's start in unix ms, its value), oldest first.
/// Each entry is checked like the current value; its `timestamp` is a string of seconds.
pub fn parse_fng_history(body: &[u8]) -> Result<Vec<(i64, FearGreed)>, Invalid> {
    let v: Value = serde_json::from_slice(body).map_err(Invalid::json)?;
    if let Some(err) = v.pointer("/metadata/error").filter(|e| !e.is_null()) {
        return Err(Invalid(format!("provider error: {err}")));
    }
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| Invalid("data is missing".into()))?;
    let mut out = Vec::with_capacity(data.len());
    for entry in data {
        let day = match entry.get("timestamp") {
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        }
        .filter(|s| *s > 0)
        .ok_or_else(|| Invalid("timestamp is not a number of seconds".into()))?;
        out.push((day * 1000, fng_of(entry)?));
    }
    out.sort_by_key(|(day, _)| *day);
    Ok(out)
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
    fng_of(first)
}

/// One entry of `data`: its `value` and `value_classification`.
fn fng_of(first: &Value) -> Result<FearGreed, Invalid> {
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
    fn parses_the_history_oldest_first() {
        let body = include_bytes!("../../tests/fixtures/providers/alternative_me_fng_history.json");
        let days = parse_fng_history(body).expect("history");
        assert_eq!(days.len(), 21);
        assert_eq!(days[0].0, 1_794_182_400_000);
        assert_eq!(
            days[0].1,
            FearGreed {
                value: 52,
                classification: "Neutral".into()
            }
        );
        assert!(days.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            parse_fng_history(br#"{"data":[{"value":"50","value_classification":"Neutral"}]}"#)
                .is_err()
        );
        assert!(
            parse_fng_history(
                br#"{"data":[{"value":"150","value_classification":"Neutral","timestamp":"1"}]}"#
            )
            .is_err()
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
