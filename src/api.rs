//! JSON handlers and their wire types: reports, health and the admin endpoints.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::cache::Deps;
use crate::encoded::{Encoded, Quality};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::market::Refresh;
use crate::render::ReportCard;
use crate::reports::{Card, Reader, Report};
use crate::request::{PER_PAGE, cached, parse_id, parse_page};

const JSON: &str = "application/json";

/// A report as lists show it.
#[derive(Serialize)]
struct ReportSummary {
    id: u64,
    created_at: String,
    #[serde(flatten)]
    lead: LeadFields,
}

/// Title, headline and summary in both languages; `excerpt_*` are the summaries under the
/// names older clients read.
#[derive(Serialize)]
struct LeadFields {
    title_vi: String,
    title_en: String,
    headline_vi: Option<String>,
    headline_en: Option<String>,
    summary_vi: String,
    summary_en: String,
    excerpt_vi: String,
    excerpt_en: String,
    has_english: bool,
    url: String,
}

impl ReportSummary {
    fn new(r: &Card) -> Self {
        ReportSummary {
            id: r.id,
            created_at: r.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            lead: LeadFields::new(r),
        }
    }
}

impl LeadFields {
    fn new(r: &Card) -> Self {
        let card = ReportCard::new(r, Lang::Vi);
        LeadFields {
            title_vi: card.title_vi,
            title_en: card.title_en,
            headline_vi: card.headline_vi,
            headline_en: card.headline_en,
            excerpt_vi: card.summary_vi.clone(),
            excerpt_en: card.summary_en.clone(),
            summary_vi: card.summary_vi,
            summary_en: card.summary_en,
            has_english: r.has_english,
            url: card.url,
        }
    }
}

#[derive(Serialize)]
struct ReportPage {
    page: u64,
    per_page: u64,
    pages: u64,
    total: u64,
    reports: Vec<ReportSummary>,
}

fn json_body<T: Serialize>(value: &T) -> Result<Encoded, AppError> {
    let bytes = serde_json::to_vec(value).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Encoded::new(JSON, bytes, Quality::Fast))
}

