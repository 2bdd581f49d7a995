//! HTML handlers: negotiate the reader's language, fetch from the store, render once into
//! the page cache, answer from it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

use crate::assets::AssetError;
use crate::cache::Deps;
use crate::encoded::{Encoded, Quality};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::render::{DocumentMode, Theme};
use crate::reports::Reader;
use crate::request::{PER_PAGE, cached, parse_id, parse_page, query_param};
use crate::workers::Refused;

pub mod archive;
pub mod search;
pub mod sitemap;

pub const HTML: &str = "text/html; charset=utf-8";
const HOME_RECENT: usize = 6;
const FEED_ITEMS: usize = 30;

/// Sandbox for a report document: an opaque origin that may run its own scripts and nothing else.
const FRAME_CSP: &str = "sandbox allow-scripts; default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'";
/// The print view is a top-level document: a sandboxed one may still navigate its own tab, so
/// it runs none of the report's script (no inline script at all), only ours, which frames the
/// print source and opens the print dialog.
const PRINT_CSP: &str = "sandbox allow-scripts allow-modals; default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'none'; frame-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";
/// The print source runs the report's script for the print view. Its parent is sandboxed, an
/// opaque origin that no `frame-ancestors` source (not even `*`) matches, so it names none:
/// anyone may frame this document, which shows public content and offers no action.
const PRINT_SOURCE_CSP: &str = "sandbox allow-scripts; default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'";

/// `?lang=`, then the `lang` cookie, then `Accept-Language`, then Vietnamese.
pub fn reader_lang(query: Option<&str>, headers: &HeaderMap) -> Lang {
    let from_query = query_param(query, "lang");
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "lang")
        .map(|(_, v)| v);
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::negotiate(from_query, cookie, accept)
}

