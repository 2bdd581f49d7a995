//! The documents holding a phrase (words side by side), per segment, as sets of document ids:
//! a quoted phrase filters with them, a phrase left out excludes with them, and the words a
//! reader typed side by side rank reports holding them together first.
//!
//! A phrase is evaluated on its own, never inside tantivy's boolean intersections and
//! exclusions: tantivy 0.27's phrase scorer asserts a stricter seek order than those follow
//! (quickwit-oss/tantivy#2811), and the sets serve the ranking too.

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::index::SegmentId;
use tantivy::query::doc_predicate_query::{
    ConstOrVariableSegmentPredicate, DocPredicate, DocPredicateQuery, SegmentDocPredicate,
};
use tantivy::query::{AllScorer, EnableScoring, PhraseQuery, Query};
use tantivy::{BitSet, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

/// The documents holding one phrase, by segment (a segment holding none is absent).
#[derive(Debug, Default)]
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

/// How a hit ranks: holding every group together first, then by how many of the groups and
/// word pairs it holds together, then by score.
pub type Rank = (bool, u16, Score);

/// The phrases that rank: every group typed side by side (`groups`) and, inside long groups,
/// pairs of words (`pairs`, evaluated only when a page needs them: see [`Ranking::parts`]).
#[derive(Debug, Default)]
pub struct Ranking {
    pub groups: Vec<Holding>,
    pub pairs: Vec<Vec<Term>>,
    parts: Option<Vec<Holding>>,
}

impl Ranking {
    /// At most how many documents hold every group together (filters aside).
    pub fn together_at_most(&self) -> usize {
        self.groups
            .iter()
            .map(|h| h.0.values().map(|s| s.len()).sum::<usize>())
            .min()
            .unwrap_or(0)
    }

    /// Whether the pairs are in the rank. They only order reports that hold the groups apart
    /// (one holding a group together holds its pairs together), so a page of reports holding
    /// every group together is the same without them.
    pub fn has_parts(&self) -> bool {
        self.pairs.is_empty() || self.parts.is_some()
    }

    /// Evaluates the pairs, to rank reports holding the groups apart.
    pub fn parts(&mut self, searcher: &Searcher) -> tantivy::Result<()> {
        if self.parts.is_none() {
            let parts = self
                .pairs
                .iter()
                .map(|p| Holding::of(searcher, p.clone()))
                .collect::<tantivy::Result<_>>()?;
            self.parts = Some(parts);
        }
        Ok(())
    }

    /// The rank of each document of a segment, for `TopDocs::tweak_score`.
    pub fn ranker(
        &self,
    ) -> impl Fn(&SegmentReader) -> Box<dyn Fn(DocId, Score) -> Rank + Send + Sync> + use<> {
        let sets = |h: &[Holding]| -> Vec<HashMap<SegmentId, Arc<BitSet>>> {
            h.iter().map(|h| h.0.clone()).collect()
        };
        let groups = sets(&self.groups);
        let parts = sets(self.parts.as_deref().unwrap_or_default());
        move |reader: &SegmentReader| {
            let segment = |all: &[HashMap<SegmentId, Arc<BitSet>>]| -> Vec<Option<Arc<BitSet>>> {
                all.iter()
                    .map(|m| m.get(&reader.segment_id()).cloned())
                    .collect()
            };
            let (groups, parts) = (segment(&groups), segment(&parts));
            Box::new(move |doc: DocId, score: Score| {
                let holds = |s: &Option<Arc<BitSet>>| s.as_ref().is_some_and(|s| s.contains(doc));
                let together = groups.iter().filter(|s| holds(s)).count();
                let parts = parts.iter().filter(|s| holds(s)).count();
                (
                    together == groups.len(),
                    u16::try_from(together + parts).unwrap_or(u16::MAX),
                    score,
                )
            })
        }
    }
}
