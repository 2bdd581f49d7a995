//! The second cache tier's own file, `<data dir>/page-cache.redb`: rendered pages kept across
//! restarts, bounded by bytes (the oldest entries make room for new ones), never part of the
//! reports' file or of its backups. Writes are not made durable one by one (it is a cache),
//! but one in every few megabytes written is: redb reuses the pages a write frees only after
//! a durable commit, so without it the file and the memory holding its unwritten pages grow
//! with every page ever cached. A file that cannot be opened is removed and made again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};

use super::{Result, StoreError, db_err, decode};

pub const CACHE_FILE_NAME: &str = "page-cache.redb";
/// key -> postcard [`Entry`].
const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("pages_v1");
/// Write order -> key: the oldest entry is the first to go.
const BY_AGE: TableDefinition<u64, &str> = TableDefinition::new("pages_by_age_v1");
/// Memory redb may use to cache this file's pages.
const PAGE_CACHE_BYTES: usize = 4 << 20;
/// Bytes written between two durable commits: at most a few such between what the file and
/// the memory hold beyond the budget.
const DURABLE_EVERY: u64 = 4 << 20;

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    expires_at_ms: i64,
    /// Its place in [`BY_AGE`].
    age: u64,
    #[serde(borrow)]
    tags: Vec<&'a str>,
    #[serde(borrow)]
    bytes: &'a [u8],
}

/// What the entries hold, kept beside the file.
#[derive(Debug, Default, Clone)]
struct Accounts {
    /// Bytes of every entry (key and value).
    used: u64,
    next_age: u64,
    /// Bytes written since the last durable commit.
    unsynced: u64,
}

/// What the tier holds, for `/cache-stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageCacheUsage {
    pub entries: u64,
    pub bytes: u64,
    pub budget_bytes: u64,
    pub file_bytes: u64,
}

pub struct PageCacheFile {
    db: Database,
    path: PathBuf,
    budget: u64,
    accounts: Mutex<Accounts>,
}

impl std::fmt::Debug for PageCacheFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCacheFile")
            .field("path", &self.path)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

