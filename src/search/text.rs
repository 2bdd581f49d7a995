//! What the search index reads: the words of a text the way readers type them, and the text
//! of a report. Vietnamese is written in syllables separated by spaces, and many syllables
//! are words of their own once accents are dropped ("lạm" of "lạm phát", "lam" of "Tham lam",
//! "làm"), so every word is indexed twice at the same position: folded (lowercase, without
//! accents: "lam phat" finds every spelling) and, when it has any, with its accents ("lạm"
//! finds only "lạm"). A query word typed with accents is matched with them, one typed without
//! is matched folded; positions let the words a reader typed side by side be matched side by
//! side.

use std::collections::HashMap;

use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use crate::i18n::Lang;
use crate::reports::{Card, Report};

/// Name under which [`analyzer`] is registered with the index.
pub const SYLLABLES: &str = "syllables";
/// Longer "words" are noise (URLs, hashes, base64) and are not indexed (bytes, folded).
const LONGEST_WORD: usize = 40;

/// The Vietnamese tone marks (huyền, sắc, ngã, hỏi, nặng). They sit on different vowels in
/// the old and the new spelling ("hoà", "hòa"), so the accented form keeps them apart from
/// the letters, at the end of the word, where both spellings agree.
const TONES: [char; 5] = ['\u{0300}', '\u{0301}', '\u{0303}', '\u{0309}', '\u{0323}'];

/// Words split on anything but letters, digits and combining marks; each word is one
/// position holding its folded form and, when different, its accented form.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::from(Words::default())
}

/// A combining mark (U+0300-U+036F): Vietnamese typed in decomposed form ("a" + U+0323)
/// keeps its words whole, and the mark is dropped from the folded word.
fn is_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

fn in_word(c: char) -> bool {
    match c {
        _ if c.is_ascii() => c.is_ascii_alphanumeric(),
        // Latin letters, Vietnamese's among them (the general lookup is slow for them).
        '\u{C0}'..='\u{24F}' => c != '×' && c != '÷',
        '\u{1E00}'..='\u{1EFF}' => true,
        _ => c.is_alphanumeric() || is_mark(c),
    }
}

/// The byte range of the next word of `text` at or after `at`.
pub(super) fn next_word(text: &str, at: usize) -> Option<(usize, usize)> {
    let rest = &text[at..];
    let start = at + rest.char_indices().find(|(_, c)| in_word(*c))?.0;
    let len = text[start..]
        .char_indices()
        .find(|(_, c)| !in_word(*c))
        .map_or(text.len() - start, |(i, _)| i);
    Some((start, start + len))
}

/// Letters compatibility decomposition leaves alone, folded the way readers type them.
fn fold_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'đ' | 'ð' => "d",
        'ø' => "o",
        'ł' => "l",
        'æ' => "ae",
        'œ' => "oe",
        'ß' => "ss",
        'ı' => "i",
        'þ' => "th",
        'ħ' => "h",
        'ŧ' => "t",
        'ŋ' => "n",
        _ => return None,
    })
}

/// Writes the folded form of `word` into `folded` and its accented form into `exact`;
/// returns whether they differ (whether the word has accents or letters beyond ASCII).
///
/// The accented form is the lowercase compatibility decomposition with the tone marks moved
/// to the end: an internal spelling, the same for precomposed and decomposed input and for
/// both places of a tone mark. Where it differs from the folded form it holds a combining
/// mark or a letter like "đ", which no folded form holds: the two never collide.
pub fn forms(word: &str, folded: &mut String, exact: &mut String) -> bool {
    folded.clear();
    exact.clear();
    if word.is_ascii() {
        folded.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        return false;
    }
    let mut tones: [Option<char>; 2] = [None; 2];
    for lower in word.chars().flat_map(char::to_lowercase) {
        decompose_compatible(lower, |c| {
            if TONES.contains(&c) {
                match tones {
                    [None, _] => tones[0] = Some(c),
                    [Some(_), None] => tones[1] = Some(c),
                    _ => {}
                }
            } else if is_combining_mark(c) {
                exact.push(c);
            } else {
                exact.push(c);
                match fold_letter(c) {
                    Some(f) => folded.push_str(f),
                    None => folded.push(c),
                }
            }
        });
    }
    exact.extend(tones.into_iter().flatten());
    folded != exact
}

