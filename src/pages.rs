//! HTML handlers: negotiate the reader's language, fetch from the store, render once into
//! the page cache, answer from it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::cache::Deps;
use crate::encoded::{Encoded, Quality};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::render::{DocumentMode, Theme};
use crate::reports::Report;

pub const HTML: &str = "text/html; charset=utf-8";
pub const PER_PAGE: u64 = 10;
const HOME_RECENT: usize = 6;
const FEED_ITEMS: usize = 30;

/// Sandbox for a report document: an opaque origin that may run its own scripts and nothing else.
const FRAME_CSP: &str = "sandbox allow-scripts; default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'";
/// The print view is a top-level document: it may also open the print dialog.
const PRINT_CSP: &str = "sandbox allow-scripts allow-modals; default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The raw value of one query parameter (the ones we read are plain ASCII tokens).
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

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

fn parse_id(raw: &str) -> Result<u64, AppError> {
    match raw.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(AppError::bad_request(
            "report id must be a positive integer",
        )),
    }
}

/// `page` from the query: absent means 1; anything but a positive integer is a 400.
pub fn parse_page(query: Option<&str>) -> Result<u64, AppError> {
    match query_param(query, "page").map(str::trim) {
        None | Some("") => Ok(1),
        Some(p) => match p.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(AppError::bad_request("page must be a positive integer")),
        },
    }
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
    let state = s.clone();
    let page = s
        .pages
        .get_or_render(format!("home:{}", lang.code()), async move {
            let recent = state
                .store
                .call(|st| {
                    st.newest(0, HOME_RECENT)?
                        .into_iter()
                        .filter_map(|r| st.report(r.id).transpose())
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
            let html = state
                .renderer
                .home(lang, recent.first(), recent.get(1..).unwrap_or(&[]))?;
            let deps = Deps {
                reports: Vec::new(),
                listing: true,
            };
            Ok::<_, AppError>((html_page(html), deps))
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
    let listing = id.is_none();
    let state = s.clone();
    let path = path.to_owned();
    let key = format!("report:{path}:{}", lang.code());
    let page = s
        .pages
        .get_or_render(key, async move {
            let (report, neighbours) = state
                .store
                .call(move |st| {
                    let id = match id {
                        Some(id) => id,
                        None => match st.newest(0, 1)?.first() {
                            Some(r) => r.id,
                            None => return Ok(None),
                        },
                    };
                    let Some(report) = st.report(id)? else {
                        return Ok(None);
                    };
                    let neighbours = st.neighbours(&report)?;
                    Ok(Some((report, neighbours)))
                })
                .await?
                .ok_or(AppError::NotFound)?;
            let html = state
                .renderer
                .report_page(lang, &path, &report, neighbours)?;
            let mut deps = vec![report.id];
            deps.extend(
                [neighbours.0, neighbours.1]
                    .into_iter()
                    .flatten()
                    .map(|r| r.id),
            );
            Ok::<_, AppError>((
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

async fn load_report(s: &AppState, id: u64) -> Result<Report, AppError> {
    s.store
        .call(move |st| st.report(id))
        .await?
        .ok_or(AppError::NotFound)
}

/// The report's own document for the page's sandboxed frame.
pub async fn frame(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let lang = query_param(uri.query(), "lang")
        .and_then(Lang::parse)
        .unwrap_or(Lang::Vi);
    let theme = query_param(uri.query(), "theme")
        .and_then(Theme::parse)
        .unwrap_or(Theme::Light);
    let key = format!("frame:{id}:{}:{theme:?}", lang.code());
    let state = s.clone();
    let page = s
        .pages
        .get_or_render(key, async move {
            let report = load_report(&state, id).await?;
            let html = state
                .renderer
                .report_document(&report, lang, DocumentMode::Frame, theme)?;
            let body = Encoded::new(HTML, html, Quality::Fast).with_header(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(FRAME_CSP),
            );
            Ok::<_, AppError>((
                body,
                Deps {
                    reports: vec![id],
                    listing: false,
                },
            ))
        })
        .await?;
    Ok(page.body.respond(&headers))
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
    let key = format!("print:{id}:{}", lang.code());
    let state = s.clone();
    let page = s
        .pages
        .get_or_render(key, async move {
            let report = load_report(&state, id).await?;
            let html =
                state
                    .renderer
                    .report_document(&report, lang, DocumentMode::Print, Theme::Light)?;
            let body = html_page(html).with_header(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PRINT_CSP),
            );
            Ok::<_, AppError>((
                body,
                Deps {
                    reports: vec![id],
                    listing: false,
                },
            ))
        })
        .await?;
    Ok(page.body.respond(&headers))
}

pub async fn list(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let page_no = parse_page(uri.query())?;
    let state = s.clone();
    let page = s
        .pages
        .get_or_render(format!("list:{page_no}:{}", lang.code()), async move {
            let (reports, total) = state
                .store
                .call(move |st| {
                    let total = st.count()?;
                    let offset = (page_no - 1).saturating_mul(PER_PAGE);
                    let reports = st
                        .newest(offset, PER_PAGE as usize)?
                        .into_iter()
                        .filter_map(|r| st.report(r.id).transpose())
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((reports, total))
                })
                .await?;
            let pages = total.div_ceil(PER_PAGE).max(1);
            if page_no > pages {
                return Err(AppError::NotFound);
            }
            let html = state.renderer.list(lang, &reports, page_no, pages, total)?;
            Ok((
                html_page(html),
                Deps {
                    reports: Vec::new(),
                    listing: true,
                },
            ))
        })
        .await?;
    Ok(remember_lang(page.body.respond(&headers), &uri))
}

pub async fn rss(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let state = s.clone();
    let page = s
        .pages
        .get_or_render("rss".into(), async move {
            let reports = state
                .store
                .call(|st| {
                    st.newest(0, FEED_ITEMS)?
                        .into_iter()
                        .filter_map(|r| st.report(r.id).transpose())
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
            let xml = state.renderer.rss(&reports)?;
            let body = Encoded::new("application/rss+xml; charset=utf-8", xml, Quality::Fast);
            Ok::<_, AppError>((
                body,
                Deps {
                    reports: Vec::new(),
                    listing: true,
                },
            ))
        })
        .await?;
    Ok(page.body.respond(&headers))
}

pub async fn sitemap(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let state = s.clone();
    let page = s
        .pages
        .get_or_render("sitemap".into(), async move {
            let refs = state.store.call(|st| st.newest(0, 50_000)).await?;
            let xml = state.renderer.sitemap(&refs)?;
            let body = Encoded::new("application/xml; charset=utf-8", xml, Quality::Fast);
            Ok::<_, AppError>((
                body,
                Deps {
                    reports: Vec::new(),
                    listing: true,
                },
            ))
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
    s.assets.respond(&path, &headers).ok_or(AppError::NotFound)
}

pub async fn favicon(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    s.assets
        .respond("img/favicon.svg", &headers)
        .ok_or(AppError::NotFound)
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}
