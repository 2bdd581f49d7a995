//! The checks that reach another server, all at once and each bounded: the market providers
//! (one call each), the clock against a provider's `Date`, PostgreSQL and Redis when set.

use std::time::Duration;

use super::Check;
use crate::config::ServeArgs;
use crate::import::postgres::Source;
use crate::market::http::FetchError;
use crate::market::probe::{self, Answer, Outcome};

/// Bound of one provider call.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of the Redis connection and its `INFO`.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest clock difference with a provider that is still in sync.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(60);
/// The oldest Redis the shared features work with.
const REDIS_MAJOR: u32 = 7;

pub async fn all(serve: &ServeArgs) -> Vec<Check> {
    let market = serve
        .market
        .clone()
        .with_upstream_fallbacks()
        .market_config();
    let (providers, pg, redis) = tokio::join!(
        probe::probe_all(&market, PROVIDER_TIMEOUT),
        postgres(serve),
        redis(serve)
    );
    let mut checks = Vec::new();
    match providers {
        Ok(answers) => {
            let any_answered = answers
                .iter()
                .any(|a| !matches!(a.outcome, Outcome::Failed(_)));
            checks.extend(answers.iter().map(|a| provider(a, any_answered)));
            checks.push(clock(&answers));
        }
        Err(e) => checks.push(Check::fail(
            "providers",
            format!("cannot make an HTTP client: {e}"),
            "report this as a bug",
        )),
    }
    checks.extend(pg);
    checks.extend(redis);
    checks
}

/// The option naming a provider's key, for advice.
fn key_option(provider: &str) -> &'static str {
    match provider {
        "coingecko" => "CR_COINGECKO_API_KEY / CR_COINGECKO_PRO_API_KEY",
        "coinmarketcap" => "CR_CMC_API_KEY",
        "taapi" => "CR_TAAPI_SECRET",
        "finnhub" => "CR_FINNHUB_API_KEY",
        _ => "its key",
    }
}

/// A keyed provider's failure is the operator's to fix; a keyless one is covered by the
/// fallbacks while any provider answers.
fn provider(a: &Answer, any_answered: bool) -> Check {
    let name = format!("provider {}", a.provider);
    let ms = a.elapsed.as_millis();
    let key = if a.keyed { "key accepted" } else { "keyless" };
    match &a.outcome {
        Outcome::Ok => Check::ok(name, format!("answered in {ms} ms ({key})")),
        Outcome::RateLimited => Check::warn(
            name,
            "answered 429: this address is rate limited right now",
            "nothing to do if it passes; the refresher keeps within the free tier and falls back meanwhile",
        ),
        Outcome::KeyRefused { status, message } => {
            let (what, advice) = if a.keyed {
                (
                    "refused the key",
                    format!(
                        "check {} (a typo, an expired or revoked key, the wrong plan)",
                        key_option(a.provider)
                    ),
                )
            } else {
                (
                    "refused a keyless call",
                    format!(
                        "this provider may want a key here: set {}",
                        key_option(a.provider)
                    ),
                )
            };
            Check::fail(name, format!("{what}: HTTP {status} {message}"), advice)
        }
        Outcome::Failed(e) => {
            let advice = match e {
                FetchError::Invalid(_) => {
                    "the answer was not the provider's (a proxy or captive portal in between?); check the provider's base URL setting"
                }
                _ => "check this machine's outbound HTTPS (DNS, firewall, proxy)",
            };
            let message = format!("no usable answer: {e}");
            if a.keyed || !any_answered {
                Check::fail(name, message, advice)
            } else {
                Check::warn(
                    name,
                    message,
                    format!("{advice}; the dashboard falls back to the other providers meanwhile"),
                )
            }
        }
    }
}

/// The local clock against the first provider `Date`, within [`CLOCK_TOLERANCE`].
fn clock(answers: &[Answer]) -> Check {
    const NAME: &str = "clock";
    let Some((a, theirs)) = answers.iter().find_map(|a| a.date.map(|d| (a, d))) else {
        return Check::warn(
            NAME,
            "no provider sent its time; the clock was not compared",
            "make sure time synchronisation runs (timedatectl)",
        );
    };
    // Whole seconds, stamped when the answer left the provider: a second or two of slack.
    let skew = (a.received - theirs).num_seconds();
    let tolerance = CLOCK_TOLERANCE.as_secs() as i64;
    if skew.abs() <= tolerance {
        Check::ok(
            NAME,
            format!("within {}s of {}'s clock", skew.abs().max(1), a.provider),
        )
    } else {
        let way = if skew > 0 { "ahead of" } else { "behind" };
        Check::fail(
            NAME,
            format!("{}s {way} {}'s clock", skew.abs(), a.provider),
            "enable time synchronisation (timedatectl set-ntp true, or chrony): freshness, feeds and TLS depend on it",
        )
    }
}

