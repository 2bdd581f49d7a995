//! Reports in the store: reading them (verified), the date index, and the one write
//! operation behind the publish path, which also keeps the store's content digest.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::cards::{count_month, recount_months};
use super::codec::{self, Dictionary, Encoder, body_bytes, header};
use super::outbox::Delivery;
use super::{
    BY_TIME, CARDS, DICTIONARY_KEY, MARKET_AT, META, MONTHS, REPORTS, Result, SOURCE_VERSIONS,
    Store, StoreError, db_err,
};

/// What the publish path keeps beside the reports a commit finds new, in the commit's own
/// transaction ([`Store::commit_stamped`]). Updated reports keep nothing new.
#[derive(Default, Clone, Copy)]
pub(crate) struct Beside<'a> {
    /// `market_at[i]`: the market at publication of `reports[i]`, computed before the commit.
    pub market_at: &'a [Option<Vec<u8>>],
    /// The announcement targets: one outbox record per new report (oldest first) and target.
    pub announce: &'a [String],
    /// What lists show of a report (its card, shape owned by `reports::cards`), computed for
    /// each report the commit writes, and for an unchanged one stored without a card. `None`,
    /// or a report it has no card for: the report is stored without one (lists compute it
    /// from the report when they meet it).
    pub card: Option<&'a CardOf>,
    /// `prepared[i]`: the card and record of `reports[i]` computed before the commit
    /// (outside its write lock, in parallel), each used when it was computed from the same
    /// content; `card` computes any other card the commit needs, the commit encodes any other
    /// record.
    pub prepared: &'a [Option<Prepared>],
}

/// What is computed from a report's content before the commit that writes it, outside the
/// store's write lock and on several threads: its card and its stored record. The commit
/// keeps each only when `hash` is the content hash of the report it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub hash: [u8; 32],
    /// `None`: the report has no card (it is stored without one).
    pub card: Option<Vec<u8>>,
    /// `None`: not encoded beforehand (the commit encodes it).
    pub record: Option<PreparedRecord>,
}

/// A report's record encoded before its commit ([`Store::with_record_encoder`]), kept by
/// the commit when it writes with the same dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRecord {
    pub(super) dictionary: u32,
    pub(super) bytes: Vec<u8>,
}

/// Encodes records as a commit writes them, with the dictionary the store had when it was
/// made; holds one compression context. See [`Store::with_record_encoder`].
pub struct RecordEncoder<'d> {
    encoder: Option<Encoder<'d>>,
}

impl RecordEncoder<'_> {
    /// The record of `report`, whose content hash is `hash`; `None` when it cannot be
    /// encoded here (the commit then encodes it itself, and fails with the reason if it
    /// cannot either).
    pub fn encode(&mut self, report: &Report, hash: [u8; 32]) -> Option<PreparedRecord> {
        let encoder = self.encoder.as_mut()?;
        let bytes = encoder.encode(report, hash).ok()?;
        Some(PreparedRecord {
            dictionary: encoder.dictionary(),
            bytes,
        })
    }
}

impl Beside<'_> {
    /// What was prepared for `reports[i]`, if it was prepared from content `hash`.
    pub(super) fn prepared_for(&self, i: usize, hash: &[u8; 32]) -> Option<&Prepared> {
        self.prepared.get(i)?.as_ref().filter(|p| p.hash == *hash)
    }

    /// The record prepared for `reports[i]` from content `hash` with `dictionary`, if any.
    fn record_of(&self, i: usize, hash: &[u8; 32], dictionary: u32) -> Option<&[u8]> {
        let record = self.prepared_for(i, hash)?.record.as_ref()?;
        (record.dictionary == dictionary).then_some(record.bytes.as_slice())
    }
}

/// Computes the stored card of a report (see [`Beside::card`]).
pub(crate) type CardOf = dyn Fn(&Report) -> Option<Vec<u8>> + Sync;

/// The store's content digest ([`StoreVersion::digest`]) in the meta table.
const DIGEST_KEY: &str = "content_digest";
use crate::reports::Report;

/// Identity and date of a report, enough for links, feeds and the sitemap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRef {
    pub id: u64,
    pub created_at: DateTime<Utc>,
}

