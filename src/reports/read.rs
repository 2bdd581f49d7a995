//! What readers are shown of the reports. Every page and API handler reads reports through a
//! [`Reader`], never the store itself, so a rule about what is shown (hiding a report, say)
//! is made here once.

use super::Report;
use crate::store::{ReportRef, Store, StoreError};

/// A report beside another: where it is in time, and its content when it can be read (a
/// damaged one is linked by its date alone).
pub type Beside = (ReportRef, Option<Report>);

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

    /// Newest first: at most `limit` reports after skipping `offset`, and how many there are
    /// in all. A damaged report is left out (and logged once).
    pub fn newest(&self, offset: u64, limit: usize) -> Result<(Vec<Report>, u64), StoreError> {
        self.0.newest_reports(offset, limit)
    }

    /// Where every report is in time, newest first (no content is read).
    pub fn all_dates(&self) -> Result<Vec<ReportRef>, StoreError> {
        let all = usize::try_from(self.0.count()?).unwrap_or(usize::MAX);
        self.0.newest(0, all)
    }

    /// The reports just before and just after `report` in time: (older, newer).
    pub fn neighbours(
        &self,
        report: &Report,
    ) -> Result<(Option<Beside>, Option<Beside>), StoreError> {
        let (older, newer) = self.0.neighbours(report)?;
        Ok((self.beside(older)?, self.beside(newer)?))
    }

    /// The reports published in `[from_ms, to_ms)`, oldest first; a damaged one is left out.
    pub fn published_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Report>, StoreError> {
        let refs = self.0.published_between(from_ms, to_ms)?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            if let Some((_, Some(report))) = self.beside(Some(r))? {
                out.push(report);
            }
        }
        Ok(out)
    }

    fn beside(&self, r: Option<ReportRef>) -> Result<Option<Beside>, StoreError> {
        let Some(r) = r else { return Ok(None) };
        match self.0.report(r.id) {
            Ok(found) => Ok(Some((r, found))),
            Err(e) if Store::is_record_damage(&e) => Ok(Some((r, None))),
            Err(e) => Err(e),
        }
    }
}
