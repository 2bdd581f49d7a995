//! A report's lead for readers who have not opened it: its headline and its summary, taken
//! from its own words (a headline element, its summary paragraph) in whole sentences.
//!
//! Reports are model-written HTML with stat cards, gauges with captions, lists of figures and
//! prose. Only prose makes a summary: captions, labels, list items and table cells do not, and
//! text is joined the way a browser shows it (no space where an inline tag closed before a
//! comma, none between a sign and its number). The generator's template opens every report
//! with a header block (a title shared by every report, the author's role, the date): it is
//! never the summary, and a title every report shares is no headline. A headline is a whole
//! sentence or clause short enough for a list, never a sentence cut mid-phrase.

use self::dom::{Dom, El, Step};
use self::headline::{as_title, generic_title};

mod dom;
mod headline;

/// Shortest paragraph that reads as prose rather than a caption or a label.
const PROSE_MIN: usize = 60;

/// What lists, feeds and the report page's header show for one language of a report.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Lead {
    /// The report's own headline, or the first sentence (or opening clause) of its summary;
    /// `None` when nothing fits (callers fall back to a date-based title).
    pub headline: Option<String>,
    /// Whole sentences of the report's summary paragraph (without the sentence that became
    /// the headline), at most the requested length; cut on a word with "…" only when its
    /// first sentence alone is longer.
    pub summary: String,
}

/// The lead of one report document, summary at most `max_chars` characters.
pub fn lead(html: &str, max_chars: usize) -> Lead {
    let doc = Dom::parse(html);
    let root = doc.root();
    let own_headline = find_headline(root);
    let prose = find_summary(root);
    let mut sentences = prose.as_deref().map(sentences).unwrap_or_default();
    let headline = match own_headline {
        Some(h) => Some(h),
        None => match sentences.first().map(|s| (as_title(s), s.clone())) {
            Some((Some(title), first)) => {
                // A whole sentence as the headline leaves the summary, unless it is all of
                // it; an opening clause leaves the sentence there.
                let whole = title.chars().count() + 1 >= first.chars().count();
                if whole && sentences.len() > 1 {
                    sentences.remove(0);
                }
                Some(title)
            }
            _ => None,
        },
    };
    let summary = if sentences.is_empty() {
        // No prose anywhere: the opening text of the body, without labels if it has other
        // text; never empty while the report has any text at all.
        let text = Some(fallback_text(root, true))
            .filter(|t| !t.is_empty())
            .or_else(|| Some(fallback_text(root, false)).filter(|t| !t.is_empty()))
            .unwrap_or_else(|| text_of(root));
        cut_on_word(&text, max_chars)
    } else {
        take_sentences(&sentences, max_chars)
    };
    Lead { headline, summary }
}

// ---------------------------------------------------------------------------- finding

/// `<h1>`, else an element whose class says it is the headline (not its card or kicker), that
/// is no generic template title and fits as a headline.
fn find_headline(root: El<'_>) -> Option<String> {
    let candidates = root.descendants().filter(|e| {
        e.name() == "h1"
            || e.classes().any(|c| {
                let c = c.to_ascii_lowercase();
                c.contains("headline")
                    && !["card", "kicker", "date", "meta", "wrap", "container", "box"]
                        .iter()
                        .any(|x| c.contains(x))
            })
    });
    for e in candidates {
        if skipped(e) || byline(e) {
            continue;
        }
        let text = text_of(e);
        if text.chars().count() >= 10
            && !generic_title(&text)
            && let Some(title) = as_title(&text)
        {
            return Some(title);
        }
    }
    None
}

/// The byline of a report: the header block the generator's template opens it with (title,
/// author's role, date), or a paragraph marked as its meta line.
fn byline(e: El<'_>) -> bool {
    e.ancestors().chain(std::iter::once(e)).any(|a| {
        a.classes()
            .any(|c| matches!(c, "report-meta" | "report-role" | "report-date"))
    })
}

/// Inside a header block: a title, a byline, a date; never a summary.
fn in_header(e: El<'_>) -> bool {
    byline(e)
        || e.ancestors()
            .chain(std::iter::once(e))
            .any(|a| a.name() == "header" || a.classes().any(|c| c == "report-header"))
}

