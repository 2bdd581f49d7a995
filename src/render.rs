//! HTML and XML rendering with the embedded tera templates: one function per page, taking
//! domain values and returning the document text.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_embed::RustEmbed;
use serde::Serialize;
use tera::{Context, Tera};

use crate::assets::Assets;
use crate::i18n::{self, Lang};
use crate::reports::{Report, Section, plain_text};
use crate::store::ReportRef;

#[derive(RustEmbed)]
#[folder = "templates/"]
struct Templates;

#[derive(Debug, thiserror::Error)]
#[error("template {template}: {message}")]
pub struct RenderError {
    template: &'static str,
    message: String,
}

/// How a report document is shown: inside the report page's frame, or as the print view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentMode {
    Frame,
    Print,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn parse(s: &str) -> Option<Theme> {
        match s {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// A report as listed on the home page, the list and in feeds.
#[derive(Debug, Serialize)]
pub struct ReportCard {
    pub id: u64,
    pub url: String,
    pub title: String,
    pub title_vi: String,
    pub title_en: String,
    pub iso: String,
    pub date: String,
    pub datetime: String,
    pub rfc2822: String,
    pub excerpt: String,
    pub excerpt_vi: String,
    pub excerpt_en: String,
    pub sections: Vec<Section>,
}

impl ReportCard {
    pub fn new(report: &Report, lang: Lang) -> ReportCard {
        let title_vi = title(report, Lang::Vi);
        let title_en = title(report, Lang::En);
        let excerpt_vi = report.excerpt(Lang::Vi, 220);
        let excerpt_en = report.excerpt(Lang::En, 220);
        let (title, excerpt) = match lang {
            Lang::Vi => (title_vi.clone(), excerpt_vi.clone()),
            Lang::En => (title_en.clone(), excerpt_en.clone()),
        };
        ReportCard {
            id: report.id,
            url: format!("/crypto_report/{}", report.id),
            title,
            title_vi,
            title_en,
            iso: iso(report.created_at),
            date: i18n::format_date(report.created_at, lang),
            datetime: i18n::format_datetime(report.created_at, lang),
            rfc2822: report.created_at.to_rfc2822(),
            excerpt,
            excerpt_vi,
            excerpt_en,
            sections: report.sections(lang),
        }
    }
}

/// A previous/next link.
#[derive(Debug, Serialize)]
struct Neighbour {
    url: String,
    iso: String,
    date: String,
}

impl Neighbour {
    fn new(r: ReportRef, lang: Lang) -> Self {
        Neighbour {
            url: format!("/crypto_report/{}", r.id),
            iso: iso(r.created_at),
            date: i18n::format_date(r.created_at, lang),
        }
    }
}

/// The report's own `<h1>` if it has one, else "report of <date>".
pub fn title(report: &Report, lang: Lang) -> String {
    let html = report.html(lang);
    let lower = html.to_ascii_lowercase();
    let from_h1 = lower.find("<h1").and_then(|start| {
        let open_end = lower[start..].find('>')? + start + 1;
        let close = lower[open_end..].find("</h1")? + open_end;
        Some(plain_text(&html[open_end..close]))
    });
    match from_h1.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => format!(
            "{} {}",
            i18n::strings(lang)
                .get("report_title")
                .copied()
                .unwrap_or_default(),
            i18n::format_date(report.created_at, lang)
        ),
    }
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub struct Renderer {
    tera: Tera,
    assets: HashMap<String, String>,
    public_url: String,
    /// Both languages' UI strings as JSON, for the page script's language switch.
    strings_json: String,
}

impl Renderer {
    pub fn new(assets: &Assets, public_url: &str) -> Result<Renderer, RenderError> {
        let mut tera = Tera::default();
        tera.set_escape_fn(escape_html);
        let mut files = Vec::new();
        for name in Templates::iter() {
            let file = Templates::get(&name).ok_or_else(|| RenderError {
                template: "embedded",
                message: format!("{name} vanished"),
            })?;
            let text = String::from_utf8(file.data.into_owned()).map_err(|_| RenderError {
                template: "embedded",
                message: format!("{name} is not UTF-8"),
            })?;
            files.push((name.to_string(), text));
        }
        tera.add_raw_templates(files).map_err(|e| RenderError {
            template: "embedded",
            message: format!("{e:?}"),
        })?;
        let strings: HashMap<&str, _> = Lang::ALL
            .iter()
            .map(|l| (l.code(), i18n::strings(*l)))
            .collect();
        let strings_json = serde_json::to_string(&strings)
            .unwrap_or_default()
            .replace("</", "<\\/");
        Ok(Renderer {
            tera,
            assets: assets.urls().clone(),
            public_url: public_url.to_owned(),
            strings_json,
        })
    }

    fn context(&self, lang: Lang, path: &str, nav: &str) -> Context {
        let mut ctx = Context::new();
        ctx.insert("lang", lang.code());
        ctx.insert("other_lang", lang.other().code());
        ctx.insert("t", &i18n::strings(lang));
        ctx.insert("assets", &self.assets);
        ctx.insert("public_url", &self.public_url);
        ctx.insert("path", path);
        ctx.insert("nav", nav);
        ctx.insert("strings_json", &self.strings_json);
        ctx
    }

    fn render(&self, template: &'static str, ctx: &Context) -> Result<String, RenderError> {
        self.tera.render(template, ctx).map_err(|e| {
            // tera nests the useful cause; flatten the chain for the log.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            RenderError { template, message }
        })
    }

    pub fn home(
        &self,
        lang: Lang,
        latest: Option<&Report>,
        recent: &[Report],
    ) -> Result<String, RenderError> {
        let mut ctx = self.context(lang, "/", "home");
        ctx.insert("latest", &latest.map(|r| ReportCard::new(r, lang)));
        let cards: Vec<_> = recent.iter().map(|r| ReportCard::new(r, lang)).collect();
        ctx.insert("recent", &cards);
        self.render("home.html", &ctx)
    }

    pub fn report_page(
        &self,
        lang: Lang,
        path: &str,
        report: &Report,
        neighbours: (Option<ReportRef>, Option<ReportRef>),
    ) -> Result<String, RenderError> {
        #[derive(Serialize)]
        struct View {
            id: u64,
            title: String,
            title_vi: String,
            title_en: String,
            excerpt: String,
            iso: String,
            datetime: String,
            has_en: bool,
            sections: Vec<Section>,
            frame_url: String,
            pdf_url: String,
        }
        let nav = if path == "/crypto_report" {
            "latest"
        } else {
            ""
        };
        let mut ctx = self.context(lang, path, nav);
        let (title_vi, title_en) = (title(report, Lang::Vi), title(report, Lang::En));
        let view = View {
            id: report.id,
            title: match lang {
                Lang::Vi => title_vi.clone(),
                Lang::En => title_en.clone(),
            },
            title_vi,
            title_en,
            excerpt: report.excerpt(lang, 200),
            iso: iso(report.created_at),
            datetime: i18n::format_datetime(report.created_at, lang),
            has_en: report.has_english(),
            sections: report.sections(lang),
            frame_url: format!("/crypto_report/{}/frame?lang={}", report.id, lang.code()),
            pdf_url: format!("/crypto_report/{}/pdf?lang={}", report.id, lang.code()),
        };
        ctx.insert("report", &view);
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
        struct Part<'a> {
            lang: &'static str,
            html: std::borrow::Cow<'a, str>,
        }
        let content_lang = report.content_lang(lang);
        let mut parts = vec![Part {
            lang: "vi",
            html: defuse_meta(&report.html_content),
        }];
        if report.has_english() && (mode == DocumentMode::Frame || content_lang == Lang::En) {
            parts.push(Part {
                lang: "en",
                html: defuse_meta(report.html_content_en.as_deref().unwrap_or_default()),
            });
        }
        if mode == DocumentMode::Print {
            parts.retain(|p| p.lang == content_lang.code());
        }
        let mut ctx = self.context(lang, "", "");
        ctx.insert(
            "mode",
            if mode == DocumentMode::Print {
                "print"
            } else {
                "frame"
            },
        );
        ctx.insert("content_lang", content_lang.code());
        ctx.insert("theme", theme.name());
        ctx.insert("has_en", &report.has_english());
        ctx.insert("title", &title(report, lang));
        ctx.insert("iso", &iso(report.created_at));
        ctx.insert("datetime", &i18n::format_datetime(report.created_at, lang));
        ctx.insert(
            "canonical",
            &format!("{}/crypto_report/{}", self.public_url, report.id),
        );
        ctx.insert("parts", &parts);
        ctx.insert(
            "css",
            &report.css_content.as_deref().map(|c| guard(c, "</style")),
        );
        ctx.insert("js", &report.js_content.as_deref().map(guard_script));
        ctx.insert("js_en", &report.js_content_en.as_deref().map(guard_script));
        self.render("document.html", &ctx)
    }

    pub fn list(
        &self,
        lang: Lang,
        reports: &[Report],
        page: u64,
        pages: u64,
        total: u64,
    ) -> Result<String, RenderError> {
        let path = "/crypto_reports_list";
        let mut ctx = self.context(lang, path, "list");
        let cards: Vec<_> = reports.iter().map(|r| ReportCard::new(r, lang)).collect();
        ctx.insert("cards", &cards);
        ctx.insert("page", &page);
        ctx.insert("pages", &pages);
        ctx.insert("total", &total);
        ctx.insert("page_links", &page_links(page, pages));
        self.render("list.html", &ctx)
    }

    pub fn error(&self, lang: Lang, status: u16) -> Result<String, RenderError> {
        let kind = match status {
            400 | 404 | 503 => status,
            _ => 500,
        };
        let strings = i18n::strings(lang);
        let title_key = format!("error_{kind}_title");
        let text_key = format!("error_{kind}_text");
        let mut ctx = self.context(lang, "/", "");
        ctx.insert("status", &status);
        ctx.insert("title", strings.get(title_key.as_str()).unwrap_or(&""));
        ctx.insert("text", strings.get(text_key.as_str()).unwrap_or(&""));
        ctx.insert("title_key", &title_key);
        ctx.insert("text_key", &text_key);
        self.render("error.html", &ctx)
    }

    pub fn rss(&self, reports: &[Report]) -> Result<String, RenderError> {
        let mut ctx = self.context(Lang::Vi, "/rss.xml", "");
        let items: Vec<_> = reports
            .iter()
            .map(|r| ReportCard::new(r, Lang::Vi))
            .collect();
        ctx.insert("items", &items);
        self.render("rss.xml", &ctx)
    }

    pub fn sitemap(&self, refs: &[ReportRef]) -> Result<String, RenderError> {
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
        ctx.insert("latest", &refs.first().map(|r| iso(r.created_at)));
        ctx.insert("urls", &urls);
        self.render("sitemap.xml", &ctx)
    }

    pub fn robots(&self) -> String {
        format!(
            "User-agent: *\nAllow: /\nDisallow: /api/\nDisallow: /admin/\nDisallow: /pdf-template/\n\nSitemap: {}/sitemap.xml\n",
            self.public_url
        )
    }
}

/// Escapes text for HTML and XML bodies and quoted attributes. Unlike tera's default it leaves
/// `/` alone, so URLs stay readable and byte-identical to what the router serves.
fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 8);
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Disarms `<meta http-equiv>` in report HTML: neither the sandbox nor the CSP stops a
/// `refresh` from navigating the report's frame away, so the attribute is renamed.
fn defuse_meta(html: &str) -> std::borrow::Cow<'_, str> {
    let lower = html.to_ascii_lowercase();
    if !lower.contains("http-equiv") {
        return std::borrow::Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len() + 16);
    let mut last = 0;
    let mut from = 0;
    while let Some(start) = lower[from..].find("<meta").map(|i| i + from) {
        let end = tag_end(&lower, start);
        for (i, _) in lower[start..end].match_indices("http-equiv") {
            let at = start + i;
            out.push_str(&html[last..at]);
            out.push_str("data-disabled-");
            last = at;
        }
        from = end;
    }
    out.push_str(&html[last..]);
    std::borrow::Cow::Owned(out)
}

