//! What the search index reads: the words of a text folded the way readers type them
//! (lowercase, without accents, so "lam phat" finds "lạm phát"), and the text of a report.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

use crate::i18n::Lang;
use crate::reports::Report;

/// Name under which [`analyzer`] is registered with the index.
pub const FOLDED: &str = "folded";
/// Longer "words" are noise (URLs, hashes, base64) and are not indexed.
const LONGEST_WORD: usize = 40;

/// Words split on anything but letters, digits and combining marks, each then lowercased and
/// folded to ASCII.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Words::default())
        .filter(RemoveLongFilter::limit(LONGEST_WORD))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// A combining mark (U+0300-U+036F): Vietnamese typed in decomposed form ("a" + U+0323)
/// keeps its words whole, and the mark is dropped from the indexed word.
fn is_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

fn in_word(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

/// The word splitter: offsets point into the original text (snippets highlight there).
#[derive(Clone, Default)]
pub struct Words {
    token: Token,
}

pub struct WordStream<'a> {
    text: &'a str,
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            at: 0,
            token: &mut self.token,
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        let rest = &self.text[self.at..];
        let Some(start) = rest
            .char_indices()
            .find(|(_, c)| in_word(*c))
            .map(|(i, _)| i)
        else {
            self.at = self.text.len();
            return false;
        };
        let from = self.at + start;
        let len = self.text[from..]
            .char_indices()
            .find(|(_, c)| !in_word(*c))
            .map_or(self.text.len() - from, |(i, _)| i);
        let to = from + len;
        self.at = to;
        self.token.text.clear();
        self.token
            .text
            .extend(self.text[from..to].chars().filter(|c| !is_mark(*c)));
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.token.position.wrapping_add(1);
        true
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
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = String::new();
    while let Some(t) = stream.next() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&t.text);
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
    pub fn of(report: &Report) -> ReportText {
        let side = |lang: Lang| {
            let lead = report.lead(lang);
            Side {
                title: report.title(lang, &lead),
                body: tidy(&crate::reports::plain_text(report.html(lang))),
            }
        };
        ReportText {
            vi: side(Lang::Vi),
            en: report.has_english().then(|| side(Lang::En)),
        }
    }
}

/// Removes the space that tags leave before closing punctuation ("44 , right" -> "44, right"):
/// snippets read as the page does.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' '
            && chars
                .peek()
                .is_some_and(|n| matches!(n, ',' | '.' | ';' | ':' | '!' | '?' | ')' | '%'))
        {
            continue;
        }
        out.push(c);
    }
    out
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
        assert_eq!(
            tidy("rose to 44 , right . Up 3 %"),
            "rose to 44, right. Up 3%"
        );
    }

    #[test]
    fn offsets_point_into_the_original_text() {
        let mut a = analyzer();
        let mut s = a.token_stream("Giá lạm phát");
        let mut seen = Vec::new();
        while let Some(t) = s.next() {
            seen.push((t.text.clone(), t.offset_from, t.offset_to));
        }
        assert_eq!(
            seen,
            vec![
                ("gia".into(), 0, 4),
                ("lam".into(), 5, 10),
                ("phat".into(), 11, 16)
            ]
        );
    }
}
