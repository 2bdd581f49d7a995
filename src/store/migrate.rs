//! Upgrades of older stores, run by [`super::Store::open`] before anything else reads them.
//!
//! Schema 1 kept every report uncompressed in the table `reports`. Schema 2 keeps the body as
//! one zstd frame in `reports_v2`. The copy runs in batches, each committed with the next id
//! to copy, so a migration cut short (killed, disk full) resumes where it stopped; the version
//! flips last, in the same transaction that drops the old table. The date index and
//! market tables keep their shape; the second-tier cache is emptied (it is only a cache).
//!
//! Schema 3 adds the reports per month (counted from the date index in one transaction, which
//! also flips the version: a few milliseconds per 10,000 reports) and the report cards, which
//! start empty: computing them parses every report, far too slow to hold a start, so the
//! server fills them in the background and computes a missing one when a page needs it (see
//! `reports::cards`).

use chrono::DateTime;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Deserialize;

use super::codec::{Dictionary, Encoder};
use super::reports::Sample;
use super::{
    CACHE, CARDS, META, MONTHS, REPORTS, Result, SCHEMA_KEY, Store, StoreError, db_err, decode,
    load_dictionary,
};
use crate::reports::Report;

const REPORTS_V1: TableDefinition<u64, &[u8]> = TableDefinition::new("reports");
/// Next schema-1 id to copy while a migration is under way.
const PROGRESS_KEY: &str = "migration_v2_next_id";
/// Reports copied per transaction: bounded memory whatever the store holds.
const BATCH: usize = 64;

/// A report as schema 1 stored it.
#[derive(Deserialize)]
struct StoredReportV1 {
    html_content: String,
    css_content: Option<String>,
    js_content: Option<String>,
    html_content_en: Option<String>,
    js_content_en: Option<String>,
    created_at_us: i64,
    hash: [u8; 32],
}

/// Rewrites a schema-1 store as schema 2; returns how many reports were copied.
pub(super) fn v1_to_v2(db: &Database) -> Result<u64> {
    let dictionary = train_from_v1(db)?;
    let mut copied = 0;
    let mut encoder = Encoder::new(dictionary.as_deref())?;
    loop {
        let tx = db.begin_write().map_err(db_err)?;
        let done = {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let next = meta
                .get(PROGRESS_KEY)
                .map_err(db_err)?
                .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                .unwrap_or(0);
            let old = tx.open_table(REPORTS_V1).map_err(db_err)?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut last_seen = None;
            for entry in old.range(next..).map_err(db_err)?.take(BATCH) {
                let (k, v) = entry.map_err(db_err)?;
                last_seen = Some(k.value());
                // A damaged record cannot be carried over; it must not keep the store from
                // opening either. It is named, to be imported again.
                match v1_report(k.value(), v.value()) {
                    Ok(r) => batch.push(r),
                    Err(e) => {
                        tracing::error!(id = k.value(), error = %e, "a damaged report was not carried over to schema 2; import it again")
                    }
                }
            }
            drop(old);
            let mut new = tx.open_table(REPORTS).map_err(db_err)?;
            for report in &batch {
                let bytes = encoder.encode(report, report.content_hash())?;
                new.insert(report.id, bytes.as_slice()).map_err(db_err)?;
            }
            copied += batch.len() as u64;
            match last_seen {
                Some(last) => {
                    let next = last.saturating_add(1).to_le_bytes();
                    meta.insert(PROGRESS_KEY, next.as_slice()).map_err(db_err)?;
                    false
                }
                _ => {
                    meta.remove(PROGRESS_KEY).map_err(db_err)?;
                    meta.insert(SCHEMA_KEY, 2u32.to_le_bytes().as_slice())
                        .map_err(db_err)?;
                    true
                }
            }
        };
        if done {
            tx.delete_table(REPORTS_V1).map_err(db_err)?;
            tx.delete_table(CACHE).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        if done {
            return Ok(copied);
        }
    }
}

/// Adds the tables of schema 3 to a schema-2 store; returns how many months hold reports.
pub(super) fn v2_to_v3(store: &Store) -> Result<usize> {
    let counts = super::cards::count_months(store)?;
    let tx = store.db.begin_write().map_err(db_err)?;
    {
        let mut months = tx.open_table(MONTHS).map_err(db_err)?;
        months.retain(|_, _| false).map_err(db_err)?;
        for (month, n) in &counts {
            months.insert(*month, *n).map_err(db_err)?;
        }
        tx.open_table(CARDS).map_err(db_err)?;
        tx.open_table(META)
            .map_err(db_err)?
            .insert(SCHEMA_KEY, 3u32.to_le_bytes().as_slice())
            .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(counts.len())
}

fn v1_report(id: u64, bytes: &[u8]) -> Result<Report> {
    let r: StoredReportV1 = decode("reports", id, bytes)?;
    let stored_hash = r.hash;
    let report = Report {
        id,
        html_content: r.html_content,
        css_content: r.css_content,
        js_content: r.js_content,
        html_content_en: r.html_content_en,
        js_content_en: r.js_content_en,
        created_at: DateTime::from_timestamp_micros(r.created_at_us).unwrap_or_default(),
    };
    // Schema 1 hashed the same way: a record that does not match its hash is damaged.
    if report.content_hash() != stored_hash {
        return Err(StoreError::Damaged {
            id,
            reason: "content does not match its hash".into(),
        });
    }
    Ok(report)
}

/// The compression dictionary for the migrated bodies: the one a previous, interrupted run
/// stored, or one trained on the first schema-1 reports (none for a small store).
fn train_from_v1(db: &Database) -> Result<Option<std::sync::Arc<Dictionary>>> {
    {
        let tx = db.begin_read().map_err(db_err)?;
        if let Some(d) = load_dictionary(&tx)? {
            return Ok(Some(d));
        }
    }
    let tx = db.begin_write().map_err(db_err)?;
    let trained = {
        let old = tx.open_table(REPORTS_V1).map_err(db_err)?;
        let mut sample = Sample::default();
        for entry in old.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            if let Ok(report) = v1_report(k.value(), v.value())
                && !sample.add(&report)?
            {
                break;
            }
        }
        sample.train_into(&tx)?
    };
    let Some(dictionary) = trained else {
        return Ok(None);
    };
    tx.commit().map_err(db_err)?;
    Ok(Some(std::sync::Arc::new(dictionary)))
}
