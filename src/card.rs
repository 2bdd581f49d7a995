//! Share images as PNG: the card link previews show for a report (Open Graph, Twitter), one
//! per language, the site's card, and the app icons. Each is an SVG laid out here and
//! rasterized by resvg, its text set in the embedded Inter subset (fonts/, SIL OFL: Latin and
//! every Vietnamese letter), so headlines keep their accents, currency signs and digits.

use std::sync::{Arc, OnceLock};

use resvg::tiny_skia;
use resvg::usvg;
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

pub const CARD_WIDTH: u32 = 1200;
pub const CARD_HEIGHT: u32 = 630;

const REGULAR: &[u8] = include_bytes!("../fonts/Inter-Regular.subset.otf");
const BOLD: &[u8] = include_bytes!("../fonts/Inter-Bold.subset.otf");
const FAMILY: &str = "Inter";

const INK: &str = "#0b1220";
const PANEL: &str = "#131d31";
const TEAL: &str = "#0f766e";
const MINT: &str = "#5eead4";
const TEXT: &str = "#e5e7eb";
const MUTED: &str = "#a3adbd";
const GOLD: &str = "#fbbf24";

/// Space between the headline and the summary under it.
const GAP: f32 = 36.0;

/// Left edge of the text and its width (the card less its margins).
const LEFT: f32 = 80.0;
const WIDTH: f32 = 1040.0;

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("card layout: {0}")]
    Svg(String),
    #[error("card size")]
    Size,
    #[error("png: {0}")]
    Png(String),
}

#[derive(Clone, Copy, PartialEq)]
enum Weight {
    Regular,
    Bold,
}

impl Weight {
    fn data(self) -> &'static [u8] {
        match self {
            Weight::Regular => REGULAR,
            Weight::Bold => BOLD,
        }
    }

    fn css(self) -> u16 {
        match self {
            Weight::Regular => 400,
            Weight::Bold => 700,
        }
    }
}

/// Advance widths from the font itself, to break lines where the renderer will.
fn text_width(text: &str, weight: Weight, size: f32) -> f32 {
    let Ok(font) = skrifa::FontRef::new(weight.data()) else {
        return text.chars().count() as f32 * size * 0.6;
    };
    let charmap = font.charmap();
    let metrics = font.glyph_metrics(Size::new(size), LocationRef::default());
    text.chars()
        .map(|c| {
            charmap
                .map(c)
                .and_then(|g| metrics.advance_width(g))
                .unwrap_or(size * 0.6)
        })
        .sum()
}

/// `text` without what the font cannot draw (emoji, other scripts), spaces collapsed.
fn drawable(text: &str) -> String {
    let Ok(font) = skrifa::FontRef::new(REGULAR) else {
        return text.to_owned();
    };
    let charmap = font.charmap();
    let kept: String = text
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                ' '
            } else if charmap.map(c).is_some() || is_combining_mark(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Vietnamese typed in decomposed form: the shaper composes these with their letter.
fn is_combining_mark(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c)
}

