//! What lists read instead of reports: each report's card (its titles, summaries and outline,
//! computed once by the report domain when the report is published, stored beside it in the
//! same commit) and the number of reports per month, kept by the same commits. A list page,
//! a feed, an archive month or a report's neighbours read a range of the date index and one
//! small record per report listed, never a report body; the archive's months are one small
//! table, never a walk of every report.

use chrono::{DateTime, Datelike};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::ReportRef;
use super::codec::header;
use super::damage::guarded;
use super::damage::or_around_damage;
use super::{BY_TIME, CARDS, MONTHS, REPORTS, Result, Store, db_err};
use crate::reports::Report;

/// What a commit would write beside a report ([`Store::commit_needs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub record: bool,
    pub card: bool,
}

/// A listed report and its stored card (`None`: not filled in yet, or unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRow {
    pub at: ReportRef,
    pub card: Option<Vec<u8>>,
}

impl super::Beside<'_> {
    /// The card to store for `reports[i]` (`report`, whose content hash is `hash`): the one
    /// prepared from the same content, else computed now; `None` without either.
    pub(super) fn card_of(&self, i: usize, report: &Report, hash: &[u8; 32]) -> Option<Vec<u8>> {
        match self.prepared_for(i, hash) {
            Some(p) => p.card.clone(),
            None => self.card.and_then(|f| f(report)),
        }
    }
}

/// A report read with what its commit stored beside it: the content hash its record was
/// verified against, and its card (`None`: not filled in yet, or unreadable).
#[derive(Debug, Clone)]
pub struct WithCard {
    pub report: Report,
    pub hash: [u8; 32],
    pub card: Option<Vec<u8>>,
}

/// How many reports were published in a month of the audience's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthCount {
    pub year: i32,
    pub month: u32,
    pub reports: u64,
}

/// The month (in the audience's time zone, as the archive shows it) of a date-index time.
pub(super) fn month_of(us: i64) -> (i32, u32) {
    let local = DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .with_timezone(&crate::i18n::local_offset());
    (local.year(), local.month())
}

/// The date-index time (µs) where the month after `(year, month)` starts in the audience's
/// time zone: the end of that month as [`month_of`] counts it.
pub(super) fn month_end_us((year, month): (i32, u32)) -> Option<i64> {
    let (year, month) = if month >= 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    let start = chrono::NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)?;
    let local = start
        .and_local_timezone(crate::i18n::local_offset())
        .single()?;
    Some(local.timestamp_micros())
}

/// Counts one report more (`up`) or less in the month of `us`; a month left empty is removed.
pub(super) fn count_month(
    months: &mut redb::Table<(i32, u32), u64>,
    us: i64,
    up: bool,
) -> Result<()> {
    let key = month_of(us);
    let now = months.get(key).map_err(db_err)?.map_or(0, |v| v.value());
    let next = if up {
        now.saturating_add(1)
    } else {
        now.saturating_sub(1)
    };
    if next == 0 {
        months.remove(key).map_err(db_err)?;
    } else {
        months.insert(key, next).map_err(db_err)?;
    }
    Ok(())
}

/// Counts the months again from the date index (after a repair whose old date is unknown).
pub(super) fn recount_months(
    index: &redb::Table<(i64, u64), ()>,
    months: &mut redb::Table<(i32, u32), u64>,
) -> Result<()> {
    months.retain(|_, _| false).map_err(db_err)?;
    let mut counts = std::collections::BTreeMap::<(i32, u32), u64>::new();
    for entry in index.iter().map_err(db_err)? {
        *counts
            .entry(month_of(entry.map_err(db_err)?.0.value().0))
            .or_default() += 1;
    }
    for (k, n) in counts {
        months.insert(k, n).map_err(db_err)?;
    }
    Ok(())
}

