//! The order of the hits when a reader typed words side by side without quotes: reports
//! holding every such group together first, by score; then those holding some only apart, by
//! how many of the groups and of their word pairs they hold together, then by score. Ties go
//! to the lower document address, as in tantivy's own top-k.
//!
//! Whether a report holds a group together is read from that report's positions only, best
//! score first: a page of reports holding the groups together is settled once enough of the
//! best-scored matches were looked at, instead of reading the positions of every report of
//! the index that holds the words. Only a page that reaches the reports holding the words
//! apart needs every match looked at (and then only the matches, not the whole index).

use std::cmp::Ordering;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::Query;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader, Term};

use super::budget::Budget;

/// Matches looked at in the first pass, at least; each later pass looks at this many times
/// more (so a page settles in a few passes however rare the groups are together).
const FIRST_PASS: usize = 64;
const GROWTH: usize = 4;

/// The phrases that rank: every group typed side by side (`groups`) and, inside long groups,
/// pairs of words (`pairs`).
#[derive(Debug, Default)]
pub struct Ranking {
    pub groups: Vec<Vec<Term>>,
    pub pairs: Vec<Vec<Term>>,
}

/// A page of ranked hits: (score, address, holds some group only apart).
pub type Page = Vec<(Score, DocAddress, bool)>;

/// A document matching the query, and how many groups and pairs it holds together (once
/// looked at).
#[derive(Clone, Copy)]
struct Candidate {
    score: Score,
    address: DocAddress,
    groups: u16,
    pairs: u16,
}

impl Ranking {
    /// The matches of `query` (their number) and the `limit` hits from `offset` in the order
    /// of the module. Stops early, with what it has, once `budget` is spent (the caller asks
    /// the budget).
    pub fn page(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        offset: usize,
        limit: usize,
        budget: &Budget,
    ) -> tantivy::Result<(usize, Page)> {
        let mut all = searcher.search(query, &Matches)?;
        let total = all.len();
        all.sort_unstable_by(by_score);
        let n = u16::try_from(self.groups.len()).unwrap_or(u16::MAX);
        let wanted = offset.saturating_add(limit);
        let (mut looked, mut together) = (0, 0);
        let mut step = wanted.saturating_mul(2).max(FIRST_PASS);
        while looked < all.len() && together < wanted {
            if budget.check().is_err() {
                return Ok((total, Vec::new()));
            }
            let end = looked.saturating_add(step).min(all.len());
            let pass = &mut all[looked..end];
            count_held(searcher, &self.groups, pass, |c| &mut c.groups)?;
            together += pass.iter().filter(|c| c.groups == n).count();
            looked = end;
            step = step.saturating_mul(GROWTH);
        }
        let page = |ranked: &[Candidate]| -> Page {
            ranked
                .iter()
                .skip(offset)
                .take(limit)
                .map(|c| (c.score, c.address, c.groups != n))
                .collect()
        };
        if together >= wanted {
            // Every report holding the groups together ranks above every other, by score:
            // the best-scored ones looked at are the page.
            let first: Vec<Candidate> = all[..looked]
                .iter()
                .filter(|c| c.groups == n)
                .copied()
                .collect();
            return Ok((total, page(&first)));
        }
        // Every match was looked at; the page reaches reports holding groups apart, which
        // rank by the pairs too.
        if budget.check().is_err() {
            return Ok((total, Vec::new()));
        }
        let (mut apart, together_ones): (Vec<Candidate>, Vec<Candidate>) =
            all.into_iter().partition(|c| c.groups != n);
        count_held(searcher, &self.pairs, &mut apart, |c| &mut c.pairs)?;
        apart.sort_unstable_by(|a, b| {
            (b.groups + b.pairs)
                .cmp(&(a.groups + a.pairs))
                .then_with(|| by_score(a, b))
        });
        let mut ranked = together_ones;
        ranked.extend(apart);
        Ok((total, page(&ranked)))
    }
}

/// Best score first, then the lower address.
fn by_score(a: &Candidate, b: &Candidate) -> Ordering {
    b.score
        .partial_cmp(&a.score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.address.cmp(&b.address))
}

