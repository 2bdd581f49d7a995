//! `/search` and `/api/search`: the query from the URL, run on the blocking pool, shown as a
//! page or as JSON. Results are not cached: every query is its own, and a search costs less
//! than a cache lookup's bookkeeping would save.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{html_page, reader_lang, remember_lang};
use crate::AppState;
use crate::error::{AppError, OwnErrorPage};
use crate::i18n::{self, Lang};
use crate::search::{Hit, Results, SearchError, SearchQuery, Snippet};
use crate::workers::Refused;

/// Longest query kept: one character past the bound, so that a longer query is refused with
/// the bound (`search::limits`), not cut short without a word.
const MAX_QUERY_CHARS: usize = crate::search::limits::MAX_QUERY_CHARS + 1;
/// Longest date kept as typed, to show it back in the form.
const MAX_DATE_CHARS: usize = 32;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    #[serde(default)]
    q: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: String,
}

/// A search as asked: the text, the dates (for the form), the query to run, and what is
/// wrong with the dates, if anything (the query is not run then).
#[derive(Debug)]
pub struct Asked {
    pub text: String,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The dates as typed, for the form when one is not a date.
    pub from_raw: String,
    pub to_raw: String,
    pub query: SearchQuery,
    pub problem: Option<DateProblem>,
}

/// Dates a search cannot run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateProblem {
    /// A date that is not `YYYY-MM-DD` (the fields that are not).
    NotADate { from: bool, to: bool },
    /// The first day is after the last.
    Reversed { from: NaiveDate, to: NaiveDate },
}

impl DateProblem {
    /// The message for the JSON API.
    pub fn message(&self) -> &'static str {
        match self {
            DateProblem::NotADate {
                from: true,
                to: true,
            } => "from and to must be dates as YYYY-MM-DD",
            DateProblem::NotADate { from: true, .. } => "from must be a date as YYYY-MM-DD",
            DateProblem::NotADate { .. } => "to must be a date as YYYY-MM-DD",
            DateProblem::Reversed { .. } => "from must not be after to",
        }
    }
}

/// A calendar day (`YYYY-MM-DD`) as the audience reads it: midnight in Vietnam (UTC+7).
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(i18n::local_offset()).single())
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// A day as typed: none, a day, or not a day (`Err`).
fn parse_day(raw: &str) -> Result<Option<NaiveDate>, ()> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}

impl Asked {
    /// The search asked for; a bad page number is an error, bad dates are a [`DateProblem`].
    pub fn parse(p: &Params) -> Result<Asked, AppError> {
        let text: String = p.q.trim().chars().take(MAX_QUERY_CHARS).collect();
        let (from, to) = (parse_day(&p.from), parse_day(&p.to));
        let problem = if from.is_err() || to.is_err() {
            Some(DateProblem::NotADate {
                from: from.is_err(),
                to: to.is_err(),
            })
        } else if let (Ok(Some(from)), Ok(Some(to))) = (from, to)
            && from > to
        {
            Some(DateProblem::Reversed { from, to })
        } else {
            None
        };
        let (from, to) = (from.ok().flatten(), to.ok().flatten());
        let page = usize::try_from(crate::request::page_number(&p.page)?)
            .map_err(|_| AppError::NotFound)?;
        let query = SearchQuery {
            text: text.clone(),
            from: from.map(day_start),
            // `to` is inclusive: up to the start of the next day.
            until: to.map(|d| day_start(d) + TimeDelta::days(1)),
            page,
        };
        // A date typed in the form comes back as typed, within reason.
        let raw = |s: &str| s.trim().chars().take(MAX_DATE_CHARS).collect();
        Ok(Asked {
            text,
            from,
            to,
            from_raw: raw(&p.from),
            to_raw: raw(&p.to),
            query,
            problem,
        })
    }

    /// The query string of this search on another page (for the page links).
    pub fn link(&self, page: usize) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let mut out = format!(
            "/search?q={}",
            utf8_percent_encode(&self.text, NON_ALPHANUMERIC)
        );
        if let Some(f) = self.from {
            out.push_str(&format!("&from={f}"));
        }
        if let Some(t) = self.to {
            out.push_str(&format!("&to={t}"));
        }
        if page > 1 {
            out.push_str(&format!("&page={page}"));
        }
        out
    }
}