fn size_of(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

impl PageCacheFile {
    /// Opens (or makes) the file `CACHE_FILE_NAME` in `dir`, holding at most `budget` bytes of
    /// entries. A file that cannot be opened is a cache lost: it is removed and made again.
    pub fn open(dir: &Path, budget: u64) -> Result<PageCacheFile> {
        let path = dir.join(CACHE_FILE_NAME);
        let db = match Self::open_db(&path) {
            Ok(db) => db,
            Err(StoreError::Locked(p)) => return Err(StoreError::Locked(p)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "the page cache file cannot be opened; starting an empty one");
                std::fs::remove_file(&path).map_err(|source| StoreError::CreateDir {
                    path: path.clone(),
                    source,
                })?;
                Self::open_db(&path)?
            }
        };
        let cache = PageCacheFile {
            db,
            path,
            budget,
            accounts: Mutex::default(),
        };
        cache.load_accounts()?;
        // A budget lowered since the last run holds from the start.
        cache.write(0, |entries, ages, accounts| {
            evict(entries, ages, accounts, budget)
        })?;
        Ok(cache)
    }

    fn open_db(path: &Path) -> Result<Database> {
        let db = super::damage::guarded(|| {
            Database::builder()
                .set_cache_size(PAGE_CACHE_BYTES)
                .create(path)
                .map_err(|e| super::open_err(e, path))
        })?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(ENTRIES).map_err(db_err)?;
        tx.open_table(BY_AGE).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(db)
    }

    fn load_accounts(&self) -> Result<()> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let entries = tx.open_table(ENTRIES).map_err(db_err)?;
        let mut used = 0;
        for entry in entries.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            used += size_of(k.value(), v.value());
        }
        let ages = tx.open_table(BY_AGE).map_err(db_err)?;
        let next_age = match ages.last().map_err(db_err)? {
            Some((age, _)) => age.value() + 1,
            None => 0,
        };
        *self.lock() = Accounts {
            used,
            next_age,
            unsynced: 0,
        };
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Accounts> {
        crate::lock::lock(&self.accounts)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Runs a blocking operation on the blocking thread pool.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&PageCacheFile) -> Result<T> + Send + 'static,
    {
        let cache = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&cache))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// The entry under `key`; an expired one reads as absent.
    pub fn get(&self, key: &str, now_ms: i64) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(ENTRIES).map_err(db_err)?;
        let Some(v) = table.get(key).map_err(db_err)? else {
            return Ok(None);
        };
        let entry: Entry = decode("page cache", key, v.value())?;
        Ok((entry.expires_at_ms > now_ms).then(|| entry.bytes.to_vec()))
    }

    /// Stores `bytes` under `key`, the oldest entries making room; false when it is larger
    /// than the whole budget.
    pub fn put(
        &self,
        key: &str,
        bytes: &[u8],
        expires_at_ms: i64,
        tags: &[String],
    ) -> Result<bool> {
        let budget = self.budget;
        self.write(bytes.len() as u64, |entries, ages, accounts| {
            let encoded = postcard::to_allocvec(&Entry {
                expires_at_ms,
                age: accounts.next_age,
                tags: tags.iter().map(String::as_str).collect(),
                bytes,
            })?;
            let size = size_of(key, &encoded);
            if size > budget {
                return Ok(false);
            }
            remove(entries, ages, accounts, key)?;
            evict(entries, ages, accounts, budget - size)?;
            entries.insert(key, encoded.as_slice()).map_err(db_err)?;
            ages.insert(accounts.next_age, key).map_err(db_err)?;
            accounts.next_age += 1;
            accounts.used += size;
            Ok(true)
        })
    }

    /// Removes every entry; returns how many went.
    pub fn clear(&self) -> Result<u64> {
        self.write(0, |entries, ages, accounts| {
            let n = entries.len().map_err(db_err)?;
            entries.retain(|_, _| false).map_err(db_err)?;
            ages.retain(|_, _| false).map_err(db_err)?;
            accounts.used = 0;
            Ok(n)
        })
    }

    /// Removes every entry carrying one of `tags`, and any that does not decode.
    pub fn remove_tagged(&self, tags: &[String]) -> Result<u64> {
        self.remove_where(|e| e.tags.iter().any(|t| tags.iter().any(|x| x == t)))
    }

    /// Drops expired entries; returns how many.
    pub fn purge_expired(&self, now_ms: i64) -> Result<u64> {
        self.remove_where(|e| e.expires_at_ms <= now_ms)
    }

    /// Removes the entries `doomed` picks (and those that do not decode). The table is
    /// bounded by the budget, so the scan is short.
    fn remove_where(&self, doomed: impl Fn(&Entry) -> bool) -> Result<u64> {
        self.write(0, |entries, ages, accounts| {
            let mut gone = Vec::new();
            for entry in entries.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                if postcard::from_bytes::<Entry>(v.value()).is_ok_and(|e| !doomed(&e)) {
                    continue;
                }
                gone.push(k.value().to_owned());
            }
            for key in &gone {
                remove(entries, ages, accounts, key)?;
            }
            Ok(gone.len() as u64)
        })
    }

    /// What the tier holds now.
    pub fn usage(&self) -> PageCacheUsage {
        let entries = self
            .db
            .begin_read()
            .ok()
            .and_then(|tx| tx.open_table(ENTRIES).ok()?.len().ok())
            .unwrap_or(0);
        PageCacheUsage {
            entries,
            bytes: self.lock().used,
            budget_bytes: self.budget,
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
        }
    }

    /// Makes every write so far durable (at shutdown).
    pub fn sync(&self) -> Result<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        self.lock().unsynced = 0;
        Ok(())
    }

    /// One write transaction on both tables, durable once every [`DURABLE_EVERY`] bytes.
    fn write<T>(
        &self,
        writing: u64,
        f: impl FnOnce(
            &mut redb::Table<&str, &[u8]>,
            &mut redb::Table<u64, &str>,
            &mut Accounts,
        ) -> Result<T>,
    ) -> Result<T> {
        let mut accounts = self.lock();
        let mut tx = self.db.begin_write().map_err(db_err)?;
        let durable = accounts.unsynced + writing >= DURABLE_EVERY;
        let level = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        tx.set_durability(level)
            .map_err(|e| StoreError::Db(redb::Error::from(e)))?;
        // On failure the transaction is dropped (aborted): the accounts go back as well.
        let mut draft = accounts.clone();
        let out = {
            let mut entries = tx.open_table(ENTRIES).map_err(db_err)?;
            let mut ages = tx.open_table(BY_AGE).map_err(db_err)?;
            f(&mut entries, &mut ages, &mut draft)?
        };
        tx.commit().map_err(db_err)?;
        draft.unsynced = if durable { 0 } else { draft.unsynced + writing };
        *accounts = draft;
        Ok(out)
    }
}

