//! Phrases (words side by side). A quoted phrase filters, and a phrase left out excludes,
//! with the set of documents holding it over the whole index ([`Holding`]); the words a reader
//! typed side by side rank the query's best-scored matches, each looked at on its own
//! ([`Ranking`]).
//!
//! A phrase is evaluated on its own, never inside tantivy's boolean intersections and
//! exclusions: tantivy 0.27's phrase scorer asserts a stricter seek order than those follow
//! (quickwit-oss/tantivy#2811).

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::index::SegmentId;
use tantivy::query::doc_predicate_query::{
    ConstOrVariableSegmentPredicate, DocPredicate, DocPredicateQuery, SegmentDocPredicate,
};
use tantivy::query::{AllScorer, EnableScoring, PhraseQuery, Query, Scorer};
use tantivy::{
    BitSet, DocAddress, DocId, DocSet, Score, Searcher, SeekDangerResult, SegmentReader,
    TERMINATED, Term,
};

use super::budget::Budget;

/// The documents holding one phrase, by segment (a segment holding none is absent).
#[derive(Debug)]
pub struct Holding(HashMap<SegmentId, Arc<BitSet>>);

impl Holding {
    /// The documents of `searcher` holding `terms` side by side, in this order.
    pub fn of(searcher: &Searcher, terms: Vec<Term>) -> tantivy::Result<Holding> {
        let weight =
            PhraseQuery::new(terms).weight(EnableScoring::disabled_from_searcher(searcher))?;
        let mut sets = HashMap::new();
        for reader in searcher.segment_readers() {
            let mut scorer = weight.scorer(reader, 1.0)?;
            let mut set = BitSet::with_max_value(reader.max_doc());
            let mut doc = scorer.doc();
            let mut any = false;
            while doc != TERMINATED {
                set.insert(doc);
                any = true;
                doc = scorer.advance();
            }
            if any {
                sets.insert(reader.segment_id(), Arc::new(set));
            }
        }
        Ok(Holding(sets))
    }

    fn segment(&self, reader: &SegmentReader) -> Option<Arc<BitSet>> {
        self.0.get(&reader.segment_id()).cloned()
    }

    /// A query matching the documents that hold the phrase (`holding`) or those that do not.
    pub fn filter(self, holding: bool) -> Box<dyn Query> {
        Box::new(DocPredicateQuery::from(Filter {
            holding: Arc::new(self),
            wanted: holding,
        }))
    }
}

#[derive(Debug)]
struct Filter {
    holding: Arc<Holding>,
    wanted: bool,
}

struct Member {
    set: Arc<BitSet>,
    wanted: bool,
}

impl SegmentDocPredicate for Member {
    fn eval(&mut self, doc: DocId) -> bool {
        self.set.contains(doc) == self.wanted
    }

    fn cost(&self) -> u64 {
        1
    }
}

impl DocPredicate for Filter {
    type SegmentDocPredicate = Member;

    fn doc_predicate(
        &self,
        reader: &SegmentReader,
    ) -> tantivy::Result<ConstOrVariableSegmentPredicate<Member>> {
        Ok(match self.holding.segment(reader) {
            // No document of the segment holds it.
            None => ConstOrVariableSegmentPredicate::Const(!self.wanted),
            Some(set) => ConstOrVariableSegmentPredicate::Variable {
                predicate: Member {
                    set,
                    wanted: self.wanted,
                },
                necessary_condition: Box::new(AllScorer::new(reader.max_doc())),
            },
        })
    }
}

/// The phrases that rank a query's best-scored matches: every group typed side by side
/// (`groups`) and, inside long groups, pairs of words (`pairs`). A phrase is looked for in
/// those matches only, each on its own (see [`Ranking::rank`]): evaluating it over the whole
/// index would read the positions of its words in every report holding them, which grows
/// with the archive.
#[derive(Debug)]
pub struct Ranking {
    groups: Vec<Vec<Term>>,
    pairs: Vec<Vec<Term>>,
}

impl Ranking {
    pub fn new(groups: Vec<Vec<Term>>, pairs: Vec<Vec<Term>>) -> Ranking {
        Ranking { groups, pairs }
    }

