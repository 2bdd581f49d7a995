//! Reading the reports around damaged pages. A damaged page ends any walk of the table it is
//! in, so the ids are gathered from both tables that name reports (the reports by id and the
//! date index), each walked from both ends, and every report is then read on its own: a
//! damaged page costs the records on it, not the ones past it. `check`, `export`, the lists
//! and the feeds all read the store through these walks, so they agree on what is readable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::{
    Database, ReadOnlyDatabase, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata,
};

use super::cards::month_end_us;
use super::codec::{Dictionary, decode_report, header};
use super::damage::{guarded, or_around_damage};
use super::reports::{ReportRef, load_dictionary};
use super::{
    BY_TIME, MONTHS, PAGE_CACHE_BYTES, REPORTS, Result, Store, StoreError, db_err, open_err,
};
use crate::reports::Report;

/// Every report the store names, found around damage.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// Every id either table names.
    pub ids: BTreeSet<u64>,
    /// id -> created_at (µs), as the date index has it.
    pub dated: BTreeMap<u64, i64>,
    /// Why a table could not be walked whole (empty: both were).
    pub gaps: Vec<String>,
}

/// Walks `table` forward until its end or a damaged page, then, if it stopped early, backward
/// from its end to the damage. Returns why it stopped early, if it did.
fn walk_both_ways<K: redb::Key + 'static, V: redb::Value + 'static>(
    table: &ReadOnlyTable<K, V>,
    what: &str,
    mut take: impl FnMut(K::SelfType<'_>),
) -> Option<String> {
    let mut seen = 0u64;
    let forward = guarded(|| -> Result<()> {
        for entry in table.iter().map_err(db_err)? {
            take(entry.map_err(db_err)?.0.value());
            seen += 1;
        }
        Ok(())
    });
    let Err(stopped) = forward else {
        return None;
    };
    let mut back = 0u64;
    let backward = guarded(|| -> Result<()> {
        for entry in table.iter().map_err(db_err)?.rev() {
            take(entry.map_err(db_err)?.0.value());
            back += 1;
        }
        Ok(())
    });
    let after = match backward {
        Ok(()) => String::new(),
        Err(_) => format!(", and from its end after {back} entries"),
    };
    Some(format!(
        "{what} cannot be walked past a damaged page ({stopped}): read from its start for {seen} entries{after}"
    ))
}

/// Every report the store names: the ids of both tables, walked around their damage.
pub(super) fn known(tx: &ReadTransaction) -> Result<Known> {
    let reports = tx.open_table(REPORTS).map_err(db_err)?;
    let index = tx.open_table(BY_TIME).map_err(db_err)?;
    let mut known = Known::default();
    let ids = &mut known.ids;
    if let Some(gap) = walk_both_ways(&reports, "the reports table", |id| {
        ids.insert(id);
    }) {
        known.gaps.push(gap);
    }
    let dated = &mut known.dated;
    if let Some(gap) = walk_both_ways(&index, "the date index", |(at, id)| {
        dated.insert(id, at);
    }) {
        known.gaps.push(gap);
    }
    known.ids.extend(known.dated.keys().copied());
    Ok(known)
}

/// Where a newest-first walk skipping some entries starts.
enum Jump {
    /// Fewer entries than that: nothing to read.
    Past,
    /// Before date-index time `before` (the start of the month after the one holding the
    /// offset), skipping `skip` entries.
    To { before: i64, skip: u64 },
    /// From the newest entry (the month counts do not add up to the index: walk it).
    Walk,
}

/// Where to start a newest-first walk that skips `offset` entries of `index`: the month
/// counts, newest first, say which month holds the offset. They are kept by the commits
/// that write the index, so they add up to its length; where they do not (a store damaged
/// or changed by hand), the index is walked from its end.
fn month_holding(
    tx: &ReadTransaction,
    index: &ReadOnlyTable<(i64, u64), ()>,
    offset: u64,
) -> Result<Jump> {
    if offset == 0 {
        return Ok(Jump::Walk);
    }
    let months = match tx.open_table(MONTHS) {
        Ok(months) => months,
        Err(_) => return Ok(Jump::Walk),
    };
    let total = index.len().map_err(db_err)?;
    if offset >= total {
        return Ok(Jump::Past);
    }
    let (mut newer, mut found) = (0u64, None);
    for entry in months.iter().map_err(db_err)?.rev() {
        let (month, n) = entry.map_err(db_err)?;
        let n = n.value();
        if found.is_none() && newer + n > offset {
            found = Some((month.value(), offset - newer));
        }
        newer += n;
    }
    Ok(match found {
        Some((month, skip)) if newer == total => match month_end_us(month) {
            Some(before) => Jump::To { before, skip },
            None => Jump::Walk,
        },
        _ => Jump::Walk,
    })
}

/// Errors of one record's read that are about that record (its page), not the store.
fn record_error(id: u64, e: StoreError) -> StoreError {
    match e {
        StoreError::Unreadable(reason) | StoreError::Db(redb::Error::Corrupted(reason)) => {
            StoreError::Damaged { id, reason }
        }
        other => other,
    }
}

/// Reads report `id` in `reports` with `decode`, a damaged page turned into an error for
/// that report.
fn read_one<T>(
    reports: &ReadOnlyTable<u64, &[u8]>,
    id: u64,
    decode: &dyn Fn(u64, &[u8]) -> Result<T>,
) -> Result<Option<T>> {
    guarded(|| match reports.get(id).map_err(db_err)? {
        Some(v) => decode(id, v.value()).map(Some),
        None => Ok(None),
    })
    .map_err(|e| record_error(id, e))
}

/// Visits every report `tx` names, in id order, each read on its own (see
/// [`Store::scan_reports`]).
fn scan(
    tx: &ReadTransaction,
    decode: &dyn Fn(u64, &[u8]) -> Result<Report>,
    f: &mut dyn FnMut(u64, Result<Report>) -> Result<()>,
) -> Result<Vec<String>> {
    let known = known(tx)?;
    let reports = tx.open_table(REPORTS).map_err(db_err)?;
    for &id in &known.ids {
        match read_one(&reports, id, decode) {
            Ok(Some(r)) => f(id, Ok(r))?,
            // Named by the date index only: nothing to read (`check` says so).
            Ok(None) => {}
            Err(e) => f(id, Err(e))?,
        }
    }
    Ok(known.gaps)
}

/// A store opened for reading only, for `export` of a file that cannot be opened for
/// writing (redb reads its allocator's pages then, and one of them is damaged).
pub struct ReadOnlyStore {
    db: ReadOnlyDatabase,
    dictionary: Option<Arc<Dictionary>>,
    path: PathBuf,
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("path", &self.path)
            .finish()
    }
}

