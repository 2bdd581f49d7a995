//! Parsers of single option values (durations, URLs, names): each says in its error what a
//! valid value looks like.

use std::time::Duration;

use super::Secret;

/// The units a duration may carry: none means seconds.
const UNITS: [(&str, u64); 4] = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)];

/// A number of seconds, or a number with a unit among the first `units` of `s, m, h, d`,
/// within `min..=max` seconds (`range` says so in words).
fn duration(
    s: &str,
    units: usize,
    (min, max): (u64, u64),
    range: &str,
) -> Result<Duration, String> {
    let units = &UNITS[..units];
    let names = match units.split_last() {
        Some(((last, _), rest)) if !rest.is_empty() => {
            let rest: Vec<&str> = rest.iter().map(|(n, _)| *n).collect();
            format!("{} or {last}", rest.join(", "))
        }
        _ => "s".to_owned(),
    };
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("must be a number of seconds, or a number with {names}"))?;
    let secs = match unit.trim() {
        "" => n,
        unit => match units.iter().find(|(name, _)| *name == unit) {
            Some((_, per)) => n.saturating_mul(*per),
            None => return Err(format!("the unit must be {names}")),
        },
    };
    if !(min..=max).contains(&secs) {
        return Err(format!("must be between {range}"));
    }
    Ok(Duration::from_secs(secs))
}

/// A delivery's patience: `90s`, `30m`, `24h`, `3d`; between a minute and 30 days.
pub(super) fn parse_age(s: &str) -> Result<Duration, String> {
    duration(s, 4, (60, 30 * 86_400), "1m and 30d")
}

/// A duration such as `300`, `90s`, `5m` or `1h`, between 10 seconds and a day.
pub(super) fn parse_interval(s: &str) -> Result<Duration, String> {
    duration(s, 3, (10, 86_400), "10s and 24h")
}

pub(super) fn parse_prefix(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}

/// A provider's base URL: absolute http(s), no query or fragment, path prefix allowed.
pub(super) fn parse_base_url(s: &str) -> Result<String, String> {
    parse_public_url(s)
}

pub(super) fn parse_public_url(s: &str) -> Result<String, String> {
    let trimmed = s.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(char::is_whitespace) || rest.contains(['?', '#']) {
        return Err("must be an absolute URL without query or fragment".into());
    }
    Ok(trimmed.to_owned())
}

/// A key that is set and not blank.
pub(super) fn present(s: &Option<Secret>) -> Option<Secret> {
    s.clone().filter(|s| !s.expose().trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_days_and_say_what_is_wrong() {
        assert_eq!(parse_age("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_age("5x"),
            Err("the unit must be s, m, h or d".to_owned())
        );
        assert_eq!(
            parse_age("59s"),
            Err("must be between 1m and 30d".to_owned())
        );
        assert_eq!(
            parse_interval("2d"),
            Err("the unit must be s, m or h".to_owned())
        );
        assert_eq!(
            parse_interval("often"),
            Err("must be a number of seconds, or a number with s, m or h".to_owned())
        );
    }
}
