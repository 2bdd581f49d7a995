//! Snippets: the passage of a text where the query's words are, the words a reader typed side
//! by side marked as one ("<mark>lạm phát</mark>"). In Vietnamese a word alone is usually a
//! syllable of another word ("lam" of "Tham lam"), so a lone word of a group is marked only in
//! English text, and only where the group never occurs together.

use super::query::Parsed;
use super::text::{forms, next_word};
use super::{Piece, Snippet};

/// How much a marked group of `n` words weighs in choosing the passage, per word squared; a
/// word seen but not marked weighs 1.
const MARK_WEIGHT: usize = 4;
/// Characters of context kept before the first match at most.
const CONTEXT_BEFORE: usize = 60;

/// A word of the text that is a word of the query.
struct Found {
    position: usize,
    start: usize,
    end: usize,
    /// Bit `i`: the `i`-th word of the query, group after group (see [`Bits`]).
    words: u64,
}

/// The bit of each word of the query: its place counting group after group, for the first
/// 64 (a query reads at most [`super::query::MAX_WORDS`]).
struct Bits(Vec<usize>);

impl Bits {
    fn of(query: &Parsed) -> Bits {
        let mut at = 0;
        Bits(
            query
                .groups
                .iter()
                .map(|g| {
                    let first = at;
                    at += g.words.len();
                    first
                })
                .collect(),
        )
    }

    /// The bit of word `j` of group `g` (none past the 64th word).
    fn bit(&self, g: usize, j: usize) -> u64 {
        self.0
            .get(g)
            .map(|first| first + j)
            .filter(|i| *i < 64)
            .map_or(0, |i| 1 << i)
    }
}

/// A stretch of the text to weigh (and maybe mark).
#[derive(Clone, Copy)]
struct Item {
    start: usize,
    end: usize,
    weight: usize,
    marked: bool,
}

/// The snippet of `text` for `query`, at most about `max_chars` characters; `None` when no
/// word of the query is in the text. `vietnamese`: the text is Vietnamese (see the module).
/// A snippet without marks shows where the words are when they are only apart.
pub fn snippet(text: &str, query: &Parsed, vietnamese: bool, max_chars: usize) -> Option<Snippet> {
    let bits = Bits::of(query);
    let found = find(text, query);
    let items = items(query, &bits, &found, vietnamese);
    if items.is_empty() {
        return None;
    }
    let (start, end, whole_start) = passage(text, &items, max_chars);
    let mut pieces = Vec::new();
    let mut at = start;
    let plain = |pieces: &mut Vec<Piece>, s: &str| {
        if !s.is_empty() {
            pieces.push(Piece {
                text: s.to_owned(),
                hit: false,
            });
        }
    };
    if start > 0 && !whole_start {
        plain(&mut pieces, "…");
    }
    let mut marks: Vec<(usize, usize)> = items
        .iter()
        .filter(|i| i.marked && i.start >= start && i.end <= end)
        .map(|i| (i.start, i.end))
        .collect();
    marks.sort_unstable();
    for (s, e) in marks {
        if e <= at {
            continue;
        }
        let s = s.max(at);
        plain(&mut pieces, &text[at..s]);
        match pieces.last_mut() {
            // Overlapping or touching marks (two groups on one word) are one mark.
            Some(last) if last.hit && s == at => last.text.push_str(&text[s..e]),
            _ => pieces.push(Piece {
                text: text[s..e].to_owned(),
                hit: true,
            }),
        }
        at = e;
    }
    plain(&mut pieces, &text[at..end]);
    let closed = text[..end]
        .trim_end()
        .ends_with(['.', '!', '?', '…', '"', '”', ')']);
    if end < text.len() && !closed {
        plain(&mut pieces, "…");
    }
    Some(Snippet { pieces })
}

/// Every word of `text` that is a word of the query, in order.
fn find(text: &str, query: &Parsed) -> Vec<Found> {
    let words: Vec<_> = query
        .groups
        .iter()
        .flat_map(|g| &g.words)
        .take(64)
        .collect();
    // Most words of a text share no first letter with the query: those are not folded.
    let firsts: Option<Vec<u8>> = words
        .iter()
        .map(|w| w.folded.bytes().next().filter(u8::is_ascii))
        .collect();
    let (mut folded, mut exact) = (String::new(), String::new());
    let mut found = Vec::new();
    let mut at = 0;
    let mut position = 0;
    while let Some((start, end)) = next_word(text, at) {
        at = end;
        position += 1;
        let first = text.as_bytes()[start];
        if let Some(firsts) = &firsts
            && first.is_ascii()
            && !firsts.contains(&first.to_ascii_lowercase())
        {
            continue;
        }
        forms(&text[start..end], &mut folded, &mut exact);
        let exact = if exact.is_empty() { &folded } else { &exact };
        let mut bits = 0u64;
        for (i, w) in words.iter().enumerate() {
            if w.matches(&folded, exact) {
                bits |= 1 << i;
            }
        }
        if bits != 0 {
            found.push(Found {
                position,
                start,
                end,
                words: bits,
            });
        }
    }
    found
}

