//! `check`: opens an existing store read-only and verifies every record and the date index.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::codec::decode_report;
use super::{
    BY_TIME, CACHE, HISTORY, MARKET, META, PAGE_CACHE_BYTES, REPORTS, Result, SCHEMA_KEY,
    SCHEMA_VERSION, StoreError, db_err, decode_version, open_err,
};

/// What `check` found.
#[derive(Debug)]
pub struct CheckSummary {
    pub schema_version: u32,
    pub reports: u64,
    pub index_entries: u64,
    pub cache_entries: u64,
    pub market_fields: u64,
    pub history_points: u64,
    pub problems: Vec<String>,
}

/// Verifies every report (decompressed and matched against its content hash) and the index.
pub fn check(path: &Path) -> Result<CheckSummary> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_owned()));
    }
    let db = Database::builder()
        .set_cache_size(PAGE_CACHE_BYTES)
        .open_read_only(path)
        .map_err(|e| open_err(e, path))?;
    let tx = db.begin_read().map_err(db_err)?;
    let mut problems = Vec::new();
    let meta = tx.open_table(META).map_err(db_err)?;
    let schema_version = meta
        .get(SCHEMA_KEY)
        .map_err(db_err)?
        .map_or(0, |v| decode_version(v.value()));
    if schema_version == 1 {
        return Err(StoreError::NeedsUpgrade(path.to_owned()));
    }
    if schema_version != SCHEMA_VERSION {
        return Err(StoreError::SchemaMismatch {
            path: path.to_owned(),
            found: schema_version,
            expected: SCHEMA_VERSION,
        });
    }
    let reports = tx.open_table(REPORTS).map_err(db_err)?;
    let index = tx.open_table(BY_TIME).map_err(db_err)?;
    for entry in reports.iter().map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        let id = k.value();
        match decode_report(id, v.value()) {
            Ok(r) => {
                let key = (r.created_at.timestamp_micros(), id);
                if index.get(key).map_err(db_err)?.is_none() {
                    problems.push(format!("report {id} is missing from the date index"));
                }
                if let Err(e) = r.validate() {
                    problems.push(format!("report {id} is invalid: {e}"));
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for entry in index.iter().map_err(db_err)? {
        let (k, _) = entry.map_err(db_err)?;
        let (_, id) = k.value();
        if reports.get(id).map_err(db_err)?.is_none() {
            problems.push(format!(
                "date index names report {id}, which does not exist"
            ));
        }
    }
    Ok(CheckSummary {
        schema_version,
        reports: reports.len().map_err(db_err)?,
        index_entries: index.len().map_err(db_err)?,
        cache_entries: tx
            .open_table(CACHE)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?,
        market_fields: tx
            .open_table(MARKET)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?,
        history_points: tx
            .open_table(HISTORY)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?,
        problems,
    })
}
