//! Share images drawn without a graphics stack: the per-report card that link previews show
//! (Open Graph, Twitter), the site's card, and the app icons, as PNG. Text uses a built-in
//! 5x7 pixel font of capitals, digits and a few signs (link previews want a raster image, and
//! a font file would weigh more than this whole module); Vietnamese titles are shown without
//! their accents there, as on a keyboard without them.

use std::io::Write;

pub const CARD_WIDTH: u32 = 1200;
pub const CARD_HEIGHT: u32 = 630;

type Rgb = [u8; 3];

const INK: Rgb = [0x0b, 0x12, 0x20];
const PANEL: Rgb = [0x12, 0x1b, 0x2d];
const TEAL: Rgb = [0x0f, 0x76, 0x6e];
const MINT: Rgb = [0x5e, 0xea, 0xd4];
const TEXT: Rgb = [0xe5, 0xe7, 0xeb];
const MUTED: Rgb = [0x9c, 0xa3, 0xaf];
const GOLD: Rgb = [0xfb, 0xbf, 0x24];
const WHITE: Rgb = [0xff, 0xff, 0xff];

/// Rows of a 5-pixel-wide glyph, top first; bit 4 is the leftmost pixel.
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [30, 17, 17, 17, 17, 17, 30],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 10, 4, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        ',' => [0, 0, 0, 0, 12, 4, 8],
        ':' => [0, 12, 12, 0, 12, 12, 0],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '/' => [1, 1, 2, 4, 8, 16, 16],
        '$' => [4, 15, 20, 14, 5, 30, 4],
        '%' => [24, 25, 2, 4, 8, 19, 3],
        '&' => [12, 18, 20, 8, 21, 18, 13],
        '+' => [0, 4, 4, 31, 4, 4, 0],
        '(' => [2, 4, 8, 8, 8, 4, 2],
        ')' => [8, 4, 2, 2, 2, 4, 8],
        _ => return None,
    })
}

/// An RGB picture being drawn.
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32, background: Rgb) -> Canvas {
        let mut pixels = Vec::with_capacity((width * height * 3) as usize);
        for _ in 0..width * height {
            pixels.extend_from_slice(&background);
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    fn put(&mut self, x: i64, y: i64, color: Rgb) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let i = ((y as u64 * u64::from(self.width) + x as u64) * 3) as usize;
        self.pixels[i..i + 3].copy_from_slice(&color);
    }

    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.put(xx, yy, color);
            }
        }
    }

    pub fn disc(&mut self, cx: i64, cy: i64, r: i64, color: Rgb) {
        for yy in -r..=r {
            for xx in -r..=r {
                if xx * xx + yy * yy <= r * r {
                    self.put(cx + xx, cy + yy, color);
                }
            }
        }
    }

    /// A line `width` pixels thick with round joins (discs along it).
    pub fn line(&mut self, from: (i64, i64), to: (i64, i64), width: i64, color: Rgb) {
        let steps = (to.0 - from.0).abs().max((to.1 - from.1).abs()).max(1);
        for s in 0..=steps {
            let x = from.0 + (to.0 - from.0) * s / steps;
            let y = from.1 + (to.1 - from.1) * s / steps;
            self.disc(x, y, width / 2, color);
        }
    }

    /// `text` in the pixel font, each font pixel `scale` pixels square; characters the font
    /// lacks are left out. Returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, scale: i64, color: Rgb, text: &str) -> i64 {
        let mut at = x;
        for c in text.chars().flat_map(char::to_uppercase) {
            let Some(rows) = glyph(c) else { continue };
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.rect(
                            at + col * scale,
                            y + row as i64 * scale,
                            scale,
                            scale,
                            color,
                        );
                    }
                }
            }
            at += 6 * scale;
        }
        at - x
    }

    /// The picture as a PNG file (8-bit RGB, no interlace).
    pub fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.pixels.len() + self.height as usize);
        for row in self.pixels.chunks(self.width as usize * 3) {
            raw.push(0); // filter: none
            raw.extend_from_slice(row);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = z.write_all(&raw);
        let data = z.finish().unwrap_or_default();
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut header = Vec::with_capacity(13);
        header.extend_from_slice(&self.width.to_be_bytes());
        header.extend_from_slice(&self.height.to_be_bytes());
        header.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &header);
        chunk(&mut out, b"IDAT", &data);
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Splits `text` into at most `lines` lines of at most `width` characters, on words; the
/// last line ends with "..." when text is left over.
fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut words = text.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let word: String = word.chars().take(width).collect();
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut current));
            if out.len() == lines {
                if let Some(last) = out.last_mut() {
                    while last.chars().count() + 3 > width {
                        last.pop();
                    }
                    last.push_str("...");
                }
                return out;
            }
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
        if words.peek().is_none() {
            break;
        }
    }
    if !current.is_empty() && out.len() < lines {
        out.push(current);
    }
    out
}

