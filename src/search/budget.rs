//! What one query may spend: a deadline, and a cancellation its request holds (answered 408,
//! or the client went away). Both are checked as documents are scored, so a query past either
//! stops within a few documents instead of running to the end for nobody.

use tantivy::query::{EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// Documents scored between two looks at the clock and the flag.
const CHECK_EVERY: u32 = 32;

pub use crate::workers::{Budget, Stopped};

/// `inner`, scored under `budget`: once the budget is spent every scorer of it ends, and the
/// search returns what it had (the caller asks the budget whether it stopped early).
#[derive(Debug)]
pub struct Budgeted {
    inner: Box<dyn Query>,
    budget: Budget,
}

impl Clone for Budgeted {
    fn clone(&self) -> Budgeted {
        Budgeted {
            inner: self.inner.box_clone(),
            budget: self.budget.clone(),
        }
    }
}

impl Budgeted {
    pub fn new(inner: Box<dyn Query>, budget: Budget) -> Budgeted {
        Budgeted { inner, budget }
    }
}

impl Query for Budgeted {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(BudgetedWeight {
            inner: self.inner.weight(scoring)?,
            budget: self.budget.clone(),
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor);
    }
}

struct BudgetedWeight {
    inner: Box<dyn Weight>,
    budget: Budget,
}

// Only `scorer` is wrapped: tantivy's counting and collecting (`count`, `for_each`,
// `for_each_pruning`) all drive the scorer this returns.
impl Weight for BudgetedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        if self.budget.check().is_err() {
            return Ok(Box::new(EmptyScorer));
        }
        Ok(Box::new(BudgetedScorer {
            inner: self.inner.scorer(reader, boost)?,
            budget: self.budget.clone(),
            steps: 0,
            stopped: false,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.inner.explain(reader, doc)
    }
}

struct BudgetedScorer {
    inner: Box<dyn Scorer>,
    budget: Budget,
    steps: u32,
    stopped: bool,
}

impl BudgetedScorer {
    fn spent(&mut self) -> bool {
        if !self.stopped {
            self.steps = self.steps.wrapping_add(1);
            if self.steps.is_multiple_of(CHECK_EVERY) && self.budget.check().is_err() {
                self.stopped = true;
            }
        }
        self.stopped
    }
}

impl DocSet for BudgetedScorer {
    fn advance(&mut self) -> DocId {
        if self.spent() {
            return TERMINATED;
        }
        self.inner.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.spent() {
            return TERMINATED;
        }
        self.inner.seek(target)
    }

    fn doc(&self) -> DocId {
        if self.stopped {
            TERMINATED
        } else {
            self.inner.doc()
        }
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for BudgetedScorer {
    fn score(&mut self) -> Score {
        self.inner.score()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tantivy::collector::Count;
    use tantivy::query::AllQuery;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, doc};

    fn index(docs: usize) -> Index {
        let mut schema = Schema::builder();
        let body = schema.add_text_field("body", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        for _ in 0..docs {
            writer.add_document(doc!(body => "word")).expect("add");
        }
        writer.commit().expect("commit");
        index
    }

    #[test]
    fn a_budget_left_counts_everything() {
        let index = index(1000);
        let searcher = index.reader().expect("reader").searcher();
        let q = Budgeted::new(Box::new(AllQuery), Budget::of(Duration::from_secs(60)));
        assert_eq!(searcher.search(&q, &Count).expect("search"), 1000);
    }

    #[test]
    fn a_cancelled_query_stops_within_a_check() {
        let index = index(1000);
        let searcher = index.reader().expect("reader").searcher();
        let budget = Budget::of(Duration::from_secs(60));
        let q = Budgeted::new(Box::new(AllQuery), budget.clone());
        budget.cancel();
        assert_eq!(searcher.search(&q, &Count).expect("search"), 0);
        assert_eq!(budget.check(), Err(Stopped::Cancelled));
    }

    #[test]
    fn a_query_out_of_time_stops_early() {
        let index = index(1000);
        let searcher = index.reader().expect("reader").searcher();
        let budget = Budget::of(Duration::ZERO);
        let q = Budgeted::new(Box::new(AllQuery), budget.clone());
        assert_eq!(searcher.search(&q, &Count).expect("search"), 0);
        assert_eq!(budget.check(), Err(Stopped::OutOfTime));
    }
}
