//! HTML and XML rendering with the embedded tera templates: one function per page, taking
//! domain values and returning the document text.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_embed::RustEmbed;
use serde::Serialize;
use tera::{Context, Tera};

use crate::assets::Assets;
use crate::i18n::{self, Lang};
use crate::reports::{Card, Section};

pub use self::guard::escape_html;

pub mod archive;
mod fragment;
mod guard;
mod report;
mod search;
pub(crate) mod since;
mod sitemap;

#[derive(RustEmbed)]
#[folder = "templates/"]
struct Templates;

#[derive(Debug, Clone, thiserror::Error)]
#[error("template {template}: {message}")]
pub struct RenderError {
    template: &'static str,
    message: String,
}

/// How a report document is shown: inside the report page's frame, as the print view, or as
/// the print view's source (the frame where the report's script draws for paper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentMode {
    Frame,
    /// Top level: runs none of the report's script (it could navigate the tab away), only
    /// the report's markup and what its source frame drew, at the width of A4.
    Print,
    PrintSource,
}

impl DocumentMode {
    fn name(self) -> &'static str {
        match self {
            DocumentMode::Frame => "frame",
            DocumentMode::Print => "print",
            DocumentMode::PrintSource => "print-source",
        }
    }
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

/// A report as listed on the home page, the list and in feeds: title and summary in both
/// languages (the page script switches between them), and the reader's.
#[derive(Debug, Serialize)]
pub struct ReportCard {
    pub id: u64,
    pub url: String,
    pub title: String,
    pub title_vi: String,
    pub title_en: String,
    pub headline_vi: Option<String>,
    pub headline_en: Option<String>,
    pub summary: String,
    pub summary_vi: String,
    pub summary_en: String,
    /// No English version: English readers see the Vietnamese title and summary, marked so.
    pub vi_only: bool,
    pub iso: String,
    pub date: String,
    pub datetime: String,
    /// How long ago it was published, as of rendering ("15 days ago"); pages refresh it.
    pub age: String,
    pub rfc2822: String,
    pub sections_vi: Vec<Section>,
    pub sections_en: Vec<Section>,
}

impl ReportCard {
    pub fn new(card: &Card, lang: Lang) -> ReportCard {
        let (lead_vi, lead_en) = (card.lead(Lang::Vi), card.lead(Lang::En));
        let (title_vi, title_en) = (card.title(Lang::Vi), card.title(Lang::En));
        ReportCard {
            id: card.id,
            url: format!("/crypto_report/{}", card.id),
            title: match lang {
                Lang::Vi => title_vi.clone(),
                Lang::En => title_en.clone(),
            },
            title_vi,
            title_en,
            headline_vi: lead_vi.headline.clone(),
            headline_en: lead_en.headline.clone(),
            summary: card.lead(lang).summary.clone(),
            summary_vi: lead_vi.summary.clone(),
            summary_en: lead_en.summary.clone(),
            vi_only: !card.has_english,
            iso: iso(card.created_at),
            date: i18n::format_date(card.created_at, lang),
            datetime: i18n::format_datetime(card.created_at, lang),
            age: i18n::format_age(card.created_at, Utc::now(), lang),
            rfc2822: card.created_at.to_rfc2822(),
            sections_vi: card.sections(Lang::Vi).to_vec(),
            sections_en: card.sections(Lang::En).to_vec(),
        }
    }
}

/// A page's `<title>` and meta description in both languages, for the language switch.
#[derive(Debug, Serialize)]
struct Head {
    title: String,
    title_vi: String,
    title_en: String,
    description: String,
    description_vi: String,
    description_en: String,
}

impl Head {
    fn new(
        lang: Lang,
        title: impl Fn(Lang) -> String,
        description: impl Fn(Lang) -> String,
    ) -> Head {
        let pick = |vi: &String, en: &String| match lang {
            Lang::Vi => vi.clone(),
            Lang::En => en.clone(),
        };
        let (title_vi, title_en) = (title(Lang::Vi), title(Lang::En));
        let (description_vi, description_en) = (description(Lang::Vi), description(Lang::En));
        Head {
            title: pick(&title_vi, &title_en),
            description: pick(&description_vi, &description_en),
            title_vi,
            title_en,
            description_vi,
            description_en,
        }
    }
}

/// One UI string of `lang` (empty if the key is unknown: `i18n` tests every key exists).
pub(crate) fn ui(lang: Lang, key: &str) -> &'static str {
    i18n::strings(lang).get(key).copied().unwrap_or_default()
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub struct Renderer {
    /// The templates, parsed when the first page is drawn: a process that draws none never
    /// runs the template parser nor keeps the parsed templates.
    tera: std::sync::OnceLock<Result<Tera, RenderError>>,
    assets: HashMap<String, String>,
    public_url: String,
    /// Both languages' UI strings as JSON, for the page script's language switch.
    strings_json: String,
    /// What every rendered page depends on besides the reports: this program, its templates,
    /// assets and strings, and the public URL. Part of the keys of shared cached pages, so an
    /// upgraded or reconfigured instance never serves a page rendered by another build.
    fingerprint: String,
}

