//! What one query may ask for: its length, words, phrases and a phrase's slop, checked on the
//! query as the parser reads it (tantivy's query grammar) before any of it becomes work. A
//! query beyond a bound is refused with a message that says which bound and what to type.
//!
//! Why these: a sloppy phrase makes tantivy carry every position within the slop from word to
//! word, so its cost grows with the slop (`"the usd 2 1 btc 0 3 tỷ"~4294967295` took 2.4 GB
//! and 10 s on seven reports). Ranges over the words' field read every posting list in the
//! range. Words and phrases multiply what each document costs. Fuzzy matching is not enabled
//! for any field, so `word~N` is the word itself and costs nothing more.

use tantivy::query_grammar::{Delimiter, UserInputAst, UserInputLeaf, parse_query_lenient};
use tantivy::tokenizer::TokenStream;

use super::text;

/// Longest query, in characters: a reader's words, not a document.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most words in one query, over all its parts.
pub const MAX_WORDS: usize = 24;
/// Most phrases (quoted, or words joined by punctuation such as `covid-19`) in one query.
pub const MAX_PHRASES: usize = 4;
/// Largest slop of a phrase (`"lạm phát"~3`: the words at most this many positions apart).
pub const MAX_SLOP: u32 = 8;

/// Why a query is refused. The message is shown to the reader as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryProblem {
    #[error("the search is longer than {MAX_QUERY_CHARS} characters; shorten it")]
    TooLong(usize),
    #[error("the search has {0} words; at most {MAX_WORDS} are searched")]
    TooManyWords(usize),
    #[error("the search has {0} phrases; at most {MAX_PHRASES} are searched")]
    TooManyPhrases(usize),
    #[error("a phrase's ~ may be at most {MAX_SLOP} (the words at most {MAX_SLOP} apart), not {0}")]
    SlopTooLarge(u32),
    #[error(
        "ranges ([a TO b]), sets (IN [a b]), patterns (/…/) and field tests (field:*) are not part of search; type words, and use from and to for dates"
    )]
    Unsupported,
}

#[derive(Default)]
struct Tally {
    words: usize,
    phrases: usize,
}

/// Checks `text` against every bound; `Ok` means the parser may turn it into a query.
pub fn check(text: &str) -> Result<(), QueryProblem> {
    let chars = text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(QueryProblem::TooLong(chars));
    }
    let (ast, _) = parse_query_lenient(text);
    let mut tally = Tally::default();
    walk(&ast, &mut tally)?;
    if tally.words > MAX_WORDS {
        return Err(QueryProblem::TooManyWords(tally.words));
    }
    if tally.phrases > MAX_PHRASES {
        return Err(QueryProblem::TooManyPhrases(tally.phrases));
    }
    Ok(())
}

fn walk(ast: &UserInputAst, tally: &mut Tally) -> Result<(), QueryProblem> {
    match ast {
        UserInputAst::Clause(clauses) => clauses.iter().try_for_each(|(_, c)| walk(c, tally)),
        UserInputAst::Boost(inner, _) => walk(inner, tally),
        UserInputAst::Leaf(leaf) => match leaf.as_ref() {
            UserInputLeaf::Literal(literal) => {
                let words = words(&literal.phrase);
                tally.words += words;
                let quoted = literal.delimiter != Delimiter::None;
                if words > 1 || (quoted && literal.prefix) {
                    tally.phrases += 1;
                    // On one word the slop means nothing (there is no fuzzy matching).
                    if literal.slop > MAX_SLOP {
                        return Err(QueryProblem::SlopTooLarge(literal.slop));
                    }
                }
                Ok(())
            }
            // Every document: costs one pass over the ids, like a common word.
            UserInputLeaf::All => Ok(()),
            // Without a field the parser leaves these out (`price > 5` is the word "price"):
            // only a field's range, set, pattern or test reads its terms.
            UserInputLeaf::Range { field: None, .. }
            | UserInputLeaf::Set { field: None, .. }
            | UserInputLeaf::Regex { field: None, .. } => Ok(()),
            UserInputLeaf::Range { .. }
            | UserInputLeaf::Set { .. }
            | UserInputLeaf::Regex { .. }
            | UserInputLeaf::Exists { .. } => Err(QueryProblem::Unsupported),
        },
    }
}

/// The words of `phrase` as the index reads them.
fn words(phrase: &str) -> usize {
    let mut analyzer = text::analyzer();
    let mut stream = analyzer.token_stream(phrase);
    let mut n = 0;
    while stream.advance() {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readers_words_pass() {
        for ok in [
            "lạm phát",
            "\"lạm phát\"",
            "\"lạm phát mỹ\"~3",
            "bitcoin ETF -solana",
            "btc~4294967295",
            "covid-19 lãi suất",
            "(btc OR eth) AND etf",
            "\"bitcoin gi\"*",
            "*",
            "",
            "[",
            "[btc]",
            "giá: tăng",
            "price > 5",
            "(((",
            "/.*/",
            "[a TO z]",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_costs_without_bound_is_refused_with_the_bound() {
        assert_eq!(
            check("\"the usd 2 1 btc 0 3 tỷ\"~4294967295"),
            Err(QueryProblem::SlopTooLarge(4_294_967_295))
        );
        assert_eq!(
            check("\"a b\"~9"),
            Err(QueryProblem::SlopTooLarge(MAX_SLOP + 1))
        );
        assert_eq!(check("\"a b\"~8"), Ok(()));
        let words = |n: usize| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>();
        let many = words(MAX_WORDS + 1).join(" ");
        assert_eq!(check(&many), Err(QueryProblem::TooManyWords(MAX_WORDS + 1)));
        assert_eq!(check(&words(MAX_WORDS).join(" ")), Ok(()));
        // Words of phrases count too.
        let quoted = format!("\"{}\"", words(MAX_WORDS + 1).join(" "));
        assert_eq!(
            check(&quoted),
            Err(QueryProblem::TooManyWords(MAX_WORDS + 1))
        );
        let phrases = (0..=MAX_PHRASES)
            .map(|i| format!("\"a{i} b{i}\""))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            check(&phrases),
            Err(QueryProblem::TooManyPhrases(MAX_PHRASES + 1))
        );
        // Words joined by punctuation are a phrase too.
        let joined = (0..=MAX_PHRASES)
            .map(|i| format!("a{i}-b{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            check(&joined),
            Err(QueryProblem::TooManyPhrases(MAX_PHRASES + 1))
        );
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            check(&long),
            Err(QueryProblem::TooLong(MAX_QUERY_CHARS + 1))
        );
        for unsupported in [
            "all:[a TO z]",
            "title_vi:>a",
            "all: IN [a b]",
            "all:/.*/",
            "all:*",
        ] {
            assert_eq!(
                check(unsupported),
                Err(QueryProblem::Unsupported),
                "{unsupported}"
            );
        }
    }

    #[test]
    fn the_message_names_the_bound() {
        let m = check("\"a b c\"~100").expect_err("refused").to_string();
        assert!(m.contains("at most 8") && m.contains("100"), "{m}");
    }
}
