//! Consistent copies of the store (one read transaction): to a file the caller names
//! (`crypto-report backup`), or to a temporary file beside the store that the server streams
//! (`POST /admin/backup`). A copy that meets a damaged page stops and says so; temporary copies
//! left by a killed server are removed when the store is next opened for writing.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::damage::guarded;
use super::{
    BY_TIME, CARDS, DAILY_COVERED, HISTORY, MARKET, MARKET_AT, MARKET_DAILY, META, MONTHS,
    PAGE_CACHE_BYTES, REPORTS, Result, SOURCE_VERSIONS, Store, StoreError, db_err, open_err,
};

/// Names of the server's temporary copies, beside the store.
const TEMP_PREFIX: &str = ".backup-";

impl Store {
    /// Writes a consistent copy of the whole store to a new file at `to`, in batches; returns
    /// the number of reports copied. The copy is a store of the same schema that `check` can
    /// verify. A damaged page where the copy reads is an [`StoreError::Unreadable`] that says
    /// so (the record bytes themselves are copied as they are: `check` of the copy names a
    /// damaged record).
    pub fn backup_to(&self, to: &Path) -> Result<u64> {
        guarded(|| self.copy_to(to)).map_err(|e| match e {
            StoreError::Unreadable(why) | StoreError::Db(redb::Error::Corrupted(why)) => {
                StoreError::Unreadable(format!(
                    "the store is damaged where a backup reads it ({why}), so no consistent copy can be taken; `crypto-report check` names what is damaged, and `crypto-report export` saves every report that can still be read"
                ))
            }
            other => other,
        })
    }

    /// [`Store::backup_to`] a temporary file beside the store, removed when the returned path
    /// is dropped (or, after a crash, when the store is next opened).
    pub fn backup_to_temp(&self) -> Result<(tempfile::TempPath, u64)> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        // The copy is a new store: it must not find an (empty) file in its place.
        let path = file.into_temp_path();
        std::fs::remove_file(&path).map_err(|source| StoreError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
        let reports = self.backup_to(&path)?;
        Ok((path, reports))
    }

    fn copy_to(&self, to: &Path) -> Result<u64> {
        let source = self.db.begin_read().map_err(db_err)?;
        let target = Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(to)
            .map_err(|e| open_err(e, to))?;
        copy_table(&source, &target, META)?;
        let reports = copy_table(&source, &target, REPORTS)?;
        copy_table(&source, &target, BY_TIME)?;
        copy_table(&source, &target, SOURCE_VERSIONS)?;
        copy_table(&source, &target, MARKET)?;
        copy_table(&source, &target, HISTORY)?;
        copy_table(&source, &target, MARKET_AT)?;
        copy_table(&source, &target, MARKET_DAILY)?;
        copy_table(&source, &target, DAILY_COVERED)?;
        // What lists read instead of the reports: a copy without them would list no month.
        copy_table(&source, &target, CARDS)?;
        copy_table(&source, &target, MONTHS)?;
        Ok(reports)
    }
}

/// Removes the temporary copies a killed server left in `dir` (the caller holds the store's
/// lock: no other server is writing one).
pub(super) fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let bytes = entry.metadata().map_or(0, |m| m.len());
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), bytes, "removed a backup copy left by a stopped server");
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove a backup copy left by a stopped server");
            }
        }
    }
}

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
