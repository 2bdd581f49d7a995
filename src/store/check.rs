//! `check`: verifies a store without changing it (unless asked to repair it): every report
//! decompressed and matched against its content hash, the date index both ways, the counts.
//!
//! A store that was not closed cleanly (a killed server or import) needs redb's repair before
//! it can be read; that is not damage, and the next writable open does it. Without `--repair`,
//! `check` verifies a repaired copy and leaves the file as it is. Damage is reported record
//! by record: a page that makes redb panic is caught and named, never a crash.

use std::path::Path;

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::cards::month_of;
use super::codec::decode_report;
use super::damage::guarded;
use super::{
    HISTORY, MARKET, META, MONTHS, PAGE_CACHE_BYTES, REPORTS, Result, SCHEMA_KEY, SCHEMA_VERSION,
    Store, StoreError, db_err, decode_version, load_dictionary, open_err, refuse_empty_or_foreign,
    written_by,
};

/// What `check` found.
#[derive(Debug, Default)]
pub struct CheckSummary {
    pub schema_version: u32,
    pub reports: u64,
    pub index_entries: u64,
    pub market_fields: u64,
    pub history_points: u64,
    /// What is wrong, one line per damaged record or structure. Empty: the store is sound.
    pub problems: Vec<String>,
    /// What is worth knowing but not damage (an unclean stop, a repair made).
    pub notes: Vec<String>,
}

/// Verifies the store at `path`. With `repair`, a store left by an unclean stop is repaired in
/// place first (as `serve` would on open); without, a repaired copy is verified instead.
pub fn check(path: &Path, repair: bool) -> Result<CheckSummary> {
    guarded(|| check_unguarded(path, repair)).map_err(|e| match e {
        StoreError::Unreadable(why) => StoreError::Unreadable(format!(
            "the structure of {} is damaged, so no record can be read through it: {why}; restore a backup (`crypto-report backup`) or re-import the reports",
            path.display()
        )),
        other => other,
    })
}

fn check_unguarded(path: &Path, repair: bool) -> Result<CheckSummary> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_owned()));
    }
    refuse_empty_or_foreign(path)?;
    let mut notes = Vec::new();
    let read_only = || {
        Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .open_read_only(path)
    };
    let summary = match read_only() {
        Ok(db) => verify(&db, path),
        Err(redb::DatabaseError::RepairAborted) if repair => {
            drop(Store::open(path)?);
            notes.push("the store was not closed cleanly; repaired in place".into());
            verify(&read_only().map_err(|e| open_err(e, path))?, path)
        }
        Err(redb::DatabaseError::RepairAborted) => {
            notes.push(
                "the store was not closed cleanly (a server or import was killed): not damage; the next `serve` or `import` repairs it on open, or `check --repair` now. Verified a repaired copy; the file is unchanged"
                    .into(),
            );
            let copy = tempfile::tempdir().map_err(|source| StoreError::CreateDir {
                path: std::env::temp_dir(),
                source,
            })?;
            let copied = copy.path().join(super::FILE_NAME);
            std::fs::copy(path, &copied).map_err(|source| StoreError::CreateDir {
                path: copied.clone(),
                source,
            })?;
            drop(Store::open(&copied)?);
            let db = Database::builder()
                .set_cache_size(PAGE_CACHE_BYTES)
                .open_read_only(&copied)
                .map_err(|e| open_err(e, &copied))?;
            verify(&db, path)
        }
        Err(e) => Err(open_err(e, path)),
    };
    summary.map(|mut s| {
        s.notes.splice(0..0, notes);
        s
    })
}