/// Index of the `>` closing the tag that starts at `start`, skipping quoted attribute values
/// (a `>` inside quotes does not end a tag); the text's end if it never closes.
fn tag_end(text: &str, start: usize) -> usize {
    let mut quote = None;
    for (i, b) in text.bytes().enumerate().skip(start) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return i,
            _ => {}
        }
    }
    text.len()
}

/// Keeps report text from closing the element it is embedded in (`</script` -> `<\/script`).
fn guard(text: &str, closing: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !lower.contains(closing) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut last = 0;
    for (i, _) in lower.match_indices(closing) {
        out.push_str(&text[last..i]);
        out.push_str("<\\/");
        last = i + 2;
    }
    out.push_str(&text[last..]);
    out
}

/// Keeps report JS inside its own `<script>` element. Besides `</script`, a `<script` after a
/// `<!--` would switch the HTML tokenizer to its "double escaped" state, where the closing
/// tag of this element no longer closes it and the page's next script is swallowed. `\x3C`
/// is `<` in every place such text can sit in JS (strings, templates, regular expressions,
/// comments).
fn guard_script(js: &str) -> String {
    let js = guard(js, "</script");
    let lower = js.to_ascii_lowercase();
    if !lower.contains("<script") {
        return js;
    }
    let mut out = String::with_capacity(js.len() + 8);
    let mut last = 0;
    for (i, _) in lower.match_indices("<script") {
        out.push_str(&js[last..i]);
        out.push_str("\\x3C");
        last = i + 1;
    }
    out.push_str(&js[last..]);
    out
}