/// What a report's card says.
pub struct ReportCard<'a> {
    /// The site's name, in capitals the font has.
    pub site: &'a str,
    pub date: &'a str,
    /// The headline, folded to ASCII.
    pub title: &'a str,
    /// "BTC $95,728" and the like: the market at publication; empty when unknown.
    pub figures: &'a [String],
    pub figures_label: &'a str,
}

fn frame(c: &mut Canvas) {
    c.rect(0, 0, 28, i64::from(CARD_HEIGHT), TEAL);
    c.rect(
        28,
        i64::from(CARD_HEIGHT) - 10,
        i64::from(CARD_WIDTH),
        10,
        MINT,
    );
    logo(c, 1040, 52, 100);
}

/// The site's mark (as in favicon.svg): a rising line and a gold dot on teal.
fn logo(c: &mut Canvas, x: i64, y: i64, size: i64) {
    c.rect(x, y, size, size, TEAL);
    let p = |fx: i64, fy: i64| (x + fx * size / 64, y + fy * size / 64);
    let w = (size * 6 / 64).max(2);
    c.line(p(12, 44), p(24, 30), w, WHITE);
    c.line(p(24, 30), p(33, 38), w, WHITE);
    c.line(p(33, 38), p(48, 18), w, WHITE);
    let (dx, dy) = p(48, 18);
    c.disc(dx, dy, size * 5 / 64, GOLD);
}

pub fn report_card(card: &ReportCard<'_>) -> Vec<u8> {
    let mut c = Canvas::new(CARD_WIDTH, CARD_HEIGHT, INK);
    frame(&mut c);
    c.text(80, 70, 5, MINT, card.site);
    c.text(80, 130, 9, WHITE, card.date);
    for (i, line) in wrap(card.title, 30, 3).iter().enumerate() {
        c.text(80, 240 + i as i64 * 64, 6, TEXT, line);
    }
    if !card.figures.is_empty() {
        c.rect(60, 446, 1080, 140, PANEL);
        c.text(80, 462, 3, MUTED, card.figures_label);
        let mut x = 80;
        for f in card.figures {
            x += c.text(x, 500, 5, GOLD, f) + 48;
        }
    }
    c.png()
}

/// The site's own card, for pages that are not a report.
pub fn site_card(site: &str, tagline: &str, other: &str) -> Vec<u8> {
    let mut c = Canvas::new(CARD_WIDTH, CARD_HEIGHT, INK);
    frame(&mut c);
    c.text(80, 200, 12, WHITE, site);
    for (i, line) in wrap(tagline, 36, 2).iter().enumerate() {
        c.text(80, 330 + i as i64 * 56, 5, TEXT, line);
    }
    c.text(80, 480, 4, MINT, other);
    c.png()
}

/// A square app icon of `size` pixels.
pub fn icon(size: u32) -> Vec<u8> {
    let mut c = Canvas::new(size, size, TEAL);
    logo(&mut c, 0, 0, i64::from(size));
    c.png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_with_its_signature_size_and_crc() {
        let png = icon(32);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().expect("w")), 32);
        let crc = u32::from_be_bytes(png[29..33].try_into().expect("crc"));
        assert_eq!(crc, crc32fast::hash(&png[12..29]));
        assert!(png.ends_with(&[0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]));
    }

    #[test]
    fn words_wrap_and_overflow_ends_with_dots() {
        assert_eq!(wrap("one two three", 7, 3), vec!["one two", "three"]);
        assert_eq!(wrap("aaaa bbbb cccc dddd", 9, 1), vec!["aaaa b..."]);
        assert!(wrap("", 5, 2).is_empty());
    }

    #[test]
    fn every_printable_ascii_letter_and_digit_has_a_glyph() {
        for c in ('A'..='Z').chain('0'..='9') {
            assert!(glyph(c).is_some(), "{c}");
        }
        let mut c = Canvas::new(40, 10, INK);
        assert_eq!(c.text(0, 0, 1, WHITE, "ab"), 12);
        assert_eq!(c.text(0, 0, 1, WHITE, "ạ"), 0, "not in the font: left out");
    }
}