impl Store {
    /// The cards of `keys` (date-index keys), in order, read in `tx`. A card on a damaged
    /// page reads as missing: the report domain then computes it from the report.
    fn card_rows(&self, tx: &ReadTransaction, keys: &[(i64, u64)]) -> Result<Vec<CardRow>> {
        let cards = tx.open_table(CARDS).map_err(db_err)?;
        Ok(keys
            .iter()
            .map(|&key| CardRow {
                at: ReportRef::from_key(key),
                card: guarded(|| {
                    Ok(cards
                        .get(key.1)
                        .map_err(db_err)?
                        .map(|v| v.value().to_vec()))
                })
                .ok()
                .flatten(),
            })
            .collect())
    }

    /// Newest-first cards, skipping `offset`, at most `limit`, with the number of reports,
    /// from one read transaction.
    pub fn newest_cards(&self, offset: u64, limit: usize) -> Result<(Vec<CardRow>, u64)> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let keys = self.newest_keys(&tx, offset, limit)?;
        let total = tx
            .open_table(REPORTS)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?;
        Ok((self.card_rows(&tx, &keys)?, total))
    }

    /// The cards of `refs`, in order.
    pub fn cards_of(&self, refs: &[ReportRef]) -> Result<Vec<CardRow>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let keys: Vec<(i64, u64)> = refs
            .iter()
            .map(|r| (r.created_at.timestamp_micros(), r.id))
            .collect();
        self.card_rows(&tx, &keys)
    }

    /// The cards of the reports published in `[from_ms, to_ms)`, oldest first, skipping
    /// `offset`, at most `limit`.
    pub fn cards_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<CardRow>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let keys = self.keys_between(&tx, from_ms, to_ms, offset, limit)?;
        self.card_rows(&tx, &keys)
    }

    /// Reports `ids` with their stored cards, in order, from one read transaction (a card
    /// and its report always agree). Per report: `None` when it is gone, an error when it is
    /// damaged (logged once).
    pub fn reports_with_cards(&self, ids: &[u64]) -> Result<Vec<(u64, Result<Option<WithCard>>)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let reports = tx.open_table(REPORTS).map_err(db_err)?;
        let cards = tx.open_table(CARDS).map_err(db_err)?;
        Ok(ids
            .iter()
            .map(|&id| {
                let read = self.read_one_with_hash(&reports, id).map(|found| {
                    found.map(|(report, hash)| {
                        let card = guarded(|| {
                            Ok(cards.get(id).map_err(db_err)?.map(|v| v.value().to_vec()))
                        })
                        .ok()
                        .flatten();
                        WithCard { report, hash, card }
                    })
                });
                (id, read.inspect_err(|e| self.note_damage(id, e)))
            })
            .collect())
    }

    /// Stores cards computed from reports read earlier (a card missing when a list needed
    /// it, or filled in for a store written before cards were kept): `(id, content hash of
    /// the report it was computed from, card)`. A card is kept only while its report is still
    /// the one it was computed from, so a report updated meanwhile keeps the card its commit
    /// wrote. Returns how many were stored.
    pub fn put_cards(&self, cards: &[(u64, [u8; 32], Vec<u8>)]) -> Result<usize> {
        if cards.is_empty() {
            return Ok(0);
        }
        // A damaged page met on the way is an error here, never a panic of the caller.
        guarded(|| {
            let tx = self.db.begin_write().map_err(db_err)?;
            let mut stored = 0;
            {
                let reports = tx.open_table(REPORTS).map_err(db_err)?;
                let mut table = tx.open_table(CARDS).map_err(db_err)?;
                for (id, hash, card) in cards {
                    let current = match reports.get(*id).map_err(db_err)? {
                        Some(v) => header(*id, v.value()).ok().map(|h| h.hash),
                        None => None,
                    };
                    if current.as_ref() == Some(hash) {
                        table.insert(*id, card.as_slice()).map_err(db_err)?;
                        stored += 1;
                    }
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(stored)
        })
    }

    /// What a commit of `reports` (whose content hashes are `hashes`) would write for each:
    /// a record for a report new or changed, and a card for those and for one stored with
    /// the same content but no card. Read without the write lock, so a commit meanwhile may
    /// change the answer: the commit computes what it needs and was not prepared.
    pub fn commit_needs(&self, reports: &[Report], hashes: &[[u8; 32]]) -> Result<Vec<Needs>> {
        guarded(|| {
            let tx = self.db.begin_read().map_err(db_err)?;
            let stored = tx.open_table(REPORTS).map_err(db_err)?;
            let cards = tx.open_table(CARDS).map_err(db_err)?;
            let mut out = Vec::with_capacity(reports.len());
            for (report, hash) in reports.iter().zip(hashes) {
                let same = match stored.get(report.id).map_err(db_err)? {
                    Some(v) => header(report.id, v.value()).is_ok_and(|h| h.hash == *hash),
                    None => false,
                };
                out.push(Needs {
                    record: !same,
                    card: !same || cards.get(report.id).map_err(db_err)?.is_none(),
                });
            }
            Ok(out)
        })
    }

    /// Up to `limit` ids after `after`, in id order, of reports without a card.
    pub fn reports_without_cards(&self, after: u64, limit: usize) -> Result<Vec<u64>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let reports = tx.open_table(REPORTS).map_err(db_err)?;
        let cards = tx.open_table(CARDS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in reports.range(after.saturating_add(1)..).map_err(db_err)? {
            let id = entry.map_err(db_err)?.0.value();
            if cards.get(id).map_err(db_err)?.is_none() {
                out.push(id);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Whether every report has its card (cards are only ever kept for stored reports).
    pub fn cards_complete(&self) -> Result<bool> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let reports = tx
            .open_table(REPORTS)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?;
        let cards = tx
            .open_table(CARDS)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?;
        Ok(cards >= reports)
    }

    /// Every month with reports and how many, newest first.
    pub fn month_counts(&self) -> Result<Vec<MonthCount>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let months = tx.open_table(MONTHS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in months.iter().map_err(db_err)?.rev() {
            let (k, v) = entry.map_err(db_err)?;
            let (year, month) = k.value();
            out.push(MonthCount {
                year,
                month,
                reports: v.value(),
            });
        }
        Ok(out)
    }
}

/// The month counts of a schema-2 store, from its date index (see `migrate::v2_to_v3`),
/// read around damage like the lists.
pub(super) fn count_months(store: &Store) -> Result<Vec<((i32, u32), u64)>> {
    type Counts = std::collections::BTreeMap<(i32, u32), u64>;
    let tx = store.db.begin_read().map_err(db_err)?;
    let index = tx.open_table(BY_TIME).map_err(db_err)?;
    let walked = guarded(|| -> Result<Counts> {
        let mut counts = Counts::new();
        for entry in index.iter().map_err(db_err)? {
            *counts
                .entry(month_of(entry.map_err(db_err)?.0.value().0))
                .or_default() += 1;
        }
        Ok(counts)
    });
    let counts = or_around_damage(walked, || {
        let mut counts = Counts::new();
        for (us, _) in store.keys_around_damage(&tx)? {
            *counts.entry(month_of(us)).or_default() += 1;
        }
        Ok(counts)
    })?;
    Ok(counts.into_iter().collect())
}

#[cfg(test)]
impl Store {
    /// Turns this store into what schema 2 wrote (no cards, no month counts), as a release
    /// before cards left it: the upgrade's tests open it again.
    pub(crate) fn into_schema_2(self) -> std::path::PathBuf {
        let tx = self.db.begin_write().expect("write");
        tx.delete_table(CARDS).expect("drop cards");
        tx.delete_table(MONTHS).expect("drop months");
        tx.open_table(super::META)
            .expect("meta")
            .insert(super::SCHEMA_KEY, 2u32.to_le_bytes().as_slice())
            .expect("schema");
        tx.commit().expect("commit");
        self.path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::sample;
    use crate::store::{Beside, FILE_NAME, Prepared, PreparedRecord};

    fn stored_card(store: &Store, report: &Report) -> Option<Vec<u8>> {
        let at = ReportRef {
            id: report.id,
            created_at: report.created_at,
        };
        store.cards_of(&[at]).expect("cards").remove(0).card
    }

    #[test]
    fn a_prepared_record_is_kept_only_for_its_content_and_dictionary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
        let (a, b, c, d) = (
            sample(1, "2026-11-18T08:00:00Z"),
            sample(2, "2026-11-19T08:00:00Z"),
            sample(3, "2026-11-20T08:00:00Z"),
            sample(4, "2026-11-21T08:00:00Z"),
        );
        let encoded = |r: &Report| store.with_record_encoder(|e| e.encode(r, r.content_hash()));
        let prepared = |hash: [u8; 32], record: Option<PreparedRecord>| {
            Some(Prepared {
                hash,
                card: None,
                record,
            })
        };
        let other = sample(9, "2026-11-21T08:00:00Z");
        // Marked bytes show whether the commit kept a record or encoded its own.
        let marked = |dictionary: u32, mark: &[u8]| {
            Some(PreparedRecord {
                dictionary,
                bytes: mark.to_vec(),
            })
        };
        let batch = [a.clone(), b.clone(), c.clone(), d.clone()];
        let prepared = [
            // Encoded from its own content: kept.
            prepared(a.content_hash(), encoded(&a)),
            // Encoded from other content: encoded again.
            prepared(other.content_hash(), encoded(&other)),
            // With another dictionary than the commit's (none yet: 0): encoded again.
            prepared(c.content_hash(), marked(7, b"another dictionary")),
            // From its content with the commit's dictionary: kept as it is.
            prepared(d.content_hash(), marked(0, b"prepared d")),
        ];
        let beside = Beside {
            prepared: &prepared,
            ..Beside::default()
        };
        store.commit_stamped(&batch, &[], beside).expect("commit");
        for r in &batch[..3] {
            assert_eq!(store.report(r.id).expect("read").as_ref(), Some(r));
        }
        // Prepared or encoded by the commit, a record is the same bytes.
        let tx = store.db.begin_read().expect("read");
        let table = tx.open_table(REPORTS).expect("table");
        let stored = |id: u64| {
            table
                .get(id)
                .expect("get")
                .expect("stored")
                .value()
                .to_vec()
        };
        assert_eq!(Some(stored(1)), encoded(&a).map(|r| r.bytes));
        assert_eq!(stored(4), b"prepared d");
    }

    #[test]
    fn a_prepared_card_is_kept_only_for_the_content_it_was_computed_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
        let (a, b) = (
            sample(1, "2026-11-18T08:00:00Z"),
            sample(2, "2026-11-19T08:00:00Z"),
        );
        let prepared = |r: &Report, bytes: &[u8]| {
            Some(Prepared {
                hash: r.content_hash(),
                card: Some(bytes.to_vec()),
                record: None,
            })
        };
        // Report 2's prepared card was computed from other content: computed again.
        let cards = [prepared(&a, b"prepared a"), prepared(&a, b"stale b")];
        let computed = |r: &Report| Some(format!("computed {}", r.id).into_bytes());
        let beside = Beside {
            card: Some(&computed),
            prepared: &cards,
            ..Beside::default()
        };
        let batch = [a.clone(), b.clone()];
        store.commit_stamped(&batch, &[], beside).expect("commit");
        assert_eq!(stored_card(&store, &a).as_deref(), Some(&b"prepared a"[..]));
        assert_eq!(stored_card(&store, &b).as_deref(), Some(&b"computed 2"[..]));
        // Stored with the same content and a card: nothing to prepare; a changed report
        // needs its card again.
        let mut changed = b.clone();
        changed.css_content = Some("p{}".into());
        let hashes = [a.content_hash(), changed.content_hash()];
        let needs = store
            .commit_needs(&[a.clone(), changed], &hashes)
            .expect("needed");
        assert_eq!(
            needs.iter().map(|n| n.card).collect::<Vec<_>>(),
            vec![false, true]
        );
        // Only the changed report's record is written again.
        assert_eq!(
            needs.iter().map(|n| n.record).collect::<Vec<_>>(),
            vec![false, true]
        );
    }
}