pub async fn reports(
    State(s): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let page_no = parse_page(uri.query())?;
    let page = cached(&s, format!("api:reports:{page_no}"), move |st| {
        let offset = (page_no - 1).saturating_mul(PER_PAGE);
        let (reports, total) = Reader::new(&st.store).newest(offset, PER_PAGE as usize)?;
        let pages = total.div_ceil(PER_PAGE).max(1);
        if page_no > pages {
            return Err(AppError::NotFound);
        }
        let body = json_body(&ReportPage {
            page: page_no,
            per_page: PER_PAGE,
            pages,
            total,
            reports: reports.iter().map(ReportSummary::new).collect(),
        })?;
        Ok((body, Deps::listing()))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

pub async fn report(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    #[derive(Serialize)]
    struct Full<'a> {
        #[serde(flatten)]
        report: &'a Report,
        #[serde(flatten)]
        lead: LeadFields,
    }
    let id = parse_id(&raw)?;
    let page = cached(&s, format!("api:report:{id}"), move |st| {
        let report = Reader::new(&st.store)
            .report(id)?
            .ok_or(AppError::NotFound)?;
        let body = json_body(&Full {
            report: &report,
            lead: LeadFields::new(&Card::of(&report)),
        })?;
        Ok((body, Deps::reports(vec![id])))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

/// The last store probe, reused for a few seconds: the probe is a durable write, and an
/// unauthenticated endpoint must not be a way to queue fsyncs.
#[derive(Default)]
pub struct HealthProbe(tokio::sync::Mutex<Option<(std::time::Instant, Result<u64, String>)>>);

const PROBE_REUSE: std::time::Duration = std::time::Duration::from_secs(5);

impl HealthProbe {
    async fn check(&self, store: &std::sync::Arc<crate::store::Store>) -> Result<u64, String> {
        // Holding the lock across the probe also makes concurrent health checks share one.
        let mut last = self.0.lock().await;
        if let Some((at, result)) = last.as_ref()
            && at.elapsed() < PROBE_REUSE
        {
            return result.clone();
        }
        let result = store
            .call(|st| {
                st.probe()?;
                st.count()
            })
            .await
            .map_err(|e| e.to_string());
        *last = Some((std::time::Instant::now(), result.clone()));
        result
    }
}

pub async fn health(State(s): State<AppState>) -> Response {
    let store = s.health.check(&s.store).await;
    let cache = s.pages.stats().await;
    let (status, store_json) = match &store {
        Ok(count) => (
            StatusCode::OK,
            serde_json::json!({ "ok": true, "reports": count }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health probe failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "ok": false, "error": "store cannot be read or written" }),
            )
        }
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "version": env!("CARGO_PKG_VERSION"),
        "build": crate::build_info::BuildInfo::get().json(),
        "uptime_seconds": s.started.elapsed().as_secs(),
        "demo": s.settings.demo,
        "store": store_json,
        "cache": cache,
        "market": s.market.health(),
        "sync": s.sync.as_ref().map(crate::sync::Sync::status),
        "cluster": s.cluster.as_ref().map(crate::cluster::Cluster::health),
        "websocket": { "clients": s.live.clients() },
        "search": s.search.status(),
        "search_pool": s.searches.stats(),
        "announce": match &s.announcer {
            Some(a) => Some(a.health().await),
            None => None,
        },
        "render_pool": s.renders.stats(),
    });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `GET /metrics` on the main listener: for the admin token, or for a loopback peer (a
/// scraper on the same host). The server puts the peer in the request's extensions.
pub async fn metrics(
    State(s): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let loopback = peer.is_some_and(|p| p.0.0.ip().is_loopback());
    if !loopback {
        authorize(&s, &headers)?;
    }
    metrics_open(State(s)).await
}

/// `GET /metrics` where whoever reaches the socket may read it (`--metrics-listen`).
pub async fn metrics_open(State(s): State<AppState>) -> Result<Response, AppError> {
    let sample = crate::metrics::sample(&s).await;
    let text = s
        .metrics
        .render(sample)
        .map_err(|e| AppError::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

/// Admin endpoints need `Authorization: Bearer <token>`; without a configured token they are
/// refused outright.
fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(expected) = &s.settings.admin_token else {
        return Err(AppError::Forbidden(
            "admin endpoints are disabled: no admin token is configured",
        ));
    };
    // The scheme is case-insensitive and may be followed by several spaces (RFC 9110 §11).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start_matches(' '))
        .ok_or(AppError::Unauthorized)?;
    if bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}

pub async fn cache_stats(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&s, &headers)?;
    let stats = s.pages.stats().await;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "l1_pages": stats })),
    )
        .into_response())
}

pub async fn clear_cache(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&s, &headers)?;
    // Memory here and on the other instances; the shared second tier once, below, for the
    // answer to say what it removed.
    s.publisher.notify(
        &crate::reports::publish::Change::Cleared,
        crate::reports::publish::Origin::Local,
    );
    let all = crate::cache::l2::Invalidation::All;
    let l2 = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        s.pages.l2().invalidate(&all),
    )
    .await
    .map_err(|_| "timed out".to_owned())
    .and_then(|r| r.map_err(|e| e.to_string()));
    tracing::info!(l2 = ?l2, "cache cleared by admin");
    let l2_json = match l2 {
        Ok(n) => serde_json::json!({ "removed": n }),
        Err(e) => serde_json::json!({ "error": e }),
    };
    Ok(Json(serde_json::json!({ "cleared": true, "l2": l2_json })).into_response())
}