    /// `best` (by score, best first) in the order a reader sees them: those holding every
    /// group together first, then by how many of the groups and pairs they hold together,
    /// then as they were; each with whether it holds some group only apart. The pairs are
    /// looked for only when fewer than `wanted` hold every group together: they order the
    /// others only. Stops between two phrases once `budget` is spent (the caller asks the
    /// budget whether it stopped early).
    pub fn rank(
        &self,
        searcher: &Searcher,
        best: Vec<(Score, DocAddress)>,
        wanted: usize,
        budget: &Budget,
    ) -> tantivy::Result<Vec<(Score, DocAddress, bool)>> {
        let docs: Vec<DocAddress> = best.iter().map(|(_, a)| *a).collect();
        let mut count = vec![0u16; docs.len()];
        let all = vec![true; docs.len()];
        for group in &self.groups {
            if budget.check().is_err() {
                return Ok(Vec::new());
            }
            add(&mut count, &holding(searcher, group, &docs, &all)?);
        }
        let groups = u16::try_from(self.groups.len()).unwrap_or(u16::MAX);
        let together: Vec<bool> = count.iter().map(|c| *c == groups).collect();
        let apart: Vec<bool> = together.iter().map(|t| !t).collect();
        if together.iter().filter(|t| **t).count() < wanted {
            for pair in &self.pairs {
                if budget.check().is_err() {
                    return Ok(Vec::new());
                }
                add(&mut count, &holding(searcher, pair, &docs, &apart)?);
            }
        }
        let mut ranked: Vec<(usize, (Score, DocAddress))> = best.into_iter().enumerate().collect();
        // Stable: equal ranks keep the score's order.
        ranked.sort_by_key(|(i, _)| std::cmp::Reverse((together[*i], count[*i])));
        Ok(ranked
            .into_iter()
            .map(|(i, (score, address))| (score, address, !together[i]))
            .collect())
    }
}

fn add(count: &mut [u16], held: &[bool]) {
    for (c, h) in count.iter_mut().zip(held) {
        *c = c.saturating_add(u16::from(*h));
    }
}

/// Which of `docs` hold `terms` side by side, among those `asked` (the others are `false`).
fn holding(
    searcher: &Searcher,
    terms: &[Term],
    docs: &[DocAddress],
    asked: &[bool],
) -> tantivy::Result<Vec<bool>> {
    let weight =
        PhraseQuery::new(terms.to_vec()).weight(EnableScoring::disabled_from_searcher(searcher))?;
    // Each segment's documents in order: a scorer only moves forward.
    let mut order: Vec<usize> = (0..docs.len()).filter(|&i| asked[i]).collect();
    order.sort_unstable_by_key(|&i| (docs[i].segment_ord, docs[i].doc_id));
    let mut held = vec![false; docs.len()];
    for segment in order.chunk_by(|&a, &b| docs[a].segment_ord == docs[b].segment_ord) {
        let [first, rest @ ..] = segment else {
            continue;
        };
        let first = *first;
        let reader = searcher.segment_reader(docs[first].segment_ord);
        let (found, scorer) = weight.scorer_danger(reader, docs[first].doc_id, 1.0)?;
        let mut holds = Holds { scorer, floor: 0 };
        held[first] = holds.after(docs[first].doc_id, found);
        for &i in rest {
            held[i] = holds.contains(docs[i].doc_id);
        }
    }
    Ok(held)
}

/// One phrase's documents in one segment, asked about in increasing order.
struct Holds {
    /// Made at the first document asked about (tantivy's `scorer_danger`): it does not look
    /// for the phrase before that.
    scorer: Box<dyn Scorer>,
    /// No document from the last one asked about up to this one holds the phrase, and the
    /// scorer is not past it.
    floor: DocId,
}

impl Holds {
    /// Whether `doc` holds the phrase; `doc` above the one asked about before.
    fn contains(&mut self, doc: DocId) -> bool {
        if doc < self.floor {
            return false;
        }
        // Positions are read for this document only; a miss leaves the scorer between
        // documents, which only further `seek_danger` calls may follow.
        let found = self.scorer.seek_danger(doc);
        self.after(doc, found)
    }

