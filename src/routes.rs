//! Every route on one screen; what surrounds each of them is `edge.rs`.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use crate::edge::EdgeLayer;
use crate::{AppState, api, pages};

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
        .fallback(pages::not_found);
    // One layer per router: admin operations have no request timeout.
    long.layer(EdgeLayer::new(&state, None))
        .merge(timed.layer(EdgeLayer::new(&state, Some(timeout))))
        .with_state(state)
}