/// The text of the report's summary paragraph (with the paragraphs that follow it in the same
/// block): one marked as a summary, else the first prose paragraph of the first section that
/// has prose, preferring one that stands on its own over commentary beside a chart.
fn find_summary(root: El<'_>) -> Option<String> {
    let paragraphs: Vec<El<'_>> = root
        .descendants()
        .filter(|e| e.name() == "p" && !skipped(*e) && !in_header(*e) && !caption_like(*e))
        .collect();
    // The text of a paragraph is taken only when it is looked at (most never are), once.
    let mut texts: Vec<Option<Option<String>>> = vec![None; paragraphs.len()];
    let mut prose = |i: usize| -> Option<String> {
        texts[i]
            .get_or_insert_with(|| Some(text_of(paragraphs[i])).filter(|t| is_prose(t)))
            .clone()
    };
    let marked = (0..paragraphs.len())
        .filter(|&i| marked_summary(paragraphs[i]))
        .find_map(|i| prose(i).map(|t| (i, t)));
    let (chosen, mut text) = match marked {
        Some(found) => found,
        None => {
            let (first, first_text) =
                (0..paragraphs.len()).find_map(|i| prose(i).map(|t| (i, t)))?;
            let section = section_of(paragraphs[first]);
            // Whether a card stands alone, once per card: its paragraphs share the answer
            // (a card of many paragraphs is read once, not once per paragraph).
            let mut alone = std::collections::HashMap::new();
            let mut stands = |p: El<'_>| match p.parent() {
                Some(card) => *alone.entry(card.key()).or_insert_with(|| stands_alone(p)),
                None => stands_alone(p),
            };
            (first..paragraphs.len())
                .filter(|&i| section_of(paragraphs[i]) == section && stands(paragraphs[i]))
                .find_map(|i| prose(i).map(|t| (i, t)))
                .unwrap_or((first, first_text))
        }
    };
    // Following prose paragraphs of the same block carry the thought on.
    let block = paragraphs[chosen].parent().map(|n| n.key());
    for (i, p) in paragraphs.iter().enumerate().skip(chosen + 1) {
        let Some(t) = prose(i) else { continue };
        if p.parent().map(|n| n.key()) != block {
            break;
        }
        text.push(' ');
        text.push_str(&t);
    }
    Some(text)
}

/// Elements whose text is never a lead: scripts, tables, lists, figures, collapsed details.
fn skipped(e: El<'_>) -> bool {
    e.ancestors().chain(std::iter::once(e)).any(|a| {
        matches!(
            a.name(),
            "script"
                | "style"
                | "template"
                | "noscript"
                | "li"
                | "td"
                | "th"
                | "table"
                | "figure"
                | "figcaption"
                | "details"
                | "summary"
                | "svg"
                | "nav"
                | "footer"
                | "aside"
                | "form"
                | "button"
        )
    })
}

/// Words of stat-card, caption, kicker and label classes ("stat-box", "kpi-label",
/// "headline-kicker"), matched as whole words of a class so that "market-state" is not one.
const CAPTION_WORDS: [&str; 16] = [
    "stat",
    "stats",
    "kpi",
    "metric",
    "metrics",
    "label",
    "caption",
    "kicker",
    "level",
    "note",
    "source",
    "disclaimer",
    "headline",
    "chart",
    "figure",
    "legend",
];

fn caption_class(e: El<'_>) -> bool {
    e.classes().any(|c| {
        let c = c.to_ascii_lowercase();
        c == "text-center"
            || c == "price-header"
            || c.split(['-', '_'])
                .any(|word| CAPTION_WORDS.contains(&word))
    })
}

/// The paragraph, or a container of it inside its section, is a caption, label or stat card.
fn caption_like(p: El<'_>) -> bool {
    p.ancestors()
        .chain(std::iter::once(p))
        .take_while(|a| a.name() != "section")
        .any(caption_class)
}

/// The paragraph or its card is marked as the summary (`class="summary"`, `lead`, `tldr`).
fn marked_summary(p: El<'_>) -> bool {
    p.ancestors()
        .chain(std::iter::once(p))
        .take_while(|a| a.name() != "section")
        .any(|a| {
            a.classes()
                .chain(a.id())
                .any(|c| ["summary", "lead", "tldr", "tom-tat"].contains(&c))
        })
}