async fn run(s: &AppState, asked: &Asked) -> Result<Results, AppError> {
    // Pages past the deepest result a query ranks do not exist.
    if asked.query.page > crate::search::MAX_OFFSET / crate::search::PER_PAGE {
        return Err(AppError::NotFound);
    }
    let results = s
        .search
        .search_in(&s.searches, asked.query.clone())
        .await
        .map_err(search_error)?;
    if results.hits.is_empty() && results.total > 0 && asked.query.page > 1 {
        return Err(AppError::NotFound);
    }
    Ok(results)
}

/// What the reader is told when a search does not run to its end.
fn search_error(e: SearchError) -> AppError {
    match e {
        SearchError::Query(problem) => AppError::bad_request(problem.to_string()),
        SearchError::Pool(Refused::Busy) => AppError::Busy("too many searches at once; try again"),
        SearchError::OutOfTime => {
            AppError::Busy("the search took longer than it may; try again or narrow it")
        }
        other => AppError::Internal(other.to_string()),
    }
}

pub async fn page(
    State(s): State<AppState>,
    Query(params): Query<Params>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let asked = Asked::parse(&params)?;
    // Dates the search cannot run with: this page again, the words kept, the problem said.
    let results = if asked.text.is_empty() || asked.problem.is_some() {
        None
    } else {
        Some(run(&s, &asked).await?)
    };
    let status = s.search.status();
    let html = s
        .renderer
        .search(lang, &asked, results.as_ref(), status.catching_up)?;
    let mut response = if asked.problem.is_some() {
        // The form with what is wrong in it: in full (never 304), and left as it is by the
        // middleware that dresses error responses.
        let mut full = headers.clone();
        full.remove(header::IF_NONE_MATCH);
        let mut r = html_page(html).respond(&full);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r.extensions_mut().insert(OwnErrorPage);
        r
    } else {
        html_page(html).respond(&headers)
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(remember_lang(response, &uri))
}

#[derive(Serialize)]
struct ApiSide {
    title: String,
    snippet: String,
    snippet_html: String,
}

#[derive(Serialize)]
struct ApiHit {
    id: u64,
    url: String,
    created_at: DateTime<Utc>,
    score: f32,
    /// The words typed side by side are only apart in this report (it ranks below).
    apart: bool,
    title: String,
    snippet: String,
    snippet_html: String,
    /// The language of `snippet`: the reader's, or the other one where only it matches.
    snippet_lang: Lang,
    vi: ApiSide,
    en: Option<ApiSide>,
}

#[derive(Serialize)]
struct ApiResults {
    query: String,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    lang: Lang,
    total: usize,
    page: usize,
    pages: usize,
    per_page: usize,
    catching_up: bool,
    hits: Vec<ApiHit>,
}

/// The snippet as HTML: escaped text, matches in `<mark>`.
pub fn snippet_html(s: &Snippet) -> String {
    let mut out = String::new();
    for p in &s.pieces {
        if p.hit {
            out.push_str("<mark>");
        }
        out.push_str(&crate::render::escape_html(&p.text));
        if p.hit {
            out.push_str("</mark>");
        }
    }
    out
}

fn api_hit(h: &Hit, lang: Lang) -> ApiHit {
    let side = |s: &crate::search::HitSide| ApiSide {
        title: s.title.clone(),
        snippet: s.snippet.text(),
        snippet_html: snippet_html(&s.snippet),
    };
    let vi = side(&h.vi);
    let en = h.en.as_ref().map(side);
    let (shown, snippet_lang) = h.shown(lang);
    let title = match (&h.en, lang) {
        (Some(e), Lang::En) => e.title.clone(),
        _ => h.vi.title.clone(),
    };
    ApiHit {
        id: h.id,
        url: format!("/crypto_report/{}", h.id),
        created_at: h.created_at,
        score: h.score,
        apart: h.apart,
        title,
        snippet: shown.text(),
        snippet_html: snippet_html(shown),
        snippet_lang,
        vi,
        en,
    }
}

pub async fn api(
    State(s): State<AppState>,
    Query(params): Query<Params>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let asked = Asked::parse(&params)?;
    if let Some(problem) = &asked.problem {
        return Err(AppError::bad_request(problem.message()));
    }
    let results = if asked.text.is_empty() {
        Results {
            total: 0,
            page: 1,
            pages: 0,
            hits: Vec::new(),
        }
    } else {
        run(&s, &asked).await?
    };
    let body = ApiResults {
        query: asked.text.clone(),
        from: asked.from,
        to: asked.to,
        lang,
        total: results.total,
        page: results.page,
        pages: results.pages,
        per_page: crate::search::PER_PAGE,
        catching_up: s.search.status().catching_up,
        hits: results.hits.iter().map(|h| api_hit(h, lang)).collect(),
    };
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Json(body),
    )
        .into_response())
}
