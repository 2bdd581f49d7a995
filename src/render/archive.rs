//! The archive (every month with reports, and one month's reports), the feed in each
//! language, and the web app manifest.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::{Head, RenderError, Renderer, ReportCard, ui};
use crate::i18n::{self, Lang};
use crate::reports::Card;
use crate::store::ReportRef;

/// A month of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// The month a report belongs to, in the audience's time zone (UTC+7).
    pub fn of(r: &ReportRef) -> Month {
        let local = r.created_at.with_timezone(&i18n::local_offset());
        Month {
            year: local.year(),
            month: local.month(),
        }
    }

    pub fn first_day(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn url(self) -> String {
        format!("/archive/{}/{:02}", self.year, self.month)
    }

    /// "tháng 11, 2026" / "November 2026".
    pub fn name(self, lang: Lang) -> String {
        match lang {
            Lang::Vi => format!("tháng {}, {}", self.month, self.year),
            Lang::En => format!("{} {}", i18n::month_name(self.month), self.year),
        }
    }
}

/// Where a month page is among the month's pages (`?page=N`, the first without it).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MonthPaging {
    pub page: u64,
    pub pages: u64,
    /// Reports in the month.
    pub total: usize,
}

impl MonthPaging {
    /// The address of page `page` of `month`: the first has no `?page`.
    pub fn url(self, month: Month, page: u64) -> String {
        match page {
            0 | 1 => month.url(),
            n => format!("{}?page={n}", month.url()),
        }
    }
}

#[derive(Serialize)]
struct MonthLink {
    url: String,
    name: String,
    name_vi: String,
    name_en: String,
    count: usize,
}

impl MonthLink {
    fn new(m: Month, count: usize, lang: Lang) -> MonthLink {
        MonthLink {
            url: m.url(),
            name: m.name(lang),
            name_vi: m.name(Lang::Vi),
            name_en: m.name(Lang::En),
            count,
        }
    }
}

#[derive(Serialize)]
struct Year {
    year: i32,
    months: Vec<MonthLink>,
}

impl Renderer {
    /// Every month that has reports, newest first, grouped by year; `months` with counts.
    pub fn archive_index(
        &self,
        lang: Lang,
        months: &[(Month, usize)],
    ) -> Result<String, RenderError> {
        let mut ctx = self.context(lang, "/archive", "list");
        let head = Head::new(
            lang,
            |l| format!("{} · {}", ui(l, "archive_title"), ui(l, "site_name")),
            |l| ui(l, "archive_description").to_owned(),
        );
        ctx.insert("head", &head);
        let mut years: Vec<Year> = Vec::new();
        for (m, n) in months {
            match years.last_mut() {
                Some(y) if y.year == m.year => y.months.push(MonthLink::new(*m, *n, lang)),
                _ => years.push(Year {
                    year: m.year,
                    months: vec![MonthLink::new(*m, *n, lang)],
                }),
            }
        }
        ctx.insert("years", &years);
        ctx.insert("month", &None::<MonthLink>);
        self.render("archive.html", &ctx)
    }

    /// One month's reports, oldest first, with links to the months around it.
    pub fn archive_month(
        &self,
        lang: Lang,
        month: Month,
        reports: &[Card],
        paging: MonthPaging,
        prev: Option<(Month, usize)>,
        next: Option<(Month, usize)>,
    ) -> Result<String, RenderError> {
        let mut ctx = self.context(lang, &paging.url(month, paging.page), "list");
        let head = Head::new(
            lang,
            |l| {
                format!(
                    "{} · {} · {}",
                    month.name(l),
                    ui(l, "archive_title"),
                    ui(l, "site_name")
                )
            },
            |l| ui(l, "archive_description").to_owned(),
        );
        ctx.insert("head", &head);
        ctx.insert("month", &Some(MonthLink::new(month, paging.total, lang)));
        ctx.insert("paging", &paging);
        let step = |page: u64| {
            (1..=paging.pages)
                .contains(&page)
                .then(|| paging.url(month, page))
        };
        ctx.insert("page_prev", &step(paging.page.wrapping_sub(1)));
        ctx.insert("page_next", &step(paging.page + 1));
        let cards: Vec<_> = reports.iter().map(|r| ReportCard::new(r, lang)).collect();
        ctx.insert("cards", &cards);
        ctx.insert("prev", &prev.map(|(m, n)| MonthLink::new(m, n, lang)));
        ctx.insert("next", &next.map(|(m, n)| MonthLink::new(m, n, lang)));
        ctx.insert("years", &Vec::<Year>::new());
        self.render("archive.html", &ctx)
    }

    /// The feed of the newest reports in `lang` (Vietnamese at `/rss.xml`, English at
    /// `/rss-en.xml`; a report without English appears in the English feed in Vietnamese).
    pub fn feed(&self, reports: &[Card], lang: Lang) -> Result<String, RenderError> {
        let path = feed_path(lang);
        let mut ctx = self.context(lang, path, "");
        let items: Vec<_> = reports.iter().map(|r| ReportCard::new(r, lang)).collect();
        ctx.insert("items", &items);
        ctx.insert("feed_path", path);
        self.render("rss.xml", &ctx)
    }

    /// The web app manifest (names in `lang`, icons drawn by `card`).
    pub fn manifest(&self, lang: Lang) -> String {
        serde_json::json!({
            "name": ui(lang, "site_name"),
            "short_name": ui(lang, "site_name"),
            "description": ui(lang, "site_description"),
            "lang": lang.code(),
            "start_url": "/",
            "scope": "/",
            "display": "standalone",
            "background_color": "#0b1220",
            "theme_color": "#0f766e",
            "icons": [
                { "src": self.assets.get("img/favicon.svg").cloned().unwrap_or_default(), "sizes": "any", "type": "image/svg+xml" },
                { "src": "/icon-192.png", "sizes": "192x192", "type": "image/png" },
                { "src": "/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any maskable" }
            ]
        })
        .to_string()
    }
}

pub fn feed_path(lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => "/rss.xml",
        Lang::En => "/rss-en.xml",
    }
}