/// The word splitter: offsets point into the original text (snippets mark there). Each word
/// is one position: its folded form, then its accented form at the same position when the
/// two differ. A word too long to index still takes its position, so that the words on
/// either side of it are not side by side.
#[derive(Clone, Default)]
pub struct Words {
    token: Token,
    exact: String,
    /// The forms of the words with accents met so far (a language has few syllables, and
    /// working out a word's forms costs more than looking them up), at most [`KNOWN_WORDS`].
    known: HashMap<Box<str>, Forms>,
}

/// Words with accents whose forms a tokenizer keeps; past it, it starts again.
const KNOWN_WORDS: usize = 16_384;

/// A word's folded and accented forms, and whether they differ.
#[derive(Clone)]
struct Forms {
    folded: Box<str>,
    exact: Box<str>,
    differ: bool,
}

impl Words {
    /// [`forms`] of `word` into the token's text and `exact`, looked up when known.
    fn forms(
        known: &mut HashMap<Box<str>, Forms>,
        word: &str,
        folded: &mut String,
        exact: &mut String,
    ) -> bool {
        if word.is_ascii() {
            return forms(word, folded, exact);
        }
        if let Some(f) = known.get(word) {
            folded.clear();
            folded.push_str(&f.folded);
            exact.clear();
            exact.push_str(&f.exact);
            return f.differ;
        }
        let differ = forms(word, folded, exact);
        if known.len() >= KNOWN_WORDS {
            known.clear();
        }
        known.insert(
            word.into(),
            Forms {
                folded: folded.as_str().into(),
                exact: exact.as_str().into(),
                differ,
            },
        );
        differ
    }
}

pub struct WordStream<'a> {
    text: &'a str,
    at: usize,
    token: &'a mut Token,
    exact: &'a mut String,
    known: &'a mut HashMap<Box<str>, Forms>,
    /// The accented form of the current word is still to be emitted.
    pending: bool,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            at: 0,
            token: &mut self.token,
            exact: &mut self.exact,
            known: &mut self.known,
            pending: false,
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        if self.pending {
            self.pending = false;
            std::mem::swap(&mut self.token.text, self.exact);
            return true;
        }
        loop {
            let Some((from, to)) = next_word(self.text, self.at) else {
                self.at = self.text.len();
                return false;
            };
            self.at = to;
            self.token.position = self.token.position.wrapping_add(1);
            let differs = Words::forms(
                self.known,
                &self.text[from..to],
                &mut self.token.text,
                self.exact,
            );
            if self.token.text.len() >= LONGEST_WORD {
                continue;
            }
            self.token.offset_from = from;
            self.token.offset_to = to;
            self.pending = differs;
            return true;
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// Lowercase, accent-free form of `text` as the index sees it (words joined by one space).
pub fn fold(text: &str) -> String {
    let (mut out, mut folded, mut exact) = (String::new(), String::new(), String::new());
    let mut at = 0;
    while let Some((from, to)) = next_word(text, at) {
        at = to;
        forms(&text[from..to], &mut folded, &mut exact);
        if folded.len() >= LONGEST_WORD {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&folded);
    }
    out
}

/// One language of a report as the index keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Side {
    pub title: String,
    pub body: String,
}

/// The searchable text of a report: Vietnamese, and English when it has its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportText {
    pub vi: Side,
    pub en: Option<Side>,
}

