//! Headlines: a whole sentence or clause short enough for a list, and no title every report
//! of a template shares.

use unicode_normalization::UnicodeNormalization;

/// Longest headline: one that fits a list line or two, and a phone's title in three.
const HEADLINE_MAX: usize = 110;
/// Shortest clause that stands as a headline (characters, words).
const CLAUSE_MIN: (usize, usize) = (20, 4);

/// Words of the titles a template gives every report ("📊 Báo Cáo Phân Tích Thị Trường
/// Crypto", "Crypto Market Analysis Report", "Báo cáo thị trường ngày 20/11"), lowercase;
/// month names and numbers are template words too.
const GENERIC_WORDS: &str = "báo cáo phân tích thị trường crypto tiền mã hóa hoá điện tử số \
    hàng ngày tuần tháng năm tổng quan cập nhật bản tin và hôm nay về cryptocurrency market \
    markets analysis report daily weekly monthly overview update the of and digital asset \
    assets today for on week month day year january february march april may june july \
    august september october november december";

/// A title made only of a template's words, dates and numbers: every report would have it.
pub(super) fn generic_title(text: &str) -> bool {
    let lower = text.nfc().collect::<String>().to_lowercase();
    let mut words = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some()
        && words.all(|w| {
            w.chars().all(|c| c.is_ascii_digit())
                || GENERIC_WORDS.split_whitespace().any(|g| g == w)
        })
}

/// A sentence as a headline: without its closing full stop, whole when it fits in
/// [`HEADLINE_MAX`] characters, else its longest opening clause that does (cut at a comma,
/// semicolon, colon or dash outside brackets, at least [`CLAUSE_MIN`] long); `None` when
/// neither fits.
pub(super) fn as_title(sentence: &str) -> Option<String> {
    let trimmed = sentence.strip_suffix('.').unwrap_or(sentence);
    // "…" and "etc." style endings keep their dots; a lone full stop goes.
    let trimmed = if trimmed.ends_with('.') {
        sentence
    } else {
        trimmed
    }
    .trim_end();
    if trimmed.chars().count() <= HEADLINE_MAX {
        return Some(trimmed.to_owned());
    }
    let chars: Vec<char> = trimmed.chars().collect();
    let mut depth = 0i32;
    let mut best = None;
    for (i, &c) in chars.iter().enumerate().take(HEADLINE_MAX + 1) {
        match c {
            '(' | '[' | '“' => depth += 1,
            ')' | ']' | '”' => depth -= 1,
            _ => {}
        }
        let next = chars.get(i + 1).copied();
        let boundary = match c {
            ',' | ';' | ':' => next == Some(' '),
            '–' | '—' | '-' => i > 0 && chars[i - 1] == ' ' && next == Some(' '),
            _ => false,
        };
        if !boundary || depth != 0 {
            continue;
        }
        let clause: String = chars[..i].iter().collect::<String>().trim_end().to_owned();
        let long_enough = clause.chars().count() >= CLAUSE_MIN.0
            && clause.split_whitespace().count() >= CLAUSE_MIN.1;
        if long_enough && clause.chars().count() <= HEADLINE_MAX {
            best = Some(clause);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_titles_are_generic_and_a_reports_own_are_not() {
        for generic in [
            "📊 Báo Cáo Phân Tích Thị Trường Crypto",
            "Crypto Market Analysis Report",
            "Báo cáo thị trường crypto ngày 20/11/2026",
            "Daily Crypto Market Report — November 20, 2026",
            "BÁO CÁO PHÂN TÍCH THỊ TRƯỜNG TIỀN MÃ HOÁ",
            // Decomposed accents, as some keyboards type them.
            "Ba\u{0301}o ca\u{0301}o thi\u{0323} trươ\u{0300}ng",
        ] {
            assert!(generic_title(generic), "{generic}");
        }
        for own in [
            "Bitcoin vượt 100.000 USD",
            "ETF flows return to the market",
            "📊",
        ] {
            assert!(!generic_title(own), "{own}");
        }
    }

    #[test]
    fn a_headline_is_whole_or_an_opening_clause_that_fits() {
        // The latest boundary that fits, outside brackets; dashes between spaces count.
        assert_eq!(
            as_title(
                "Giá Bitcoin (sau khi tăng 5%, giảm 3%) quay về vùng hỗ trợ 60.000 USD – mức đã giữ vững suốt ba tuần qua dù áp lực bán vẫn lớn trên các sàn phái sinh."
            ),
            Some("Giá Bitcoin (sau khi tăng 5%, giảm 3%) quay về vùng hỗ trợ 60.000 USD".into())
        );
        assert_eq!(as_title("Ngắn, rất ngắn."), Some("Ngắn, rất ngắn".into()));
        assert_eq!(as_title(&"chữ ".repeat(40)), None);
        let long = format!("BTC: {}", "giá tăng mạnh ".repeat(12));
        assert_eq!(
            as_title(&long),
            None,
            "a clause shorter than a headline is not one"
        );
    }
}