/// Words into lines no wider than `width` at `size`; at most `max` lines, the last ending in
/// "…" when words are left over. A word wider than a line is cut.
fn wrap(text: &str, weight: Weight, size: f32, width: f32, max: usize) -> (Vec<String>, bool) {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut cut = false;
    for (i, word) in words.iter().enumerate() {
        let candidate = if current.is_empty() {
            (*word).to_owned()
        } else {
            format!("{current} {word}")
        };
        if text_width(&candidate, weight, size) <= width {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if lines.len() == max {
            cut = i < words.len();
            break;
        }
        current = (*word).to_owned();
        while text_width(&current, weight, size) > width && current.chars().count() > 1 {
            current.pop();
        }
    }
    if !current.is_empty() && lines.len() < max {
        lines.push(current);
    } else if !current.is_empty() {
        cut = true;
    }
    if cut && let Some(last) = lines.last_mut() {
        while !last.is_empty() && text_width(&format!("{last}…"), weight, size) > width {
            last.pop();
        }
        let trimmed = last
            .trim_end_matches([' ', ',', ';', ':', '-', '–', '—'])
            .len();
        last.truncate(trimmed);
        last.push('…');
    }
    (lines, cut)
}

/// A block of text set at the largest of `sizes` that fits `lines` lines (cut at the last).
struct Block {
    lines: Vec<String>,
    size: f32,
    leading: f32,
}

impl Block {
    fn fit(text: &str, weight: Weight, sizes: &[f32], max_lines: usize) -> Block {
        let smallest = sizes.last().copied().unwrap_or(32.0);
        for &size in sizes {
            let (lines, cut) = wrap(text, weight, size, WIDTH, max_lines);
            if !cut {
                return Block {
                    lines,
                    size,
                    leading: size * 1.2,
                };
            }
        }
        let (lines, _) = wrap(text, weight, smallest, WIDTH, max_lines);
        Block {
            lines,
            size: smallest,
            leading: smallest * 1.2,
        }
    }

    fn height(&self) -> f32 {
        self.lines.len() as f32 * self.leading
    }

    /// The lines as SVG text, the first baseline `size` below `top`.
    fn svg(&self, out: &mut String, top: f32, weight: Weight, fill: &str) {
        for (i, line) in self.lines.iter().enumerate() {
            let y = top + self.size + i as f32 * self.leading - self.size * 0.2;
            text(out, LEFT, y, self.size, weight, fill, "start", line);
        }
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn text(
    out: &mut String,
    x: f32,
    y: f32,
    size: f32,
    weight: Weight,
    fill: &str,
    anchor: &str,
    s: &str,
) {
    out.push_str(&format!(
        r#"<text x="{x:.1}" y="{y:.1}" font-family="{FAMILY}" font-size="{size:.1}" font-weight="{}" fill="{fill}" text-anchor="{anchor}">{}</text>"#,
        weight.css(),
        escape(s)
    ));
}

/// The site's mark (as favicon.svg): a rising line and a gold dot on teal, `size` square.
fn logo(out: &mut String, x: f32, y: f32, size: f32) {
    let k = size / 64.0;
    out.push_str(&format!(
        r#"<g transform="translate({x} {y}) scale({k})"><rect width="64" height="64" rx="14" fill="{TEAL}"/><polyline points="12,44 24,30 33,38 48,18" fill="none" stroke="white" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"/><circle cx="48" cy="18" r="5" fill="{GOLD}"/></g>"#
    ));
}

fn frame(out: &mut String, site: &str, right: &str) {
    out.push_str(&format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{CARD_WIDTH}" height="{CARD_HEIGHT}" viewBox="0 0 {CARD_WIDTH} {CARD_HEIGHT}"><rect width="{CARD_WIDTH}" height="{CARD_HEIGHT}" fill="{INK}"/><rect width="16" height="{CARD_HEIGHT}" fill="{TEAL}"/><rect x="16" y="{}" width="{CARD_WIDTH}" height="10" fill="{MINT}"/>"#,
        CARD_HEIGHT - 10
    ));
    logo(out, LEFT, 56.0, 56.0);
    text(
        out,
        LEFT + 76.0,
        96.0,
        30.0,
        Weight::Bold,
        MINT,
        "start",
        site,
    );
    text(
        out,
        LEFT + WIDTH,
        96.0,
        28.0,
        Weight::Regular,
        MUTED,
        "end",
        right,
    );
}

/// One market value at publication: "BTC" and "$95,728".
pub struct Figure {
    pub label: String,
    pub value: String,
}

/// What a report's card says, in one language.
pub struct ReportCard<'a> {
    pub site: &'a str,
    pub date: &'a str,
    pub title: &'a str,
    /// The report's summary: fills the card when no market value is known.
    pub summary: &'a str,
    /// The market at publication; empty when none is known.
    pub figures: &'a [Figure],
    pub figures_label: &'a str,
}

/// Headline, then the market at publication in a panel at the foot; without figures the
/// summary takes that room, and without either the headline is set larger.
pub fn report_card(card: &ReportCard<'_>) -> Result<Vec<u8>, CardError> {
    let mut svg = String::with_capacity(8 * 1024);
    frame(&mut svg, &drawable(card.site), &drawable(card.date));
    let title = drawable(card.title);
    let summary = drawable(card.summary);
    let top = 160.0;
    if !card.figures.is_empty() {
        let block = Block::fit(&title, Weight::Bold, &[64.0, 58.0, 52.0, 46.0, 40.0], 3);
        block.svg(&mut svg, top, Weight::Bold, "#ffffff");
        figures(&mut svg, card.figures_label, card.figures);
    } else if !summary.is_empty() {
        let block = Block::fit(&title, Weight::Bold, &[64.0, 58.0, 52.0, 46.0], 3);
        // The summary at the largest size that leaves it whole (cut at the smallest), the
        // two together centred in the room under the header.
        let room = 590.0 - top - block.height() - GAP;
        let mut lines = Block::fit(&summary, Weight::Regular, &[34.0], 1);
        for size in [34.0, 32.0, 30.0, 28.0] {
            let leading = size * 1.35;
            let max = ((room / leading).floor() as usize).clamp(1, 6);
            let (text, cut) = wrap(&summary, Weight::Regular, size, WIDTH, max);
            lines = Block {
                lines: text,
                size,
                leading,
            };
            if !cut {
                break;
            }
        }
        let top = top + ((room - lines.height()) / 2.0).max(0.0);
        block.svg(&mut svg, top, Weight::Bold, "#ffffff");
        let below = top + block.height() + GAP;
        svg.push_str(&format!(
            r#"<rect x="{LEFT}" y="{:.1}" width="64" height="4" rx="2" fill="{MINT}"/>"#,
            below - 16.0
        ));
        lines.svg(&mut svg, below, Weight::Regular, TEXT);
    } else {
        let block = Block::fit(
            &title,
            Weight::Bold,
            &[84.0, 76.0, 68.0, 60.0, 52.0, 44.0],
            4,
        );
        let top = top + ((590.0 - top) - block.height()).max(0.0) / 2.0;
        block.svg(&mut svg, top, Weight::Bold, "#ffffff");
    }
    svg.push_str("</svg>");
    rasterize(&svg, CARD_WIDTH, CARD_HEIGHT)
}

/// The panel at the card's foot: its label, then up to three figures side by side.
fn figures(out: &mut String, label: &str, figures: &[Figure]) {
    let (y, h) = (430.0, 150.0);
    out.push_str(&format!(
        r#"<rect x="{}" y="{y}" width="{}" height="{h}" rx="18" fill="{PANEL}"/>"#,
        LEFT - 24.0,
        WIDTH + 48.0
    ));
    text(
        out,
        LEFT,
        y + 42.0,
        24.0,
        Weight::Regular,
        MUTED,
        "start",
        &drawable(label),
    );
    let shown = &figures[..figures.len().min(3)];
    let column = WIDTH / shown.len().max(1) as f32;
    for (i, f) in shown.iter().enumerate() {
        let x = LEFT + i as f32 * column;
        let value = drawable(&f.value);
        let size = [52.0, 46.0, 40.0, 34.0]
            .into_iter()
            .find(|s| text_width(&value, Weight::Bold, *s) <= column - 24.0)
            .unwrap_or(30.0);
        text(
            out,
            x,
            y + 82.0,
            22.0,
            Weight::Bold,
            MINT,
            "start",
            &drawable(&f.label),
        );
        text(out, x, y + 130.0, size, Weight::Bold, GOLD, "start", &value);
    }
}

/// The site's own card, for pages that are not a report: its name, what it is, and a line
/// about what it holds.
pub fn site_card(site: &str, tagline: &str, line: &str) -> Result<Vec<u8>, CardError> {
    let mut svg = String::with_capacity(4 * 1024);
    frame(&mut svg, "", "");
    let name = Block::fit(&drawable(site), Weight::Bold, &[96.0, 84.0, 72.0], 1);
    name.svg(&mut svg, 190.0, Weight::Bold, "#ffffff");
    let tag = Block::fit(&drawable(tagline), Weight::Regular, &[40.0, 34.0], 2);
    tag.svg(
        &mut svg,
        190.0 + name.height() + 24.0,
        Weight::Regular,
        TEXT,
    );
    let foot = Block::fit(&drawable(line), Weight::Bold, &[28.0, 24.0], 2);
    foot.svg(&mut svg, 500.0, Weight::Bold, MINT);
    svg.push_str("</svg>");
    rasterize(&svg, CARD_WIDTH, CARD_HEIGHT)
}

/// A square app icon of `size` pixels.
pub fn icon(size: u32) -> Result<Vec<u8>, CardError> {
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" fill="{TEAL}"/>"#
    );
    svg.push_str(&format!(
        r#"<polyline points="12,44 24,30 33,38 48,18" fill="none" stroke="white" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"/><circle cx="48" cy="18" r="5" fill="{GOLD}"/></svg>"#
    ));
    rasterize(&svg, size, size)
}

