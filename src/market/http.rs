//! The one outbound HTTP client of the market refresher: every provider call goes through the
//! provider's guard (budget, breaker), with retries, backoff and jitter that honour
//! `Retry-After`, timeouts and a response size cap. Secrets never reach a message.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::guard::{Outcome, Provider, Refusal};
use super::snapshot::Invalid;
use crate::secret::Secret;

/// Query parameters whose values are credentials.
const SENSITIVE_QUERY: &[&str] = &[
    "secret",
    "token",
    "key",
    "apikey",
    "api_key",
    "x_cg_demo_api_key",
];

/// One GET to a provider: the URL, its headers, and the secret to scrub from any message.
#[derive(Clone)]
pub struct Call {
    pub url: Url,
    pub headers: HeaderMap,
    secret: Option<Secret>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("url", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl Call {
    /// `base` (scheme, host, optional path prefix) + `path` + `query`, all encoded.
    pub fn get(base: &str, path: &str, query: &[(&str, &str)]) -> Result<Call, Invalid> {
        let mut url = Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(|e| Invalid(format!("bad provider URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(Call {
            url,
            headers: HeaderMap::new(),
            secret: None,
        })
    }

    /// Adds a credential header, marked sensitive so it never shows in `Debug`.
    pub fn secret_header(mut self, name: &'static str, secret: &Secret) -> Self {
        if let Ok(mut v) = HeaderValue::from_str(secret.expose()) {
            v.set_sensitive(true);
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self.secret = Some(secret.clone());
        self
    }

    /// Adds a credential query parameter (for providers that accept nothing else).
    pub fn secret_query(mut self, name: &str, secret: &Secret) -> Self {
        self.url
            .query_pairs_mut()
            .append_pair(name, secret.expose());
        self.secret = Some(secret.clone());
        self
    }

    fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(s) if !s.expose().is_empty() => text.replace(s.expose(), "***"),
            _ => text.to_owned(),
        }
    }
}

/// The URL with every credential in its query replaced by `***`, for logs.
pub fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hide = SENSITIVE_QUERY.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.into_owned(),
                    if hide { "***".into() } else { v.into_owned() },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("provider not configured")]
    NotConfigured,
    #[error("circuit open")]
    CircuitOpen,
    #[error("waiting out the provider's Retry-After")]
    CoolingDown,
    #[error("outbound budget exhausted")]
    Budget,
    #[error("timed out")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("invalid response: {0}")]
    Invalid(String),
}

impl From<Refusal> for FetchError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::CoolingDown => FetchError::CoolingDown,
            Refusal::CircuitOpen => FetchError::CircuitOpen,
        }
    }
}

