//! `/sitemap.xml`, and the numbered parts of a large archive's sitemap.
//!
//! The sitemap protocol allows 50,000 URLs and 50 MiB per file. While the archive's URLs (the
//! site's own pages, each archive month, each report) fit in one file, `/sitemap.xml` is that
//! file. Past that it is a sitemap index naming `/sitemap-1.xml`, `/sitemap-2.xml`, ...: the
//! URLs in the same order (own pages, months newest first, reports newest first), cut into
//! files that each stay within the limits. The parts sit at the site's root, as the protocol
//! wants of a sitemap naming root URLs. Each file is rendered once into the page cache and
//! reads only its own range of reports from the store.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};

use crate::AppState;
use crate::cache::Deps;
use crate::encoded::{Encoded, Quality};
use crate::error::AppError;
use crate::render::archive::Month;
use crate::reports::Reader;
use crate::request::cached;
use crate::store::ReportRef;

/// The protocol's limit of bytes per sitemap file, uncompressed.
const MAX_BYTES: usize = 50 * 1024 * 1024;
/// The site's own pages at the head of the sitemap: home, the list, the archive.
const OWN_PAGES: u64 = 3;
/// Bytes one `<url>` entry takes at most beside the public URL (the report's id in 20 digits,
/// its date, the markup and the line break).
const ENTRY_BYTES: usize = 128;
const XML: &str = "application/xml; charset=utf-8";

/// How the archive's URLs fall into sitemap files.
struct Layout {
    /// The newest report: the date of the site's own pages.
    latest: Option<ReportRef>,
    /// Months with reports, newest first.
    months: Vec<Month>,
    reports: u64,
    /// URLs per file.
    per_file: u64,
}

/// What one file holds: the own pages or not, a range of the months, a range of the reports.
struct Part {
    pages: bool,
    months: std::ops::Range<usize>,
    /// Offset and number of reports, newest first.
    reports: (u64, u64),
}

impl Layout {
    fn read(st: &AppState) -> Result<Layout, AppError> {
        let reader = Reader::new(&st.store);
        let latest = reader.dates(0, 1)?.into_iter().next();
        let months = reader
            .months()?
            .into_iter()
            .map(|c| Month {
                year: c.year,
                month: c.month,
            })
            .collect();
        let reports = reader.count()?;
        // A file must hold the own pages and something more, and stay under the byte limit
        // however long the public URL is.
        let by_bytes = MAX_BYTES / (st.settings.public_url.len() + ENTRY_BYTES);
        let per_file = st
            .settings
            .sitemap_urls
            .min(by_bytes)
            .max(OWN_PAGES as usize + 1) as u64;
        Ok(Layout {
            latest,
            months,
            reports,
            per_file,
        })
    }

    fn urls(&self) -> u64 {
        OWN_PAGES + self.months.len() as u64 + self.reports
    }

    /// Numbered parts: 0 while everything fits in `/sitemap.xml` itself.
    fn parts(&self) -> u64 {
        match self.urls() {
            n if n <= self.per_file => 0,
            n => n.div_ceil(self.per_file),
        }
    }

    /// The URLs of part `n` (from 1), or of the one file when `n` is 0.
    fn part(&self, n: u64) -> Option<Part> {
        let (start, end) = match (n, self.parts()) {
            (0, 0) => (0, self.urls()),
            (0, _) => return None,
            (n, parts) if n > parts => return None,
            (n, _) => (
                (n - 1) * self.per_file,
                (n * self.per_file).min(self.urls()),
            ),
        };
        let listed = OWN_PAGES + self.months.len() as u64;
        let month_at = |url: u64| (url.clamp(OWN_PAGES, listed) - OWN_PAGES) as usize;
        let first_report = start.max(listed);
        Some(Part {
            pages: start == 0,
            months: month_at(start)..month_at(end),
            reports: (first_report - listed, end.saturating_sub(first_report)),
        })
    }
}

/// The `urlset` of part `n` (0: the one file).
fn render_part(st: &AppState, layout: &Layout, n: u64) -> Result<Encoded, AppError> {
    let part = layout.part(n).ok_or(AppError::NotFound)?;
    let (offset, count) = part.reports;
    let refs = match count {
        0 => Vec::new(),
        n => Reader::new(&st.store).dates(offset, usize::try_from(n).unwrap_or(usize::MAX))?,
    };
    let latest = layout.latest.map(|r| r.created_at);
    let months = &layout.months[part.months];
    let xml = st.renderer.sitemap(latest, part.pages, months, &refs)?;
    Ok(Encoded::new(XML, xml, Quality::Fast))
}