/// When `--sync-from` is set: PostgreSQL reachable and the reports table recognised.
async fn postgres(serve: &ServeArgs) -> Option<Check> {
    const NAME: &str = "PostgreSQL";
    let url = serve.sync.source()?;
    let source = match Source::parse(url.expose(), serve.sync.pg_timeout()) {
        Ok(s) => s,
        Err(e) => {
            return Some(Check::fail(
                NAME,
                e.to_string(),
                "fix CR_PG_URL (postgres://user:password@host:5432/db?sslmode=require)",
            ));
        }
    };
    let conn = match source.connect().await {
        Ok(c) => c,
        Err(e) => {
            return Some(Check::fail(
                NAME,
                e.to_string(),
                "is PostgreSQL running and reachable from here? pg_hba.conf must let this host in, and the user must be able to read the reports table",
            ));
        }
    };
    let table = conn.table();
    let tls = match conn.encrypted().await {
        Ok(true) => "over TLS",
        Ok(false) => "unencrypted",
        Err(_) => "encryption unknown",
    };
    let english = if table.html_en { "with" } else { "without" };
    Some(Check::ok(
        NAME,
        format!(
            "{} ({tls}): table {}.{} recognised, {english} English columns",
            source.at(),
            table.schema,
            table.name
        ),
    ))
}

/// When `--redis-url` is set: Redis reachable and new enough.
async fn redis(serve: &ServeArgs) -> Option<Check> {
    const NAME: &str = "Redis";
    let url = serve.cluster.url()?;
    Some(
        match crate::redis_conn::server_version(&url, REDIS_TIMEOUT).await {
            Ok((at, version)) => {
                let major = version
                    .split('.')
                    .next()
                    .and_then(|m| m.parse::<u32>().ok())
                    .unwrap_or(0);
                if major >= REDIS_MAJOR {
                    Check::ok(NAME, format!("{at}: Redis {version}"))
                } else {
                    Check::fail(
                        NAME,
                        format!(
                            "{at}: Redis {version} is too old; {REDIS_MAJOR} or newer is needed"
                        ),
                        "upgrade Redis (Debian 12's redis-server is 7.0)",
                    )
                }
            }
            Err(e) => Check::fail(
                NAME,
                e,
                "is Redis running and reachable from here, and is the password in CR_REDIS_URL right?",
            ),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn answer(
        outcome: Outcome,
        keyed: bool,
        date: Option<DateTime<Utc>>,
        received: DateTime<Utc>,
    ) -> Answer {
        Answer {
            provider: "binance",
            keyed,
            outcome,
            date,
            received,
            elapsed: Duration::from_millis(12),
        }
    }

    #[test]
    fn the_clock_is_compared_with_the_first_provider_date() {
        let now = Utc::now();
        let close = answer(
            Outcome::Ok,
            false,
            Some(now - chrono::Duration::seconds(3)),
            now,
        );
        assert_eq!(clock(&[close]).status, super::super::Level::Ok);
        let far = answer(
            Outcome::Ok,
            false,
            Some(now - chrono::Duration::seconds(300)),
            now,
        );
        let check = clock(&[far]);
        assert_eq!(check.status, super::super::Level::Fail);
        assert!(
            check.message.starts_with("300s ahead of binance"),
            "{}",
            check.message
        );
        let none = answer(Outcome::Failed(FetchError::Timeout), false, None, now);
        assert_eq!(clock(&[none]).status, super::super::Level::Warn);
    }

    #[test]
    fn a_keyless_failure_is_a_warning_while_another_provider_answers() {
        let now = Utc::now();
        let down = answer(Outcome::Failed(FetchError::Timeout), false, None, now);
        assert_eq!(provider(&down, true).status, super::super::Level::Warn);
        assert_eq!(provider(&down, false).status, super::super::Level::Fail);
        let keyed = answer(Outcome::Failed(FetchError::Timeout), true, None, now);
        assert_eq!(provider(&keyed, true).status, super::super::Level::Fail);
    }
}