impl FetchError {
    fn retryable(&self) -> bool {
        match self {
            FetchError::Timeout | FetchError::Connect(_) | FetchError::Transport(_) => true,
            FetchError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// Nothing was sent: such an outcome says nothing about the provider's health.
    pub(super) fn not_attempted(&self) -> bool {
        matches!(
            self,
            FetchError::NotConfigured
                | FetchError::CircuitOpen
                | FetchError::CoolingDown
                | FetchError::Budget
        )
    }
}

/// Timeouts, size cap and retry schedule of every provider call.
#[derive(Debug, Clone, Copy)]
pub struct HttpPolicy {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_body: usize,
    /// Tries per call, the first included.
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A `Retry-After` longer than this is not waited out inside a call: the provider is left
    /// alone until then and the group falls back.
    pub max_retry_after: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_body: 2 << 20,
            attempts: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// The shared client; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    policy: HttpPolicy,
}

impl Upstream {
    pub fn new(policy: HttpPolicy) -> Result<Upstream, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("crypto-report/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.total_timeout)
            // A redirect could carry a key header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::Transport(describe(&e)))?;
        Ok(Upstream { client, policy })
    }

    /// Calls `provider` through its breaker and budget, retrying what is worth retrying, and
    /// parses a successful body with `parse`. A parse or validation error is a failure too.
    /// [`Upstream::fetch`] of a request that could not be built (a configured URL that is
    /// not one): that is an invalid call, counted as nothing sent.
    pub async fn request<T>(
        &self,
        provider: &Provider,
        call: Result<Call, Invalid>,
        parse: impl Fn(&[u8]) -> Result<T, Invalid>,
    ) -> Result<T, FetchError> {
        let call = call.map_err(|e| FetchError::Invalid(e.0))?;
        self.fetch(provider, &call, parse).await
    }

    pub async fn fetch<T>(
        &self,
        provider: &Provider,
        call: &Call,
        parse: impl Fn(&[u8]) -> Result<T, Invalid>,
    ) -> Result<T, FetchError> {
        provider.admit()?;
        let result = self.attempts(provider, call, &parse).await;
        match &result {
            Ok(_) => provider.record(Outcome::Success),
            Err(e) if e.not_attempted() => provider.record(Outcome::NotAttempted),
            Err(e) => provider.record(Outcome::Failed(&e.to_string())),
        }
        if let Err(e) = &result
            && !e.not_attempted()
        {
            tracing::warn!(provider = provider.name, url = %redact_url(&call.url), error = %e, "provider call failed");
        }
        result
    }

    async fn attempts<T>(
        &self,
        provider: &Provider,
        call: &Call,
        parse: &impl Fn(&[u8]) -> Result<T, Invalid>,
    ) -> Result<T, FetchError> {
        let mut last: Option<FetchError> = None;
        for attempt in 1..=self.policy.attempts.max(1) {
            if !provider.take_token() {
                return Err(last.unwrap_or(FetchError::Budget));
            }
            let started = Instant::now();
            let outcome = self.once(call).await;
            provider.observe(started.elapsed());
            let (error, retry_after) = match outcome {
                Ok(body) => {
                    return parse(&body).map_err(|e| FetchError::Invalid(call.scrub(&e.0)));
                }
                Err(failure) => failure,
            };
            let wait = match retry_after {
                Some(ra) => {
                    provider.cool_down(Some(Instant::now() + ra));
                    ra + jitter(ra / 10)
                }
                None => {
                    let exp = self
                        .policy
                        .backoff_base
                        .saturating_mul(1 << (attempt - 1).min(16));
                    let cap = exp.min(self.policy.backoff_max);
                    cap / 2 + jitter(cap / 2)
                }
            };
            let give_up = !error.retryable()
                || attempt >= self.policy.attempts
                || retry_after.is_some_and(|ra| ra > self.policy.max_retry_after);
            if give_up {
                return Err(error);
            }
            last = Some(error);
            tokio::time::sleep(wait).await;
            provider.cool_down(None);
        }
        Err(last.unwrap_or(FetchError::Budget))
    }

    /// One request: the body of a 2xx, or the error with the server's `Retry-After`.
    async fn once(&self, call: &Call) -> Result<Vec<u8>, (FetchError, Option<Duration>)> {
        self.send(call, &mut None).await
    }

    /// One request outside any guard (no budget, breaker or retry), for `doctor`: the body of
    /// a 2xx or the error, and the server's `Date` header whatever the status.
    pub async fn probe(&self, call: &Call) -> (Option<String>, Result<Vec<u8>, FetchError>) {
        let mut date = None;
        let result = self.send(call, &mut date).await.map_err(|(e, _)| e);
        (date, result)
    }

    async fn send(
        &self,
        call: &Call,
        date: &mut Option<String>,
    ) -> Result<Vec<u8>, (FetchError, Option<Duration>)> {
        let request = async {
            let mut resp = self
                .client
                .get(call.url.clone())
                .headers(call.headers.clone())
                .send()
                .await
                .map_err(|e| (classify(call, &e), None))?;
            let status = resp.status();
            *date = resp
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = match status {
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::IM_A_TEAPOT => parse_retry_after(resp.headers()),
                _ => None,
            };
            let cap = self.policy.max_body;
            if resp.content_length().is_some_and(|n| n > cap as u64) {
                return Err((FetchError::TooLarge(cap), None));
            }
            // Content-Length can lie or be absent: the cap holds while streaming.
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| (classify(call, &e), None))? {
                if body.len() + chunk.len() > cap {
                    return Err((FetchError::TooLarge(cap), None));
                }
                body.extend_from_slice(&chunk);
            }
            if status.is_success() {
                Ok(body)
            } else {
                let message = call.scrub(&snippet(&body));
                Err((
                    FetchError::Status {
                        status: status.as_u16(),
                        message,
                    },
                    retry_after,
                ))
            }
        };
        match tokio::time::timeout(self.policy.total_timeout, request).await {
            Ok(result) => result,
            Err(_) => Err((FetchError::Timeout, None)),
        }
    }
}

fn jitter(max: Duration) -> Duration {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(if ms == 0 {
        0
    } else {
        rand::random_range(0..=ms)
    })
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these providers).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(24 * 3600)))
}

fn classify(call: &Call, e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    let text = call.scrub(&describe(e));
    if e.is_connect() {
        FetchError::Connect(text)
    } else {
        FetchError::Transport(text)
    }
}

/// The error and its causes, without the URL (which may carry a key).
fn describe(e: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cause {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c.to_string());
        cause = c.source();
    }
    if out.is_empty() {
        out = "request failed".into();
    }
    out
}

/// The start of an error body, on one line, for the operator.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 200 {
        let mut end = 200;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        let secret = Secret::new("sup3r-s3cret");
        let call = Call::get("https://api.taapi.io/", "/rsi", &[("symbol", "BTC/USDT")])
            .expect("url")
            .secret_query("secret", &secret);
        assert!(call.url.as_str().contains("sup3r-s3cret"));
        let shown = redact_url(&call.url);
        assert!(!shown.contains("sup3r-s3cret"), "{shown}");
        assert!(
            shown.contains("secret=***") && shown.contains("symbol=BTC%2FUSDT"),
            "{shown}"
        );
        assert!(!format!("{call:?}").contains("sup3r"));
        assert_eq!(call.scrub("bad key sup3r-s3cret"), "bad key ***");
        let call = Call::get("https://finnhub.io", "/api/v1/quote", &[("symbol", "SPY")])
            .expect("url")
            .secret_header("x-finnhub-token", &secret);
        assert!(!format!("{:?}", call.headers).contains("sup3r"));
    }

    #[test]
    fn retry_after_is_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }
}
