//! What a reader typed, read the way the index reads text: groups of words typed side by
//! side (a quoted phrase, or a run of words), each word matched with its accents when it was
//! typed with them and folded when it was not; a leading `-` leaves a word or a phrase out.
//! A group of several words is matched side by side in the text: a quoted one only so, an
//! unquoted one ranks the reports holding it together above those holding its words apart.

use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::phrases::{Holding, Ranking};
use super::text::{forms, next_word};

/// A title match counts this much more than one in the body.
const TITLE_BOOST: f32 = 2.0;
/// Pairs of words inside groups of three or more that rank reports holding some of a group
/// together above those holding none; the rest are not looked at (each costs a pass).
const MAX_PAIRS: usize = 8;
/// Words of a query that are looked at; the rest are ignored (a query is a reader's words,
/// and every word costs a posting list and a mark test).
pub const MAX_WORDS: usize = 32;

/// One word of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub folded: String,
    /// The accented form, when the reader typed the word with accents.
    pub exact: Option<String>,
}

impl Word {
    /// The indexed form this word is matched against.
    pub fn term_text(&self) -> &str {
        self.exact.as_deref().unwrap_or(&self.folded)
    }

    /// Whether a word of the text (its folded and accented forms) is this word.
    pub fn matches(&self, folded: &str, exact: &str) -> bool {
        match &self.exact {
            Some(e) => e == exact,
            None => self.folded == folded,
        }
    }
}

/// Words typed side by side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub words: Vec<Word>,
    /// Typed in quotes: only the words side by side count.
    pub quoted: bool,
}

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub groups: Vec<Group>,
    pub excluded: Vec<Group>,
}

/// A [`Parsed`] query as tantivy runs it: the query, and how to rank its hits when some
/// group of several unquoted words could be apart in them.
pub struct Plan {
    pub query: Box<dyn Query>,
    pub ranking: Option<Ranking>,
}

/// The fields a query reads.
#[derive(Clone, Copy)]
pub struct Targets {
    pub all: Field,
    pub titles: [Field; 2],
}

/// Reads a reader's query. Syntax they get wrong is read as words: an unclosed quote is
/// ignored, and a `-` inside a word is part of it.
pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut run = String::new();
    let mut budget = MAX_WORDS;
    let mut flush = |run: &mut String, parsed: &mut Parsed, quoted: bool, excluded: bool| {
        let words = words_of(run, &mut budget);
        run.clear();
        if words.is_empty() {
            return;
        }
        let group = Group { words, quoted };
        if excluded {
            parsed.excluded.push(group);
        } else {
            parsed.groups.push(group);
        }
    };
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let Some(c) = rest.chars().next() else {
            break;
        };
        let starts_chunk = text[..at]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        let negated = c == '-'
            && starts_chunk
            && rest[1..]
                .chars()
                .next()
                .is_some_and(|n| n == '"' || n.is_alphanumeric());
        let body = if negated { &rest[1..] } else { rest };
        if body.starts_with('"')
            && let Some(close) = body[1..].find('"')
        {
            flush(&mut run, &mut parsed, false, false);
            let mut phrase = body[1..1 + close].to_owned();
            flush(&mut phrase, &mut parsed, true, negated);
            at += (rest.len() - body.len()) + close + 2;
            continue;
        }
        if negated {
            flush(&mut run, &mut parsed, false, false);
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            let mut word = body[..end].to_owned();
            flush(&mut word, &mut parsed, false, true);
            at += 1 + end;
            continue;
        }
        match c {
            // A list of words, not words side by side.
            ',' | ';' => flush(&mut run, &mut parsed, false, false),
            '"' => run.push(' '),
            _ => run.push(c),
        }
        at += c.len_utf8();
    }
    flush(&mut run, &mut parsed, false, false);
    parsed
}

/// The words of `text`, at most `budget` more of them.
fn words_of(text: &str, budget: &mut usize) -> Vec<Word> {
    let (mut folded, mut exact) = (String::new(), String::new());
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((from, to)) = next_word(text, at) {
        at = to;
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let accented = forms(&text[from..to], &mut folded, &mut exact);
        out.push(Word {
            folded: folded.clone(),
            exact: accented.then(|| exact.clone()),
        });
    }
    out
}

impl Parsed {
    /// Nothing to look for (no word, or only words left out).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every word looked for, each once.
    pub fn words(&self) -> impl Iterator<Item = &Word> {
        let mut seen = std::collections::HashSet::new();
        self.groups
            .iter()
            .flat_map(|g| &g.words)
            .filter(move |w| seen.insert(w.term_text()))
    }

