//! The sitemap (one file, or one numbered part of a large archive) and the sitemap index that
//! lists the parts.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::archive::Month;
use super::{RenderError, Renderer, iso};
use crate::i18n::Lang;
use crate::store::ReportRef;

impl Renderer {
    /// A `urlset`: the site's own pages when `pages` (dated by `latest`, the newest report),
    /// then `months`' archive pages, then `refs`' report pages.
    pub fn sitemap(
        &self,
        latest: Option<DateTime<Utc>>,
        pages: bool,
        months: &[Month],
        refs: &[ReportRef],
    ) -> Result<String, RenderError> {
        #[derive(Serialize)]
        struct Url {
            url: String,
            lastmod: String,
        }
        let mut ctx = self.context(Lang::Vi, "/sitemap.xml", "");
        let urls: Vec<_> = refs
            .iter()
            .map(|r| Url {
                url: format!("/crypto_report/{}", r.id),
                lastmod: iso(r.created_at),
            })
            .collect();
        ctx.insert("pages", &pages);
        ctx.insert("latest", &latest.map(iso));
        ctx.insert("urls", &urls);
        let months: Vec<String> = months.iter().map(|m| m.url()).collect();
        ctx.insert("months", &months);
        self.render("sitemap.xml", &ctx)
    }

    /// A `sitemapindex` of `parts`: each part's path and the date of its newest page.
    pub fn sitemap_index(
        &self,
        parts: &[(String, Option<DateTime<Utc>>)],
    ) -> Result<String, RenderError> {
        #[derive(Serialize)]
        struct Part<'a> {
            url: &'a str,
            lastmod: Option<String>,
        }
        let mut ctx = self.context(Lang::Vi, "/sitemap.xml", "");
        let parts: Vec<_> = parts
            .iter()
            .map(|(url, at)| Part {
                url,
                lastmod: at.map(iso),
            })
            .collect();
        ctx.insert("parts", &parts);
        self.render("sitemap-index.xml", &ctx)
    }
}