impl ReportRef {
    pub(super) fn from_key((us, id): (i64, u64)) -> Self {
        ReportRef {
            id,
            created_at: DateTime::from_timestamp_micros(us).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    New,
    Updated,
    Unchanged,
}

/// What the reports of a store add up to, for the keys of shared caches: two stores holding
/// the same reports have the same digest, whatever order they were written in, so a cached
/// page keyed by it is never served by an instance whose reports differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreVersion {
    /// XOR of a hash of every report's (id, content hash): order-free, updated per write.
    pub digest: [u8; 16],
    /// Bumped by every commit that changed reports (this process only).
    pub generation: u64,
    /// Commits under way: what a reader sees now may not match `digest`.
    pub writers: u32,
}

impl StoreVersion {
    /// The digest as a cache-key component.
    pub fn key(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether something read between `self` and `later` belongs to `self.digest`.
    pub fn still(&self, later: &StoreVersion) -> bool {
        self.writers == 0 && later.writers == 0 && self.generation == later.generation
    }
}

/// What a commit did: per report, in order, and every report whose page changed.
#[derive(Debug, Default)]
pub struct Committed {
    pub outcomes: Vec<UpsertOutcome>,
    /// Sorted: the new and updated reports and their neighbours in time.
    pub affected: Vec<u64>,
}

/// What a write finds stored under its id.
enum Previous {
    Absent,
    /// The same content, whole.
    Same,
    Differs {
        hash: [u8; 32],
        at: i64,
    },
    /// Unreadable or not matching its hash; `at` when its header could still be read.
    Damaged {
        at: Option<i64>,
    },
}

/// Removes the date-index entries of `id`: the one at `at` if known, else any.
fn drop_index_entries(
    index: &mut redb::Table<(i64, u64), ()>,
    id: u64,
    at: Option<i64>,
) -> Result<()> {
    if let Some(at) = at {
        index.remove((at, id)).map_err(db_err)?;
        return Ok(());
    }
    index
        .retain(|(_, entry_id), _| entry_id != id)
        .map_err(db_err)?;
    Ok(())
}

/// The digest term of one report: its id and content hash, hashed. The store's digest is the
/// XOR of its reports' terms, so an index holding the same terms holds the same reports.
pub fn digest_term(id: u64, hash: &[u8; 32]) -> [u8; 16] {
    term(id, hash)
}

fn term(id: u64, hash: &[u8; 32]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(&id.to_le_bytes());
    h.update(hash);
    let mut out = [0; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// The digest of a set of reports from their terms: their XOR, so the order they come in does
/// not matter. The store keeps its own; the search index computes its own to compare.
pub fn digest_of<'a>(terms: impl IntoIterator<Item = &'a [u8; 16]>) -> [u8; 16] {
    let mut digest = [0; 16];
    for term in terms {
        xor(&mut digest, *term);
    }
    digest
}

fn xor(digest: &mut [u8; 16], term: [u8; 16]) {
    for (d, t) in digest.iter_mut().zip(term) {
        *d ^= t;
    }
}

/// Every report's digest term in id order, read from the records' headers (no body is
/// decompressed). A record whose header cannot be read is left out: it is damaged, is not
/// served, and is counted again once a commit repairs it.
fn terms(
    table: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<impl Iterator<Item = Result<(u64, [u8; 16])>> + '_> {
    let entries = table.iter().map_err(db_err)?;
    Ok(entries.filter_map(|entry| match entry {
        Err(e) => Some(Err(db_err(e))),
        Ok((k, v)) => header(k.value(), v.value())
            .ok()
            .map(|h| Ok((k.value(), term(k.value(), &h.hash)))),
    }))
}

/// The store's digest: the XOR of its reports' terms.
fn fold(terms: impl Iterator<Item = Result<(u64, [u8; 16])>>) -> Result<[u8; 16]> {
    let mut digest = [0; 16];
    for t in terms {
        xor(&mut digest, t?.1);
    }
    Ok(digest)
}

/// Counts a commit as under way until dropped (also when the commit fails).
struct Writing<'a>(&'a Store);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0
            .version_mut(|v| v.writers = v.writers.saturating_sub(1));
    }
}

impl Store {
    /// The store's content version (see [`StoreVersion`]).
    pub fn version(&self) -> StoreVersion {
        *crate::lock::lock(&self.version)
    }

