//! Report domain: the generator's data model, validation, language fallbacks, section outline
//! and the lead (headline and summary) readers see before opening a report.

pub mod cards;
pub mod outbox;
mod summary;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::i18n::{self, Lang};

pub use self::cards::Card;
pub use summary::{Lead, cut_on_word};

/// Longest summary shown on cards, in feeds, meta descriptions and the JSON API.
pub const SUMMARY_MAX: usize = 260;

pub mod publish;
mod read;

pub use self::publish::{Batch, Publisher};
pub use self::read::{Beside, Reader};

/// Largest report accepted (all text fields together); real reports are well under 1 MiB.
pub const MAX_REPORT_BYTES: usize = 8 * 1024 * 1024;

/// One report, as the generator writes it (column names kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: u64,
    pub html_content: String,
    pub css_content: Option<String>,
    pub js_content: Option<String>,
    pub html_content_en: Option<String>,
    pub js_content_en: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidReport {
    #[error("id must be a positive integer")]
    BadId,
    #[error("id {0} is too large: ids go up to {max} (a PostgreSQL bigint)", max = i64::MAX)]
    IdTooLarge(u64),
    #[error("html_content is empty")]
    EmptyHtml,
    #[error("report is {0} bytes, more than the {MAX_REPORT_BYTES} allowed")]
    TooLarge(usize),
    #[error("{0} contains a NUL character")]
    NulByte(&'static str),
    #[error("created_at {0} is not a plausible publication date")]
    BadDate(String),
}

/// Earliest plausible publication date (the generator is far younger).
const EARLIEST_YEAR: i32 = 2000;
/// How far ahead of this machine's clock a report may be dated (clocks disagree a little;
/// a report dated next month would sit on top of every list until then).
const MAX_AHEAD: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// One `<section id>` of a report with its heading, for the table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub id: String,
    pub title: String,
}

impl Report {
    pub fn validate(&self) -> Result<(), InvalidReport> {
        if self.id == 0 {
            return Err(InvalidReport::BadId);
        }
        if self.id > i64::MAX as u64 {
            return Err(InvalidReport::IdTooLarge(self.id));
        }
        if self.html_content.trim().is_empty() {
            return Err(InvalidReport::EmptyHtml);
        }
        let size = self.byte_len();
        if size > MAX_REPORT_BYTES {
            return Err(InvalidReport::TooLarge(size));
        }
        for (name, text) in self.text_fields() {
            if text.contains('\0') {
                return Err(InvalidReport::NulByte(name));
            }
        }
        use chrono::Datelike;
        if self.created_at.year() < EARLIEST_YEAR || self.created_at > Utc::now() + MAX_AHEAD {
            return Err(InvalidReport::BadDate(self.created_at.to_rfc3339()));
        }
        Ok(())
    }

