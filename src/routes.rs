//! Every route and middleware layer on one screen.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{AppError, ErrorMarker, OwnErrorPage};
use crate::{AppState, api, pages};

/// The site's own pages run no inline script and load nothing from elsewhere.
const SITE_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
);

/// Largest request body accepted anywhere (only admin POSTs carry one).
const MAX_BODY: usize = 64 * 1024;

/// Only `GET /metrics`, for the dedicated `--metrics-listen` socket (no token asked there:
/// the operator chose who can reach it).
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(api::metrics_open))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.settings.request_timeout,
        ))
        .with_state(state)
}

pub fn app(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    // Admin operations that take as long as the data takes (a sync pass, a copy of the
    // store): outside the request timeout, bounded by their own limits.
    let long = Router::new()
        .route("/admin/sync", post(api::admin_sync))
        .route("/admin/announce/{id}", post(api::admin_announce))
        .route("/admin/backup", post(api::admin_backup));
    let timed = Router::new()
        .route("/", get(pages::home))
        .route("/crypto_report", get(pages::latest))
        .route("/crypto_report/{id}", get(pages::report))
        .route("/crypto_report/{id}/frame", get(pages::frame))
        .route("/crypto_report/{id}/pdf", get(pages::print))
        .route("/crypto_report/{id}/print-source", get(pages::print_source))
        .route("/pdf-template/{id}", get(pages::print))
        .route("/crypto_reports_list", get(pages::list))
        .route("/search", get(pages::search::page))
        .route("/api/search", get(pages::search::api))
        .route(
            "/crypto_report/{id}/card.png",
            get(pages::archive::report_card),
        )
        .route("/archive", get(pages::archive::index))
        .route("/archive/{year}/{month}", get(pages::archive::month))
        .route("/rss-en.xml", get(pages::archive::rss_en))
        .route("/card.png", get(pages::archive::site_card))
        .route("/apple-touch-icon.png", get(pages::archive::touch_icon))
        .route("/icon-192.png", get(pages::archive::icon_192))
        .route("/icon-512.png", get(pages::archive::icon_512))
        .route("/manifest.webmanifest", get(pages::archive::manifest))
        .route("/rss.xml", get(pages::rss))
        .route("/rss", get(pages::rss))
        .route("/sitemap.xml", get(pages::sitemap::index))
        .route("/sitemap-{file}", get(pages::sitemap::part))
        .route("/robots.txt", get(pages::robots))
        .route("/assets/{*path}", get(pages::asset))
        .route("/favicon.ico", get(pages::favicon))
        .route("/api/reports", get(api::reports))
        .route("/api/reports/{id}", get(api::report))
        .route("/api/crypto/dashboard-summary", get(api::dashboard_summary))
        .route("/api/dashboard/data", get(api::dashboard_summary))
        .route(
            "/api/crypto/dashboard-summary/refresh",
            post(api::dashboard_refresh),
        )
        .route("/health", get(api::health))
        .route("/metrics", get(api::metrics))
        .route("/ws", get(crate::live::ws))
        .route("/cache-stats", get(api::cache_stats))
        .route("/admin/cache/stats", get(api::cache_stats))
        .route("/clear-cache", post(api::clear_cache))
        .route("/admin/cache/clear", post(api::clear_cache))
        .fallback(pages::not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ));
    long.merge(timed)
        .layer(CatchPanicLayer::new())
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        // Outside the limits, so their refusals are dressed and carry the headers too.
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("<unmatched>", MatchedPath::as_str);
                    tracing::info_span!("request", method = %req.method(), route, status = tracing::field::Empty)
                })
                .on_response(|res: &Response, latency: std::time::Duration, span: &tracing::Span| {
                    span.record("status", res.status().as_u16());
                    tracing::debug!(latency_us = latency.as_micros() as u64, "response");
                }),
        )
        .with_state(state)
}

/// The outermost layer of every response: security headers on all of them, and error
/// responses dressed as a localized HTML page for browsers or JSON for the API.
async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let observation = state.metrics.observe(&req);
    // Only what language negotiation needs, kept for the rare error page.
    let uri = req.uri().clone();
    let cookie = req.headers().get(header::COOKIE).cloned();
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).cloned();
    let mut response = if host_is_valid(&req) {
        next.run(req).await
    } else {
        AppError::bad_request("an HTTP/1.1 request needs exactly one valid Host header")
            .into_response()
    };
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let marker = match response.extensions().get::<ErrorMarker>() {
            Some(m) => Some(m.clone()),
            None if response.extensions().get::<OwnErrorPage>().is_some() => None,
            // Refusals produced by axum and tower-http layers rather than by our handlers.
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
            let mut headers = axum::http::HeaderMap::new();
            if let Some(c) = cookie {
                headers.insert(header::COOKIE, c);
            }
            if let Some(a) = accept {
                headers.insert(header::ACCEPT_LANGUAGE, a);
            }
            let lang = pages::reader_lang(uri.query(), &headers);
            response = dress(&state, &uri, lang, marker, &response);
        }
    }
    let h = response.headers_mut();
    // X-Frame-Options repeats `frame-ancestors` for old browsers; a handler's own CSP that
    // names no frame ancestors (the print source) means the response may be framed.
    let framable = match h.get(header::CONTENT_SECURITY_POLICY) {
        Some(own) => !own.as_bytes().windows(15).any(|w| w == b"frame-ancestors"),
        None => {
            h.insert(header::CONTENT_SECURITY_POLICY, SITE_CSP);
            false
        }
    };
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    h.insert(header::REFERRER_POLICY, REFERRER);
    if !framable {
        h.insert(header::X_FRAME_OPTIONS, SAMEORIGIN);
    }
    h.insert(PERMISSIONS_POLICY, PERMISSIONS);
    h.insert(COOP, SAME_ORIGIN);
    observation.finish(&state.metrics, &response);
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
    uri: &axum::http::Uri,
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

const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const REFERRER: HeaderValue = HeaderValue::from_static("strict-origin-when-cross-origin");
const SAMEORIGIN: HeaderValue = HeaderValue::from_static("SAMEORIGIN");
const PERMISSIONS_POLICY: header::HeaderName =
    header::HeaderName::from_static("permissions-policy");
const PERMISSIONS: HeaderValue =
    HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()");
const COOP: header::HeaderName = header::HeaderName::from_static("cross-origin-opener-policy");
const SAME_ORIGIN: HeaderValue = HeaderValue::from_static("same-origin");
