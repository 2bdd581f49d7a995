//! The archive by month (`/archive`, `/archive/{year}/{month}`), the English feed beside the
//! Vietnamese one, and what link previews and installed apps fetch: the share cards, the
//! icons and the web app manifest. Everything is rendered once into the page cache.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::{FEED_ITEMS, html_page, reader_lang, remember_lang};
use crate::AppState;
use crate::cache::Deps;
use crate::card;
use crate::encoded::{Encoded, Quality};
use crate::error::AppError;
use crate::i18n::{self, Lang};
use crate::render::archive::{Month, MonthPaging};
use crate::render::{since, ui};
use crate::reports::Reader;
use crate::request::{cached, parse_id, parse_page};

/// Reports on one page of an archive month.
pub const MONTH_PER_PAGE: u64 = 50;

/// Every month with reports and how many, newest first (kept by the store, never counted).
fn months(reader: Reader<'_>) -> Result<Vec<(Month, usize)>, AppError> {
    Ok(reader
        .months()?
        .into_iter()
        .map(|c| {
            let n = usize::try_from(c.reports).unwrap_or(usize::MAX);
            (
                Month {
                    year: c.year,
                    month: c.month,
                },
                n,
            )
        })
        .collect())
}

pub async fn index(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let page = cached(&s, format!("archive:{}", lang.code()), move |st| {
        let html = st
            .renderer
            .archive_index(lang, &months(Reader::new(&st.store))?)?;
        Ok((html_page(html), Deps::listing()))
    })
    .await?;
    Ok(remember_lang(page.body.respond(&headers), &uri))
}

/// `2026` / `11`: digits only (else 400); a month outside 1-12 is a 400 too, one without
/// reports a 404.
fn parse_month(year: &str, month: &str) -> Result<Month, AppError> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let bad = || AppError::bad_request("the archive is addressed as /archive/YYYY/MM");
    if !digits(year, 4) || !(digits(month, 2) || digits(month, 1)) {
        return Err(bad());
    }
    let (year, month) = (
        year.parse::<i32>().map_err(|_| bad())?,
        month.parse::<u32>().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&month) {
        return Err(bad());
    }
    Ok(Month { year, month })
}

pub async fn month(
    State(s): State<AppState>,
    Path((year, month)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let m = parse_month(&year, &month)?;
    let page_no = parse_page(uri.query())?;
    let key = format!(
        "archive:{}-{:02}:{page_no}:{}",
        m.year,
        m.month,
        lang.code()
    );
    let page = cached(&s, key, move |st| {
        let start = |m: Month| -> Result<i64, AppError> {
            let day = m.first_day().ok_or(AppError::NotFound)?;
            let local = day
                .and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(i18n::local_offset()).single())
                .ok_or(AppError::NotFound)?;
            Ok(local.timestamp_millis())
        };
        let reader = Reader::new(&st.store);
        let all = months(reader)?;
        let total = all.iter().find(|(x, _)| *x == m).map_or(0, |(_, n)| *n);
        let pages = (total as u64).div_ceil(MONTH_PER_PAGE);
        if page_no > pages {
            return Err(AppError::NotFound);
        }
        let offset = (page_no - 1) * MONTH_PER_PAGE;
        let (from, to) = (start(m)?, start(m.next())?);
        let reports = reader.published_between(from, to, offset, MONTH_PER_PAGE as usize)?;
        if reports.is_empty() {
            return Err(AppError::NotFound);
        }
        let newer = all.iter().rev().find(|(x, _)| *x > m).copied();
        let older = all.iter().find(|(x, _)| *x < m).copied();
        let paging = MonthPaging {
            page: page_no,
            pages,
            total,
        };
        let html = st
            .renderer
            .archive_month(lang, m, &reports, paging, older, newer)?;
        Ok((html_page(html), Deps::listing()))
    })
    .await?;
    Ok(remember_lang(page.body.respond(&headers), &uri))
}