/// The runs of query words found side by side, weighed, and marked by the module's rule.
fn items(query: &Parsed, bits: &Bits, found: &[Found], vietnamese: bool) -> Vec<Item> {
    let bit = |g: usize, j: usize| bits.bit(g, j);
    // (first found word, length, group, index of its first word in the group)
    let mut runs = Vec::new();
    for (g, group) in query.groups.iter().enumerate() {
        let n = group.words.len();
        for (f, w) in found.iter().enumerate() {
            for j in 0..n {
                if w.words & bit(g, j) == 0 {
                    continue;
                }
                let continues = j > 0
                    && f > 0
                    && found[f - 1].position + 1 == w.position
                    && found[f - 1].words & bit(g, j - 1) != 0;
                if continues {
                    continue;
                }
                let mut len = 1;
                while j + len < n
                    && found.get(f + len).is_some_and(|x| {
                        x.position == w.position + len && x.words & bit(g, j + len) != 0
                    })
                {
                    len += 1;
                }
                runs.push((f, len, g, j));
            }
        }
    }
    // Words of a group that are side by side with another of its words somewhere.
    let mut joined = 0u64;
    for &(_, len, g, j) in &runs {
        if len > 1 {
            (j..j + len).for_each(|k| joined |= bit(g, k));
        }
    }
    runs.into_iter()
        .map(|(f, len, g, j)| {
            let group = &query.groups[g];
            let n = group.words.len();
            let marked = if group.quoted {
                len == n
            } else {
                n == 1 || len > 1 || (!vietnamese && joined & bit(g, j) == 0)
            };
            let weight = if marked { MARK_WEIGHT * len * len } else { 1 };
            Item {
                start: found[f].start,
                end: found[f + len - 1].end,
                weight,
                marked,
            }
        })
        .collect()
}

/// The passage to show: byte range, and whether it starts a sentence. The window of
/// `max_chars` characters with the most weight (the first of equals), with some context
/// before its first match, started at a sentence or a word and ended after a word.
fn passage(text: &str, items: &[Item], max_chars: usize) -> (usize, usize, bool) {
    // Words seen but not marked place the passage only when nothing is marked.
    let any_marked = items.iter().any(|i| i.marked);
    let mut items: Vec<Item> = items
        .iter()
        .filter(|i| i.marked || !any_marked)
        .copied()
        .collect();
    items.sort_by_key(|i| (i.start, i.end));
    // Character offsets of every item boundary, counted once along the text.
    let mut bounds: Vec<usize> = items.iter().flat_map(|i| [i.start, i.end]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut chars = Vec::with_capacity(bounds.len());
    let (mut byte, mut count) = (0, 0);
    for &b in &bounds {
        count += text[byte..b].chars().count();
        byte = b;
        chars.push(count);
    }
    let char_at = |b: usize| bounds.binary_search(&b).map_or(0, |i| chars[i]);
    let (mut best, mut best_weight, mut best_last) = (0, 0, 0);
    for (i, first) in items.iter().enumerate() {
        let limit = char_at(first.start) + max_chars;
        let mut weight = 0;
        let mut last = first.end;
        for item in items[i..].iter().take_while(|x| char_at(x.start) < limit) {
            if char_at(item.end) <= limit {
                weight += item.weight;
                last = last.max(item.end);
            }
        }
        if weight > best_weight {
            (best, best_weight, best_last) = (i, weight, last);
        }
    }
    let first = items[best].start;
    let span = char_at(best_last).saturating_sub(char_at(first));
    let before = (max_chars.saturating_sub(span) / 2).min(CONTEXT_BEFORE);
    let earliest = back_chars(text, first, before);
    let (start, whole) = if earliest == 0 {
        (0, true)
    } else if let Some(s) = sentence_start(&text[earliest..first]) {
        (earliest + s, true)
    } else {
        let word = text[earliest..first]
            .find(char::is_whitespace)
            .map_or(first, |i| earliest + i + 1);
        (word, false)
    };
    let mut end = forward_chars(text, start, max_chars).max(best_last);
    if end < text.len() {
        // After a sentence when one ends late enough in the window, else after a word.
        let window = &text[best_last..end];
        let late = (start + (end - start) * 3 / 5).saturating_sub(best_last);
        end = best_last
            + sentence_end(window)
                .filter(|i| *i >= late)
                .or_else(|| window.rfind(char::is_whitespace))
                .unwrap_or(window.len());
    }
    (start, end, whole)
}

fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

/// The byte offset just after the first sentence end (". ", "! ", "? ") in `head`.
fn sentence_start(head: &str) -> Option<usize> {
    head.char_indices()
        .zip(head.chars().skip(1))
        .find(|((_, c), next)| ends_sentence(*c) && *next == ' ')
        .map(|((i, c), _)| i + c.len_utf8() + 1)
}

/// The byte offset just after the last sentence end followed by a space in `window`.
fn sentence_end(window: &str) -> Option<usize> {
    window
        .char_indices()
        .zip(window.chars().skip(1))
        .filter(|((_, c), next)| ends_sentence(*c) && *next == ' ')
        .last()
        .map(|((i, c), _)| i + c.len_utf8())
}

fn back_chars(text: &str, byte: usize, n: usize) -> usize {
    text[..byte]
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| if n == 0 { byte } else { i })
}