impl ReadOnlyStore {
    pub fn open(path: &Path) -> Result<ReadOnlyStore> {
        let db = guarded(|| {
            Database::builder()
                .set_cache_size(PAGE_CACHE_BYTES)
                .open_read_only(path)
                .map_err(|e| open_err(e, path))
        })?;
        let dictionary = {
            let tx = db.begin_read().map_err(db_err)?;
            guarded(|| load_dictionary(&tx)).unwrap_or_else(|e| {
                tracing::error!(store = %path.display(), error = %e, "the compression dictionary cannot be read");
                None
            })
        };
        Ok(ReadOnlyStore {
            db,
            dictionary,
            path: path.to_owned(),
        })
    }

    /// Like [`Store::scan_reports`].
    pub fn scan_reports(
        &self,
        mut f: impl FnMut(u64, Result<Report>) -> Result<()>,
    ) -> Result<Vec<String>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let decode = |id: u64, bytes: &[u8]| decode_report(id, bytes, self.dictionary.as_ref());
        scan(&tx, &decode, &mut f)
    }
}

impl Store {
    /// Reads report `id` in `reports`, a damaged page turned into an error for that report.
    pub(super) fn read_one(
        &self,
        reports: &ReadOnlyTable<u64, &[u8]>,
        id: u64,
    ) -> Result<Option<Report>> {
        read_one(reports, id, &|id, bytes| self.decode(id, bytes))
    }

    /// Reads report `id` in `reports` with the content hash its record was verified against
    /// (see [`Store::read_one`]).
    pub(super) fn read_one_with_hash(
        &self,
        reports: &ReadOnlyTable<u64, &[u8]>,
        id: u64,
    ) -> Result<Option<(Report, [u8; 32])>> {
        read_one(reports, id, &|id, bytes| {
            let report = self.decode(id, bytes)?;
            Ok((report, header(id, bytes)?.hash))
        })
    }

