//! The embedded redb store: the only module that touches redb. Every call here blocks; async
//! callers go through [`Store::call`], which runs it on the blocking pool.

mod backup;
mod cards;
mod check;
mod codec;
mod damage;
mod market_at;
mod migrate;
mod outbox;
mod page_cache;
mod reports;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Deserialize;

pub use self::cards::{CardRow, MonthCount, Needs, WithCard};
pub use self::check::{CheckSummary, Inspection, check, inspect};
use self::codec::Dictionary;
pub use self::damage::panic_is_handled;
pub use self::outbox::{Delivery, FAILED_KEEP, OutboxCounts};
pub use self::page_cache::{CACHE_FILE_NAME, PageCacheFile, PageCacheUsage};
pub(crate) use self::reports::Beside;
use self::reports::load_dictionary;
pub use self::reports::{
    Committed, Prepared, PreparedRecord, RecordEncoder, ReportRef, StoreVersion, UpsertOutcome,
    digest_of, digest_term,
};
pub use self::walk::ReadOnlyStore;

pub const FILE_NAME: &str = "crypto-report.redb";
/// Bumped whenever a table or an encoded value changes shape; older stores are migrated on
/// open (see `migrate`), newer ones are refused.
pub const SCHEMA_VERSION: u32 = 3;
/// Memory redb may use to cache pages. Its default (1 GiB) let a bulk import grow to a 1.2 GB
/// process; what a report site reads hot is the date index and a few recent reports, and the
/// kernel keeps the file's pages anyway. Whatever a pass over every report read (the search
/// index catching up) stays cached up to this bound: at 200,000 reports 32 MiB held an idle
/// server at 79 MiB, 8 MiB at 47 MiB, with cold pages as fast (`scripts/bench-scale`).
const PAGE_CACHE_BYTES: usize = 8 << 20;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// id -> postcard `codec::StoredReport`.
const REPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("reports_v2");
/// id -> version of the source row the report was last imported from (PostgreSQL's `xmin`),
/// so that a sync fetches only the rows that changed. Absent for reports written from
/// anywhere else.
const SOURCE_VERSIONS: TableDefinition<u64, u64> = TableDefinition::new("source_versions");
/// (created_at in µs, id) -> (); newest last, so paging walks it backwards.
const BY_TIME: TableDefinition<(i64, u64), ()> = TableDefinition::new("reports_by_time");
/// Where the second cache tier lived before it got its own file (`page_cache`): emptied and
/// removed on open.
const CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("cache");
/// market field -> postcard last good value (shape owned by the market module).
const MARKET: TableDefinition<&str, &[u8]> = TableDefinition::new("market");
/// unix ms -> postcard snapshot, for sparklines.
const HISTORY: TableDefinition<i64, &[u8]> = TableDefinition::new("market_history");
/// import source -> last id committed, written by releases up to 0.1.0 and never read (an
/// import that was cut short resumes from `SOURCE_VERSIONS`): removed on open.
const LEGACY_CURSORS: TableDefinition<&str, u64> = TableDefinition::new("import_cursors");
/// report id -> postcard market values recorded when the report was published (shape owned
/// by the `since` module).
const MARKET_AT: TableDefinition<u64, &[u8]> = TableDefinition::new("market_at_publication");
/// (series, start of the UTC day in unix ms) -> postcard daily value from a provider's
/// history (shape owned by the `since` module); fetched once, kept.
const MARKET_DAILY: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("market_daily");
/// series -> (first, last) day in unix ms that the fetched history covers.
const DAILY_COVERED: TableDefinition<&str, (i64, i64)> =
    TableDefinition::new("market_daily_covered");
/// sequence -> postcard `outbox::Delivery`: announcements to send, oldest first.
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("announce_outbox");
/// report id -> what lists show of the report (shape owned by `reports::cards`), written
/// with the report in its commit; absent for a report stored before cards were kept until
/// it is filled in (see `cards`).
const CARDS: TableDefinition<u64, &[u8]> = TableDefinition::new("report_cards");
/// (year, month) in the audience's time zone -> reports published in it, kept by the
/// commits that write reports (see `cards::month_of`).
const MONTHS: TableDefinition<(i32, u32), u64> = TableDefinition::new("reports_by_month");

const SCHEMA_KEY: &str = "schema_version";
/// The version of the last release that opened the store for writing (so that an older one
/// refusing the store can name the release to run).
const WRITTEN_BY_KEY: &str = "written_by";
/// The compression dictionary of report bodies (`codec::Dictionary::from_stored`).
const DICTIONARY_KEY: &str = "body_dictionary";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store {0} is in use by another process (is `crypto-report serve` running?); stop it first, or let the running server import: start it with `--sync-from postgres://…` and trigger a pass with `POST /admin/sync`"
    )]
    Locked(PathBuf),
    #[error(
        "the store {path} was written by a newer release of crypto-report ({}, store schema {found}); this release ({}) reads store schemas up to {expected} and never downgrades a store: run that release or a newer one (or export with it and import here)",
        written_by.as_deref().unwrap_or("a release after this one"),
        env!("CARGO_PKG_VERSION")
    )]
    SchemaMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
        /// The release that last opened the store for writing, when it recorded itself.
        written_by: Option<String>,
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