    fn text_fields(&self) -> [(&'static str, &str); 5] {
        fn opt(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("")
        }
        [
            ("html_content", &self.html_content),
            ("css_content", opt(&self.css_content)),
            ("js_content", opt(&self.js_content)),
            ("html_content_en", opt(&self.html_content_en)),
            ("js_content_en", opt(&self.js_content_en)),
        ]
    }

    pub fn byte_len(&self) -> usize {
        self.text_fields().iter().map(|(_, t)| t.len()).sum()
    }

    /// Hash of everything a reader sees; decides "updated" versus "unchanged" on import.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for (_, text) in self.text_fields() {
            h.update(&(text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        h.update(&self.created_at.timestamp_micros().to_le_bytes());
        *h.finalize().as_bytes()
    }

    pub fn has_english(&self) -> bool {
        self.html_content_en
            .as_deref()
            .is_some_and(|h| !h.trim().is_empty())
    }

    /// The language whose HTML is shown for a reader of `lang` (English falls back to Vietnamese).
    pub fn content_lang(&self, lang: Lang) -> Lang {
        match lang {
            Lang::En if self.has_english() => Lang::En,
            _ => Lang::Vi,
        }
    }

    pub fn html(&self, lang: Lang) -> &str {
        match self.content_lang(lang) {
            Lang::En => self
                .html_content_en
                .as_deref()
                .unwrap_or(&self.html_content),
            Lang::Vi => &self.html_content,
        }
    }

    pub fn sections(&self, lang: Lang) -> Vec<Section> {
        sections(self.html(lang))
    }

    /// Headline and summary of the language a reader of `lang` is shown (see [`Lead`]).
    pub fn lead(&self, lang: Lang) -> Lead {
        summary::lead(self.html(lang), SUMMARY_MAX)
    }

    /// The report's title for a reader of `lang`: its headline (from `lead`, computed once by
    /// the caller), else "<report title> <date>" so that a list never shows an empty title.
    pub fn title(&self, lang: Lang, lead: &Lead) -> String {
        title(lang, lead, self.created_at)
    }
}

/// A report's title for a reader of `lang`: its headline, else "<report title> <date>".
fn title(lang: Lang, lead: &Lead, created_at: DateTime<Utc>) -> String {
    match &lead.headline {
        Some(h) => h.clone(),
        None => format!(
            "{} {}",
            i18n::strings(lang)
                .get("report_title")
                .copied()
                .unwrap_or_default(),
            i18n::format_date(created_at, lang)
        ),
    }
}

/// Lists the `<section id="…">` blocks of a report with the text of their first `<h2>`.
pub fn sections(html: &str) -> Vec<Section> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut next = find_ignoring_case(html, 0, b"<section");
    while let Some(start) = next {
        let Some(tag_end) = byte_at(bytes, start, b'>') else {
            break;
        };
        let pos = tag_end + 1;
        next = find_ignoring_case(html, pos, b"<section");
        let Some(id) = attribute(&html[start..tag_end], "id") else {
            continue;
        };
        // Looked for up to the next section only: a document of many sections without a
        // heading is read once, not once per section.
        let scope = &html[..next.unwrap_or(html.len())];
        let title = find_ignoring_case(scope, pos, b"<h2")
            .and_then(|h| {
                let open_end = byte_at(scope.as_bytes(), h, b'>')? + 1;
                let close = find_ignoring_case(scope, open_end, b"</h2")?;
                Some(plain_text(&scope[open_end..close]))
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| id.clone());
        out.push(Section { id, title });
    }
    out
}

/// Value of an attribute inside one start tag (quoted with `"` or `'`), entity-decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name).map(|i| i + from) {
        from = i + name.len();
        let preceded = lower[..i].chars().last().is_some_and(char::is_whitespace);
        let rest = lower[from..].trim_start();
        if !preceded || !rest.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - rest.len() + 1;
        let value = tag[value_start..].trim_start();
        let quote = value.chars().next()?;
        let inner = if quote == '"' || quote == '\'' {
            let end = value[1..].find(quote)? + 1;
            &value[1..end]
        } else {
            value.split(|c: char| c.is_whitespace()).next()?
        };
        return Some(decode_entities(inner).into_owned());
    }
    None
}

/// Text content of an HTML fragment: tags, comments, scripts and styles removed, whitespace folded.
pub fn plain_text(html: &str) -> String {
    words_of(html, false)
}

/// [`plain_text`] as a page reads it: no space before closing punctuation, where a tag left
/// one ("44 , right" -> "44, right").
pub fn readable_text(html: &str) -> String {
    words_of(html, true)
}

fn words_of(html: &str, tidy: bool) -> String {
    let mut words = Words::new(html.len(), tidy);
    words.text(&markup_removed(html));
    words.out
}

/// Text joined word by word with one space, entities decoded.
struct Words {
    out: String,
    /// Whitespace was met since the last word.
    gap: bool,
    /// No space before closing punctuation.
    tidy: bool,
}

impl Words {
    fn new(capacity: usize, tidy: bool) -> Words {
        Words {
            out: String::with_capacity(capacity / 2),
            gap: false,
            tidy,
        }
    }