/// The hash of the running program's file, read once per process and streamed (a debug
/// build is hundreds of megabytes; every state a test builds makes a renderer).
fn program_hash() -> Option<&'static [u8; 32]> {
    static HASH: std::sync::OnceLock<Option<[u8; 32]>> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut file = std::fs::File::open(std::env::current_exe().ok()?).ok()?;
        let mut hasher = blake3::Hasher::new();
        std::io::copy(&mut file, &mut hasher).ok()?;
        Some(*hasher.finalize().as_bytes())
    })
    .as_ref()
}

/// The embedded templates by name, in name order.
fn templates() -> Result<Vec<(String, std::borrow::Cow<'static, str>)>, RenderError> {
    let mut names: Vec<_> = Templates::iter().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let file = Templates::get(&name).ok_or_else(|| RenderError {
                template: "embedded",
                message: format!("{name} vanished"),
            })?;
            let text = match file.data {
                std::borrow::Cow::Borrowed(b) => {
                    std::str::from_utf8(b).map(std::borrow::Cow::Borrowed)
                }
                std::borrow::Cow::Owned(v) => String::from_utf8(v)
                    .map(std::borrow::Cow::Owned)
                    .map_err(|e| e.utf8_error()),
            }
            .map_err(|_| RenderError {
                template: "embedded",
                message: format!("{name} is not UTF-8"),
            })?;
            Ok((name.to_string(), text))
        })
        .collect()
}

impl Renderer {
    pub fn new(assets: &Assets, public_url: &str) -> Result<Renderer, RenderError> {
        let mut print = blake3::Hasher::new();
        print.update(env!("CARGO_PKG_VERSION").as_bytes());
        print.update(public_url.as_bytes());
        // The running program itself: a change of rendering code is a change of pages.
        if let Some(exe) = program_hash() {
            print.update(exe);
        }
        for (name, text) in templates()? {
            print.update(name.as_bytes());
            print.update(text.as_bytes());
        }
        // Ordered: the same JSON in every process (it is part of the fingerprint).
        let strings: std::collections::BTreeMap<&str, _> = Lang::ALL
            .iter()
            .map(|l| (l.code(), i18n::strings(*l)))
            .collect();
        let strings_json = serde_json::to_string(&strings)
            .unwrap_or_default()
            .replace("</", "<\\/");
        let mut urls: Vec<_> = assets.urls().iter().collect();
        urls.sort();
        for (path, url) in urls {
            print.update(path.as_bytes());
            print.update(url.as_bytes());
        }
        print.update(strings_json.as_bytes());
        Ok(Renderer {
            tera: std::sync::OnceLock::new(),
            assets: assets.urls().clone(),
            public_url: public_url.to_owned(),
            strings_json,
            fingerprint: print.finalize().to_hex()[..16].to_owned(),
        })
    }