fn forward_chars(text: &str, byte: usize, n: usize) -> usize {
    text[byte..]
        .char_indices()
        .nth(n)
        .map_or(text.len(), |(i, _)| byte + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query::parse;

    fn marked(text: &str, query: &str, vietnamese: bool) -> Vec<String> {
        snippet(text, &parse(query), vietnamese, 220)
            .map(|s| {
                s.pieces
                    .into_iter()
                    .filter(|p| p.hit)
                    .map(|p| p.text)
                    .collect()
            })
            .unwrap_or_default()
    }

    const TEXT: &str = "Chỉ số Sợ hãi & Tham lam lên 72. Lạm phát tại Mỹ hạ nhiệt, \
                        các dự án phát triển. Nhà đầu tư làm gì?";

    #[test]
    fn groups_are_marked_whole_and_lone_syllables_not() {
        assert_eq!(marked(TEXT, "lạm phát", true), vec!["Lạm phát"]);
        assert_eq!(marked(TEXT, "lam phat", true), vec!["Lạm phát"]);
        assert_eq!(marked(TEXT, "\"lam phat\"", true), vec!["Lạm phát"]);
        assert_eq!(marked(TEXT, "tham lam", true), vec!["Tham lam"]);
        // A word on its own is a word: marked wherever it is, with its accents if typed so.
        assert_eq!(marked(TEXT, "làm", true), vec!["làm"]);
        assert_eq!(marked(TEXT, "lam", true), vec!["lam", "Lạm", "làm"]);
        // Only apart: nothing marked in Vietnamese, the words marked in English.
        let apart = "Greed is back at 72. Inflation cooled while projects kept growing.";
        assert!(marked("Tham lam trở lại. Các dự án phát triển.", "lam phat", true).is_empty());
        assert_eq!(
            marked(apart, "greed growing", false),
            vec!["Greed", "growing"]
        );
        assert_eq!(
            marked(apart, "inflation cooled", false),
            vec!["Inflation cooled"]
        );
    }

    #[test]
    fn the_passage_is_where_the_group_is() {
        let filler = "Thị trường đi ngang trong phiên, khối lượng thấp. ".repeat(40);
        let text = format!(
            "Chỉ số Tham lam giữ ở 70, phát hành thêm USDT. {filler}Lạm phát tại Mỹ giảm còn 2,4%."
        );
        let s = snippet(&text, &parse("lạm phát"), true, 220).expect("snippet");
        assert!(
            s.text().contains("Lạm phát tại Mỹ giảm còn 2,4%."),
            "{}",
            s.text()
        );
        assert_eq!(
            s.pieces
                .iter()
                .filter(|p| p.hit)
                .map(|p| p.text.as_str())
                .collect::<Vec<_>>(),
            vec!["Lạm phát"]
        );
        // It starts at a sentence, and a cut text says so.
        assert!(
            s.text().starts_with("Thị trường") || s.text().starts_with("Lạm phát"),
            "{}",
            s.text()
        );
        let long = format!("{filler}lạm phát {filler}");
        let cut = snippet(&long, &parse("lam phat"), true, 220)
            .expect("snippet")
            .text();
        assert!(cut.ends_with('…') || cut.ends_with('.'), "{cut}");
        assert!(cut.chars().count() <= 224, "{cut}");
        assert_eq!(snippet(&text, &parse("zzyzx"), true, 220), None);
    }
}
