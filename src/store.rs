//! The embedded redb store: the only module that touches redb. Every call here blocks; async
//! callers go through [`Store::call`], which runs it on the blocking pool.

mod check;
mod codec;
mod migrate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

pub use self::check::{CheckSummary, check, panic_is_handled};
use self::codec::{Dictionary, Encoder, body_bytes, header};
use crate::reports::Report;

pub const FILE_NAME: &str = "crypto-report.redb";
/// Bumped whenever a table or an encoded value changes shape; older stores are migrated on
/// open (see `migrate`), newer ones are refused.
pub const SCHEMA_VERSION: u32 = 2;
/// Memory redb may use to cache pages. Its default (1 GiB) let a bulk import grow to a 1.2 GB
/// process; what a report site reads hot is the date index and a few recent reports.
const PAGE_CACHE_BYTES: usize = 32 << 20;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// id -> postcard `codec::StoredReport`.
const REPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("reports_v2");
/// id -> version of the source row the report was last imported from (PostgreSQL's `xmin`),
/// so that a sync fetches only the rows that changed. Absent for reports written from
/// anywhere else.
const SOURCE_VERSIONS: TableDefinition<u64, u64> = TableDefinition::new("source_versions");
/// (created_at in µs, id) -> (); newest last, so paging walks it backwards.
const BY_TIME: TableDefinition<(i64, u64), ()> = TableDefinition::new("reports_by_time");
/// key -> postcard [`CacheEntry`]: the second cache tier.
const CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("cache");
/// market field -> postcard last good value (shape owned by the market module).
const MARKET: TableDefinition<&str, &[u8]> = TableDefinition::new("market");
/// unix ms -> postcard snapshot, for sparklines.
const HISTORY: TableDefinition<i64, &[u8]> = TableDefinition::new("market_history");
/// import source -> last id committed.
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("import_cursors");

const SCHEMA_KEY: &str = "schema_version";
/// The compression dictionary of report bodies (`codec::Dictionary::from_stored`).
const DICTIONARY_KEY: &str = "body_dictionary";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store {0} is in use by another process (is `crypto-report serve` running?); stop it first, or let the running server import: start it with `--sync-from postgres://…` and trigger a pass with `POST /admin/sync`"
    )]
    Locked(PathBuf),
    #[error(
        "the store {path} has schema version {found}, this binary understands version {expected}; use a matching release of crypto-report (or export with it and import here)"
    )]
    SchemaMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "the store {0} has schema version 1; open it once with this release (`serve` or `import` upgrade it in place), then check it"
    )]
    NeedsUpgrade(PathBuf),
    #[error(
        "the store {0} is an empty file; a store is never empty, so something truncated it: restore it from a backup (`crypto-report backup`), or remove the file to start a new store"
    )]
    Empty(PathBuf),
    #[error(
        "{0} is not a crypto-report store (it does not start like a redb file); point --data-dir elsewhere or move the file away"
    )]
    Foreign(PathBuf),
    #[error("the store {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot create the store directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Db(#[from] redb::Error),
    #[error("store holds an undecodable value in {table} for key {key}: {source}")]
    Decode {
        table: &'static str,
        key: String,
        source: postcard::Error,
    },
    #[error("store: {0}")]
    Encode(#[from] postcard::Error),
    #[error("store: compression failed: {0}")]
    Codec(String),
    #[error("report {id} is damaged in the store: {reason}")]
    Damaged { id: u64, reason: String },
    /// A part of the file redb cannot read (it panicked on a damaged page).
    #[error("{0}")]
    Unreadable(String),
    #[error("store task failed: {0}")]
    Join(String),
}

impl StoreError {
    /// Exit code for the command line: 75 (EX_TEMPFAIL) when another process holds the file.
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::Locked(_) => 75,
            _ => 1,
        }
    }
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Identity and date of a report, enough for links, feeds and the sitemap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRef {
    pub id: u64,
    pub created_at: DateTime<Utc>,
}

