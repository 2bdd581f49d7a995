//! What stands between the refresher and one provider: its outbound budget (a token bucket),
//! its circuit breaker, a `Retry-After` pause, and the counters `/health` shows.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

/// Why [`Provider::admit`] held a call back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The provider asked for a pause (`Retry-After`) that is not over.
    CoolingDown,
    /// The circuit is open after repeated failures.
    CircuitOpen,
}

/// How an admitted call ended, as the breaker and the counters see it.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Success,
    /// Nothing was sent (out of budget, say): says nothing about the provider's health.
    NotAttempted,
    /// The provider failed; the text is kept for `/health` and must hold no secret.
    Failed(&'a str),
}

/// Outbound allowance: `burst` calls at once, refilled by one every `every`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub burst: u32,
    pub every: Duration,
}

impl Budget {
    pub const fn new(burst: u32, every_ms: u64) -> Budget {
        Budget {
            burst,
            every: Duration::from_millis(every_ms),
        }
    }
}

/// A token bucket. Non-blocking on purpose: a refresher out of budget moves on to the next
/// provider instead of queueing calls that would arrive late.
#[derive(Debug)]
struct Bucket {
    budget: Budget,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(budget: Budget, now: Instant) -> Bucket {
        Bucket {
            budget,
            tokens: f64::from(budget.burst.max(1)),
            last: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        let every = self.budget.every.as_secs_f64().max(1e-6);
        let earned = now.saturating_duration_since(self.last).as_secs_f64() / every;
        self.tokens = (self.tokens + earned).min(f64::from(self.budget.burst.max(1)));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    /// Consecutive failed calls that open the circuit.
    pub threshold: u32,
    /// How long it stays open before one probe is let through.
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// closed → open after `threshold` consecutive failures → half-open after `cooldown`, where
/// one probe decides: success closes it, failure opens it again.
#[derive(Debug)]
struct Breaker {
    policy: BreakerPolicy,
    circuit: Circuit,
    failures: u32,
}

impl Breaker {
    fn allow(&mut self, now: Instant) -> bool {
        match self.circuit {
            Circuit::Closed => true,
            Circuit::Open { until } if now >= until => {
                self.circuit = Circuit::HalfOpen { probing: true };
                true
            }
            Circuit::Open { .. } | Circuit::HalfOpen { probing: true } => false,
            Circuit::HalfOpen { probing: false } => {
                self.circuit = Circuit::HalfOpen { probing: true };
                true
            }
        }
    }

    fn success(&mut self) {
        self.failures = 0;
        self.circuit = Circuit::Closed;
    }

    fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let open = match self.circuit {
            Circuit::HalfOpen { .. } => true,
            Circuit::Closed => self.failures >= self.policy.threshold.max(1),
            Circuit::Open { .. } => false,
        };
        if open {
            self.circuit = Circuit::Open {
                until: now + self.policy.cooldown,
            };
        }
    }

    /// A permitted call that never went out: a probe slot is handed back.
    fn release(&mut self) {
        if self.circuit == (Circuit::HalfOpen { probing: true }) {
            self.circuit = Circuit::HalfOpen { probing: false };
        }
    }

    fn name(&self, now: Instant) -> &'static str {
        match self.circuit {
            Circuit::Closed => "closed",
            Circuit::Open { until } if now >= until => "half_open",
            Circuit::Open { .. } => "open",
            Circuit::HalfOpen { .. } => "half_open",
        }
    }
}

#[derive(Debug)]
struct Guard {
    bucket: Bucket,
    breaker: Breaker,
    not_before: Option<Instant>,
    calls: u64,
    failures: u64,
    budget_skips: u64,
    last_success: Option<DateTime<Utc>>,
    last_failure: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// One upstream API with its own budget, breaker and counters.
#[derive(Debug)]
pub struct Provider {
    pub name: &'static str,
    guard: Mutex<Guard>,
    /// Seconds per request attempt (for `/metrics`).
    latency: prometheus_client::metrics::histogram::Histogram,
}

/// A provider's latency histogram (seconds): 10 ms to ~20 s.
fn latency_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 12),
    )
}

/// A provider's counters and breaker state, for `/metrics`.
#[derive(Debug, Clone)]
pub struct ProviderStats {
    pub name: &'static str,
    pub calls: u64,
    pub failures: u64,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
}