/// The paragraph's card holds no chart and no heading of its own: it is the text itself,
/// not commentary on a figure.
fn stands_alone(p: El<'_>) -> bool {
    let Some(card) = p.parent() else {
        return true;
    };
    if card.name() == "section" {
        return true;
    }
    !card.descendants().any(|d| {
        matches!(
            d.name(),
            "h3" | "h4" | "h5" | "h6" | "svg" | "canvas" | "img"
        ) || d.classes().any(|c| c == "chart-container")
    })
}

/// The `<section>` a paragraph belongs to (the fragment root when it has none).
fn section_of(p: El<'_>) -> Option<u32> {
    p.ancestors()
        .find(|a| a.name() == "section")
        .map(|a| a.key())
}

fn is_prose(text: &str) -> bool {
    // One pass: characters, letters and words (runs of non-whitespace).
    let (mut chars, mut letters, mut words, mut in_word) = (0, 0, 0, false);
    for c in text.chars() {
        chars += 1;
        letters += usize::from(c.is_alphabetic());
        let space = c.is_whitespace();
        words += usize::from(!space && !in_word);
        in_word = !space;
    }
    chars >= PROSE_MIN && words >= 8 && letters * 2 >= chars
}

/// Opening text of the body when no paragraph is prose: headings, lists and tables skipped,
/// and with `strict` also every caption, label and stat card.
fn fallback_text(root: El<'_>, strict: bool) -> String {
    let mut out = String::new();
    for e in root.descendants() {
        let block = matches!(e.name(), "p" | "div") && !e.children().any(|c| is_block(c.name()));
        // The label test reads every descendant: only for the blocks that could be taken.
        let labelled = || strict && (caption_like(e) || e.descendants().any(caption_class));
        if block && !skipped(e) && !in_header(e) && !labelled() {
            let t = text_of(e);
            if !t.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&t);
            }
            if out.chars().count() > 400 {
                break;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------- text

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "br"
            | "dd"
            | "details"
            | "div"
            | "dl"
            | "dt"
            | "figcaption"
            | "figure"
            | "footer"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "td"
            | "tfoot"
            | "th"
            | "thead"
            | "tr"
            | "ul"
    )
}

/// Text of an element as a reader sees it: inline tags join without a space, block tags
/// separate, whitespace folds, and no space stands before closing punctuation.
fn text_of(e: El<'_>) -> String {
    let mut raw = String::new();
    e.walk(|step| match step {
        Step::Text(t) => {
            raw.push_str(t);
            true
        }
        Step::Start(el) => {
            let name = el.name();
            if matches!(
                name,
                "script" | "style" | "template" | "noscript" | "svg" | "canvas"
            ) {
                return false;
            }
            if is_block(name) {
                raw.push(' ');
            }
            true
        }
        Step::End(el) => {
            if is_block(el.name()) {
                raw.push(' ');
            }
            true
        }
    });
    tidy(&raw)
}