    /// Visits every report in id order, each read on its own: a damaged record is handed
    /// over as its error and the walk goes on, past damaged pages too (see [`known`]).
    /// Returns why parts of the tables could not be walked (empty when they all could). `f`
    /// returning an error stops the walk.
    pub fn scan_reports(
        &self,
        mut f: impl FnMut(u64, Result<Report>) -> Result<()>,
    ) -> Result<Vec<String>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let mut visit = |id: u64, r: Result<Report>| {
            if let Err(e) = &r {
                self.note_damage(id, e);
            }
            f(id, r)
        };
        scan(&tx, &|id, bytes| self.decode(id, bytes), &mut visit)
    }

    /// Every date-index key, newest first, gathered around damage: the index's own keys, and
    /// for reports it lost, the date in their record.
    pub(super) fn keys_around_damage(&self, tx: &ReadTransaction) -> Result<Vec<(i64, u64)>> {
        let known = known(tx)?;
        if !known.gaps.is_empty() && !self.walk_damage_logged.swap(true, Ordering::AcqRel) {
            tracing::error!(store = %self.path.display(), problems = ?known.gaps, "the store has damaged pages; lists are read around them (`crypto-report check` names what is lost)");
        }
        let reports = tx.open_table(REPORTS).map_err(db_err)?;
        let mut keys: Vec<(i64, u64)> = Vec::with_capacity(known.ids.len());
        for &id in &known.ids {
            if let Some(&at) = known.dated.get(&id) {
                keys.push((at, id));
                continue;
            }
            let at = guarded(|| match reports.get(id).map_err(db_err)? {
                Some(v) => Ok(Some(header(id, v.value())?.created_at_us)),
                None => Ok(None),
            });
            if let Ok(Some(at)) = at {
                keys.push((at, id));
            }
        }
        keys.sort_unstable_by(|a, b| b.cmp(a));
        Ok(keys)
    }

    /// Date-index keys, newest first, skipping `offset`, at most `limit`: a walk of the index
    /// from its end, or, where that meets a damaged page, the keys gathered around it. The
    /// walk starts in the month holding `offset` (found from the month counts), so a deep
    /// page skips at most one month's entries, never every newer report.
    pub(super) fn newest_keys(
        &self,
        tx: &ReadTransaction,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>> {
        let index = tx.open_table(BY_TIME).map_err(db_err)?;
        let walked = guarded(|| -> Result<Vec<(i64, u64)>> {
            let (before, skip) = match month_holding(tx, &index, offset)? {
                Jump::Past => return Ok(Vec::new()),
                Jump::To { before, skip } => (Some(before), skip),
                Jump::Walk => (None, offset),
            };
            let entries = match before {
                Some(before) => index.range(..(before, 0)).map_err(db_err)?,
                None => index.iter().map_err(db_err)?,
            };
            let skip = usize::try_from(skip).unwrap_or(usize::MAX);
            let mut out = Vec::with_capacity(limit);
            let mut read = 0u64;
            for entry in entries.rev().inspect(|_| read += 1).skip(skip).take(limit) {
                out.push(entry.map_err(db_err)?.0.value());
            }
            self.index_read.fetch_add(read, Ordering::Relaxed);
            Ok(out)
        });
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        or_around_damage(walked, || {
            Ok(self
                .keys_around_damage(tx)?
                .into_iter()
                .skip(skip)
                .take(limit)
                .collect())
        })
    }

    /// Date-index entries newest-first lists have read since the store was opened, those
    /// they skipped included: what a deep page must keep small.
    pub fn index_entries_read(&self) -> u64 {
        self.index_read.load(Ordering::Relaxed)
    }

    /// The oldest and the newest report, read around damage.
    pub fn date_span(&self) -> Result<Option<(ReportRef, ReportRef)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let index = tx.open_table(BY_TIME).map_err(db_err)?;
        let walked = guarded(|| -> Result<Option<(ReportRef, ReportRef)>> {
            let mut all = index.iter().map_err(db_err)?;
            let first = match all.next() {
                Some(e) => ReportRef::from_key(e.map_err(db_err)?.0.value()),
                None => return Ok(None),
            };
            let last = match all.next_back() {
                Some(e) => ReportRef::from_key(e.map_err(db_err)?.0.value()),
                None => first,
            };
            Ok(Some((first, last)))
        });
        or_around_damage(walked, || {
            let keys = self.keys_around_damage(&tx)?;
            // Newest first.
            Ok(keys.last().zip(keys.first()).map(|(oldest, newest)| {
                (ReportRef::from_key(*oldest), ReportRef::from_key(*newest))
            }))
        })
    }

    /// Reports published in `[from_ms, to_ms)`, oldest first, read around damage.
    pub fn published_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ReportRef>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        Ok(self
            .keys_between(&tx, from_ms, to_ms, 0, usize::MAX)?
            .into_iter()
            .map(ReportRef::from_key)
            .collect())
    }

    /// Date-index keys in `[from_ms, to_ms)`, oldest first, skipping `offset`, at most
    /// `limit`: a range of the index, or, where that meets a damaged page, the keys gathered
    /// around it.
    pub(super) fn keys_between(
        &self,
        tx: &ReadTransaction,
        from_ms: i64,
        to_ms: i64,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>> {
        let index = tx.open_table(BY_TIME).map_err(db_err)?;
        let (from_us, to_us) = (from_ms.saturating_mul(1000), to_ms.saturating_mul(1000));
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let walked = guarded(|| -> Result<Vec<(i64, u64)>> {
            let mut out = Vec::new();
            let range = index.range((from_us, 0)..(to_us, 0)).map_err(db_err)?;
            for entry in range.skip(skip).take(limit) {
                out.push(entry.map_err(db_err)?.0.value());
            }
            Ok(out)
        });
        or_around_damage(walked, || {
            let mut keys: Vec<(i64, u64)> = self
                .keys_around_damage(tx)?
                .into_iter()
                .filter(|(at, _)| (from_us..to_us).contains(at))
                .collect();
            keys.reverse();
            Ok(keys.into_iter().skip(skip).take(limit).collect())
        })
    }

    /// The reports next to `key` in time: (older, newer), read around damage.
    pub(super) fn neighbours_of(
        &self,
        tx: &ReadTransaction,
        key: (i64, u64),
    ) -> Result<(Option<ReportRef>, Option<ReportRef>)> {
        let index = tx.open_table(BY_TIME).map_err(db_err)?;
        type Key = Option<(i64, u64)>;
        let walked = guarded(|| -> Result<(Key, Key)> {
            let older = match index.range(..key).map_err(db_err)?.next_back() {
                Some(e) => Some(e.map_err(db_err)?.0.value()),
                None => None,
            };
            let mut after = index.range(key..).map_err(db_err)?;
            let newer = match after.nth(1) {
                Some(e) => Some(e.map_err(db_err)?.0.value()),
                None => None,
            };
            Ok((older, newer))
        });
        let (older, newer) = or_around_damage(walked, || {
            let keys = self.keys_around_damage(tx)?;
            // Newest first: the older one follows `key`, the newer one precedes it.
            let older = keys.iter().find(|k| **k < key).copied();
            let newer = keys.iter().rev().find(|k| **k > key).copied();
            Ok((older, newer))
        })?;
        Ok((
            older.map(ReportRef::from_key),
            newer.map(ReportRef::from_key),
        ))
    }

    /// Newest-first reports, skipping `offset`, at most `limit`, with the total count, from
    /// one read transaction. Damaged reports are left out (and logged once).
    pub fn newest_reports(&self, offset: u64, limit: usize) -> Result<(Vec<Report>, u64)> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let keys = self.newest_keys(&tx, offset, limit)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        let mut out = Vec::with_capacity(limit);
        for (_, id) in keys {
            match self.read_one(&table, id) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                // A damaged report is left out of lists (and logged once), not fatal to them.
                Err(e) if Store::is_record_damage(&e) => self.note_damage(id, &e),
                Err(e) => return Err(e),
            }
        }
        Ok((
            out,
            redb::ReadableTableMetadata::len(&table).map_err(db_err)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::reports::sample;
    use crate::store::{FILE_NAME, Store};

    #[test]
    fn a_deep_page_starts_in_the_month_holding_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
        // 600 reports, one every two days: about 15 a month over 40 months, a month
        // boundary (in the audience's time zone, UTC+7) crossed at every hour of the day.
        let start: chrono::DateTime<chrono::Utc> = "2024-01-01T00:00:00Z".parse().expect("date");
        let reports: Vec<_> = (1..=600u64)
            .map(|i| {
                let mut r = sample(i, "2024-01-01T00:00:00Z");
                r.created_at = start + chrono::TimeDelta::minutes(2 * 24 * 60 * i as i64 + 17);
                r
            })
            .collect();
        store.commit_reports(&reports, &[]).expect("commit");
        let all: Vec<u64> = store
            .newest(0, 1000)
            .expect("all")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(all, (1..=600).rev().collect::<Vec<_>>());
        let busiest = store
            .month_counts()
            .expect("months")
            .iter()
            .map(|m| m.reports)
            .max()
            .expect("a month");
        for offset in [1, 14, 15, 16, 299, 300, 580, 599, 600, 601, 10_000] {
            let before = store.index_entries_read();
            let page: Vec<u64> = store
                .newest(offset, 20)
                .expect("page")
                .iter()
                .map(|r| r.id)
                .collect();
            let at = (offset as usize).min(all.len());
            let end = (at + 20).min(all.len());
            assert_eq!(page, all[at..end], "offset {offset}");
            let read = store.index_entries_read() - before;
            assert!(
                read <= busiest + 20,
                "offset {offset}: read {read} entries, more than a month ({busiest}) and a page"
            );
        }
        // Page 10,000 of a plain walk would have read every entry before it.
        let before = store.index_entries_read();
        store.newest(590, 20).expect("deep");
        assert!(store.index_entries_read() - before < 100);
    }
}