/// `GET /sitemap.xml`: the whole sitemap, or the index of its parts.
pub async fn index(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let page = cached(&s, "sitemap".into(), |st| {
        let layout = Layout::read(st)?;
        let parts = layout.parts();
        if parts == 0 {
            return Ok((render_part(st, &layout, 0)?, Deps::listing()));
        }
        let mut listed = Vec::new();
        for n in 1..=parts {
            let Some(part) = layout.part(n) else { break };
            // The newest page of the part: the own pages carry the newest report's date.
            let newest: Option<DateTime<Utc>> = match (part.pages, part.reports) {
                (true, _) => layout.latest.map(|r| r.created_at),
                (false, (_, 0)) => None,
                (false, (offset, _)) => Reader::new(&st.store)
                    .dates(offset, 1)?
                    .first()
                    .map(|r| r.created_at),
            };
            listed.push((format!("/sitemap-{n}.xml"), newest));
        }
        let xml = st.renderer.sitemap_index(&listed)?;
        Ok((Encoded::new(XML, xml, Quality::Fast), Deps::listing()))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

/// `GET /sitemap-{n}.xml`: part `n` of a sitemap too large for one file; 404 past the last
/// part, and for every part while the sitemap is one file.
pub async fn part(
    State(s): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let n = parse_part(&file).ok_or(AppError::NotFound)?;
    let page = cached(&s, format!("sitemap:{n}"), move |st| {
        let layout = Layout::read(st)?;
        if layout.parts() == 0 {
            return Err(AppError::NotFound);
        }
        Ok((render_part(st, &layout, n)?, Deps::listing()))
    })
    .await?;
    Ok(page.body.respond(&headers))
}

/// `7.xml` -> 7: digits without a leading zero, from 1.
fn parse_part(file: &str) -> Option<u64> {
    let digits = file.strip_suffix(".xml")?;
    let canonical = !digits.is_empty()
        && digits.len() <= 9
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| digits.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(months: usize, reports: u64, per_file: u64) -> Layout {
        Layout {
            latest: None,
            months: vec![
                Month {
                    year: 2026,
                    month: 1
                };
                months
            ],
            reports,
            per_file,
        }
    }

    #[test]
    fn an_archive_that_fits_is_one_file() {
        let fits = layout(2, 5, 10);
        assert_eq!(fits.parts(), 0);
        let whole = fits.part(0).expect("the one file");
        assert!(whole.pages);
        assert_eq!(whole.months, 0..2);
        assert_eq!(whole.reports, (0, 5));
        assert!(fits.part(1).is_none());
    }

    #[test]
    fn a_larger_archive_is_cut_in_order_and_each_part_is_full_but_the_last() {
        // 3 own pages + 4 months + 20 reports = 27 URLs, 10 per file.
        let big = layout(4, 20, 10);
        assert_eq!(big.parts(), 3);
        assert!(big.part(0).is_none());
        let first = big.part(1).expect("part 1");
        assert!(first.pages);
        assert_eq!((first.months, first.reports), (0..4, (0, 3)));
        let second = big.part(2).expect("part 2");
        assert!(!second.pages);
        assert_eq!((second.months, second.reports), (4..4, (3, 10)));
        let last = big.part(3).expect("part 3");
        assert_eq!((last.months, last.reports), (4..4, (13, 7)));
        assert!(big.part(4).is_none());

        // Months spilling over into the second part.
        let many_months = layout(12, 1, 10);
        let first = many_months.part(1).expect("part 1");
        assert_eq!((first.months, first.reports), (0..7, (0, 0)));
        let second = many_months.part(2).expect("part 2");
        assert_eq!((second.months, second.reports), (7..12, (0, 1)));
    }

    #[test]
    fn part_names_are_canonical_numbers() {
        assert_eq!(parse_part("1.xml"), Some(1));
        assert_eq!(parse_part("42.xml"), Some(42));
        for bad in [
            "0.xml",
            "01.xml",
            ".xml",
            "1",
            "1.xml.gz",
            "x.xml",
            "-1.xml",
            "9999999999.xml",
        ] {
            assert_eq!(parse_part(bad), None, "{bad}");
        }
    }
}