/// Adds to `count(c)` of each candidate the phrases of `phrases` it holds. Every word of
/// the phrases is in every candidate (the query asks for each), so each word's positions are
/// read once per candidate, whatever the number of phrases holding it.
fn count_held(
    searcher: &Searcher,
    phrases: &[Vec<Term>],
    candidates: &mut [Candidate],
    count: impl Fn(&mut Candidate) -> &mut u16,
) -> tantivy::Result<()> {
    let mut words: Vec<&Term> = phrases.iter().flatten().collect();
    words.sort_unstable();
    words.dedup();
    if words.is_empty() || candidates.is_empty() {
        return Ok(());
    }
    let places: Vec<Vec<usize>> = phrases
        .iter()
        .map(|p| {
            p.iter()
                .filter_map(|t| words.binary_search(&t).ok())
                .collect()
        })
        .collect();
    // Positions are read document after document, in the index's order.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_unstable_by_key(|&i| candidates[i].address);
    let mut positions = vec![Vec::new(); words.len()];
    let mut open: Option<(SegmentOrdinal, Vec<Option<SegmentPostings>>)> = None;
    for i in order {
        let address = candidates[i].address;
        let postings = match &mut open {
            Some((segment, postings)) if *segment == address.segment_ord => postings,
            _ => {
                let reader = searcher.segment_reader(address.segment_ord);
                let postings = words
                    .iter()
                    .map(|t| {
                        reader
                            .inverted_index(t.field())?
                            .read_postings(t, IndexRecordOption::WithFreqsAndPositions)
                            .map_err(tantivy::TantivyError::from)
                    })
                    .collect::<tantivy::Result<_>>()?;
                &mut open.insert((address.segment_ord, postings)).1
            }
        };
        for (p, out) in postings.iter_mut().zip(&mut positions) {
            out.clear();
            if let Some(p) = p
                && p.doc() <= address.doc_id
                && p.seek(address.doc_id) == address.doc_id
            {
                p.positions(out);
            }
        }
        let held = places
            .iter()
            .filter(|words| side_by_side(&positions, words))
            .count();
        let c = count(&mut candidates[i]);
        *c = c.saturating_add(u16::try_from(held).unwrap_or(u16::MAX));
    }
    Ok(())
}

/// Whether the words `words` (indexes into `positions`, each word's sorted positions in one
/// document) follow each other somewhere, as a phrase query without slop finds them.
fn side_by_side(positions: &[Vec<u32>], words: &[usize]) -> bool {
    let Some((first, rest)) = words.split_first() else {
        return false;
    };
    positions[*first].iter().any(|start| {
        rest.iter().zip(1u32..).all(|(w, k)| {
            start
                .checked_add(k)
                .is_some_and(|at| positions[*w].binary_search(&at).is_ok())
        })
    })
}

/// Every document matching a query, with its score.
struct Matches;

struct SegmentMatches {
    segment: SegmentOrdinal,
    found: Vec<Candidate>,
}

