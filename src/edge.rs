//! The one layer around every route: what used to be five (the request span, the security
//! headers and error pages, the body limit, panics caught as 500 and the request timeout),
//! in one service with one future per request. Each of the five was a boxed service that
//! axum cloned for every request, and the timeout put a timer in tokio's wheel for every
//! request; a cached page, answered the moment its handler is first polled, now never
//! touches the timer wheel (`scripts/bench-compare`).
//!
//! What a response gets here, in this order:
//! - a request naming no valid host (HTTP/1.1) is answered 400, one declaring a body over
//!   [`MAX_BODY`] 413, without calling the route; a body of unknown length is cut at
//!   [`MAX_BODY`] (reading past it is a 413 from the extractor);
//! - a route that panics is answered 500 (logged by the panic hook);
//! - a route still working [`Edge`]'s timeout after the request came is dropped and the
//!   request answered 408; the timer is only set once the route first has to wait;
//! - error responses not produced by our handlers (axum's and the ones above) and our
//!   handlers' [`ErrorMarker`]s are dressed as a localized HTML page, or JSON for the API;
//! - every response gets the security headers, the request metrics count it, and a 5xx is
//!   logged as a failed response.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::{AppError, ErrorMarker, OwnErrorPage};
use crate::{AppState, pages};

/// Largest request body accepted anywhere (only admin POSTs carry one).
pub const MAX_BODY: usize = 64 * 1024;

/// [`Edge`] around every route of a router; `timeout` bounds how long its routes may take
/// (`None` for admin operations bounded by their own limits).
#[derive(Clone)]
pub struct EdgeLayer {
    state: AppState,
    timeout: Option<Duration>,
}

impl EdgeLayer {
    pub fn new(state: &AppState, timeout: Option<Duration>) -> EdgeLayer {
        EdgeLayer {
            state: state.clone(),
            timeout,
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            state: self.state.clone(),
            timeout: self.timeout,
        }
    }
}

/// One route behind the edge (see the module's documentation).
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    state: AppState,
    timeout: Option<Duration>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = self.state.clone();
        let observation = state.metrics.observe(&req);
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("<unmatched>", MatchedPath::as_str);
        let span = tracing::info_span!("request", method = %req.method(), route, status = tracing::field::Empty);
        // Only what language negotiation needs, kept for the rare error page.
        let asked = Asked {
            uri: req.uri().clone(),
            cookie: req.headers().get(header::COOKIE).cloned(),
            accept: req.headers().get(header::ACCEPT_LANGUAGE).cloned(),
        };
        let answer = if !host_is_valid(&req) {
            Err(
                AppError::bad_request("an HTTP/1.1 request needs exactly one valid Host header")
                    .into_response(),
            )
        } else if declared_length(&req).is_some_and(|n| n > MAX_BODY as u64) {
            Err(StatusCode::PAYLOAD_TOO_LARGE.into_response())
        } else {
            let req = limit_body(req);
            std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req)))
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        };
        let timeout = self.timeout;
        Box::pin(
            async move {
                let response = match answer {
                    Ok(future) => within(future, timeout, &observation).await,
                    Err(refused) => refused,
                };
                let response = finish(&state, &asked, response);
                let elapsed = observation.finish(&state.metrics, &response);
                let span = tracing::Span::current();
                span.record("status", response.status().as_u16());
                tracing::debug!(latency_us = elapsed.as_micros() as u64, "response");
                if response.status().is_server_error() {
                    tracing::error!(
                        status = response.status().as_u16(),
                        latency_ms = elapsed.as_millis() as u64,
                        "response failed"
                    );
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The route's response, or 500 when it panics, or 408 when it is not done `timeout` after
/// the request came. The timer is created only when the route first has to wait: a cached
/// page, ready at its first poll, costs no timer.
async fn within<F>(
    future: F,
    timeout: Option<Duration>,
    observation: &crate::metrics::Observation,
) -> Response
where
    F: Future<Output = Result<Response, Infallible>>,
{
    let mut future = pin!(AssertUnwindSafe(future).catch_unwind());
    let mut timer = pin!(None::<tokio::time::Sleep>);
    let done = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(result));
        }
        let Some(limit) = timeout else {
            return Poll::Pending;
        };
        if timer.is_none() {
            let left = limit.saturating_sub(observation.elapsed());
            timer.set(Some(tokio::time::sleep(left)));
        }
        match timer.as_mut().as_pin_mut().map(|t| t.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    })
    .await;
    match done {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(never))) => match never {},
        // The panic hook has logged it.
        Some(Err(_)) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        None => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// The request's `Content-Length`, when it declares one.
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A body that may still come is cut at [`MAX_BODY`] (an empty one, every GET's, is left as
/// it is).
fn limit_body(req: Request) -> Request {
    if req.body().is_end_stream() {
        return req;
    }
    req.map(|body| Body::new(http_body_util::Limited::new(body, MAX_BODY)))
}

/// What the error page of a request needs to know of it.
struct Asked {
    uri: Uri,
    cookie: Option<HeaderValue>,
    accept: Option<HeaderValue>,
}

/// Error responses dressed, security headers on every response.
fn finish(state: &AppState, asked: &Asked, mut response: Response) -> Response {
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let marker = match response.extensions().get::<ErrorMarker>() {
            Some(m) => Some(m.clone()),
            None if response.extensions().get::<OwnErrorPage>().is_some() => None,
            // Refusals produced by axum and by this layer rather than by our handlers.
            None if matches!(status.as_u16(), 400 | 405 | 408 | 413 | 500) => Some(ErrorMarker {
                status,
                message: status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase(),
            }),
            None => None,
        };
        if let Some(marker) = marker {
            let mut headers = HeaderMap::new();
            if let Some(c) = &asked.cookie {
                headers.insert(header::COOKIE, c.clone());
            }
            if let Some(a) = &asked.accept {
                headers.insert(header::ACCEPT_LANGUAGE, a.clone());
            }
            let lang = pages::reader_lang(asked.uri.query(), &headers);
            response = dress(state, &asked.uri, lang, marker, &response);
        }
    }
    crate::headers::secure(response.headers_mut());
    response
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, and any request with more than one or
/// with one that is not an authority, is answered 400. (HTTP/2 carries `:authority` instead.)
fn host_is_valid(req: &Request) -> bool {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => req.version() != axum::http::Version::HTTP_11,
        (Some(host), None) => axum::http::uri::Authority::try_from(host.as_bytes()).is_ok(),
        (Some(_), Some(_)) => false,
    }
}

fn dress(
    state: &AppState,
    uri: &Uri,
    lang: crate::i18n::Lang,
    marker: ErrorMarker,
    original: &Response,
) -> Response {
    let mut dressed = if wants_json(uri.path()) {
        (
            marker.status,
            axum::Json(
                serde_json::json!({ "error": marker.message, "status": marker.status.as_u16() }),
            ),
        )
            .into_response()
    } else {
        match state.renderer.error(lang, marker.status.as_u16()) {
            Ok(html) => (
                marker.status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                (marker.status, marker.message).into_response()
            }
        }
    };
    for name in [header::WWW_AUTHENTICATE, header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = original.headers().get(&name) {
            dressed.headers_mut().insert(name, v.clone());
        }
    }
    dressed
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    dressed
}

fn wants_json(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/admin/")
        || matches!(
            path,
            "/health" | "/metrics" | "/cache-stats" | "/clear-cache"
        )
}