/// Remembers an explicit `?lang=` choice for the next visit.
fn remember_lang(mut response: Response, uri: &Uri) -> Response {
    if let Some(lang) = query_param(uri.query(), "lang").and_then(Lang::parse) {
        let cookie = format!(
            "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

fn html_page(html: String) -> Encoded {
    Encoded::new(HTML, html, Quality::Fast).varying_by_language()
}

pub async fn home(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let page = cached(&s, format!("home:{}", lang.code()), move |st| {
        let (recent, _) = Reader::new(&st.store).newest(0, HOME_RECENT)?;
        let html = st
            .renderer
            .home(lang, recent.first(), recent.get(1..).unwrap_or(&[]))?;
        Ok((html_page(html), Deps::listing()))
    })
    .await?;
    Ok(remember_lang(page.body.respond(&headers), &uri))
}

pub async fn latest(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    report_response(&s, None, lang, "/crypto_report", &headers, &uri).await
}

pub async fn report(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let lang = reader_lang(uri.query(), &headers);
    let path = format!("/crypto_report/{id}");
    report_response(&s, Some(id), lang, &path, &headers, &uri).await
}

/// A report page; `None` means the latest report, which any new report replaces.
async fn report_response(
    s: &AppState,
    id: Option<u64>,
    lang: Lang,
    path: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, AppError> {
    let path = path.to_owned();
    let key = format!("report:{path}:{}", lang.code());
    let listing = id.is_none();
    let page = cached(s, key, move |st| {
        let reader = Reader::new(&st.store);
        let report = match id {
            Some(id) => reader.report(id)?,
            None => reader.latest()?,
        }
        .ok_or(AppError::NotFound)?;
        // Their headlines label the links; a damaged neighbour is linked by its date alone.
        let (prev, next) = reader.neighbours(&report)?;
        let mut deps = vec![report.id];
        deps.extend([&prev, &next].into_iter().flatten().map(|(r, _)| r.id));
        let at = crate::since::at_publication(&st.store, report.id, report.created_at)?;
        let html = st
            .renderer
            .report_page(lang, &path, &report, (prev, next), &at)?;
        Ok((
            html_page(html),
            Deps {
                reports: deps,
                listing,
            },
        ))
    })
    .await?;
    Ok(remember_lang(page.body.respond(headers), uri))
}

/// A report's own sandboxed document: the frame of the report page, or the print view.
async fn document(
    s: &AppState,
    id: u64,
    lang: Lang,
    mode: DocumentMode,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let (key, csp) = match mode {
        DocumentMode::Frame => (format!("frame:{id}:{}", lang.code()), FRAME_CSP),
        DocumentMode::Print => (format!("print:{id}:{}", lang.code()), PRINT_CSP),
        DocumentMode::PrintSource => (
            format!("print-source:{id}:{}", lang.code()),
            PRINT_SOURCE_CSP,
        ),
    };
    let page = cached(s, key, move |st| {
        let report = Reader::new(&st.store)
            .report(id)?
            .ok_or(AppError::NotFound)?;
        // The frame's theme is applied in the browser from its URL, so both themes share one
        // document; paper is always light.
        let html = st
            .renderer
            .report_document(&report, lang, mode, Theme::Light)?;
        let mut body = Encoded::new(HTML, html, Quality::Fast).with_header(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        if mode == DocumentMode::Print {
            body = body.varying_by_language();
        }
        Ok((body, Deps::reports(vec![id])))
    })
    .await?;
    Ok(page.body.respond(headers))
}

/// The report's own document for the page's sandboxed frame (language from the URL only).
pub async fn frame(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    url_document(&s, &raw, &uri, &headers, DocumentMode::Frame).await
}

/// What the print view frames to draw the report's charts: the report's document with its
/// script, in the language of the URL, laid out at the print view's width.
pub async fn print_source(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    url_document(&s, &raw, &uri, &headers, DocumentMode::PrintSource).await
}

/// A report document whose language comes from the URL alone (a frame has no cookie).
async fn url_document(
    s: &AppState,
    raw: &str,
    uri: &Uri,
    headers: &HeaderMap,
    mode: DocumentMode,
) -> Result<Response, AppError> {
    let id = parse_id(raw)?;
    let lang = query_param(uri.query(), "lang")
        .and_then(Lang::parse)
        .unwrap_or(Lang::Vi);
    document(s, id, lang, mode, headers).await
}

/// The print view: A4, every detail expanded, no navigation; sandboxed like the frame.
pub async fn print(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let lang = reader_lang(uri.query(), &headers);
    document(&s, id, lang, DocumentMode::Print, &headers).await
}

pub async fn list(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let page_no = parse_page(uri.query())?;
    let key = format!("list:{page_no}:{}", lang.code());
    let page = cached(&s, key, move |st| {
        let offset = (page_no - 1).saturating_mul(PER_PAGE);
        let (reports, total) = Reader::new(&st.store).newest(offset, PER_PAGE as usize)?;
        let pages = total.div_ceil(PER_PAGE).max(1);
        if page_no > pages {
            return Err(AppError::NotFound);
        }
        let html = st.renderer.list(lang, &reports, page_no, pages, total)?;
        Ok((html_page(html), Deps::listing()))
    })
    .await?;
    Ok(remember_lang(page.body.respond(&headers), &uri))
}

pub async fn rss(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let page = cached(&s, "rss".into(), |st| {
        let (reports, _) = Reader::new(&st.store).newest(0, FEED_ITEMS)?;
        let xml = st.renderer.rss(&reports)?;
        let body = Encoded::new("application/rss+xml; charset=utf-8", xml, Quality::Fast);
        Ok((body, Deps::listing()))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

pub async fn robots(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        s.renderer.robots(),
    )
        .into_response()
}

pub async fn asset(
    State(s): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    asset_response(&s, &path, &headers).await
}

pub async fn favicon(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    asset_response(&s, "img/favicon.svg", &headers).await
}

async fn asset_response(
    s: &AppState,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    s.assets
        .respond(path, headers, &s.renders)
        .await
        .map_err(|e| match e {
            AssetError::NotFound => AppError::NotFound,
            AssetError::Unavailable(Refused::Busy) => {
                AppError::Busy("too many pages being drawn at once; try again")
            }
            AssetError::Unavailable(e) => AppError::Internal(format!("asset: {e}")),
        })
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}