pub struct Store {
    db: Database,
    path: PathBuf,
    /// Damaged reports already logged: each is logged once, then only refused.
    damaged: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// The compression dictionary of report bodies, once trained.
    dictionary: std::sync::RwLock<Option<Arc<Dictionary>>>,
    /// Reports in the store when training last failed: the next try waits for twice as many.
    training_failed_at: std::sync::atomic::AtomicU64,
    /// Damaged pages in the tables reports are listed from have been logged.
    walk_damage_logged: std::sync::atomic::AtomicBool,
    /// What the reports add up to now (see `StoreVersion`).
    version: std::sync::Mutex<StoreVersion>,
    /// Report bodies decompressed since the store was opened (see [`Store::reports_decoded`]).
    decoded: std::sync::atomic::AtomicU64,
    /// Date-index entries a newest-first list read, skipped ones included (see
    /// [`Store::index_entries_read`]).
    index_read: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens an existing store for writing; `Missing` when there is none (a command that only
    /// reads a store must not create an empty one where a wrong path points).
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        Store::open(path)
    }

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
        let damaged = |e: StoreError| match e {
            StoreError::Unreadable(why) | StoreError::Db(redb::Error::Corrupted(why)) => {
                StoreError::Unreadable(format!(
                    "{} is damaged: {why}; `crypto-report check` says what can still be read",
                    path.display()
                ))
            }
            other => other,
        };
        let mut db = damage::guarded(|| {
            Database::builder()
                .set_cache_size(PAGE_CACHE_BYTES)
                .create(path)
                .map_err(|e| open_err(e, path))
        })
        .map_err(damaged)?;
        damage::guarded(|| drop_legacy_cache(&mut db, path)).map_err(damaged)?;
        if let Some(dir) = path.parent() {
            backup::remove_stale(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            });
        }
        let store = Store {
            db,
            path: path.to_owned(),
            damaged: Default::default(),
            dictionary: Default::default(),
            training_failed_at: Default::default(),
            walk_damage_logged: Default::default(),
            version: Default::default(),
            decoded: Default::default(),
            index_read: Default::default(),
        };
        damage::guarded(|| {
            store.init_schema()?;
            store.load_digest()?;
            let tx = store.db.begin_read().map_err(db_err)?;
            let stored = load_dictionary(&tx)?;
            *crate::lock::write(&store.dictionary) = stored;
            Ok(())
        })
        .map_err(damaged)?;
        Ok(store)
    }

    fn init_schema(&self) -> Result<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let (found, written_by) = {
            let meta = tx.open_table(META).map_err(db_err)?;
            let found = meta
                .get(SCHEMA_KEY)
                .map_err(db_err)?
                .map(|v| decode_version(v.value()));
            (found, written_by(&meta)?)
        };
        match found {
            Some(SCHEMA_VERSION) | None => {}
            Some(1) => {
                drop(tx);
                let copied = migrate::v1_to_v2(&self.db)?;
                tracing::info!(store = %self.path.display(), reports = copied, "store upgraded from schema 1 to 2");
                return self.init_schema();
            }
            Some(2) => {
                drop(tx);
                let months = migrate::v2_to_v3(self)?;
                tracing::info!(store = %self.path.display(), months, "store upgraded from schema 2 to 3 (report cards are filled in the background)");
                return self.init_schema();
            }
            Some(found) => {
                return Err(StoreError::SchemaMismatch {
                    path: self.path.clone(),
                    found,
                    expected: SCHEMA_VERSION,
                    written_by,
                });
            }
        }
        {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_le_bytes().as_slice())
                .map_err(db_err)?;
            meta.insert(WRITTEN_BY_KEY, env!("CARGO_PKG_VERSION").as_bytes())
                .map_err(db_err)?;
        }
        // Create every table so readers never meet a missing one.
        tx.open_table(REPORTS).map_err(db_err)?;
        tx.open_table(BY_TIME).map_err(db_err)?;
        tx.open_table(SOURCE_VERSIONS).map_err(db_err)?;
        tx.open_table(MARKET).map_err(db_err)?;
        tx.open_table(HISTORY).map_err(db_err)?;
        tx.open_table(MARKET_AT).map_err(db_err)?;
        tx.open_table(MARKET_DAILY).map_err(db_err)?;
        tx.open_table(DAILY_COVERED).map_err(db_err)?;
        tx.open_table(OUTBOX).map_err(db_err)?;
        tx.delete_table(LEGACY_CURSORS).map_err(db_err)?;
        tx.open_table(CARDS).map_err(db_err)?;
        tx.open_table(MONTHS).map_err(db_err)?;
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

/// Empties and removes the table where the second cache tier lived before it got its own
/// file, and compacts the file once, giving back what the cache had grown it by.
fn drop_legacy_cache(db: &mut Database, path: &Path) -> Result<()> {
    let entries = {
        let tx = db.begin_read().map_err(db_err)?;
        match tx.open_table(CACHE) {
            Ok(table) => Some(table.len().map_err(db_err)?),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(db_err(e)),
        }
    };
    let Some(entries) = entries else {
        return Ok(());
    };
    let tx = db.begin_write().map_err(db_err)?;
    tx.delete_table(CACHE).map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    if entries == 0 {
        return Ok(());
    }
    let before = std::fs::metadata(path).map_or(0, |m| m.len());
    let compacted = (|| -> std::result::Result<(), redb::CompactionError> {
        while db.compact()? {}
        Ok(())
    })();
    let after = std::fs::metadata(path).map_or(0, |m| m.len());
    match compacted {
        Ok(()) => {
            tracing::info!(store = %path.display(), entries, before, after, "the page cache moved to its own file; its entries left the store, which was compacted")
        }
        Err(e) => {
            tracing::warn!(store = %path.display(), entries, error = %e, "the page cache moved to its own file; its entries left the store, which could not be compacted (its free pages are reused)")
        }
    }
    Ok(())
}

/// The release recorded in `meta` as the last writer.
fn written_by(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Option<String>> {
    Ok(meta
        .get(WRITTEN_BY_KEY)
        .map_err(db_err)?
        .map(|v| String::from_utf8_lossy(v.value()).into_owned()))
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
            walk_damage_logged: Default::default(),
            version: Default::default(),
            decoded: Default::default(),
            index_read: Default::default(),
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