/// Folds whitespace and removes the spaces markup leaves around punctuation.
fn tidy(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for word in raw.split_whitespace() {
        let joined = out.is_empty()
            || word.starts_with([',', '.', ';', ':', '!', '?', ')', ']', '%'])
            || out.ends_with(['(', '[']);
        if !joined {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

// ---------------------------------------------------------------------------- sentences

/// Words after which a full stop does not end a sentence.
const ABBREVIATIONS: [&str; 22] = [
    "mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "no", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "oct", "nov",
];

/// Splits prose into sentences: a `.`, `!`, `?` or `…` (with any closing quote or bracket)
/// followed by a space and a capital, a digit or an opening quote. Decimal points and
/// thousands separators ("1.3%", "89.470") are never followed by a space, so they stay.
pub fn sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        if matches!(chars[i], '.' | '!' | '?' | '…') {
            let mut end = i + 1;
            while end < chars.len() && matches!(chars[end], '"' | '\'' | '”' | '’' | ')' | '»')
            {
                end += 1;
            }
            let next = chars.get(end + 1).copied();
            let at_space = chars.get(end) == Some(&' ');
            let opens = next.is_some_and(|n| {
                n.is_uppercase() || n.is_ascii_digit() || matches!(n, '"' | '“' | '‘' | '(' | '«')
            });
            if at_space && opens && !(chars[i] == '.' && abbreviation_before(&chars[start..i])) {
                out.push(
                    chars[start..end]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_owned(),
                );
                start = end + 1;
                i = end;
            }
        }
        i += 1;
    }
    let rest: String = chars[start.min(chars.len())..].iter().collect();
    if !rest.trim().is_empty() {
        out.push(rest.trim().to_owned());
    }
    out
}

fn abbreviation_before(head: &[char]) -> bool {
    let word: String = head
        .iter()
        .rev()
        .take_while(|c| !c.is_whitespace() && **c != '(')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let word = word.to_lowercase();
    word.chars().count() == 1 || ABBREVIATIONS.contains(&word.as_str())
}

/// As many whole sentences as fit; the first one cut on a word when it alone does not.
fn take_sentences(sentences: &[String], max_chars: usize) -> String {
    let mut out = String::new();
    for s in sentences {
        let extra = s.chars().count() + usize::from(!out.is_empty());
        if out.chars().count() + extra > max_chars {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
    }
    if out.is_empty() {
        sentences
            .first()
            .map(|s| cut_on_word(s, max_chars))
            .unwrap_or_default()
    } else {
        out
    }
}

/// At most `max_chars` characters, cut after a whole word with "…", no dangling punctuation.
pub fn cut_on_word(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let head: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    let cut = match head.rfind(' ') {
        Some(i) if i > 0 => &head[..i],
        _ => head.as_str(),
    };
    let cut = cut.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-' | '–' | '—' | '(' | '·')
    });
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_tags_join_without_spaces_and_signs_stay() {
        let html = r#"<section><div class="report-card"><p>BTC: <span class="highlight-value">87.960 USD</span> (<span class="positive-text">+1,59%</span>), ETH <strong>-2,40%</strong>; chỉ số lên <strong>44</strong>, sát ranh giới vùng Trung lập của thị trường.</p></div></section>"#;
        let lead = lead(html, 400);
        assert_eq!(
            lead.headline.as_deref(),
            Some(
                "BTC: 87.960 USD (+1,59%), ETH -2,40%; chỉ số lên 44, sát ranh giới vùng Trung lập của thị trường"
            )
        );
    }

    /// A chart's card of 100,000 short paragraphs after its one prose paragraph: whether the
    /// card stands alone is asked of every paragraph and answered by reading the card once
    /// (read once per paragraph, it would take minutes).
    #[test]
    fn a_card_of_many_paragraphs_is_read_once() {
        let mut html = "<section><div><p>Bitcoin held above its support while funds kept \
            buying through the week, and the market waited.</p>"
            .to_owned();
        html.push_str(&"<p>x</p>".repeat(100_000));
        html.push_str("<img src=\"chart.png\"></div></section>");
        let lead = lead(&html, 400);
        assert!(lead.summary.starts_with("Bitcoin held above"), "{lead:?}");
    }

    #[test]
    fn sentences_keep_decimals_and_abbreviations() {
        assert_eq!(
            sentences("Giá 89.470 USD, tăng 1.3% hôm nay. U.S. Senate waits. Vì sao? Vì ETF."),
            vec![
                "Giá 89.470 USD, tăng 1.3% hôm nay.",
                "U.S. Senate waits.",
                "Vì sao?",
                "Vì ETF."
            ]
        );
    }

    #[test]
    fn cut_on_word_adds_an_ellipsis_without_dangling_punctuation() {
        assert_eq!(cut_on_word("short", 10), "short");
        assert_eq!(cut_on_word("alpha beta, gamma delta", 14), "alpha beta…");
        assert!(cut_on_word("alpha beta, gamma delta", 14).chars().count() <= 14);
    }

    #[test]
    fn stat_cards_and_captions_are_not_the_summary() {
        let html = r#"<section id="s"><h2>Tổng quan</h2>
            <div class="kpi-grid"><div class="kpi-box"><span class="kpi-label">Tổng vốn hóa</span><span class="kpi-value">3,07 nghìn tỷ USD</span><span class="kpi-delta positive-text"><i class="fas fa-caret-up"></i> 1,3% / 24h</span></div></div>
            <div class="report-card"><h3>Chỉ số</h3><div class="chart-container"></div><p class="text-center">Chỉ số lên <strong>44</strong>, sát ranh giới vùng Trung lập và tiếp tục tăng trong phiên.</p></div>
            <div class="report-card col-span-full"><p>Thị trường bước vào ngày thứ tư liên tiếp đi lên. Bitcoin tiến sát vùng 88.000 USD, lấy lại gần hết phần giá trị đã mất.</p><p>Động lực chính đến từ dòng tiền tổ chức quay lại các quỹ ETF giao ngay.</p></div>
            </section>"#;
        let lead = lead(html, 220);
        assert_eq!(
            lead.headline.as_deref(),
            Some("Thị trường bước vào ngày thứ tư liên tiếp đi lên")
        );
        assert_eq!(
            lead.summary,
            "Bitcoin tiến sát vùng 88.000 USD, lấy lại gần hết phần giá trị đã mất. Động lực chính đến từ dòng tiền tổ chức quay lại các quỹ ETF giao ngay."
        );
    }

    #[test]
    fn own_headline_wins_and_the_summary_is_whole_sentences() {
        let html = r#"<section><div class="headline-card"><p class="headline-kicker">Thứ Bảy · Báo cáo ngày</p><p class="headline-text">Bitcoin tiến sát 90.000 USD</p></div>
            <div class="report-card"><h3>Diễn biến</h3><div class="chart-container"></div><p>Chỉ số đã đi một vòng trọn vẹn trong tuần, từ 38 điểm xuống 22 rồi hồi phục liên tục.</p></div>
            <div class="report-card wide-card"><p>Thị trường khép lại tuần với mức tăng đáng kể. Tổng vốn hóa đạt 3,07 nghìn tỷ USD. Bitcoin có lúc chạm 89.880 USD trong phiên Mỹ trước khi ổn định.</p></div></section>"#;
        let lead = lead(html, 90);
        assert_eq!(
            lead.headline.as_deref(),
            Some("Bitcoin tiến sát 90.000 USD")
        );
        assert_eq!(
            lead.summary,
            "Thị trường khép lại tuần với mức tăng đáng kể. Tổng vốn hóa đạt 3,07 nghìn tỷ USD."
        );
    }

    #[test]
    fn a_long_first_sentence_is_cut_on_a_word() {
        let sentence = "Thị trường ".repeat(40);
        let html = format!(
            "<p>{} kết thúc.</p><p>Câu thứ hai của đoạn văn này.</p>",
            sentence.trim()
        );
        let lead = lead(&html, 100);
        assert!(lead.summary.ends_with('…'), "{}", lead.summary);
        assert!(lead.summary.chars().count() <= 100);
        assert!(lead.summary.starts_with("Thị trường Thị trường"));
    }

    #[test]
    fn no_prose_falls_back_to_opening_text_not_labels_run_together() {
        let html = "<section><h2>Tiêu đề</h2><div><span class=\"stat-label\">Vốn hóa</span><span class=\"stat-value\">3 nghìn tỷ</span></div><div>Một dòng ngắn.</div></section>";
        let lead = lead(html, 100);
        assert_eq!(lead.headline.as_deref(), None);
        assert_eq!(lead.summary, "Một dòng ngắn.");
    }

    #[test]
    fn class_words_match_whole_words_and_a_summary_is_never_empty() {
        let state = "<div class=\"market-state\"><p>Thị trường giữ nhịp ổn định suốt phiên, khối lượng giao dịch đều và không có biến động lớn nào đáng kể.</p></div>";
        assert!(
            lead(state, 200).headline.is_some(),
            "market-state is not a stat card"
        );
        let labels_only = "<h2>Tổng quan</h2><div class=\"stat-box\"><span class=\"stat-label\">Vốn hóa</span> <span class=\"stat-value\">3 nghìn tỷ</span></div>";
        assert_eq!(
            lead(labels_only, 200).summary,
            "Vốn hóa 3 nghìn tỷ",
            "the labels, not the heading"
        );
        assert_eq!(
            lead("<ul><li>Chỉ một mục</li></ul>", 200).summary,
            "Chỉ một mục"
        );
    }

    /// A report of `tests/fixtures/generator-template`, in the generator's own template.
    macro_rules! generator {
        ($dir:literal, $file:literal) => {
            include_str!(concat!(
                "../../tests/fixtures/generator-template/",
                $dir,
                "/",
                $file
            ))
        };
    }

    #[test]
    fn the_generator_header_block_is_neither_headline_nor_summary() {
        let vi = lead(generator!("301-whole-sentence", "vi.html"), 260);
        assert_eq!(
            vi,
            Lead {
                headline: Some("Bitcoin giữ vững vùng 64.000 USD sau phiên biến động mạnh".into()),
                summary: "Tổng vốn hóa thị trường đi ngang quanh 2,3 nghìn tỷ USD, khối lượng giao dịch giảm 12% so với hôm qua. Dòng tiền vào các quỹ ETF giao ngay chậm lại nhưng vẫn dương.".into(),
            }
        );
        let en = lead(generator!("301-whole-sentence", "en.html"), 260);
        assert_eq!(
            en.headline.as_deref(),
            Some("Bitcoin holds the $64,000 area after a volatile session")
        );
        assert!(
            en.summary
                .starts_with("Total market capitalisation is flat"),
            "{}",
            en.summary
        );
        // A header with nothing else: the date title, and no byline as the summary.
        let bare = r#"<header class="report-header"><h1>📊 Báo Cáo Phân Tích Thị Trường Crypto</h1><p class="report-meta"><span class="report-role">Chuyên gia Phân tích Thị trường Tài chính Cấp cao</span> | <span class="report-date">Ngày 9 tháng 10 năm 2026</span></p></header><section id="a"><h2>Tổng quan</h2><div>Giá đi ngang.</div></section>"#;
        assert_eq!(
            lead(bare, 260),
            Lead {
                headline: None,
                summary: "Giá đi ngang.".into()
            }
        );
    }

    #[test]
    fn a_reports_own_title_in_the_header_is_its_headline() {
        let html = "<header class=\"report-header\"><h1>📊 Bitcoin vượt mốc 100.000 USD lần đầu tiên</h1></header><section id=\"a\"><p>Thị trường tăng mạnh trong phiên sáng nay với khối lượng lớn nhất tháng.</p></section>";
        assert_eq!(
            lead(html, 260).headline.as_deref(),
            Some("📊 Bitcoin vượt mốc 100.000 USD lần đầu tiên")
        );
    }

    #[test]
    fn headlines_are_whole_clauses_that_fit_else_the_date_title() {
        // A first sentence too long for a headline: its opening clause, and the summary keeps
        // the whole sentence.
        let vi = lead(generator!("302-clause", "vi.html"), 260);
        assert_eq!(
            vi.headline.as_deref(),
            Some("Thị trường tiền mã hóa giảm mạnh trong phiên đêm qua")
        );
        assert!(
            vi.summary
                .starts_with("Thị trường tiền mã hóa giảm mạnh trong phiên đêm qua, khi Bitcoin"),
            "{}",
            vi.summary
        );
        let en = lead(generator!("302-clause", "en.html"), 260);
        assert_eq!(
            en.headline.as_deref(),
            Some("The crypto market fell sharply overnight")
        );
        // No clause fits: no headline (the date title), never a sentence cut mid-phrase.
        for file in [
            generator!("303-no-fit", "vi.html"),
            generator!("303-no-fit", "en.html"),
        ] {
            let l = lead(file, 260);
            assert_eq!(l.headline, None, "{l:?}");
            assert!(!l.summary.is_empty());
        }
    }

    #[test]
    fn entities_and_scripts() {
        let html = "<p>Vàng &amp; Bạc &ndash; giá &lt;cao&gt; hơn hôm qua rất nhiều trong phiên giao dịch sáng nay.<script>var x='<p>';</script></p>";
        assert_eq!(
            lead(html, 200).headline.as_deref(),
            Some("Vàng & Bạc – giá <cao> hơn hôm qua rất nhiều trong phiên giao dịch sáng nay")
        );
    }
}