    fn after(&mut self, doc: DocId, found: SeekDangerResult) -> bool {
        match found {
            SeekDangerResult::Found => {
                self.floor = doc + 1;
                true
            }
            SeekDangerResult::SeekLowerBound(next) => {
                self.floor = next;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tantivy::collector::DocSetCollector;
    use tantivy::query::TermQuery;
    use tantivy::schema::{Field, IndexRecordOption, Schema, TEXT};
    use tantivy::{Index, TantivyDocument};

    use super::*;

    /// An index of `segments`, each a list of texts, in one field with positions.
    fn index(segments: &[&[&str]]) -> (Index, Field) {
        let mut schema = Schema::builder();
        let text = schema.add_text_field("text", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        let mut n = 0;
        for docs in segments {
            for doc in *docs {
                let mut d = TantivyDocument::default();
                d.add_text(text, format!("n{n} {doc}"));
                n += 1;
                writer.add_document(d).expect("add");
            }
            writer.commit().expect("commit");
        }
        (index, text)
    }

    fn terms(field: Field, words: &str) -> Vec<Term> {
        words
            .split(' ')
            .map(|w| Term::from_field_text(field, w))
            .collect()
    }

    /// Every document of `searcher`, in the order they were added (each holds its number
    /// as a word: "n0", "n1"...).
    fn all(searcher: &Searcher, field: Field) -> Vec<DocAddress> {
        (0..searcher.num_docs())
            .map(|n| {
                let q = TermQuery::new(
                    Term::from_field_text(field, &format!("n{n}")),
                    IndexRecordOption::Basic,
                );
                let found = searcher.search(&q, &DocSetCollector).expect("search");
                assert_eq!(found.len(), 1);
                found.into_iter().next().expect("one")
            })
            .collect()
    }

    #[test]
    fn a_phrase_is_looked_for_in_the_documents_asked_about_only() {
        // Three segments; "a b" together in documents 1, 3, 5, 6 and 10 (counting across
        // them). In the third, the first document asked about puts the phrase's scorer past
        // the second one (the scorer is asked about no document below where it is).
        let (index, field) = index(&[
            &["x b a", "x a b", "x a c b", "x c a b"],
            &["x a", "x b a b", "x z a b", "x b"],
            &["x a", "x a", "x a b"],
        ]);
        let searcher = index.reader().expect("reader").searcher();
        let docs = all(&searcher, field);
        assert_eq!(docs.len(), 11);
        let phrase = terms(field, "a b");
        // Asked in any order, across segments, before and after every match, some skipped.
        let asked_order = [7, 0, 9, 5, 3, 1, 10, 6, 8, 2, 4];
        let asked_docs: Vec<DocAddress> = asked_order.iter().map(|&i| docs[i]).collect();
        let asked: Vec<bool> = asked_order.iter().map(|&i| i != 3).collect();
        let held = holding(&searcher, &phrase, &asked_docs, &asked).expect("holding");
        let by_doc: Vec<(usize, bool)> = asked_order.iter().copied().zip(held).collect();
        assert_eq!(
            by_doc,
            vec![
                (7, false),
                (0, false),
                (9, false),
                (5, true),
                (3, false), // holds it, but was not asked about
                (1, true),
                (10, true),
                (6, true),
                (8, false),
                (2, false),
                (4, false),
            ]
        );
        // A phrase no document holds, and one whose words are in no document.
        let none = holding(&searcher, &terms(field, "b c"), &docs, &[true; 11]).expect("none");
        assert_eq!(none, vec![false; 11]);
        let absent = holding(&searcher, &terms(field, "q r"), &docs, &[true; 11]).expect("absent");
        assert_eq!(absent, vec![false; 11]);
    }

    #[test]
    fn ranks_by_groups_together_then_pairs_then_the_order_given() {
        // The query's groups: "a b c" and "d e"; its pairs (inside "a b c"): "a b", "b c".
        let (index, field) = index(&[
            &[
                "x a b c d e",   // 0: both groups together
                "x a b z c d e", // 1: "d e" together, "a b" too
                "x c b a e d",   // 2: nothing together
            ],
            &[
                "x d e a b c",       // 3: both groups together
                "x a z b c z d z e", // 4: the pair "b c" together
                "x a b c e d",       // 5: "a b c" together, "d e" apart
            ],
        ]);
        let searcher = index.reader().expect("reader").searcher();
        let docs = all(&searcher, field);
        let ranking = Ranking::new(
            vec![terms(field, "a b c"), terms(field, "d e")],
            vec![terms(field, "a b"), terms(field, "b c")],
        );
        // As a score would order them.
        let best: Vec<(Score, DocAddress)> = [2, 4, 5, 1, 3, 0]
            .iter()
            .enumerate()
            .map(|(rank, &i)| (10.0 - rank as f32, docs[i]))
            .collect();
        let order = |wanted: usize| -> Vec<(usize, bool)> {
            ranking
                .rank(
                    &searcher,
                    best.clone(),
                    wanted,
                    &Budget::of(Duration::from_secs(60)),
                )
                .expect("rank")
                .into_iter()
                .map(|(_, a, apart)| (docs.iter().position(|d| *d == a).expect("doc"), apart))
                .collect()
        };
        // Together first, by score; then by groups and pairs held together (1: one group and
        // one pair; 5: one group and both pairs, 4: one pair), then by score.
        assert_eq!(
            order(10),
            vec![
                (3, false),
                (0, false),
                (5, true),
                (1, true),
                (4, true),
                (2, true)
            ]
        );
        // A page the reports holding every group together fill: the pairs are not looked
        // for, and the rest keep their groups' order and then the score's.
        assert_eq!(
            order(2),
            vec![
                (3, false),
                (0, false),
                (5, true),
                (1, true),
                (2, true),
                (4, true)
            ]
        );
        // A spent budget stops the ranking before the first phrase.
        let spent = Budget::of(Duration::ZERO);
        assert!(spent.check().is_err());
        let stopped = ranking
            .rank(&searcher, best.clone(), 10, &spent)
            .expect("rank");
        assert!(stopped.is_empty());
    }
}