/// Page numbers to link: first, last, and two around the current one; 0 marks a gap.
fn page_links(page: u64, pages: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for p in 1..=pages {
        if p == 1 || p == pages || p.abs_diff(page) <= 2 {
            out.push(p);
        } else if out.last() != Some(&0) {
            out.push(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_defuses_closing_tags_in_any_case() {
        assert_eq!(guard("a</ScRipt>b", "</script"), "a<\\/ScRipt>b");
        assert_eq!(
            guard("x = '</script>' + '</script>'", "</script"),
            "x = '<\\/script>' + '<\\/script>'"
        );
        assert_eq!(guard("plain", "</style"), "plain");
    }

    #[test]
    fn script_openings_are_escaped_too() {
        assert_eq!(
            guard_script("s = '<!--<SCRIPT>x</script>';"),
            "s = '<!--\\x3CSCRIPT>x<\\/script>';"
        );
        assert_eq!(guard_script("a < b"), "a < b");
    }

    #[test]
    fn escaping_covers_markup_but_not_slashes() {
        assert_eq!(
            escape_html("<a href=\"/x?a=1&b='2'\">"),
            "&lt;a href=&quot;/x?a=1&amp;b=&#39;2&#39;&quot;&gt;"
        );
    }

    #[test]
    fn meta_refresh_is_disarmed_but_text_is_kept() {
        let html = "<p>http-equiv is a word</p><META HTTP-EQUIV=\"refresh\" content=\"0;url=x\"><meta charset=utf-8>";
        assert_eq!(
            defuse_meta(html),
            "<p>http-equiv is a word</p><META data-disabled-HTTP-EQUIV=\"refresh\" content=\"0;url=x\"><meta charset=utf-8>"
        );
        assert!(matches!(
            defuse_meta("<p>plain</p>"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn page_links_elide_the_middle() {
        assert_eq!(page_links(1, 1), vec![1]);
        assert_eq!(page_links(5, 10), vec![1, 0, 3, 4, 5, 6, 7, 0, 10]);
        assert_eq!(page_links(1, 4), vec![1, 2, 3, 4]);
    }

    #[test]
    fn title_prefers_the_reports_h1() {
        let mut r = crate::reports::sample(1, "2026-11-20T08:00:00Z");
        assert_eq!(
            title(&r, Lang::En),
            "Crypto market report November 20, 2026"
        );
        r.html_content = "<h1>Bản tin <b>BTC</b></h1>".into();
        assert_eq!(title(&r, Lang::Vi), "Bản tin BTC");
    }
}