impl Collector for Matches {
    type Fruit = Vec<Candidate>;
    type Child = SegmentMatches;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        _reader: &SegmentReader,
    ) -> tantivy::Result<SegmentMatches> {
        Ok(SegmentMatches {
            segment,
            found: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Candidate>>) -> tantivy::Result<Vec<Candidate>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentMatches {
    type Fruit = Vec<Candidate>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.found.push(Candidate {
            score,
            address: DocAddress::new(self.segment, doc),
            groups: 0,
            pairs: 0,
        });
    }

    fn harvest(self) -> Vec<Candidate> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use tantivy::collector::DocSetCollector;
    use tantivy::query::{BooleanQuery, Occur, PhraseQuery, TermQuery};
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, doc};

    use super::*;

    /// The order of the module computed the plain way: every phrase over the whole index,
    /// every match ranked.
    fn reference(
        searcher: &Searcher,
        query: &dyn Query,
        ranking: &Ranking,
    ) -> Vec<(DocAddress, bool)> {
        let holding = |phrases: &[Vec<Term>]| -> Vec<HashSet<DocAddress>> {
            phrases
                .iter()
                .map(|t| {
                    searcher
                        .search(&PhraseQuery::new(t.clone()), &DocSetCollector)
                        .expect("phrase")
                })
                .collect()
        };
        let (groups, pairs) = (holding(&ranking.groups), holding(&ranking.pairs));
        let mut all = searcher.search(query, &Matches).expect("matches");
        for c in &mut all {
            let held = |sets: &[HashSet<DocAddress>]| {
                sets.iter().filter(|s| s.contains(&c.address)).count() as u16
            };
            c.groups = held(&groups);
            c.pairs = held(&pairs);
        }
        let n = groups.len() as u16;
        all.sort_by(|a, b| {
            let rank = |c: &Candidate| (c.groups == n, c.groups + c.pairs);
            rank(b).cmp(&rank(a)).then_with(|| by_score(a, b))
        });
        all.iter().map(|c| (c.address, c.groups != n)).collect()
    }

    /// Pages of every size and depth are the plain order's, over several segments, with
    /// groups together in many reports, in few, and in none.
    #[test]
    fn pages_are_those_of_the_whole_ranking() {
        let mut schema = Schema::builder();
        let text = schema.add_text_field("text", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        let words = ["dong", "tien", "etf", "quay", "lai", "thi", "truong"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for segment in 0..4 {
            for _ in 0..150 {
                let mut body = Vec::new();
                for _ in 0..(4 + seed % 9) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    body.push(words[(seed % words.len() as u64) as usize]);
                }
                if seed.is_multiple_of(5) {
                    body.extend(["dong", "tien", "etf"]);
                }
                writer
                    .add_document(doc!(text => body.join(" ")))
                    .expect("add");
            }
            if segment % 2 == 1 {
                writer.delete_term(Term::from_field_text(text, "quay"));
            }
            writer.commit().expect("commit");
        }
        let searcher = index.reader().expect("reader").searcher();
        assert!(searcher.segment_readers().len() > 1);
        let term = |w: &str| Term::from_field_text(text, w);
        let terms = |ws: &[&str]| ws.iter().map(|w| term(w)).collect::<Vec<_>>();
        let cases: [(&[&str], Vec<Vec<&str>>); 3] = [
            (&["dong", "tien", "etf"], vec![vec!["dong", "tien", "etf"]]),
            (
                &["etf", "dong", "lai"],
                vec![vec!["etf", "dong"], vec!["lai", "etf"]],
            ),
            (&["truong", "thi"], vec![vec!["truong", "thi", "truong"]]),
        ];
        for (must, groups) in cases {
            let query = BooleanQuery::new(
                must.iter()
                    .map(|w| {
                        let q: Box<dyn Query> =
                            Box::new(TermQuery::new(term(w), IndexRecordOption::WithFreqs));
                        (Occur::Must, q)
                    })
                    .collect(),
            );
            let pairs = groups
                .iter()
                .filter(|g| g.len() > 2)
                .flat_map(|g| g.windows(2))
                .map(&terms)
                .collect();
            let ranking = Ranking {
                groups: groups.iter().map(|g| terms(g)).collect(),
                pairs,
            };
            let whole = reference(&searcher, &query, &ranking);
            assert!(whole.len() > 40, "{must:?}: {}", whole.len());
            let budget = Budget::of(Duration::from_secs(60));
            for limit in [1, 10, 25] {
                for offset in (0..whole.len() + limit).step_by(limit).take(60) {
                    let (total, page) = ranking
                        .page(&searcher, &query, offset, limit, &budget)
                        .expect("page");
                    assert_eq!(total, whole.len());
                    let got: Vec<(DocAddress, bool)> =
                        page.iter().map(|(_, a, apart)| (*a, *apart)).collect();
                    let end = (offset + limit).min(whole.len());
                    assert_eq!(
                        got,
                        whole[offset.min(end)..end],
                        "{must:?} {offset}+{limit}"
                    );
                }
            }
        }
    }
}