    /// The query to run over `searcher`, `filter` (a date range) applied: every word looked
    /// for is in the report (quoted ones side by side), no word left out is.
    pub fn plan(
        &self,
        searcher: &Searcher,
        fields: Targets,
        filter: Option<Box<dyn Query>>,
    ) -> tantivy::Result<Plan> {
        let terms = |words: &[Word]| -> Vec<Term> {
            words
                .iter()
                .map(|w| Term::from_field_text(fields.all, w.term_text()))
                .collect()
        };
        let term_query = |field: Field, w: &Word| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, w.term_text()),
                IndexRecordOption::WithFreqs,
            ))
        };
        let titles: Vec<(Occur, Box<dyn Query>)> = self
            .words()
            .flat_map(|w| fields.titles.map(|f| (Occur::Should, term_query(f, w))))
            .collect();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(BooleanQuery::new(titles)),
                TITLE_BOOST,
            )),
        )];
        clauses.extend(
            self.words()
                .map(|w| (Occur::Must, term_query(fields.all, w))),
        );
        for g in self.groups.iter().filter(|g| g.quoted && g.words.len() > 1) {
            let holding = Holding::of(searcher, terms(&g.words))?;
            clauses.push((Occur::Must, holding.filter(true)));
        }
        for g in &self.excluded {
            if let [w] = g.words.as_slice() {
                clauses.push((Occur::MustNot, term_query(fields.all, w)));
            } else {
                let holding = Holding::of(searcher, terms(&g.words))?;
                clauses.push((Occur::Must, holding.filter(false)));
            }
        }
        if let Some(f) = filter {
            clauses.push((Occur::Must, f));
        }
        let loose: Vec<&Group> = self
            .groups
            .iter()
            .filter(|g| !g.quoted && g.words.len() > 1)
            .collect();
        let ranking = if loose.is_empty() {
            None
        } else {
            let pairs = loose
                .iter()
                .filter(|g| g.words.len() > 2)
                .flat_map(|g| g.words.windows(2))
                .take(MAX_PAIRS)
                .map(terms)
                .collect();
            Some(Ranking::new(
                loose.iter().map(|g| terms(&g.words)).collect(),
                pairs,
            ))
        };
        Ok(Plan {
            query: Box::new(BooleanQuery::new(clauses)),
            ranking,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(g: &Group) -> Vec<&str> {
        g.words.iter().map(|w| w.folded.as_str()).collect()
    }

    /// Each group as (quoted, its folded words), and the words left out.
    type Shape<'a> = (Vec<(bool, Vec<&'a str>)>, Vec<Vec<&'a str>>);

    fn shape(p: &Parsed) -> Shape<'_> {
        (
            p.groups.iter().map(|g| (g.quoted, words(g))).collect(),
            p.excluded.iter().map(words).collect(),
        )
    }

    #[test]
    fn groups_quotes_and_exclusions() {
        let p = parse("lạm phát \"Tham lam\" -etf, bitcoin-etf -\"phát hành\" \"open");
        assert_eq!(
            shape(&p),
            (
                vec![
                    (false, vec!["lam", "phat"]),
                    (true, vec!["tham", "lam"]),
                    (false, vec!["bitcoin", "etf"]),
                    (false, vec!["open"]),
                ],
                vec![vec!["etf"], vec!["phat", "hanh"]]
            )
        );
        // Accents typed are kept for matching; words typed without are folded.
        assert!(p.groups[0].words.iter().all(|w| w.exact.is_some()));
        assert!(p.groups[1].words.iter().all(|w| w.exact.is_none()));
        assert_eq!(parse("  - \"\" , ").groups, Vec::new());
        assert_eq!(
            parse(&"a ".repeat(100)).groups[0].words.len(),
            MAX_WORDS,
            "bounded"
        );
    }

    #[test]
    fn a_word_matches_with_its_accents_only_when_typed_with_them() {
        let p = parse("làm lam");
        let (mut f, mut e) = (String::new(), String::new());
        forms("lạm", &mut f, &mut e);
        assert!(!p.groups[0].words[0].matches(&f, &e));
        assert!(p.groups[0].words[1].matches(&f, &e));
        forms("LÀM", &mut f, &mut e);
        assert!(p.groups[0].words[0].matches(&f, &e));
    }
}