impl Provider {
    pub fn new(name: &'static str, budget: Budget, breaker: BreakerPolicy) -> Provider {
        let now = Instant::now();
        Provider {
            name,
            guard: Mutex::new(Guard {
                bucket: Bucket::new(budget, now),
                breaker: Breaker {
                    policy: breaker,
                    circuit: Circuit::Closed,
                    failures: 0,
                },
                not_before: None,
                calls: 0,
                failures: 0,
                budget_skips: 0,
                last_success: None,
                last_failure: None,
                last_error: None,
            }),
            latency: latency_histogram(),
        }
    }

    /// One request attempt took `elapsed`, whatever its outcome.
    pub(super) fn observe(&self, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
    }

    pub fn stats(
        &self,
    ) -> (
        ProviderStats,
        prometheus_client::metrics::histogram::Histogram,
    ) {
        let now = Instant::now();
        let stats = self.with(|g| ProviderStats {
            name: self.name,
            calls: g.calls,
            failures: g.failures,
            breaker: g.breaker.name(now),
        });
        (stats, self.latency.clone())
    }

    /// Lets a call through unless the provider asked for a pause or its circuit is open.
    pub(super) fn admit(&self) -> Result<(), Refusal> {
        let now = Instant::now();
        self.with(|g| {
            if g.not_before.is_some_and(|t| now < t) {
                return Err(Refusal::CoolingDown);
            }
            if !g.breaker.allow(now) {
                return Err(Refusal::CircuitOpen);
            }
            Ok(())
        })
    }

    /// One request's worth of budget; counts the call when granted.
    pub(super) fn take_token(&self) -> bool {
        self.with(|g| {
            let ok = g.bucket.try_take(Instant::now());
            g.calls += u64::from(ok);
            ok
        })
    }

    /// No call before `until` (a `Retry-After`), or lifts the pause.
    pub(super) fn cool_down(&self, until: Option<Instant>) {
        self.with(|g| g.not_before = until);
    }

    /// The outcome of an admitted call.
    pub(super) fn record(&self, outcome: Outcome<'_>) {
        self.with(|g| match outcome {
            Outcome::Success => {
                g.breaker.success();
                g.last_success = Some(Utc::now());
            }
            Outcome::NotAttempted => {
                g.breaker.release();
                g.budget_skips += 1;
            }
            Outcome::Failed(error) => {
                g.breaker.failure(Instant::now());
                g.failures += 1;
                g.last_failure = Some(Utc::now());
                g.last_error = Some(error.to_owned());
            }
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut Guard) -> T) -> T {
        let mut g = crate::lock::lock(&self.guard);
        f(&mut g)
    }

    pub fn health(&self) -> serde_json::Value {
        let now = Instant::now();
        let ts =
            |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        self.with(|g| {
            serde_json::json!({
                "breaker": g.breaker.name(now),
                "consecutive_failures": g.breaker.failures,
                "calls": g.calls,
                "failures": g.failures,
                "budget_skips": g.budget_skips,
                "last_success": ts(&g.last_success),
                "last_failure": ts(&g.last_failure),
                "last_error": g.last_error,
                "retry_after_seconds": g.not_before.map(|t| t.saturating_duration_since(now).as_secs()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cooldown_ms: u64) -> Breaker {
        Breaker {
            policy: BreakerPolicy {
                threshold,
                cooldown: Duration::from_millis(cooldown_ms),
            },
            circuit: Circuit::Closed,
            failures: 0,
        }
    }

    #[test]
    fn breaker_opens_then_probes_once_then_closes() {
        let t0 = Instant::now();
        let mut b = breaker(2, 100);
        assert!(b.allow(t0));
        b.failure(t0);
        assert_eq!(b.name(t0), "closed");
        b.failure(t0);
        assert_eq!(b.name(t0), "open");
        assert!(!b.allow(t0 + Duration::from_millis(50)));
        let later = t0 + Duration::from_millis(150);
        assert!(b.allow(later), "one probe after the cool-down");
        assert!(!b.allow(later), "only one probe at a time");
        b.failure(later);
        assert_eq!(b.name(later), "open");
        let later = later + Duration::from_millis(150);
        assert!(b.allow(later));
        b.success();
        assert_eq!(b.name(later), "closed");
        assert!(b.allow(later));
    }

    #[test]
    fn released_probe_can_be_retried() {
        let t0 = Instant::now();
        let mut b = breaker(1, 0);
        b.failure(t0);
        assert!(b.allow(t0));
        b.release();
        assert!(b.allow(t0));
    }

    #[test]
    fn bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Budget::new(2, 100), t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        // Never more than the burst, however long it idled.
        let t1 = t0 + Duration::from_secs(60);
        assert!(b.try_take(t1) && b.try_take(t1) && !b.try_take(t1));
    }
}
