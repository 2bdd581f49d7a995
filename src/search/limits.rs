//! What one query may ask for: its length, its words and its groups of words side by side,
//! checked on the text before any of it becomes work. A query beyond a bound is refused with
//! a message that says which bound, never cut short without a word.
//!
//! Why these: every word costs a posting list and a test of each marked passage, and every
//! group of several words is matched side by side, a pass over the positions of its words
//! (`query::Parsed::plan`). The grammar (`query::parse`) has nothing else that costs: no slop,
//! fuzzy distance, range, pattern or field test — `~`, `[`, `:` and `/` end a word like any
//! punctuation, so `"btc usd"~4294967295` is the phrase and the word 4294967295.

use super::query::{self, MAX_WORDS};
use super::text::next_word;

/// Longest query, in characters: a reader's words, not a document.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most groups of several words (quoted, or typed side by side) in one query.
pub const MAX_PHRASES: usize = 4;

/// Why a query is refused. The message is shown to the reader as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryProblem {
    #[error("the search is longer than {MAX_QUERY_CHARS} characters; shorten it")]
    TooLong(usize),
    #[error("the search has {0} words; at most {MAX_WORDS} words are searched")]
    TooManyWords(usize),
    #[error(
        "the search has {0} phrases (words typed side by side or quoted); at most {MAX_PHRASES} phrases are searched: separate words with commas to look for each on its own"
    )]
    TooManyPhrases(usize),
}

/// Checks `text`, read as `parsed`, against every bound; `Ok` means it may be searched.
pub fn check(text: &str, parsed: &query::Parsed) -> Result<(), QueryProblem> {
    let chars = text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(QueryProblem::TooLong(chars));
    }
    let mut words = 0;
    let mut at = 0;
    while let Some((_, end)) = next_word(text, at) {
        words += 1;
        at = end;
    }
    if words > MAX_WORDS {
        return Err(QueryProblem::TooManyWords(words));
    }
    let phrases = parsed
        .groups
        .iter()
        .chain(&parsed.excluded)
        .filter(|g| g.words.len() > 1)
        .count();
    if phrases > MAX_PHRASES {
        return Err(QueryProblem::TooManyPhrases(phrases));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), QueryProblem> {
        check(text, &query::parse(text))
    }

    #[test]
    fn a_readers_words_pass() {
        for ok in [
            "lạm phát",
            "\"lạm phát\"",
            "\"lạm phát mỹ\"~3",
            "bitcoin ETF -solana",
            "btc~4294967295",
            "\"the usd 2 1 btc 0 3 tỷ\"~4294967295",
            "covid-19 lãi suất",
            "(btc OR eth) AND etf",
            "\"bitcoin gi\"*",
            "*",
            "",
            "[",
            "giá: tăng",
            "price > 5",
            "(((",
            "/.*/",
            "all:[a TO z]",
        ] {
            assert_eq!(check_text(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_costs_without_bound_is_refused_with_the_bound() {
        let words = |n: usize| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>();
        let many = words(MAX_WORDS + 1).join(" ");
        assert_eq!(
            check_text(&many),
            Err(QueryProblem::TooManyWords(MAX_WORDS + 1))
        );
        assert_eq!(check_text(&words(MAX_WORDS).join(", ")), Ok(()));
        // Words of phrases and words left out count too.
        let quoted = format!("\"{}\"", words(MAX_WORDS + 1).join(" "));
        assert_eq!(
            check_text(&quoted),
            Err(QueryProblem::TooManyWords(MAX_WORDS + 1))
        );
        let excluded = format!("a -\"{}\"", words(MAX_WORDS).join(" "));
        assert_eq!(
            check_text(&excluded),
            Err(QueryProblem::TooManyWords(MAX_WORDS + 1))
        );
        let phrases = (0..=MAX_PHRASES)
            .map(|i| format!("\"a{i} b{i}\""))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            check_text(&phrases),
            Err(QueryProblem::TooManyPhrases(MAX_PHRASES + 1))
        );
        // Words typed side by side are a phrase too; a comma ends one.
        let typed = (0..=MAX_PHRASES)
            .map(|i| format!("a{i} b{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            check_text(&typed),
            Err(QueryProblem::TooManyPhrases(MAX_PHRASES + 1))
        );
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            check_text(&long),
            Err(QueryProblem::TooLong(MAX_QUERY_CHARS + 1))
        );
    }

    #[test]
    fn the_message_names_the_bound() {
        let words = (0..40).map(|i| format!("w{i}")).collect::<Vec<_>>();
        let m = check_text(&words.join(" "))
            .expect_err("refused")
            .to_string();
        assert!(m.contains("40 words") && m.contains("at most 32"), "{m}");
    }
}
