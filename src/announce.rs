//! Announcing new reports to Telegram, Discord and signed webhooks, once each: the publish
//! path queues one outbox record per (new report, target) in its own transaction
//! (`reports::outbox`), and [`deliver::Announcer`] sends them, oldest first, and removes a
//! record only after the target answered 2xx.

pub mod claims;
pub mod deliver;
pub mod send;
pub mod target;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::lock::lock;

pub use self::deliver::Announcer;
pub use self::target::Target;

/// Where `sendMessage` lives unless `CR_TELEGRAM_API_URL` says otherwise.
pub const TELEGRAM_API: &str = "https://api.telegram.org";
/// Where Discord webhooks live unless `CR_DISCORD_API_URL` says otherwise.
pub const DISCORD_API: &str = "https://discord.com";
/// Most targets one server announces to (each has its own delivery worker).
pub const MAX_TARGETS: usize = 32;

/// What the delivery task needs to know; the defaults are the documented ones.
#[derive(Debug, Clone)]
pub struct Settings {
    pub targets: Vec<Target>,
    /// A delivery not done this long after it was queued is recorded as failed.
    pub give_up: Duration,
    pub telegram_api: String,
    pub discord_api: String,
    /// One request may take this long (a hanging target is then retried).
    pub send_timeout: Duration,
    /// The first retry waits about this long; each further one twice as long.
    pub backoff_first: Duration,
    /// No retry waits longer than this (a 429's `retry_after` excepted).
    pub backoff_max: Duration,
    /// Most messages a minute to one Telegram chat (the Bot API's limit is 20).
    pub telegram_per_minute: usize,
    /// How often an idle worker looks at the outbox without being woken.
    pub poll: Duration,
}

impl Settings {
    pub fn new(targets: Vec<Target>) -> Settings {
        Settings {
            targets,
            give_up: Duration::from_secs(24 * 3600),
            telegram_api: TELEGRAM_API.into(),
            discord_api: DISCORD_API.into(),
            send_timeout: Duration::from_secs(30),
            backoff_first: Duration::from_secs(5),
            backoff_max: Duration::from_secs(15 * 60),
            telegram_per_minute: 20,
            poll: Duration::from_secs(2),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }

    /// The wait before retry number `attempt` (1-based): doubling from `backoff_first`, at
    /// most `backoff_max`, with `jitter` in [0, 1) taking off up to half of it so that
    /// instances and targets do not retry in step.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let doubled = self
            .backoff_first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        doubled
            .min(self.backoff_max)
            .mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// The time deliveries are planned by. Real time, moved on by tests ("down for ten minutes").
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Acquire))
    }

    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::AcqRel);
    }
}

/// Outcomes of deliveries, per target (for `/health` and `/metrics`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TargetStatus {
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Deliveries done (2xx).
    pub sent: u64,
    /// Attempts that failed and will be tried again.
    pub retried: u64,
    /// Deliveries given up (too old, refused, report gone).
    pub failed: u64,
}

#[derive(Debug, Default)]
pub struct Status(Mutex<BTreeMap<String, TargetStatus>>);

impl Status {
    fn update(&self, target: &str, f: impl FnOnce(&mut TargetStatus)) {
        let mut all = lock(&self.0);
        f(all.entry(target.to_owned()).or_default());
    }

    pub fn snapshot(&self) -> BTreeMap<String, TargetStatus> {
        lock(&self.0).clone()
    }
}

/// `announce test --target NAME`: sends a test message to one target and returns what it
/// answered, as a line to print.
pub async fn send_test(
    settings: &Settings,
    name: &str,
    public_url: &str,
) -> anyhow::Result<String> {
    let Some(target) = settings.targets.iter().find(|t| t.name == name) else {
        let known = settings.names().join(", ");
        anyhow::bail!(
            "no announce target is named {name:?}; configured: {}",
            if known.is_empty() {
                "none (see --announce)"
            } else {
                &known
            }
        );
    };
    let now = Utc::now();
    let a = send::Announcement {
        report: 0,
        lang: target.lang,
        headline: match target.lang {
            crate::i18n::Lang::Vi => "Tin nhắn thử từ crypto-report".into(),
            crate::i18n::Lang::En => "Test message from crypto-report".into(),
        },
        summary: format!("{} → {}", target.name, target.redacted()),
        url: public_url.trim_end_matches('/').to_owned(),
        card: format!("{}/card.png", public_url.trim_end_matches('/')),
        published_at: now,
        delivery_id: format!("test-{}", now.timestamp_millis()),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(settings.send_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    match send::send(&client, settings, target, &a, now).await {
        send::Sent::Done { status, answer } => Ok(format!("{name}: {status} {answer}")),
        send::Sent::Retry { reason, .. } | send::Sent::Refused { reason } => {
            anyhow::bail!("{name} ({}): {reason}", target.redacted())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_takes_at_most_half() {
        let s = Settings::new(Vec::new());
        assert_eq!(s.backoff(1, 0.0), Duration::from_secs(5));
        assert_eq!(s.backoff(3, 0.0), Duration::from_secs(20));
        assert_eq!(s.backoff(40, 0.0), Duration::from_secs(900));
        assert_eq!(s.backoff(1, 0.999_999).as_millis(), 2500);
    }
}