    fn version_mut(&self, f: impl FnOnce(&mut StoreVersion)) {
        f(&mut crate::lock::lock(&self.version));
    }

    /// Reads the stored digest, computing (and storing) it once for a store that has none.
    pub(super) fn load_digest(&self) -> Result<()> {
        let stored = {
            let tx = self.db.begin_read().map_err(db_err)?;
            let meta = tx.open_table(META).map_err(db_err)?;
            meta.get(DIGEST_KEY)
                .map_err(db_err)?
                .and_then(|v| <[u8; 16]>::try_from(v.value()).ok())
        };
        let digest = match stored {
            Some(d) => d,
            None => {
                let tx = self.db.begin_write().map_err(db_err)?;
                let digest = {
                    let table = tx.open_table(REPORTS).map_err(db_err)?;
                    let digest = fold(terms(&table)?)?;
                    tx.open_table(META)
                        .map_err(db_err)?
                        .insert(DIGEST_KEY, digest.as_slice())
                        .map_err(db_err)?;
                    digest
                };
                tx.commit().map_err(db_err)?;
                digest
            }
        };
        self.version_mut(|v| v.digest = digest);
        Ok(())
    }

    /// The report `id`, verified against its hash: a damaged report is an error (logged the
    /// first time it is met), never a report.
    pub fn report(&self, id: u64) -> Result<Option<Report>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        self.read_one(&table, id)
            .inspect_err(|e| self.note_damage(id, e))
    }

    pub(super) fn note_damage(&self, id: u64, e: &StoreError) {
        if matches!(e, StoreError::Damaged { .. } | StoreError::Decode { .. }) {
            let first = crate::lock::lock(&self.damaged).insert(id);
            if first {
                tracing::error!(store = %self.path.display(), error = %e, "damaged report; it is refused until re-imported (`crypto-report check` lists every damaged record)");
            }
        }
    }

    /// Whether `e` is about one damaged record (already logged), not the store as a whole.
    pub fn is_record_damage(e: &StoreError) -> bool {
        matches!(e, StoreError::Damaged { .. } | StoreError::Decode { .. })
    }

    /// Whether the store holds report `id` (without reading it).
    pub fn contains(&self, id: u64) -> Result<bool> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        Ok(table.get(id).map_err(db_err)?.is_some())
    }

    pub fn count(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(db_err)?;
        tx.open_table(REPORTS)
            .map_err(db_err)?
            .len()
            .map_err(db_err)
    }

    /// Newest-first references, skipping `offset`, at most `limit`.
    pub fn newest(&self, offset: u64, limit: usize) -> Result<Vec<ReportRef>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        Ok(self
            .newest_keys(&tx, offset, limit)?
            .into_iter()
            .map(ReportRef::from_key)
            .collect())
    }

    /// The reports next to `id` in time: (older, newer).
    pub fn neighbours(&self, report: &Report) -> Result<(Option<ReportRef>, Option<ReportRef>)> {
        let tx = self.db.begin_read().map_err(db_err)?;
        self.neighbours_of(&tx, (report.created_at.timestamp_micros(), report.id))
    }

    /// [`Store::commit_stamped`] with nothing kept beside the reports (the store's own tests).
    #[cfg(test)]
    pub(crate) fn commit_reports(
        &self,
        reports: &[Report],
        versions: &[Option<u64>],
    ) -> Result<Committed> {
        self.commit_stamped(reports, versions, Beside::default())
    }

    /// Inserts or replaces reports in one transaction: a crash leaves each report either wholly
    /// present or absent. `versions[i]` is the version of the source row `reports[i]` came
    /// from (`None`: not from a versioned source); a rerun of a cut-short import skips the rows
    /// whose version is stored.
    /// What `beside` holds for the reports the commit finds new is written in the same
    /// transaction (see [`Beside`]): a report is never stored without the values known when it
    /// arrived, nor without its announcements. Returns what happened to each report
    /// and, read in the same transaction, every report whose page changed (the written ones
    /// and their neighbours in time). A stored report that is damaged is rewritten whatever its
    /// hash says. Only the report domain's publish path writes reports (see `reports::publish`).
    pub(crate) fn commit_stamped(
        &self,
        reports: &[Report],
        versions: &[Option<u64>],
        beside: Beside<'_>,
    ) -> Result<Committed> {
        self.version_mut(|v| v.writers += 1);
        let _writing = Writing(self);
        let tx = self.db.begin_write().map_err(db_err)?;
        // Read once the write lock is held: no other commit can move it meanwhile.
        let mut digest = self.version().digest;
        let mut recount = false;
        let (dictionary, trained) = self.dictionary_for(&tx, reports)?;
        let dictionary_id = dictionary.as_ref().map_or(0, |d| d.id);
        let mut encoder = None;
        let mut committed = Committed::default();
        let mut repaired = Vec::new();
        {
            let mut table = tx.open_table(REPORTS).map_err(db_err)?;
            let mut index = tx.open_table(BY_TIME).map_err(db_err)?;
            let mut marks = tx.open_table(SOURCE_VERSIONS).map_err(db_err)?;
            let mut market = tx.open_table(MARKET_AT).map_err(db_err)?;
            let mut cards = tx.open_table(CARDS).map_err(db_err)?;
            let mut months = tx.open_table(MONTHS).map_err(db_err)?;
            let mut recount_month = false;
            for (i, report) in reports.iter().enumerate() {
                let hash = report.content_hash();
                let created_at_us = report.created_at.timestamp_micros();
                let previous = match table.get(report.id).map_err(db_err)? {
                    None => Previous::Absent,
                    Some(v) => self.previous(report.id, v.value(), hash, dictionary.as_ref()),
                };
                let outcome = match previous {
                    Previous::Absent => UpsertOutcome::New,
                    Previous::Same => UpsertOutcome::Unchanged,
                    Previous::Differs { .. } | Previous::Damaged { .. } => UpsertOutcome::Updated,
                };
                if outcome != UpsertOutcome::Unchanged {
                    match previous {
                        Previous::Differs { hash: old, at } => {
                            index.remove((at, report.id)).map_err(db_err)?;
                            count_month(&mut months, at, false)?;
                            xor(&mut digest, term(report.id, &old));
                        }
                        Previous::Damaged { at } => {
                            // What it held is unknown: drop every index entry naming it, and
                            // count the digest and the months again from what is stored.
                            drop_index_entries(&mut index, report.id, at)?;
                            recount = true;
                            recount_month = true;
                            repaired.push(report.id);
                        }
                        Previous::Absent | Previous::Same => {}
                    }
                    if !recount_month {
                        count_month(&mut months, created_at_us, true)?;
                    }
                    xor(&mut digest, term(report.id, &hash));
                    let encoded;
                    let bytes = match beside.record_of(i, &hash, dictionary_id) {
                        Some(prepared) => prepared,
                        None => {
                            let encoder = match &mut encoder {
                                Some(e) => e,
                                None => encoder.insert(Encoder::new(dictionary.as_deref())?),
                            };
                            encoded = encoder.encode(report, hash)?;
                            encoded.as_slice()
                        }
                    };
                    table.insert(report.id, bytes).map_err(db_err)?;
                    index
                        .insert((created_at_us, report.id), ())
                        .map_err(db_err)?;
                    match beside.card_of(i, report, &hash) {
                        Some(card) => cards.insert(report.id, card.as_slice()),
                        None => cards.remove(report.id),
                    }
                    .map_err(db_err)?;
                } else if cards.get(report.id).map_err(db_err)?.is_none()
                    && let Some(card) = beside.card_of(i, report, &hash)
                {
                    cards.insert(report.id, card.as_slice()).map_err(db_err)?;
                }
                match versions.get(i).copied().flatten() {
                    Some(v) => {
                        marks.insert(report.id, v).map_err(db_err)?;
                    }
                    // Written from elsewhere: the source's row no longer describes it.
                    None if outcome != UpsertOutcome::Unchanged => {
                        marks.remove(report.id).map_err(db_err)?;
                    }
                    None => {}
                }
                if outcome == UpsertOutcome::New
                    && let Some(Some(bytes)) = beside.market_at.get(i)
                {
                    market.insert(report.id, bytes.as_slice()).map_err(db_err)?;
                }
                committed.outcomes.push(outcome);
            }
            for (report, outcome) in reports.iter().zip(&committed.outcomes) {
                if *outcome == UpsertOutcome::Unchanged {
                    continue;
                }
                let key = (report.created_at.timestamp_micros(), report.id);
                committed.affected.push(report.id);
                let older = index.range(..key).map_err(db_err)?.next_back();
                let newer = index.range(key..).map_err(db_err)?.nth(1);
                for e in [older, newer].into_iter().flatten() {
                    committed.affected.push(e.map_err(db_err)?.0.value().1);
                }
            }
            committed.affected.sort_unstable();
            committed.affected.dedup();
            if recount_month {
                recount_months(&index, &mut months)?;
            }
            if !beside.announce.is_empty() {
                let mut new: Vec<&Report> = reports
                    .iter()
                    .zip(&committed.outcomes)
                    .filter(|(_, o)| **o == UpsertOutcome::New)
                    .map(|(r, _)| r)
                    .collect();
                new.sort_by_key(|r| (r.created_at, r.id));
                let now = chrono::Utc::now().timestamp_millis();
                let deliveries: Vec<Delivery> = new
                    .iter()
                    .flat_map(|r| {
                        beside
                            .announce
                            .iter()
                            .map(|t| Delivery::new(r.id, t, 0, now))
                    })
                    .collect();
                super::outbox::append(&tx, &deliveries)?;
            }
            if recount {
                digest = fold(terms(&table)?)?;
            }
            tx.open_table(META)
                .map_err(db_err)?
                .insert(DIGEST_KEY, digest.as_slice())
                .map_err(db_err)?;
        }
        drop(encoder);
        tx.commit().map_err(db_err)?;
        let changed = !committed.affected.is_empty();
        self.version_mut(|v| {
            v.digest = digest;
            v.generation += u64::from(changed);
        });
        if trained {
            // Only now that it is stored may other batches use it.
            *crate::lock::write(&self.dictionary) = dictionary;
        }
        if !repaired.is_empty() {
            let mut damaged = crate::lock::lock(&self.damaged);
            for id in repaired {
                if damaged.remove(&id) {
                    tracing::info!(id, "damaged report rewritten");
                }
            }
        }
        Ok(committed)
    }

    /// What is stored under `id`, against a report to write whose hash is `hash`. A report
    /// with the same hash is read whole: only a body that decodes and verifies is the same.
    fn previous(
        &self,
        id: u64,
        bytes: &[u8],
        hash: [u8; 32],
        dictionary: Option<&Arc<Dictionary>>,
    ) -> Previous {
        match header(id, bytes) {
            Ok(h) if h.hash != hash => Previous::Differs {
                hash: h.hash,
                at: h.created_at_us,
            },
            Ok(h) => match codec::decode_report(id, bytes, dictionary) {
                Ok(_) => Previous::Same,
                Err(_) => Previous::Damaged {
                    at: Some(h.created_at_us),
                },
            },
            Err(_) => Previous::Damaged { at: None },
        }
    }

    /// Reports found damaged since the store was opened (they are fetched again by a sync).
    pub fn damaged_ids(&self) -> Vec<u64> {
        crate::lock::lock(&self.damaged).iter().copied().collect()
    }

    fn current_dictionary(&self) -> Option<Arc<Dictionary>> {
        crate::lock::read(&self.dictionary).clone()
    }

    /// Runs `f` with an encoder of records as the next commit writes them (with the store's
    /// current dictionary), for work done before the commit ([`Prepared::record`]). A commit
    /// that writes with another dictionary (the one that trains the first) encodes again.
    pub fn with_record_encoder<R>(&self, f: impl FnOnce(&mut RecordEncoder<'_>) -> R) -> R {
        let dictionary = self.current_dictionary();
        let encoder = Encoder::new(dictionary.as_deref());
        if let Err(e) = &encoder {
            tracing::debug!(error = %e, "records left to their commit");
        }
        f(&mut RecordEncoder {
            encoder: encoder.ok(),
        })
    }

    /// How many report bodies were read whole since the store was opened: what a page
    /// that lists reports must not add to (it reads their cards).
    pub fn reports_decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn decode(&self, id: u64, bytes: &[u8]) -> Result<Report> {
        self.decoded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let loaded = self.current_dictionary();
        let wanted = header(id, bytes)?.dictionary;
        if wanted != 0 && loaded.as_ref().is_none_or(|d| d.id != wanted) {
            // Trained by a commit that just landed (this store loads it once it is stored).
            let stored = {
                let tx = self.db.begin_read().map_err(db_err)?;
                load_dictionary(&tx)?
            };
            return codec::decode_report(id, bytes, stored.as_ref());
        }
        codec::decode_report(id, bytes, loaded.as_ref())
    }

    /// The dictionary to compress `batch` with: the store's, or one trained now from the
    /// batch and the reports already stored (written to the meta table in `tx`; the second
    /// value says so). None while there is too little to learn from.
    fn dictionary_for(
        &self,
        tx: &redb::WriteTransaction,
        batch: &[Report],
    ) -> Result<(Option<Arc<Dictionary>>, bool)> {
        if let Some(d) = self.current_dictionary() {
            return Ok((Some(d), false));
        }
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        let stored = table.len().map_err(db_err)?;
        let known = stored + batch.len() as u64;
        let failed_at = self
            .training_failed_at
            .load(std::sync::atomic::Ordering::Relaxed);
        if known < codec::TRAINING_BODIES as u64 || (failed_at > 0 && known < 2 * failed_at) {
            return Ok((None, false));
        }
        let mut sample = Sample::default();
        for r in batch {
            if !sample.add(r)? {
                break;
            }
        }
        for entry in table.iter().map_err(db_err)? {
            if sample.is_full() {
                break;
            }
            let (k, v) = entry.map_err(db_err)?;
            if let Ok(r) = codec::decode_report(k.value(), v.value(), None) {
                sample.add(&r)?;
            }
        }
        match sample.train_into(tx)? {
            Some(dictionary) => Ok((Some(Arc::new(dictionary)), true)),
            None => {
                self.training_failed_at
                    .store(known, std::sync::atomic::Ordering::Relaxed);
                Ok((None, false))
            }
        }
    }

    /// Every report's digest term ([`digest_term`]), in id order, read from the records'
    /// headers (no body is decompressed): what an index derived from the reports compares
    /// itself with. A record whose header cannot be read is left out.
    pub fn report_terms(&self) -> Result<Vec<(u64, [u8; 16])>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        terms(&table)?.collect()
    }

    /// Source row versions of the reports with ids in `from..=to`, in id order.
    pub fn source_versions(&self, from: u64, to: u64) -> Result<Vec<(u64, u64)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(SOURCE_VERSIONS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.range(from..=to).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }

    /// Visits every report in id order without loading them all at once.
    pub fn for_each_report(&self, mut f: impl FnMut(Report) -> Result<()>) -> Result<()> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            f(self.decode(k.value(), v.value())?)?;
        }
        Ok(())
    }
}