/// The embedded faces, parsed once per process.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    Arc::clone(FONTS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(REGULAR)));
        db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(BOLD)));
        Arc::new(db)
    }))
}

fn options() -> usvg::Options<'static> {
    usvg::Options {
        font_family: FAMILY.to_owned(),
        fontdb: fonts(),
        ..usvg::Options::default()
    }
}

/// `svg` drawn at `width` x `height` pixels, as PNG.
fn rasterize(svg: &str, width: u32, height: u32) -> Result<Vec<u8>, CardError> {
    let tree = usvg::Tree::from_str(svg, &options()).map_err(|e| CardError::Svg(e.to_string()))?;
    let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or(CardError::Size)?;
    let scale = width as f32 / tree.size().width();
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    encode(&pixmap)
}

/// The picture as PNG. Cards and icons are opaque: three bytes a pixel, and a fast deflate
/// (level 1, Paeth rows) that takes a fifth of the time of the default (level 6, each row's
/// best filter) for a file about a third larger, still far under 150 KB. Anything with
/// transparency keeps its alpha.
fn encode(pixmap: &tiny_skia::Pixmap) -> Result<Vec<u8>, CardError> {
    let png_error = |e: png::EncodingError| CardError::Png(e.to_string());
    if pixmap.pixels().iter().any(|p| p.alpha() != u8::MAX) {
        return pixmap.encode_png().map_err(png_error);
    }
    let rgb: Vec<u8> = pixmap
        .pixels()
        .iter()
        .flat_map(|p| [p.red(), p.green(), p.blue()])
        .collect();
    let mut out = Vec::with_capacity(rgb.len() / 16);
    let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_deflate_compression(png::DeflateCompression::Level(1));
    encoder.set_filter(png::Filter::Paeth);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&rgb).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> tiny_skia::Pixmap {
        tiny_skia::Pixmap::decode_png(png).expect("png")
    }

    #[test]
    fn every_vietnamese_letter_and_the_signs_of_prices_have_a_glyph() {
        let font = skrifa::FontRef::new(BOLD).expect("font");
        let regular = skrifa::FontRef::new(REGULAR).expect("font");
        let letters = "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ";
        let upper: String = letters.chars().flat_map(char::to_uppercase).collect();
        for c in letters
            .chars()
            .chain(upper.chars())
            .chain("$€₫%,.:–—…0123456789+−".chars())
        {
            assert!(font.charmap().map(c).is_some(), "bold lacks {c}");
            assert!(regular.charmap().map(c).is_some(), "regular lacks {c}");
        }
    }

    #[test]
    fn lines_break_between_words_and_the_last_says_there_is_more() {
        let (lines, cut) = wrap(
            "một hai ba bốn năm sáu bảy tám",
            Weight::Regular,
            40.0,
            260.0,
            2,
        );
        assert!(cut);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with('…'), "{lines:?}");
        assert!(
            lines
                .iter()
                .all(|l| text_width(l, Weight::Regular, 40.0) <= 260.0)
        );
        let (lines, cut) = wrap("Bitcoin $90,000", Weight::Bold, 40.0, 1000.0, 3);
        assert_eq!((lines, cut), (vec!["Bitcoin $90,000".to_owned()], false));
    }

    #[test]
    fn what_the_font_cannot_draw_is_left_out() {
        assert_eq!(drawable("📊 Báo  Cáo\nThị trường"), "Báo Cáo Thị trường");
    }

    #[test]
    fn a_report_card_is_a_png_of_the_card_size_with_text_drawn() {
        let figures = [
            Figure {
                label: "BTC".into(),
                value: "$95,728".into(),
            },
            Figure {
                label: "F&G".into(),
                value: "34 · Sợ hãi".into(),
            },
        ];
        let png = report_card(&ReportCard {
            site: "Báo cáo Crypto",
            date: "21 tháng 11, 2026",
            title: "Bitcoin tiến sát 90.000 USD, tâm lý thị trường trở lại vùng trung lập",
            summary: "",
            figures: &figures,
            figures_label: "Lúc xuất bản",
        })
        .expect("card");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let p = decode(&png);
        assert_eq!((p.width(), p.height()), (CARD_WIDTH, CARD_HEIGHT));
        // White headline pixels in the title band, gold figure pixels in the panel.
        let px = |x: u32, y: u32| p.pixel(x, y).expect("pixel").demultiply();
        let band = |y0: u32, y1: u32, want: fn(u8, u8, u8) -> bool| {
            (y0..y1).any(|y| {
                (80..1120).step_by(2).any(|x| {
                    let c = px(x, y);
                    want(c.red(), c.green(), c.blue())
                })
            })
        };
        assert!(band(170, 260, |r, g, b| r > 240 && g > 240 && b > 240));
        assert!(band(520, 575, |r, g, b| r > 240 && g > 170 && b < 80));
        assert!(png.len() < 150 * 1024, "{} bytes", png.len());
    }

    #[test]
    fn without_figures_the_summary_fills_the_foot() {
        let png = report_card(&ReportCard {
            site: "Crypto Report",
            date: "November 21, 2026",
            title: "Bitcoin closes in on $90,000 as sentiment returns to neutral",
            summary: "The Fear & Greed Index left fear for the first time in sixteen days, and ETF flows turned positive after a week of outflows.",
            figures: &[],
            figures_label: "At publication",
        })
        .expect("card");
        let p = decode(&png);
        let lit = (430..580).any(|y| {
            (80..1100).any(|x| {
                let c = p.pixel(x, y).expect("pixel").demultiply();
                c.red() > 200 && c.green() > 200
            })
        });
        assert!(lit, "the lower half is empty");
    }

    #[test]
    fn opaque_pictures_are_rgb_and_transparent_ones_keep_their_alpha() {
        // The colour type is the IHDR byte at offset 25: 2 is RGB, 6 is RGBA.
        let card =
            site_card("Báo cáo Crypto", "Thị trường mỗi ngày", "Hai ngôn ngữ").expect("card");
        assert_eq!(card[25], 2);
        assert!(card.len() < 150 * 1024, "{} bytes", card.len());
        let mut pixmap = tiny_skia::Pixmap::new(4, 2).expect("pixmap");
        pixmap.fill(tiny_skia::Color::from_rgba8(15, 118, 110, 255));
        let opaque = encode(&pixmap).expect("png");
        assert_eq!(opaque[25], 2);
        let back = decode(&opaque);
        assert_eq!(back.data(), pixmap.data());
        pixmap.fill(tiny_skia::Color::from_rgba8(15, 118, 110, 128));
        let clear = encode(&pixmap).expect("png");
        assert_eq!(clear[25], 6);
        assert_eq!(decode(&clear).pixel(1, 1).map(|p| p.alpha()), Some(128));
    }

    #[test]
    fn icons_are_square() {
        let p = decode(&icon(192).expect("icon"));
        assert_eq!((p.width(), p.height()), (192, 192));
    }
}
