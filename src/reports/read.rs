//! What readers are shown of the reports. Every page and API handler reads reports through a
//! [`Reader`], never the store itself, so a rule about what is shown (hiding a report, say)
//! is made here once. Lists read cards (see [`super::cards`]), by range; only a report's own
//! page and document read the report whole.

use super::Report;
use super::cards::{self, Card};
use crate::store::{MonthCount, ReportRef, Store, StoreError};

/// A report beside another: where it is in time, and its card when it can be read (a
/// damaged one is linked by its date alone).
pub type Beside = (ReportRef, Option<Card>);

/// Reads reports for readers from a store.
#[derive(Clone, Copy)]
pub struct Reader<'a>(&'a Store);

impl<'a> Reader<'a> {
    pub fn new(store: &'a Store) -> Reader<'a> {
        Reader(store)
    }

    /// The report `id`, verified against its hash; a damaged one is an error.
    pub fn report(&self, id: u64) -> Result<Option<Report>, StoreError> {
        self.0.report(id)
    }

    /// The newest report.
    pub fn latest(&self) -> Result<Option<Report>, StoreError> {
        match self.0.newest(0, 1)?.first() {
            Some(r) => self.0.report(r.id),
            None => Ok(None),
        }
    }

    /// Newest first: the cards of at most `limit` reports after skipping `offset`, and how
    /// many reports there are in all. A damaged report is left out (and logged once).
    pub fn newest(&self, offset: u64, limit: usize) -> Result<(Vec<Card>, u64), StoreError> {
        cards::newest(self.0, offset, limit)
    }

    /// Where reports are in time, newest first: at most `limit` after skipping `offset` (no
    /// content is read).
    pub fn dates(&self, offset: u64, limit: usize) -> Result<Vec<ReportRef>, StoreError> {
        self.0.newest(offset, limit)
    }

    /// How many reports there are.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.0.count()
    }

    /// Every month with reports and how many, newest first (kept by the store, not counted).
    pub fn months(&self) -> Result<Vec<MonthCount>, StoreError> {
        self.0.month_counts()
    }

    /// The cards of the reports published in `[from_ms, to_ms)`, oldest first, skipping
    /// `offset`, at most `limit`; a damaged report is left out.
    pub fn published_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<Card>, StoreError> {
        cards::between(self.0, from_ms, to_ms, offset, limit)
    }

    /// The reports just before and just after `report` in time: (older, newer).
    pub fn neighbours(
        &self,
        report: &Report,
    ) -> Result<(Option<Beside>, Option<Beside>), StoreError> {
        let (older, newer) = self.0.neighbours(report)?;
        let refs: Vec<ReportRef> = [older, newer].into_iter().flatten().collect();
        let mut found = cards::of(self.0, &refs)?.into_iter();
        let mut beside = |r: Option<ReportRef>| r.map(|r| (r, found.next().flatten()));
        let older = beside(older);
        Ok((older, beside(newer)))
    }
}
