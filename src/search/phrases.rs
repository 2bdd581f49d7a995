//! The documents holding a phrase (words side by side), per segment, as sets of document ids:
//! a quoted phrase filters with them, and a phrase left out excludes with them (the words a
//! reader typed side by side without quotes are ranked apart: see `ranking.rs`).
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
use tantivy::query::{AllScorer, EnableScoring, PhraseQuery, Query};
use tantivy::{BitSet, DocId, DocSet, Searcher, SegmentReader, TERMINATED, Term};

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