    /// Appends `text`: its entities decoded, its whitespace folded.
    fn text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let (mut start, mut i, mut entity) = (0, 0, false);
        while i < bytes.len() {
            match whitespace_at(text, i) {
                Ok(len) => {
                    self.word_or_entities(&text[start..i], entity);
                    self.gap = true;
                    (i, start, entity) = (i + len, i + len, false);
                }
                Err(step) => {
                    entity |= bytes[i] == b'&';
                    i += step;
                }
            }
        }
        self.word_or_entities(&text[start..], entity);
    }

    /// Appends `word`, which has no whitespace; `entity`: it holds a `&`.
    fn word_or_entities(&mut self, word: &str, entity: bool) {
        if word.is_empty() {
            return;
        }
        if !entity {
            return self.word(word);
        }
        let decoded = decode_entities(word);
        if decoded.contains(char::is_whitespace) {
            // An entity that is whitespace itself (`&nbsp;`, `&#10;`).
            self.text_without_entities(&decoded);
        } else {
            self.word(&decoded);
        }
    }

    fn text_without_entities(&mut self, text: &str) {
        for (i, word) in text.split(char::is_whitespace).enumerate() {
            if i > 0 {
                self.gap = true;
            }
            if !word.is_empty() {
                self.word(word);
            }
        }
    }

    fn word(&mut self, word: &str) {
        let tight = self.tidy && word.starts_with([',', '.', ';', ':', '!', '?', ')', '%']);
        if self.gap && !self.out.is_empty() && !tight {
            self.out.push(' ');
        }
        self.gap = false;
        self.out.push_str(word);
    }
}

/// The length of the whitespace character at byte `i` of `text` (`Ok`), or how far the next
/// character starts (`Err`).
fn whitespace_at(text: &str, i: usize) -> Result<usize, usize> {
    match text.as_bytes()[i] {
        b' ' | b'\t'..=b'\r' => Ok(1),
        // Lead bytes of the only characters beyond ASCII that are whitespace (U+0085, U+00A0,
        // U+1680, U+2000-U+205F, U+3000).
        0xC2 | 0xE1 | 0xE2 | 0xE3 => match text[i..].chars().next() {
            Some(c) if c.is_whitespace() => Ok(c.len_utf8()),
            Some(c) => Err(c.len_utf8()),
            None => Err(1),
        },
        _ => Err(1),
    }
}

/// `html` with tags turned into spaces and comments, scripts and styles removed.
fn markup_removed(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    while i < html.len() {
        let Some(open) = byte_at(bytes, i, b'<') else {
            out.push_str(&html[i..]);
            break;
        };
        out.push_str(&html[i..open]);
        let tag = &bytes[open..];
        let raw_text = if starts_with_ignoring_case(tag, b"<script") {
            Some(b"</script".as_slice())
        } else if starts_with_ignoring_case(tag, b"<style") {
            Some(b"</style".as_slice())
        } else {
            None
        };
        i = if tag.starts_with(b"<!--") {
            html[open..]
                .find("-->")
                .map_or(html.len(), |e| open + e + 3)
        } else if let Some(close) = raw_text {
            let end = find_ignoring_case(html, open, close).map_or(html.len(), |e| e + close.len());
            byte_at(bytes, end, b'>').map_or(html.len(), |e| e + 1)
        } else {
            out.push(' ');
            byte_at(bytes, open, b'>').map_or(html.len(), |e| e + 1)
        };
    }
    out
}

/// Where `byte` first occurs in `bytes` at or after `from` (tags are a few dozen bytes apart:
/// a plain loop finds the next one sooner than a vectorised search is set up).
fn byte_at(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|b| *b == byte)
        .map(|p| p + from)
}

fn starts_with_ignoring_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Where `needle` (which starts with `<`) first occurs in `html` at or after `from`, ASCII
/// letters compared without case.
fn find_ignoring_case(html: &str, from: usize, needle: &[u8]) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut at = from;
    while let Some(lt) = byte_at(bytes, at, b'<') {
        if starts_with_ignoring_case(&bytes[lt..], needle) {
            return Some(lt);
        }
        at = lt + 1;
    }
    None
}

fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Entities are short; look for their `;` within 12 bytes (bytes: `rest` may continue
        // with multi-byte characters, so slicing it there could split one).
        let Some(semi) = rest.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
pub(crate) fn sample(id: u64, created_at: &str) -> Report {
    Report {
        id,
        html_content: format!(
            "<section id=\"tong-quan\"><h2>Tổng quan {id}</h2><p>Thị trường &amp; xu hướng.</p></section>"
        ),
        css_content: None,
        js_content: None,
        html_content_en: Some(format!(
            "<section id=\"overview\"><h2>Overview {id}</h2><p>Market &amp; trend.</p></section>"
        )),
        js_content_en: None,
        created_at: created_at.parse().expect("valid timestamp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_take_ids_and_headings() {
        let html = r#"<section id="a"><h2 class="x"><i class="fas fa-coins"></i> Giá &amp; <b>cung</b></h2></section>
            <SECTION data-x='1' id='b-2'><p>no heading</p></SECTION><section><h2>no id</h2></section>"#;
        assert_eq!(
            sections(html),
            vec![
                Section {
                    id: "a".into(),
                    title: "Giá & cung".into()
                },
                Section {
                    id: "b-2".into(),
                    title: "b-2".into()
                },
            ]
        );
    }

    /// Many sections, none with a heading, and a heading left open: each section is looked
    /// at up to the next one (read to the document's end for every section, 200,000 of them
    /// would take minutes).
    #[test]
    fn sections_without_headings_are_read_once() {
        let mut html = "<section id=\"open\"><h2>never closed".to_owned();
        for i in 0..200_000 {
            html.push_str(&format!("<section id=\"s{i}\"><p>x</p>"));
        }
        let found = sections(&html);
        assert_eq!(found.len(), 200_001);
        assert_eq!(found[0].title, "open");
        assert_eq!(found[200_000].title, "s199999");
    }

    #[test]
    fn attribute_matching_needs_a_word_boundary() {
        assert_eq!(
            attribute(r#"<section data-id="x" id="y""#, "id"),
            Some("y".into())
        );
        assert_eq!(attribute(r#"<section grid="x""#, "id"), None);
    }

    #[test]
    fn plain_text_drops_markup_scripts_and_comments() {
        let html = "<p>A<script>var x='<p>';</script> b <!-- CHART_DATA: {} --><style>p{}</style>&lt;c&gt;</p>";
        assert_eq!(plain_text(html), "A b <c>");
    }

    /// The first, plainer way of taking the text (a lowercased copy searched from every
    /// position): the one-pass version must say exactly what it said.
    fn plain_text_by_lowercased_copy(html: &str) -> String {
        let mut out = String::new();
        let lower = html.to_ascii_lowercase();
        let mut i = 0;
        while i < html.len() {
            let rest = &lower[i..];
            if rest.starts_with("<!--") {
                i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            } else if rest.starts_with("<script") || rest.starts_with("<style") {
                let close = if rest.starts_with("<script") {
                    "</script"
                } else {
                    "</style"
                };
                i += rest.find(close).map_or(rest.len(), |e| e + close.len());
                i += lower[i..].find('>').map_or(lower.len() - i, |e| e + 1);
            } else if rest.starts_with('<') {
                i += rest.find('>').map_or(rest.len(), |e| e + 1);
                out.push(' ');
            } else {
                let end = rest.find('<').map_or(html.len(), |e| e + i);
                out.push_str(&html[i..end]);
                i = end;
            }
        }
        decode_entities(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn plain_text_reads_as_before_on_samples_and_broken_markup() {
        let mut texts: Vec<String> = crate::demo::SAMPLE_REPORTS
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .flat_map(|l| {
                let row: serde_json::Value = serde_json::from_slice(l).expect("sample");
                ["html_content", "html_content_en"]
                    .map(|k| row[k].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        texts.extend(
            [
                "<SCRIPT>x</Script >after",
                "<sTyLe>p{}</STYLE",
                "<script>never closed",
                "a <!-- open comment",
                "a <!--> b --> c",
                "<p>cut off <b",
                "1 < 2 and 3 > 2 &amp;&nbsp;x",
                "<scripts>is a tag</scripts> text",
                "\u{a0}lạm\u{2003}phát <i>\u{3000}</i>",
                "<",
                ">",
                "",
            ]
            .map(str::to_owned),
        );
        // The space a tag left before closing punctuation, removed afterwards.
        let tidied = |text: &str| {
            let mut out = String::new();
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                let punctuation =
                    |n: &&char| matches!(n, ',' | '.' | ';' | ':' | '!' | '?' | ')' | '%');
                if c == ' ' && chars.peek().is_some_and(|n| punctuation(&n)) {
                    continue;
                }
                out.push(c);
            }
            out
        };
        texts.extend(
            [
                "a&nbsp;&nbsp;b &#10; c&#32;, d &am<!-- -->p; e",
                "44 <b>,</b> x &#44; y ( z ) %",
                "&a b;c&amp; \u{85}x\u{1680}y\u{205f}z",
            ]
            .map(str::to_owned),
        );
        for html in &texts {
            let before = plain_text_by_lowercased_copy(html);
            assert_eq!(plain_text(html), before, "{html}");
            assert_eq!(readable_text(html), tidied(&before), "{html}");
        }
    }

    #[test]
    fn whitespace_is_found_as_the_general_rule_says() {
        for c in (char::MIN..=char::MAX).filter(|c| !c.is_ascii_alphanumeric()) {
            let text = format!("ạ{c}");
            let at = "ạ".len();
            let wanted = c.is_whitespace().then(|| c.len_utf8());
            assert_eq!(whitespace_at(&text, at).ok(), wanted, "{c:?}");
            assert_eq!(
                plain_text(&text),
                plain_text_by_lowercased_copy(&text),
                "{c:?}"
            );
        }
    }

    #[test]
    fn a_bare_ampersand_before_multibyte_text_is_kept() {
        assert_eq!(
            plain_text("<p>Vàng & Bạc điện tử</p>"),
            "Vàng & Bạc điện tử"
        );
        assert_eq!(
            decode_entities("a &amp; b &#x1F4B0; &bogus; &"),
            "a & b 💰 &bogus; &"
        );
        let r = Report {
            html_content: "<section id=\"s\"><h2>Vàng & Bạc điện tử</h2><p>Giá & khối lượng tăng</p></section>".into(),
            ..sample(1, "2026-11-20T08:00:00Z")
        };
        assert_eq!(r.sections(Lang::Vi)[0].title, "Vàng & Bạc điện tử");
    }

    #[test]
    fn english_falls_back_to_vietnamese() {
        let mut r = sample(1, "2026-11-20T08:00:00Z");
        assert_eq!(r.content_lang(Lang::En), Lang::En);
        r.html_content_en = Some("  ".into());
        assert_eq!(r.content_lang(Lang::En), Lang::Vi);
        assert!(r.html(Lang::En).contains("Tổng quan"));
    }

    #[test]
    fn validation_rejects_empty_and_oversized() {
        let mut r = sample(1, "2026-11-20T08:00:00Z");
        assert_eq!(r.validate(), Ok(()));
        r.html_content = " \n".into();
        assert_eq!(r.validate(), Err(InvalidReport::EmptyHtml));
        r.html_content = "x".repeat(MAX_REPORT_BYTES + 1);
        assert!(matches!(r.validate(), Err(InvalidReport::TooLarge(_))));
        r.html_content = "a\0b".into();
        assert_eq!(r.validate(), Err(InvalidReport::NulByte("html_content")));
        r.html_content = "ok".into();
        r.id = 0;
        assert_eq!(r.validate(), Err(InvalidReport::BadId));
        r.id = 1 << 63;
        let err = r.validate().expect_err("past bigint");
        assert_eq!(err, InvalidReport::IdTooLarge(1 << 63));
        assert!(!err.to_string().contains("positive"), "{err}");
    }

    #[test]
    fn content_hash_tracks_every_field() {
        let a = sample(1, "2026-11-20T08:00:00Z");
        let mut b = a.clone();
        assert_eq!(a.content_hash(), b.content_hash());
        b.js_content = Some(String::new());
        // An empty field and a missing one render the same.
        assert_eq!(a.content_hash(), b.content_hash());
        b.css_content = Some("p{}".into());
        assert_ne!(a.content_hash(), b.content_hash());
    }
}
