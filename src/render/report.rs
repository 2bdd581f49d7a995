//! A report's page (its card, the market since publication, the links to its neighbours) and
//! its own document, served sandboxed, with the report's markup, style and script guarded.

use serde::Serialize;

use super::guard::{css_string, defuse_meta, guard, guard_script};
use super::{
    DocumentMode, Head, RenderError, Renderer, ReportCard, Theme, fragment, iso, since, ui,
};
use crate::i18n::{self, Lang};
use crate::reports::{Beside, Card, Report};

/// A previous/next link: where it goes, the report's headline (its date title when the
/// report cannot be read) and date.
#[derive(Debug, Serialize)]
struct Neighbour {
    url: String,
    title: String,
    title_vi: String,
    title_en: String,
    headline_en: Option<String>,
    vi_only: bool,
    iso: String,
    date: String,
}

impl Neighbour {
    fn new((at, report): Beside, lang: Lang) -> Self {
        let date = |l| i18n::format_date(at.created_at, l);
        let (title_vi, title_en, headline_en, vi_only) = match &report {
            Some(card) => (
                card.title(Lang::Vi),
                card.title(Lang::En),
                card.lead(Lang::En).headline.clone(),
                !card.has_english,
            ),
            None => (date(Lang::Vi), date(Lang::En), None, false),
        };
        Neighbour {
            url: format!("/crypto_report/{}", at.id),
            title: match lang {
                Lang::Vi => title_vi.clone(),
                Lang::En => title_en.clone(),
            },
            title_vi,
            title_en,
            headline_en,
            vi_only,
            iso: iso(at.created_at),
            date: date(lang),
        }
    }
}

impl Renderer {
    pub fn report_page(
        &self,
        lang: Lang,
        path: &str,
        report: &Report,
        neighbours: (Option<Beside>, Option<Beside>),
        at_publication: &crate::since::AtPublication,
    ) -> Result<String, RenderError> {
        #[derive(Serialize)]
        struct View {
            #[serde(flatten)]
            card: ReportCard,
            has_en: bool,
            frame_url: String,
            pdf_url: String,
        }
        let nav = if path == "/crypto_report" {
            "latest"
        } else {
            ""
        };
        let mut ctx = self.context(lang, path, nav);
        let card = ReportCard::new(&Card::of(report), lang);
        let head = Head::new(
            lang,
            |l| {
                let (title, headline) = match l {
                    Lang::Vi => (&card.title_vi, &card.headline_vi),
                    Lang::En => (&card.title_en, &card.headline_en),
                };
                // A headline gets its date beside it; the date-based title has one already.
                match headline {
                    Some(_) => format!(
                        "{title} · {} · {}",
                        i18n::format_date(report.created_at, l),
                        ui(l, "site_name")
                    ),
                    None => format!("{title} · {}", ui(l, "site_name")),
                }
            },
            |l| match l {
                Lang::Vi => card.summary_vi.clone(),
                Lang::En => card.summary_en.clone(),
            },
        );
        ctx.insert("head", &head);
        let view = View {
            card,
            has_en: report.has_english(),
            frame_url: format!("/crypto_report/{}/frame?lang={}", report.id, lang.code()),
            pdf_url: format!("/crypto_report/{}/pdf?lang={}", report.id, lang.code()),
        };
        ctx.insert("report", &view);
        ctx.insert("since", &since::Panel::new(at_publication));
        ctx.insert("canonical", &format!("/crypto_report/{}", report.id));
        ctx.insert("og_type", "article");
        // The card in the page's language.
        ctx.insert(
            "og_image",
            &match lang {
                Lang::Vi => format!("/crypto_report/{}/card.png", report.id),
                Lang::En => format!("/crypto_report/{}/card.png?lang=en", report.id),
            },
        );
        ctx.insert("published_iso", &Some(iso(report.created_at)));
        ctx.insert("prev", &neighbours.0.map(|r| Neighbour::new(r, lang)));
        ctx.insert("next", &neighbours.1.map(|r| Neighbour::new(r, lang)));
        self.render("report.html", &ctx)
    }

    /// The report's own document, served sandboxed: both languages in frame mode (the reader
    /// switches without a reload), only the reader's in print mode.
    pub fn report_document(
        &self,
        report: &Report,
        lang: Lang,
        mode: DocumentMode,
        theme: Theme,
    ) -> Result<String, RenderError> {
        #[derive(Serialize)]
        struct Part {
            lang: &'static str,
            html: String,
        }
        let content_lang = report.content_lang(lang);
        let mut parts = vec![Part {
            lang: "vi",
            html: fragment::sealed(&defuse_meta(&report.html_content)),
        }];
        if report.has_english() && (mode == DocumentMode::Frame || content_lang == Lang::En) {
            parts.push(Part {
                lang: "en",
                html: fragment::sealed(&defuse_meta(
                    report.html_content_en.as_deref().unwrap_or_default(),
                )),
            });
        }
        if mode != DocumentMode::Frame {
            parts.retain(|p| p.lang == content_lang.code());
        }
        let mut ctx = self.context(lang, "", "");
        ctx.insert("mode", mode.name());
        ctx.insert("content_lang", content_lang.code());
        ctx.insert("theme", theme.name());
        ctx.insert("has_en", &report.has_english());
        let lead = report.lead(lang);
        ctx.insert("title", &report.title(lang, &lead));
        ctx.insert("iso", &iso(report.created_at));
        ctx.insert("datetime", &i18n::format_datetime(report.created_at, lang));
        ctx.insert(
            "canonical",
            &format!("{}/crypto_report/{}", self.public_url, report.id),
        );
        ctx.insert(
            "report_url",
            &format!("/crypto_report/{}?lang={}", report.id, lang.code()),
        );
        ctx.insert(
            "source_url",
            &format!(
                "/crypto_report/{}/print-source?lang={}",
                report.id,
                content_lang.code()
            ),
        );
        // Paper margins: site and date on the left, the page number on the right.
        ctx.insert(
            "page_footer_left",
            &css_string(&format!(
                "{} · {}",
                ui(lang, "site_name"),
                i18n::format_date(report.created_at, lang)
            )),
        );
        ctx.insert("page_word", &css_string(ui(lang, "page")));
        ctx.insert("parts", &parts);
        ctx.insert(
            "css",
            &report.css_content.as_deref().map(|c| guard(c, "</style")),
        );
        if mode != DocumentMode::Print {
            ctx.insert("js", &report.js_content.as_deref().map(guard_script));
            ctx.insert("js_en", &report.js_content_en.as_deref().map(guard_script));
        }
        self.render("document.html", &ctx)
    }
}