impl ReportRef {
    fn from_key((us, id): (i64, u64)) -> Self {
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

#[derive(Serialize, Deserialize)]
struct CacheEntry<'a> {
    expires_at_ms: i64,
    #[serde(borrow)]
    bytes: &'a [u8],
}

pub struct Store {
    db: Database,
    path: PathBuf,
    /// Damaged reports already logged: each is logged once, then only refused.
    damaged: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// The compression dictionary of report bodies, once trained.
    dictionary: std::sync::RwLock<Option<Arc<Dictionary>>>,
    /// Reports in the store when training last failed: the next try waits for twice as many.
    training_failed_at: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store for writing, checking its schema version.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        if !path.exists() {
            create_new(path)?;
        }
        refuse_empty_or_foreign(path)?;
        // redb panics on some corrupted pages: that is a damaged file, not a crash.
        let db = check::guarded(|| {
            Database::builder()
                .set_cache_size(PAGE_CACHE_BYTES)
                .create(path)
                .map_err(|e| open_err(e, path))
        })
        .map_err(|e| match e {
            StoreError::Unreadable(why) => StoreError::Unreadable(format!(
                "{} is damaged: {why}; `crypto-report check` says what can still be read",
                path.display()
            )),
            other => other,
        })?;
        let store = Store {
            db,
            path: path.to_owned(),
            damaged: Default::default(),
            dictionary: Default::default(),
            training_failed_at: Default::default(),
        };
        store.init_schema()?;
        let stored = {
            let tx = store.db.begin_read().map_err(db_err)?;
            load_dictionary(&tx)?
        };
        *store
            .dictionary
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stored;
        Ok(store)
    }

