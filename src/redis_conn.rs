//! The Redis connection of several instances (shared L2, live-update bus, market lease): one
//! reconnecting connection, short timeouts on every command, and a breaker that skips Redis
//! for a moment after repeated failures, so a slow, dead or confused Redis costs a reader at
//! most one short wait, never an error.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, Script};
use serde::Serialize;

use crate::lock::lock;
use crate::secret::Secret;

/// Longest wait for one command: Redis answers in well under a millisecond on a network
/// that works.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Consecutive failures that open the breaker.
const BREAKER_FAILURES: u32 = 3;
/// How long an open breaker skips Redis before one call may try again.
const BREAKER_OPEN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisFault {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis is being skipped after repeated failures")]
    Skipped,
    #[error("Redis: {0}")]
    Failed(String),
    /// Redis answered, with an error of its own (out of memory, a wrong type): Redis works,
    /// this command did not.
    #[error("Redis refused: {0}")]
    Refused(String),
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    /// A probe is under way after the breaker reopened; the others still skip.
    probing: bool,
    last_error: Option<(DateTime<Utc>, String)>,
    last_ok: Option<DateTime<Utc>>,
    /// When the current run of failures began.
    failing_since: Option<DateTime<Utc>>,
}

/// What `/health` says of the connection.
#[derive(Debug, Clone, Serialize)]
pub struct RedisState {
    /// `host:port/db`, never the password.
    pub at: String,
    /// `ok`, `degraded` (failing, pages served without it) or `unknown` (not used yet).
    pub state: &'static str,
    pub last_ok: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    at: String,
    prefix: String,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("at", &self.at).finish()
    }
}

impl Redis {
    /// A connection to `url` (`redis://[:password@]host[:port][/db]`), made lazily and remade
    /// by itself: a Redis that is down at start is only a degraded state. Keys are prefixed
    /// with `prefix:`. Must be called inside a Tokio runtime.
    pub fn new(url: &Secret, prefix: &str) -> Result<Redis, String> {
        let client = redis::Client::open(url.expose())
            .map_err(|e| format!("invalid Redis URL: {:?}", e.kind()))?;
        let at = describe(client.get_connection_info());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("Redis at {at}: {:?}", e.kind()))?;
        Ok(Redis {
            client,
            manager,
            at,
            prefix: prefix.to_owned(),
            breaker: Mutex::default(),
        })
    }

    /// `host:port/db`.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// The key `name` in this deployment's namespace.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// For the bus, which needs a connection of its own.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub async fn cmd<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisFault> {
        let mut conn = self.manager.clone();
        self.guarded(async move { cmd.query_async(&mut conn).await })
            .await
    }

    pub async fn pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, RedisFault> {
        let mut conn = self.manager.clone();
        self.guarded(async move { pipe.query_async(&mut conn).await })
            .await
    }

    pub async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, RedisFault> {
        let mut conn = self.manager.clone();
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        self.guarded(async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// Runs one call through the breaker and the timeout, and records how it went.
    async fn guarded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFault> {
        if !self.admit() {
            return Err(RedisFault::Skipped);
        }
        let outcome = match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if matches!(e.kind(), redis::ErrorKind::Server(_)) => {
                Err(RedisFault::Refused(one_line(&e)))
            }
            Ok(Err(e)) => Err(RedisFault::Failed(one_line(&e))),
            Err(_) => Err(RedisFault::Timeout(COMMAND_TIMEOUT)),
        };
        // Only a Redis that cannot be reached or understood opens the breaker.
        match &outcome {
            Err(RedisFault::Refused(e)) => {
                tracing::debug!(redis = %self.at, error = %e, "Redis refused a command");
                self.record(None);
            }
            other => self.record(other.as_ref().err()),
        }
        outcome
    }

    fn admit(&self) -> bool {
        let mut b = lock(&self.breaker);
        match b.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) if b.probing => false,
            Some(_) => {
                // Half open: this one call probes; the others wait for its outcome.
                b.probing = true;
                true
            }
            None => true,
        }
    }

    fn record(&self, error: Option<&RedisFault>) {
        let mut b = lock(&self.breaker);
        b.probing = false;
        match error {
            None => {
                b.failures = 0;
                b.open_until = None;
                b.failing_since = None;
                b.last_ok = Some(Utc::now());
            }
            Some(e) => {
                if b.failures == 0 {
                    tracing::warn!(redis = %self.at, error = %e, "Redis failing; serving without it");
                }
                b.failures += 1;
                b.failing_since.get_or_insert_with(Utc::now);
                b.last_error = Some((Utc::now(), e.to_string()));
                if b.failures >= BREAKER_FAILURES {
                    b.open_until = Some(Instant::now() + BREAKER_OPEN);
                }
            }
        }
    }

    /// Whether Redis has been failing for at least `long` (and not answered since).
    pub fn failing_for(&self, long: Duration) -> bool {
        let b = lock(&self.breaker);
        b.failing_since.is_some_and(|since| {
            Utc::now()
                .signed_duration_since(since)
                .to_std()
                .unwrap_or_default()
                >= long
        })
    }

    pub fn state(&self) -> RedisState {
        let b = lock(&self.breaker);
        RedisState {
            at: self.at.clone(),
            state: match (b.failures, b.last_ok) {
                (0, None) => "unknown",
                (0, Some(_)) => "ok",
                _ => "degraded",
            },
            last_ok: b.last_ok,
            failing_since: b.failing_since,
            last_error: b.last_error.as_ref().map(|(at, e)| format!("{at}: {e}")),
        }
    }
}

/// `host:port/db` of `url` and the version its server reports (`INFO server`), on a
/// connection of its own, all bounded by `timeout`: for `doctor`. Never the password.
pub async fn server_version(url: &Secret, timeout: Duration) -> Result<(String, String), String> {
    let client = redis::Client::open(url.expose())
        .map_err(|e| format!("invalid Redis URL: {:?}", e.kind()))?;
    let at = describe(client.get_connection_info());
    let ask = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut conn)
            .await
    };
    let info = match tokio::time::timeout(timeout, ask).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => return Err(format!("Redis at {at}: {}", one_line(&e))),
        Err(_) => return Err(format!("Redis at {at} did not answer within {timeout:?}")),
    };
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("Redis at {at} answered INFO without a redis_version"))?;
    Ok((at, version))
}

/// One line for a driver error (its text can span lines; it never holds the password).
pub fn one_line(e: &redis::RedisError) -> String {
    e.to_string().replace('\n', " ")
}

fn describe(info: &redis::ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    match info.addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => {
            format!("{host}:{port}/{db}")
        }
        redis::ConnectionAddr::Unix(path) => format!("{}/{db}", path.display()),
        _ => format!("redis/{db}"),
    }
}