    /// See the field: what rendered pages depend on besides the reports.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn context(&self, lang: Lang, path: &str, nav: &str) -> Context {
        let mut ctx = Context::new();
        ctx.insert("lang", lang.code());
        ctx.insert("other_lang", lang.other().code());
        ctx.insert("t", &i18n::strings(lang));
        ctx.insert("assets", &self.assets);
        ctx.insert("public_url", &self.public_url);
        ctx.insert("path", path);
        // What joins `?lang=` to the page's address (a page of a month has a query already).
        ctx.insert("lang_sep", if path.contains('?') { "&" } else { "?" });
        ctx.insert("nav", nav);
        ctx.insert("strings_json", &self.strings_json);
        // Share tags: a page that is not a report shows the site's card.
        ctx.insert("canonical", path);
        ctx.insert("og_type", "website");
        ctx.insert(
            "og_image",
            match lang {
                Lang::Vi => "/card.png",
                Lang::En => "/card.png?lang=en",
            },
        );
        ctx.insert("published_iso", &None::<String>);
        ctx
    }

    /// The parsed templates (parsed once, by the first page drawn).
    fn tera(&self) -> Result<&Tera, RenderError> {
        self.tera
            .get_or_init(|| {
                let mut tera = Tera::default();
                tera.set_escape_fn(escape_html);
                let files = templates()?
                    .into_iter()
                    .map(|(name, text)| (name, text.into_owned()));
                tera.add_raw_templates(files).map_err(|e| RenderError {
                    template: "embedded",
                    message: format!("{e:?}"),
                })?;
                Ok(tera)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn render(&self, template: &'static str, ctx: &Context) -> Result<String, RenderError> {
        self.tera()?.render(template, ctx).map_err(|e| {
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
        latest: Option<&Card>,
        recent: &[Card],
    ) -> Result<String, RenderError> {
        let mut ctx = self.context(lang, "/", "home");
        let head = Head::new(
            lang,
            |l| format!("{} · {}", ui(l, "site_name"), ui(l, "site_tagline")),
            |l| ui(l, "site_description").to_owned(),
        );
        ctx.insert("head", &head);
        ctx.insert("latest", &latest.map(|r| ReportCard::new(r, lang)));
        let cards: Vec<_> = recent.iter().map(|r| ReportCard::new(r, lang)).collect();
        ctx.insert("recent", &cards);
        self.render("home.html", &ctx)
    }

    pub fn list(
        &self,
        lang: Lang,
        reports: &[Card],
        page: u64,
        pages: u64,
        total: u64,
    ) -> Result<String, RenderError> {
        let path = "/crypto_reports_list";
        let mut ctx = self.context(lang, path, "list");
        let head = Head::new(
            lang,
            |l| {
                format!(
                    "{} · {} {page} · {}",
                    ui(l, "nav_reports"),
                    ui(l, "page"),
                    ui(l, "site_name")
                )
            },
            |l| ui(l, "site_description").to_owned(),
        );
        ctx.insert("head", &head);
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
        let head = Head::new(
            lang,
            |l| format!("{status} · {} · {}", ui(l, &title_key), ui(l, "site_name")),
            |l| ui(l, &text_key).to_owned(),
        );
        ctx.insert("head", &head);
        ctx.insert("status", &status);
        ctx.insert("title", strings.get(title_key.as_str()).unwrap_or(&""));
        ctx.insert("text", strings.get(text_key.as_str()).unwrap_or(&""));
        ctx.insert("title_key", &title_key);
        ctx.insert("text_key", &text_key);
        self.render("error.html", &ctx)
    }

    pub fn rss(&self, reports: &[Card]) -> Result<String, RenderError> {
        self.feed(reports, Lang::Vi)
    }

    pub fn robots(&self) -> String {
        format!(
            "User-agent: *\nAllow: /\nDisallow: /api/\nDisallow: /admin/\nDisallow: /pdf-template/\n\nSitemap: {}/sitemap.xml\n",
            self.public_url
        )
    }
}

/// Page numbers to link: first, last, and one either side of the current one (the row fits
/// a phone); 0 marks a gap.
fn page_links(page: u64, pages: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for p in 1..=pages {
        if p == 1 || p == pages || p.abs_diff(page) <= 1 {
            out.push(p);
        } else if out.last() != Some(&0) {
            out.push(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::guard::{css_string, defuse_meta, guard, guard_script};
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
        assert_eq!(page_links(5, 10), vec![1, 0, 4, 5, 6, 0, 10]);
        assert_eq!(page_links(1, 4), vec![1, 2, 0, 4]);
        assert_eq!(page_links(3, 4), vec![1, 2, 3, 4]);
    }

    #[test]
    fn title_prefers_the_reports_headline_then_the_date() {
        let mut r = crate::reports::sample(1, "2026-11-20T08:00:00Z");
        let card = ReportCard::new(&Card::of(&r), Lang::En);
        assert_eq!(card.title, "Crypto market report November 20, 2026");
        assert_eq!(card.title_vi, "Báo cáo thị trường crypto 20 tháng 11, 2026");
        r.html_content = "<h1>Bản tin <b>BTC</b> hôm nay</h1>".into();
        r.html_content_en = None;
        let card = ReportCard::new(&Card::of(&r), Lang::En);
        assert_eq!(card.title_vi, "Bản tin BTC hôm nay");
        assert_eq!(card.title_en, "Bản tin BTC hôm nay", "Vietnamese only");
        assert!(card.vi_only);
    }

    #[test]
    fn css_strings_cannot_break_out() {
        assert_eq!(css_string("Trang"), "\"Trang\"");
        assert_eq!(css_string("a\"b</style>"), "\"a\\22 b\\3c /style\\3e \"");
    }

    #[test]
    fn every_template_parses() {
        let renderer = Renderer::new(&Assets::load(), "https://reports.example").expect("renderer");
        assert!(
            renderer.tera.get().is_none(),
            "parsed before the first page"
        );
        let tera = renderer.tera().expect("templates");
        assert!(tera.get_template_names().any(|n| n == "report.html"));
    }

    #[test]
    fn the_fingerprint_is_the_same_for_the_same_build_and_url() {
        let assets = Assets::load();
        let a = Renderer::new(&assets, "https://reports.example").expect("renderer");
        let b = Renderer::new(&assets, "https://reports.example").expect("renderer");
        let c = Renderer::new(&assets, "https://other.example").expect("renderer");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