    fn init_schema(&self) -> Result<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let found = tx
            .open_table(META)
            .map_err(db_err)?
            .get(SCHEMA_KEY)
            .map_err(db_err)?
            .map(|v| decode_version(v.value()));
        match found {
            Some(SCHEMA_VERSION) => {}
            Some(1) => {
                drop(tx);
                let copied = migrate::v1_to_v2(&self.db)?;
                tracing::info!(store = %self.path.display(), reports = copied, "store upgraded from schema 1 to 2");
                return self.init_schema();
            }
            Some(found) => {
                return Err(StoreError::SchemaMismatch {
                    path: self.path.clone(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
            None => {
                tx.open_table(META)
                    .map_err(db_err)?
                    .insert(SCHEMA_KEY, SCHEMA_VERSION.to_le_bytes().as_slice())
                    .map_err(db_err)?;
            }
        }
        // Create every table so readers never meet a missing one.
        tx.open_table(REPORTS).map_err(db_err)?;
        tx.open_table(BY_TIME).map_err(db_err)?;
        tx.open_table(SOURCE_VERSIONS).map_err(db_err)?;
        tx.open_table(CACHE).map_err(db_err)?;
        tx.open_table(MARKET).map_err(db_err)?;
        tx.open_table(HISTORY).map_err(db_err)?;
        tx.open_table(CURSORS).map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a blocking store operation on the blocking thread pool.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// The report `id`, verified against its hash: a damaged report is an error (logged the
    /// first time it is met), never a report.
    pub fn report(&self, id: u64) -> Result<Option<Report>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        let Some(value) = table.get(id).map_err(db_err)? else {
            return Ok(None);
        };
        self.decode(id, value.value())
            .map(Some)
            .inspect_err(|e| self.note_damage(id, e))
    }

    fn note_damage(&self, id: u64, e: &StoreError) {
        if matches!(e, StoreError::Damaged { .. } | StoreError::Decode { .. }) {
            let first = self
                .damaged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id);
            if first {
                tracing::error!(store = %self.path.display(), error = %e, "damaged report; it is refused until re-imported (`crypto-report check` lists every damaged record)");
            }
        }
    }

    /// Whether `e` is about one damaged record (already logged), not the store as a whole.
    pub fn is_record_damage(e: &StoreError) -> bool {
        matches!(e, StoreError::Damaged { .. } | StoreError::Decode { .. })
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
        let index = tx.open_table(BY_TIME).map_err(db_err)?;
        let mut out = Vec::with_capacity(limit);
        for entry in index
            .iter()
            .map_err(db_err)?
            .rev()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit)
        {
            let (key, _) = entry.map_err(db_err)?;
            out.push(ReportRef::from_key(key.value()));
        }
        Ok(out)
    }

    /// Newest-first reports, skipping `offset`, at most `limit`, with the total count, all
    /// from one read transaction (one consistent view). Damaged reports are left out.
    pub fn newest_reports(&self, offset: u64, limit: usize) -> Result<(Vec<Report>, u64)> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let index = tx.open_table(BY_TIME).map_err(db_err)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        let mut out = Vec::with_capacity(limit);
        for entry in index
            .iter()
            .map_err(db_err)?
            .rev()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit)
        {
            let (_, id) = entry.map_err(db_err)?.0.value();
            if let Some(v) = table.get(id).map_err(db_err)? {
                match self.decode(id, v.value()) {
                    Ok(r) => out.push(r),
                    // A damaged report is left out of lists (and logged once), not fatal to them.
                    Err(e) if Store::is_record_damage(&e) => self.note_damage(id, &e),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok((out, table.len().map_err(db_err)?))
    }

    /// The reports next to `id` in time: (older, newer).
    pub fn neighbours(&self, report: &Report) -> Result<(Option<ReportRef>, Option<ReportRef>)> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let index = tx.open_table(BY_TIME).map_err(db_err)?;
        let key = (report.created_at.timestamp_micros(), report.id);
        let older = match index.range(..key).map_err(db_err)?.next_back() {
            Some(e) => Some(ReportRef::from_key(e.map_err(db_err)?.0.value())),
            None => None,
        };
        let mut after = index.range(key..).map_err(db_err)?;
        let newer = match after.nth(1) {
            Some(e) => Some(ReportRef::from_key(e.map_err(db_err)?.0.value())),
            None => None,
        };
        Ok((older, newer))
    }

    /// Inserts or replaces reports and moves the import cursor, all in one transaction: a crash
    /// leaves each report either wholly present or absent. `versions[i]` is the version of
    /// the source row `reports[i]` came from (`None`: not from a versioned source). Only the
    /// report domain's publish path writes reports (see `reports::publish`).
    pub(crate) fn commit_reports(
        &self,
        reports: &[Report],
        versions: &[Option<u64>],
        cursor: Option<(&str, u64)>,
    ) -> Result<Vec<UpsertOutcome>> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let (dictionary, trained) = self.dictionary_for(&tx, reports)?;
        let mut encoder = Encoder::new(dictionary.as_deref())?;
        let mut outcomes = Vec::with_capacity(reports.len());
        {
            let mut table = tx.open_table(REPORTS).map_err(db_err)?;
            let mut index = tx.open_table(BY_TIME).map_err(db_err)?;
            let mut marks = tx.open_table(SOURCE_VERSIONS).map_err(db_err)?;
            for (i, report) in reports.iter().enumerate() {
                let hash = report.content_hash();
                let created_at_us = report.created_at.timestamp_micros();
                let previous = match table.get(report.id).map_err(db_err)? {
                    Some(v) => {
                        let h = header(report.id, v.value())?;
                        Some((h.hash, h.created_at_us))
                    }
                    None => None,
                };
                let outcome = match previous {
                    None => UpsertOutcome::New,
                    Some((h, at)) if h == hash && at == created_at_us => UpsertOutcome::Unchanged,
                    Some(_) => UpsertOutcome::Updated,
                };
                if outcome != UpsertOutcome::Unchanged {
                    if let Some((_, at)) = previous {
                        index.remove((at, report.id)).map_err(db_err)?;
                    }
                    let bytes = encoder.encode(report, hash)?;
                    table.insert(report.id, bytes.as_slice()).map_err(db_err)?;
                    index
                        .insert((created_at_us, report.id), ())
                        .map_err(db_err)?;
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
                outcomes.push(outcome);
            }
            if let Some((source, id)) = cursor {
                tx.open_table(CURSORS)
                    .map_err(db_err)?
                    .insert(source, id)
                    .map_err(db_err)?;
            }
        }
        drop(encoder);
        tx.commit().map_err(db_err)?;
        if trained {
            // Only now that it is stored may other batches use it.
            *self
                .dictionary
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = dictionary;
        }
        Ok(outcomes)
    }

    fn current_dictionary(&self) -> Option<Arc<Dictionary>> {
        self.dictionary
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn decode(&self, id: u64, bytes: &[u8]) -> Result<Report> {
        codec::decode_report(id, bytes, self.current_dictionary().as_ref())
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
        // A sample of a few dozen reports, at most 32 KiB of each: enough for the genre.
        let mut bodies = Vec::new();
        for r in batch.iter().take(2 * codec::TRAINING_BODIES) {
            bodies.push(body_bytes(r)?);
        }
        for entry in table.iter().map_err(db_err)? {
            if bodies.len() >= 2 * codec::TRAINING_BODIES {
                break;
            }
            let (k, v) = entry.map_err(db_err)?;
            if let Ok(r) = codec::decode_report(k.value(), v.value(), None) {
                bodies.push(body_bytes(&r)?);
            }
        }
        for b in &mut bodies {
            b.truncate(32 * 1024);
        }
        match Dictionary::train(1, &bodies) {
            Some((dictionary, bytes)) => {
                tx.open_table(META)
                    .map_err(db_err)?
                    .insert(DICTIONARY_KEY, bytes.as_slice())
                    .map_err(db_err)?;
                Ok((Some(Arc::new(dictionary)), true))
            }
            None => {
                self.training_failed_at
                    .store(known, std::sync::atomic::Ordering::Relaxed);
                Ok((None, false))
            }
        }
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

    pub fn cursor(&self, source: &str) -> Result<Option<u64>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(CURSORS).map_err(db_err)?;
        Ok(table.get(source).map_err(db_err)?.map(|v| v.value()))
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

    /// Visits every report in id order, each read and decoded on its own: a damaged record
    /// is handed over as its error and the walk goes on; where the table itself cannot be
    /// walked further, the walk ends with that error. `f` returning an error stops the walk.
    pub fn scan_reports(&self, mut f: impl FnMut(u64, Result<Report>) -> Result<()>) -> Result<()> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(REPORTS).map_err(db_err)?;
        let mut next = 0u64;
        loop {
            // One id at a time, so a corrupted page costs the records on it, not the walk.
            let step = check::guarded(|| -> Result<Option<(u64, Result<Report>)>> {
                let Some(entry) = table.range(next..).map_err(db_err)?.next() else {
                    return Ok(None);
                };
                let (k, v) = entry.map_err(db_err)?;
                let id = k.value();
                Ok(Some((id, self.decode(id, v.value()))))
            });
            match step {
                Ok(None) => return Ok(()),
                Ok(Some((id, report))) => {
                    f(id, report)?;
                    next = id.saturating_add(1);
                    if id == u64::MAX {
                        return Ok(());
                    }
                }
                Err(e) => {
                    return Err(StoreError::Unreadable(format!(
                        "the reports after id {} cannot be walked: {e}",
                        next.saturating_sub(1)
                    )));
                }
            }
        }
    }

    /// Writes a consistent copy of the whole store (one read transaction) to a new file at
    /// `to`, in batches; returns the number of reports copied. The copy is a store of the
    /// same schema that `check` can verify.
    pub fn backup_to(&self, to: &Path) -> Result<u64> {
        let source = self.db.begin_read().map_err(db_err)?;
        let target = Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(to)
            .map_err(|e| open_err(e, to))?;
        copy_table(&source, &target, META)?;
        let reports = copy_table(&source, &target, REPORTS)?;
        copy_table(&source, &target, BY_TIME)?;
        copy_table(&source, &target, SOURCE_VERSIONS)?;
        copy_table(&source, &target, CACHE)?;
        copy_table(&source, &target, MARKET)?;
        copy_table(&source, &target, HISTORY)?;
        copy_table(&source, &target, CURSORS)?;
        Ok(reports)
    }

    /// Second-tier cache read; an expired entry reads as absent.
    pub fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(CACHE).map_err(db_err)?;
        let Some(v) = table.get(key).map_err(db_err)? else {
            return Ok(None);
        };
        let entry: CacheEntry = decode("cache", key, v.value())?;
        Ok((entry.expires_at_ms > now_ms).then(|| entry.bytes.to_vec()))
    }

    pub fn cache_put(&self, key: &str, bytes: &[u8], expires_at_ms: i64) -> Result<()> {
        let entry = postcard::to_allocvec(&CacheEntry {
            expires_at_ms,
            bytes,
        })?;
        self.write(|tx| {
            tx.open_table(CACHE)
                .map_err(db_err)?
                .insert(key, entry.as_slice())
                .map_err(db_err)?;
            Ok(())
        })
    }

    /// Removes the given keys, or every key when `keys` is `None`; returns how many went.
    pub fn cache_remove(&self, keys: Option<&[String]>) -> Result<u64> {
        self.write(|tx| {
            let mut table = tx.open_table(CACHE).map_err(db_err)?;
            match keys {
                Some(keys) => {
                    let mut n = 0;
                    for k in keys {
                        n += u64::from(table.remove(k.as_str()).map_err(db_err)?.is_some());
                    }
                    Ok(n)
                }
                None => {
                    let n = table.len().map_err(db_err)?;
                    table.retain(|_, _| false).map_err(db_err)?;
                    Ok(n)
                }
            }
        })
    }

    /// Drops expired second-tier entries; returns how many.
    pub fn cache_purge_expired(&self, now_ms: i64) -> Result<u64> {
        self.write(|tx| {
            let mut table = tx.open_table(CACHE).map_err(db_err)?;
            let before = table.len().map_err(db_err)?;
            table
                .retain(|_, v| {
                    postcard::from_bytes::<CacheEntry>(v).is_ok_and(|e| e.expires_at_ms > now_ms)
                })
                .map_err(db_err)?;
            Ok(before - table.len().map_err(db_err)?)
        })
    }

    pub fn market_put(&self, values: &[(String, Vec<u8>)]) -> Result<()> {
        self.write(|tx| {
            let mut table = tx.open_table(MARKET).map_err(db_err)?;
            for (field, bytes) in values {
                table
                    .insert(field.as_str(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            Ok(())
        })
    }

    pub fn market_all(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(MARKET).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Appends a history point and drops those older than `keep_from_ms`.
    pub fn history_push(&self, at_ms: i64, bytes: &[u8], keep_from_ms: i64) -> Result<()> {
        self.write(|tx| {
            let mut table = tx.open_table(HISTORY).map_err(db_err)?;
            table.insert(at_ms, bytes).map_err(db_err)?;
            table
                .retain_in(..keep_from_ms, |_, _| false)
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub fn history_since(&self, from_ms: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(HISTORY).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.range(from_ms..).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Proves the store can still be written and read (for `/health`).
    pub fn probe(&self) -> Result<()> {
        let stamp = Utc::now().timestamp_millis().to_le_bytes();
        self.write(|tx| {
            tx.open_table(META)
                .map_err(db_err)?
                .insert("health_probe", stamp.as_slice())
                .map_err(db_err)?;
            Ok(())
        })?;
        let tx = self.db.begin_read().map_err(db_err)?;
        let meta = tx.open_table(META).map_err(db_err)?;
        meta.get("health_probe").map_err(db_err)?;
        Ok(())
    }

    fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T>) -> Result<T> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let out = f(&tx)?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }
}

fn decode_version(bytes: &[u8]) -> u32 {
    bytes.try_into().map(u32::from_le_bytes).unwrap_or(u32::MAX)
}

fn decode<'a, T: Deserialize<'a>>(
    table: &'static str,
    key: impl ToString,
    bytes: &'a [u8],
) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Decode {
        table,
        key: key.to_string(),
        source,
    })
}

/// The stored compression dictionary, if one was trained.
fn load_dictionary(tx: &redb::ReadTransaction) -> Result<Option<Arc<Dictionary>>> {
    let meta = tx.open_table(META).map_err(db_err)?;
    let Some(v) = meta.get(DICTIONARY_KEY).map_err(db_err)? else {
        return Ok(None);
    };
    Dictionary::from_stored(v.value()).map(|d| Some(Arc::new(d)))
}

/// Copies one table from a read transaction into `target`, a few hundred entries per commit.
fn copy_table<K, V>(
    source: &redb::ReadTransaction,
    target: &Database,
    table: TableDefinition<K, V>,
) -> Result<u64>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    const CHUNK: usize = 256;
    let from = source.open_table(table).map_err(db_err)?;
    let mut entries = from.iter().map_err(db_err)?;
    let mut copied = 0;
    loop {
        let tx = target.begin_write().map_err(db_err)?;
        let mut done = true;
        {
            let mut to = tx.open_table(table).map_err(db_err)?;
            for entry in entries.by_ref().take(CHUNK) {
                let (k, v) = entry.map_err(db_err)?;
                to.insert(k.value(), v.value()).map_err(db_err)?;
                copied += 1;
                done = false;
            }
        }
        tx.commit().map_err(db_err)?;
        if done {
            return Ok(copied);
        }
    }
}

/// Builds a new store under a temporary name and links it into place once its schema is
/// written: a process killed while creating it leaves no half-made file where the store
/// belongs (so an empty or foreign file there is always somebody's data, never ours).
fn create_new(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io_err = |source| StoreError::CreateDir {
        path: dir.to_owned(),
        source,
    };
    let temp = tempfile::Builder::new()
        .prefix(".crypto-report-new-")
        .tempfile_in(dir)
        .map_err(io_err)?
        .into_temp_path();
    std::fs::remove_file(&temp).map_err(io_err)?;
    {
        let db = Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(&temp)
            .map_err(|e| open_err(e, &temp))?;
        let fresh = Store {
            db,
            path: temp.to_path_buf(),
            damaged: Default::default(),
            dictionary: Default::default(),
            training_failed_at: Default::default(),
        };
        fresh.init_schema()?;
    }
    // A link never replaces: if another process created the store meanwhile, theirs stays.
    match std::fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::CreateDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// An existing file that is empty or not a redb file is never turned into a new store: it is
/// somebody's data, or what is left of ours.
fn refuse_empty_or_foreign(path: &Path) -> Result<()> {
    use std::io::Read;
    const MAGIC: &[u8] = b"redb\x1a\x0a\xa9\x0d\x0a";
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Permissions and the like: let the real open report them.
        Err(_) => return Ok(()),
    };
    let mut head = [0u8; 9];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(_) => return Ok(()),
        }
    }
    match read {
        0 => Err(StoreError::Empty(path.to_owned())),
        n if head[..n] != MAGIC[..n] || n < MAGIC.len() => {
            Err(StoreError::Foreign(path.to_owned()))
        }
        _ => Ok(()),
    }
}

fn open_err(e: redb::DatabaseError, path: &Path) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.to_owned()),
        other => db_err(other),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