fn verify(db: &ReadOnlyDatabase, path: &Path) -> Result<CheckSummary> {
    let tx = db.begin_read().map_err(db_err)?;
    let meta = tx.open_table(META).map_err(db_err)?;
    let schema_version = stored_schema(&meta)?;
    if schema_version == 1 {
        return Err(StoreError::NeedsUpgrade(path.to_owned()));
    }
    if schema_version != SCHEMA_VERSION {
        return Err(StoreError::SchemaMismatch {
            path: path.to_owned(),
            found: schema_version,
            expected: SCHEMA_VERSION,
            written_by: written_by(&meta)?,
        });
    }
    let mut summary = CheckSummary {
        schema_version,
        ..CheckSummary::default()
    };
    let dictionary = match load_dictionary(&tx) {
        Ok(d) => d,
        Err(e) => {
            summary
                .problems
                .push(format!("the compression dictionary cannot be read: {e}"));
            None
        }
    };
    let reports = tx.open_table(REPORTS).map_err(db_err)?;

    // Every id either table knows, each walked from both ends around its damage.
    let super::walk::Known { ids, dated, gaps } = super::walk::known(&tx)?;
    // Counts are compared with a whole index only (a damaged one is reported already).
    let gaps_empty = gaps.is_empty();
    summary.problems.extend(gaps);
    for &id in &ids {
        let record = guarded(|| -> Result<Option<crate::reports::Report>> {
            match reports.get(id).map_err(db_err)? {
                Some(v) => decode_report(id, v.value(), dictionary.as_ref()).map(Some),
                None => Ok(None),
            }
        });
        match record {
            Ok(Some(r)) => {
                summary.reports += 1;
                if dated.get(&id) != Some(&r.created_at.timestamp_micros()) {
                    summary
                        .problems
                        .push(format!("report {id} is missing from the date index"));
                }
                if let Err(e) = r.validate() {
                    summary
                        .problems
                        .push(format!("report {id} is invalid: {e}"));
                }
            }
            Ok(None) => summary.problems.push(format!(
                "date index names report {id}, which does not exist"
            )),
            Err(e) => summary.problems.push(format!("report {id}: {e}")),
        }
    }
    summary.index_entries = dated.len() as u64;
    if gaps_empty {
        summary.problems.extend(month_mismatches(&tx, &dated)?);
    }
    let count = |t: std::result::Result<u64, redb::StorageError>| t.unwrap_or(0);
    summary.market_fields = count(tx.open_table(MARKET).map_err(db_err)?.len());
    summary.history_points = count(tx.open_table(HISTORY).map_err(db_err)?.len());
    Ok(summary)
}

/// Where the month counts (what the archive shows and deep pages start from) differ from the
/// date index: one line per month. A `serve` or `import` after a repair counts them again
/// from the index as it rewrites a damaged report; until then the archive misstates them.
fn month_mismatches(
    tx: &redb::ReadTransaction,
    dated: &std::collections::BTreeMap<u64, i64>,
) -> Result<Vec<String>> {
    let mut counted = std::collections::BTreeMap::<(i32, u32), (u64, u64)>::new();
    for &at in dated.values() {
        counted.entry(month_of(at)).or_default().0 += 1;
    }
    let walked = guarded(|| -> Result<()> {
        let months = match tx.open_table(MONTHS) {
            // Counted by no commit yet: every month with reports is miscounted.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            months => months.map_err(db_err)?,
        };
        for entry in months.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            counted.entry(k.value()).or_default().1 = v.value();
        }
        Ok(())
    });
    if let Err(e) = walked {
        return Ok(vec![format!("the month counts cannot be read: {e}")]);
    }
    Ok(counted
        .into_iter()
        .filter(|(_, (index, stored))| index != stored)
        .map(|((year, month), (index, stored))| {
            format!("month {year}-{month:02} counts {stored} reports, the date index holds {index}")
        })
        .collect())
}

/// What a store is, learnt without changing it (`doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspection {
    Missing,
    /// Left by a killed process: readable once the next writable open has repaired it (not
    /// damage).
    Unclean,
    Found {
        schema: u32,
        /// Counted when the schema is this release's.
        reports: Option<u64>,
        written_by: Option<String>,
    },
}

/// Reads the schema, the last writer and the report count of the store at `path`, read-only:
/// `Locked` while another process holds it, `Empty`/`Foreign` for what is not a store.
pub fn inspect(path: &Path) -> Result<Inspection> {
    if !path.exists() {
        return Ok(Inspection::Missing);
    }
    refuse_empty_or_foreign(path)?;
    guarded(|| {
        let db = match Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .open_read_only(path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::RepairAborted) => return Ok(Inspection::Unclean),
            Err(e) => return Err(open_err(e, path)),
        };
        let tx = db.begin_read().map_err(db_err)?;
        let meta = tx.open_table(META).map_err(db_err)?;
        let schema = stored_schema(&meta)?;
        let reports = if schema == SCHEMA_VERSION {
            Some(
                tx.open_table(REPORTS)
                    .map_err(db_err)?
                    .len()
                    .map_err(db_err)?,
            )
        } else {
            None
        };
        Ok(Inspection::Found {
            schema,
            reports,
            written_by: written_by(&meta)?,
        })
    })
}

/// The schema version `meta` records (0 when none).
fn stored_schema(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<u32> {
    Ok(meta
        .get(SCHEMA_KEY)
        .map_err(db_err)?
        .map_or(0, |v| decode_version(v.value())))
}
