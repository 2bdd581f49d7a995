//! The search page: the form, the hits with their snippets in both languages (the page
//! shows the reader's), and the page links.

use serde::Serialize;

use super::{Head, RenderError, Renderer, iso, page_links, ui};
use crate::i18n::{self, Lang};
use crate::pages::search::Asked;
use crate::search::{Results, Snippet};

#[derive(Serialize)]
struct HitView<'a> {
    url: String,
    iso: String,
    datetime: String,
    title: &'a str,
    title_vi: &'a str,
    title_en: &'a str,
    vi_only: bool,
    snippet_vi: &'a Snippet,
    /// English readers see this one: the English snippet, or the Vietnamese one where the
    /// English text has no match (or the report has none).
    snippet_en: &'a Snippet,
    snippet_en_lang: &'static str,
}

#[derive(Serialize)]
struct PageLink {
    number: u64,
    url: String,
}

impl Renderer {
    pub fn search(
        &self,
        lang: Lang,
        asked: &Asked,
        results: Option<&Results>,
        catching_up: bool,
    ) -> Result<String, RenderError> {
        let mut ctx = self.context(lang, "/search", "search");
        let text = asked.text.clone();
        let head = Head::new(
            lang,
            |l| {
                if text.is_empty() {
                    format!("{} · {}", ui(l, "search_title"), ui(l, "site_name"))
                } else {
                    format!(
                        "{text} · {} · {}",
                        ui(l, "search_title"),
                        ui(l, "site_name")
                    )
                }
            },
            |l| ui(l, "search_hint").to_owned(),
        );
        ctx.insert("head", &head);
        ctx.insert("q", &asked.text);
        ctx.insert("from", &asked.from.map(|d| d.to_string()));
        ctx.insert("to", &asked.to.map(|d| d.to_string()));
        ctx.insert("catching_up", &catching_up);
        ctx.insert("searched", &results.is_some());
        let hits: Vec<HitView<'_>> = results
            .map(|r| {
                r.hits
                    .iter()
                    .map(|h| {
                        let (snippet_en, snippet_en_lang) = match &h.en {
                            Some(e) if e.snippet.has_hits() || !h.vi.snippet.has_hits() => {
                                (&e.snippet, "en")
                            }
                            _ => (&h.vi.snippet, "vi"),
                        };
                        let title_en = h.en.as_ref().map_or(h.vi.title.as_str(), |e| &e.title);
                        HitView {
                            url: format!("/crypto_report/{}", h.id),
                            iso: iso(h.created_at),
                            datetime: i18n::format_datetime(h.created_at, lang),
                            title: if lang == Lang::En {
                                title_en
                            } else {
                                &h.vi.title
                            },
                            title_vi: &h.vi.title,
                            title_en,
                            vi_only: h.en.is_none(),
                            snippet_vi: &h.vi.snippet,
                            snippet_en,
                            snippet_en_lang,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        ctx.insert("hits", &hits);
        let (total, page, pages) = results.map_or((0, 1, 0), |r| (r.total, r.page, r.pages));
        ctx.insert("total", &total);
        ctx.insert("page", &page);
        ctx.insert("pages", &pages);
        let links: Vec<PageLink> = page_links(page as u64, pages as u64)
            .into_iter()
            .map(|n| PageLink {
                number: n,
                url: if n == 0 {
                    String::new()
                } else {
                    asked.link(n as usize)
                },
            })
            .collect();
        ctx.insert("page_links", &links);
        ctx.insert("prev_url", &(page > 1).then(|| asked.link(page - 1)));
        ctx.insert("next_url", &(page < pages).then(|| asked.link(page + 1)));
        self.render("search.html", &ctx)
    }
}