impl ReportText {
    /// The text of `report`, whose card is `card` (its titles: the report is not parsed
    /// for them again).
    pub fn of(report: &Report, card: &Card) -> ReportText {
        let side = |lang: Lang| Side {
            title: card.title(lang),
            body: crate::reports::readable_text(report.html(lang)),
        };
        ReportText {
            vi: side(Lang::Vi),
            en: report.has_english().then(|| side(Lang::En)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_fold_away() {
        assert_eq!(fold("Lạm phát TĂNG, đồng USD"), "lam phat tang dong usd");
        // Decomposed marks (as some keyboards type them) fold to the same words.
        assert_eq!(fold("la\u{0323}m pha\u{0301}t"), "lam phat");
        assert_eq!(fold("ETF-flows: 1.3%"), "etf flows 1 3");
    }

    #[test]
    fn no_space_before_punctuation() {
        let tidy = crate::reports::readable_text;
        assert_eq!(
            tidy("rose to <b>44</b> , right . Up 3 %"),
            "rose to 44, right. Up 3%"
        );
        assert_eq!(tidy("lạm phát&nbsp;, giá ) ? x"), "lạm phát, giá)? x");
        assert_eq!(tidy(" ."), ".");
    }

    #[test]
    fn each_word_is_one_position_folded_and_accented() {
        let mut a = analyzer();
        let mut s = a.token_stream("Giá lạm phát, USD");
        let mut seen = Vec::new();
        while let Some(t) = s.next() {
            seen.push((t.text.clone(), t.offset_from, t.offset_to, t.position));
        }
        assert_eq!(
            seen,
            vec![
                ("gia".into(), 0, 4, 0),
                ("gia\u{301}".into(), 0, 4, 0),
                ("lam".into(), 5, 10, 1),
                ("lam\u{323}".into(), 5, 10, 1),
                ("phat".into(), 11, 16, 2),
                ("phat\u{301}".into(), 11, 16, 2),
                ("usd".into(), 18, 21, 3),
            ]
        );
    }

    fn exact(word: &str) -> String {
        let (mut folded, mut exact) = (String::new(), String::new());
        forms(word, &mut folded, &mut exact);
        exact
    }

    #[test]
    fn accented_forms_agree_across_spellings_and_keep_tones_apart() {
        // Precomposed, decomposed, either case, either place of the tone mark.
        assert_eq!(exact("lạm"), exact("la\u{0323}m"));
        assert_eq!(exact("LẠM"), exact("lạm"));
        assert_eq!(exact("hòa"), exact("hoà"));
        assert_eq!(exact("thủy"), exact("thuỷ"));
        // Different tones and letters stay different words.
        assert_ne!(exact("lạm"), exact("làm"));
        assert_ne!(exact("lâm"), exact("lấm"));
        assert_ne!(exact("đông"), exact("dông"));
        assert_eq!(fold("Đồng ĐÔNG dông"), "dong dong dong");
        // A word without accents has no second form; one with letters beyond ASCII that
        // do not fold is the same word either way.
        let (mut f, mut e) = (String::new(), String::new());
        assert!(!forms("Bitcoin", &mut f, &mut e));
        assert!(!forms("比特币", &mut f, &mut e));
        assert!(forms("café", &mut f, &mut e) && f == "cafe");
    }

    #[test]
    fn a_word_too_long_keeps_its_place() {
        let mut a = analyzer();
        let long = "x".repeat(LONGEST_WORD);
        let text = format!("alpha {long} beta");
        let mut s = a.token_stream(&text);
        let mut seen = Vec::new();
        while let Some(t) = s.next() {
            seen.push((t.text.clone(), t.position));
        }
        assert_eq!(seen, vec![("alpha".into(), 0), ("beta".into(), 2)]);
    }

    #[test]
    fn latin_letters_are_in_words_as_the_general_rule_says() {
        for c in ('\u{0}'..='\u{2FFF}').chain('\u{FB00}'..='\u{FB4F}') {
            assert_eq!(in_word(c), c.is_alphanumeric() || is_mark(c), "{c:?}");
        }
    }

    #[test]
    fn known_words_give_the_forms_they_were_given_first() {
        // More words with accents than a tokenizer keeps, each met twice.
        let words: Vec<String> = (0..KNOWN_WORDS + 100).map(|i| format!("Lạm{i}")).collect();
        let text = format!("{} {} Phát PHÁT đồng", words.join(" "), words.join(" "));
        let mut a = analyzer();
        let mut s = a.token_stream(&text);
        let (mut folded, mut exact) = (String::new(), String::new());
        let mut n = 0;
        while let Some(t) = s.next() {
            let (from, to) = (t.offset_from, t.offset_to);
            let word = &text[from..to];
            let differ = forms(word, &mut folded, &mut exact);
            let (text, position) = (t.text.clone(), t.position);
            assert_eq!(text, folded, "{word}");
            if differ {
                let t = s.next().expect("the accented form follows");
                assert_eq!((t.text.as_str(), t.position), (exact.as_str(), position));
            }
            n += 1;
        }
        assert_eq!(n, 2 * words.len() + 3);
    }
}