/// The English feed (`/rss-en.xml`); the Vietnamese one stays at `/rss.xml`.
pub async fn rss_en(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let page = cached(&s, "rss:en".into(), |st| {
        let (reports, _) = Reader::new(&st.store).newest(0, FEED_ITEMS)?;
        let xml = st.renderer.feed(&reports, Lang::En)?;
        let body = Encoded::new("application/rss+xml; charset=utf-8", xml, Quality::Fast);
        Ok((body, Deps::listing()))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

fn png(bytes: Vec<u8>) -> Encoded {
    Encoded::new("image/png", bytes, Quality::Fast)
}

/// The card's language: from the URL alone (`?lang=en`), Vietnamese otherwise, so a card's
/// address always names the same picture.
fn card_lang(uri: &Uri) -> Lang {
    crate::request::query_param(uri.query(), "lang")
        .and_then(Lang::parse)
        .unwrap_or(Lang::Vi)
}

/// A report's share card in one language (Open Graph and Twitter image): date, headline, and
/// the market at publication where known, else the report's summary.
pub async fn report_card(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let lang = card_lang(&uri);
    let page = cached(&s, format!("card:{id}:{}", lang.code()), move |st| {
        let report = Reader::new(&st.store)
            .report(id)?
            .ok_or(AppError::NotFound)?;
        let at = crate::since::at_publication(&st.store, report.id, report.created_at)?;
        let content = report.content_lang(lang);
        let lead = report.lead(content);
        let title = report.title(content, &lead);
        let dollars = |v: f64| since::usd(since::number(v, 0, lang), lang);
        let mut figures = Vec::new();
        if let Some(v) = &at.btc {
            figures.push(card::Figure {
                label: "BTC".into(),
                value: dollars(v.value),
            });
        }
        if let Some(v) = &at.eth {
            figures.push(card::Figure {
                label: "ETH".into(),
                value: dollars(v.value),
            });
        }
        if let Some(f) = &at.fng {
            figures.push(card::Figure {
                label: ui(lang, "since_fng").into(),
                value: format!(
                    "{} · {}",
                    f.value,
                    since::fng_class(&f.classification, lang)
                ),
            });
        }
        let bytes = card::report_card(&card::ReportCard {
            site: ui(lang, "site_name"),
            date: &i18n::format_date(report.created_at, lang),
            title: &title,
            summary: &lead.summary,
            figures: &figures,
            figures_label: ui(lang, "since_then"),
        })
        .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok((png(bytes), Deps::reports(vec![id])))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

/// The site's card in one language, for pages that are not a report.
pub async fn site_card(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = card_lang(&uri);
    let page = cached(&s, format!("card:site:{}", lang.code()), move |_| {
        let bytes = card::site_card(
            ui(lang, "site_name"),
            ui(lang, "site_tagline"),
            ui(lang, "site_description"),
        )
        .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok((png(bytes), Deps::default()))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

async fn icon(s: &AppState, size: u32, headers: &HeaderMap) -> Result<Response, AppError> {
    let page = cached(s, format!("icon:{size}"), move |_| {
        let bytes = card::icon(size).map_err(|e| AppError::Internal(e.to_string()))?;
        Ok((png(bytes), Deps::default()))
    })
    .await?;
    Ok(page.body.respond(headers))
}

pub async fn touch_icon(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    icon(&s, 180, &headers).await
}

pub async fn icon_192(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    icon(&s, 192, &headers).await
}

pub async fn icon_512(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    icon(&s, 512, &headers).await
}

pub async fn manifest(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = reader_lang(uri.query(), &headers);
    let page = cached(&s, format!("manifest:{}", lang.code()), move |st| {
        let body = Encoded::new(
            "application/manifest+json",
            st.renderer.manifest(lang),
            Quality::Fast,
        )
        .varying_by_language();
        Ok((body, Deps::default()))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_addressed_by_digits() {
        assert_eq!(
            parse_month("2026", "11").ok(),
            Some(Month {
                year: 2026,
                month: 11
            })
        );
        assert_eq!(
            parse_month("2026", "1").ok(),
            Some(Month {
                year: 2026,
                month: 1
            })
        );
        for (y, m) in [
            ("26", "11"),
            ("2026", "13"),
            ("2026", "00"),
            ("abcd", "11"),
            ("2026", "x"),
        ] {
            assert!(
                matches!(parse_month(y, m), Err(AppError::BadRequest(_))),
                "{y}/{m}"
            );
        }
    }
}
