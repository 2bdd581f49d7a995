//! The search page: the form (with what is wrong with its dates, if anything), the hits with
//! their snippets in both languages (the page shows the reader's), those holding the words
//! only apart after the others, and the page links.

use serde::Serialize;

use super::{Head, RenderError, Renderer, iso, page_links, ui};
use crate::i18n::{self, Lang};
use crate::pages::search::{Asked, DateProblem};
use crate::search::{Hit, Results, Snippet};

#[derive(Serialize)]
struct HitView<'a> {
    url: String,
    iso: String,
    datetime: String,
    title: &'a str,
    title_vi: &'a str,
    title_en: &'a str,
    vi_only: bool,
    /// What a reader of each language sees (see [`Hit::shown`]), and its language.
    snippet_vi: &'a Snippet,
    snippet_vi_lang: &'static str,
    snippet_en: &'a Snippet,
    snippet_en_lang: &'static str,
}

/// The line saying what is wrong with the dates, in both languages.
#[derive(Serialize)]
struct Problem {
    vi: String,
    en: String,
    from: bool,
    to: bool,
}

impl Problem {
    fn of(p: &DateProblem, asked: &Asked) -> Problem {
        let line = |l: Lang| {
            let (key, from, to) = match p {
                DateProblem::NotADate { from, to } => (
                    match (from, to) {
                        (true, true) => "search_error_dates",
                        (true, false) => "search_error_from",
                        _ => "search_error_to",
                    },
                    asked.from_raw.clone(),
                    asked.to_raw.clone(),
                ),
                DateProblem::Reversed { from, to } => (
                    "search_error_reversed",
                    i18n::format_date(crate::pages::search::day_start(*from), l),
                    i18n::format_date(crate::pages::search::day_start(*to), l),
                ),
            };
            ui(l, key).replace("{from}", &from).replace("{to}", &to)
        };
        let (from, to) = match p {
            DateProblem::NotADate { from, to } => (*from, *to),
            DateProblem::Reversed { .. } => (true, true),
        };
        Problem {
            vi: line(Lang::Vi),
            en: line(Lang::En),
            from,
            to,
        }
    }
}

fn views<'a>(hits: &[&'a Hit], lang: Lang) -> Vec<HitView<'a>> {
    hits.iter().map(|h| hit_view(h, lang)).collect()
}

fn hit_view(h: &Hit, lang: Lang) -> HitView<'_> {
    let (snippet_vi, vi_lang) = h.shown(Lang::Vi);
    let (snippet_en, en_lang) = h.shown(Lang::En);
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
        snippet_vi,
        snippet_vi_lang: vi_lang.code(),
        snippet_en,
        snippet_en_lang: en_lang.code(),
    }
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
        ctx.insert("from", &asked.from_raw);
        ctx.insert("to", &asked.to_raw);
        ctx.insert(
            "problem",
            &asked.problem.as_ref().map(|p| Problem::of(p, asked)),
        );
        ctx.insert("catching_up", &catching_up);
        ctx.insert("searched", &results.is_some());
        // Holding the words only apart ranks below: those hits come last, after a line.
        let (apart, hits): (Vec<&Hit>, Vec<&Hit>) = results
            .map(|r| r.hits.iter().partition(|h| h.apart))
            .unwrap_or_default();
        ctx.insert("hits", &views(&hits, lang));
        ctx.insert("apart_hits", &views(&apart, lang));
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