/// Removes `key`; whether it was there.
fn remove(
    entries: &mut redb::Table<&str, &[u8]>,
    ages: &mut redb::Table<u64, &str>,
    accounts: &mut Accounts,
    key: &str,
) -> Result<bool> {
    let Some(old) = entries.remove(key).map_err(db_err)? else {
        return Ok(false);
    };
    let value = old.value();
    accounts.used = accounts.used.saturating_sub(size_of(key, value));
    if let Ok(e) = postcard::from_bytes::<Entry>(value) {
        ages.remove(e.age).map_err(db_err)?;
    }
    Ok(true)
}

/// Removes the oldest entries until at most `room` bytes are used.
fn evict(
    entries: &mut redb::Table<&str, &[u8]>,
    ages: &mut redb::Table<u64, &str>,
    accounts: &mut Accounts,
    room: u64,
) -> Result<()> {
    while accounts.used > room {
        let Some((_, key)) = ages.pop_first().map_err(db_err)? else {
            // Entries the age table lost (written by a damaged file): start over.
            entries.retain(|_, _| false).map_err(db_err)?;
            accounts.used = 0;
            break;
        };
        let key = key.value().to_owned();
        if let Some(old) = entries.remove(key.as_str()).map_err(db_err)? {
            accounts.used = accounts.used.saturating_sub(size_of(&key, old.value()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, budget: u64) -> PageCacheFile {
        PageCacheFile::open(dir, budget).expect("open")
    }

    #[test]
    fn the_oldest_entries_make_room_within_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = open(dir.path(), 10_000);
        let value = vec![7u8; 3_000];
        for k in 0..10 {
            assert!(
                cache
                    .put(&format!("k{k}"), &value, i64::MAX, &[])
                    .expect("put")
            );
            assert!(cache.usage().bytes <= 10_000, "{:?}", cache.usage());
        }
        // Three fit: the last three written.
        for k in 0..7 {
            assert_eq!(cache.get(&format!("k{k}"), 0).expect("get"), None, "k{k}");
        }
        for k in 7..10 {
            assert_eq!(
                cache.get(&format!("k{k}"), 0).expect("get"),
                Some(value.clone())
            );
        }
        assert!(
            !cache
                .put("huge", &vec![0; 20_000], i64::MAX, &[])
                .expect("put")
        );
        assert_eq!(cache.usage().entries, 3);
    }

    #[test]
    fn entries_expire_are_invalidated_and_survive_a_reopen_within_a_lower_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let cache = open(dir.path(), 1 << 20);
            cache.put("a", b"1", 1_000, &[]).expect("put");
            cache
                .put("b", b"2", 5_000, &["report:7".into()])
                .expect("put");
            cache
                .put("c", b"3", 5_000, &["listing".into()])
                .expect("put");
            cache.put("d", &[4; 500], 5_000, &[]).expect("put");
            assert_eq!(
                cache
                    .remove_tagged(&["listing".into(), "report:9".into()])
                    .expect("tagged"),
                1
            );
            assert_eq!(cache.get("c", 0).expect("get"), None);
            assert_eq!(cache.get("a", 999).expect("get"), Some(b"1".to_vec()));
            assert_eq!(cache.get("a", 1_000).expect("get"), None);
            assert_eq!(cache.purge_expired(2_000).expect("purge"), 1);
            cache.sync().expect("sync");
        }
        // Reopened with room for "d" alone: the older "b" goes.
        let cache = open(dir.path(), 520);
        assert_eq!(cache.get("b", 0).expect("get"), None);
        assert_eq!(cache.get("d", 0).expect("get"), Some(vec![4; 500]));
        assert_eq!(cache.clear().expect("clear"), 1);
        assert_eq!(cache.usage().bytes, 0);
    }

    #[test]
    fn a_file_that_is_not_a_cache_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CACHE_FILE_NAME), b"garbage, not redb").expect("write");
        let cache = open(dir.path(), 1 << 20);
        assert!(cache.put("a", b"1", i64::MAX, &[]).expect("put"));
        assert_eq!(cache.get("a", 0).expect("get"), Some(b"1".to_vec()));
    }

    #[test]
    fn rewriting_the_same_pages_keeps_the_file_near_its_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let budget = 2 << 20;
        let cache = open(dir.path(), budget);
        let value = vec![1u8; 64 << 10];
        // 64 MiB written through a 2 MiB budget.
        for round in 0..1024 {
            cache
                .put(&format!("page-{}", round % 200), &value, i64::MAX, &[])
                .expect("put");
        }
        let usage = cache.usage();
        assert!(usage.bytes <= budget, "{usage:?}");
        assert!(
            usage.file_bytes < 4 * (budget + DURABLE_EVERY),
            "the file grew to {} bytes",
            usage.file_bytes
        );
    }
}