/// Report bodies to train the compression dictionary on: a few dozen, at most 32 KiB of
/// each, enough for the genre.
#[derive(Default)]
pub(super) struct Sample(Vec<Vec<u8>>);

impl Sample {
    /// Adds `report`'s body unless the sample is full; false once it is.
    pub fn add(&mut self, report: &Report) -> Result<bool> {
        if self.is_full() {
            return Ok(false);
        }
        let mut body = body_bytes(report)?;
        body.truncate(32 * 1024);
        self.0.push(body);
        Ok(!self.is_full())
    }

    pub fn is_full(&self) -> bool {
        self.0.len() >= 2 * codec::TRAINING_BODIES
    }

    /// Trains the dictionary and writes it to the meta table in `tx`; None when the sample
    /// teaches nothing (too few or too alike).
    pub fn train_into(self, tx: &redb::WriteTransaction) -> Result<Option<Dictionary>> {
        let Some((dictionary, bytes)) = Dictionary::train(1, &self.0) else {
            return Ok(None);
        };
        tx.open_table(META)
            .map_err(db_err)?
            .insert(DICTIONARY_KEY, bytes.as_slice())
            .map_err(db_err)?;
        Ok(Some(dictionary))
    }
}

/// The stored compression dictionary, if one was trained.
pub(super) fn load_dictionary(tx: &redb::ReadTransaction) -> Result<Option<Arc<Dictionary>>> {
    let meta = tx.open_table(META).map_err(db_err)?;
    let Some(v) = meta.get(DICTIONARY_KEY).map_err(db_err)? else {
        return Ok(None);
    };
    Dictionary::from_stored(v.value()).map(|d| Some(Arc::new(d)))
}