/// A consistent copy of the store (one read transaction), streamed as a file: what
/// `crypto-report backup` fetches while this server holds the store.
pub async fn admin_backup(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&s, &headers)?;
    // One at a time: each is a copy of the whole store on the store's disk.
    let Ok(one) = std::sync::Arc::clone(&s.backups).try_acquire_owned() else {
        return Err(AppError::Conflict(
            "a backup is being taken; ask again when it is done",
        ));
    };
    let (path, reports) = s
        .store
        .call(|st| st.backup_to_temp())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Unreadable(why) => AppError::StoreDamaged(why),
            e => e.into(),
        })?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| AppError::Internal(format!("cannot read the backup copy: {e}")))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    tracing::info!(reports, bytes = len, "backup taken by admin");
    // The temporary file lives as long as the stream that sends it.
    let stream = tokio_util::io::ReaderStream::new(file);
    // The temporary file, and the right to take a backup, live as long as the stream.
    let body = axum::body::Body::from_stream(futures_util::StreamExt::map(stream, move |chunk| {
        let _keep = (&path, &one);
        chunk
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"crypto-report.redb\"".to_owned(),
            ),
        ],
        body,
    )
        .into_response())
}

/// Runs a PostgreSQL sync pass now (or joins the next one) and answers with what it did.
pub async fn admin_sync(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&s, &headers)?;
    let Some(sync) = &s.sync else {
        return Err(AppError::Conflict(
            "no sync source is configured: start the server with --sync-from postgres://…",
        ));
    };
    let pass = sync.sync_now().await.map_err(AppError::BadGateway)?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "synced": true, "pass": pass, "status": sync.status() })),
    )
        .into_response())
}

/// `POST /admin/announce/{id}`: queues report `id` again for every announcement target.
pub async fn admin_announce(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&s, &headers)?;
    let Some(announcer) = &s.announcer else {
        return Err(AppError::Conflict(
            "no announcement target is configured: start the server with --announce URL",
        ));
    };
    let id: u64 = id
        .parse()
        .map_err(|_| AppError::BadRequest("the report id must be a number".into()))?;
    let queued = announcer
        .requeue(id)
        .await
        .map_err(|e| AppError::Internal(format!("cannot queue the announcement: {e}")))?;
    if queued == 0 {
        return Err(AppError::NotFound);
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "report": id, "queued": queued })),
    )
        .into_response())
}

/// The current market snapshot (SPEC §5.1). Never calls a provider: it serializes what the
/// refresher last published, once per snapshot version however many readers ask at once.
pub async fn dashboard_summary(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let snapshot = s.market.current();
    let key = format!(
        "api:dashboard:{}:{}",
        if snapshot.demo { "demo" } else { "live" },
        snapshot.version
    );
    let pages = s.pages.clone();
    let current = key.clone();
    let page = s
        .pages
        .get_or_render(key, crate::cache::Tier::l1_only, async move {
            let body = json_body(&*snapshot)?;
            pages.drop_older("api:dashboard:", &current);
            Ok::<_, AppError>((body, Deps::default()))
        })
        .await?;
    Ok(page.body.respond(&headers))
}

/// Forces one coalesced refresh of every market group (admin only, rate limited).
pub async fn dashboard_refresh(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&s, &headers)?;
    let outcome = s.market.refresh().await;
    let coalesced = match outcome {
        Refresh::Ran => false,
        Refresh::Joined => true,
        Refresh::TooSoon(wait) => {
            let mut response =
                AppError::TooManyRequests("a market refresh ran moments ago; try again later")
                    .into_response();
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs.max(1)));
            return Ok(response);
        }
        Refresh::Unavailable => {
            return Err(AppError::Unavailable("no market feed is running".into()));
        }
        Refresh::Elsewhere => {
            return Err(AppError::Conflict(
                "another instance polls the providers (it holds the market lease); ask it",
            ));
        }
    };
    let snapshot = s.market.current();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "refreshed": true,
            "coalesced": coalesced,
            "last_updated": snapshot.last_updated(),
            "partial_failure": snapshot.partial_failure(),
        })),
    )
        .into_response())
}
