//! The zero-dependency demo: a throw-away store seeded with the bundled sample reports.

use crate::import::{ImportError, ImportSummary, import_jsonl};
use crate::reports::Publisher;
use crate::store::{FILE_NAME, Store, StoreError};

/// The bundled bilingual sample reports, in the JSONL backup format.
pub const SAMPLE_REPORTS: &[u8] = include_bytes!("../data/sample-reports.jsonl");

/// An empty store in a fresh temporary directory, removed when the returned guard drops.
pub fn open() -> Result<(tempfile::TempDir, Store), StoreError> {
    let dir = tempfile::Builder::new()
        .prefix("crypto-report-demo-")
        .tempdir()
        .map_err(|source| StoreError::CreateDir {
            path: std::env::temp_dir(),
            source,
        })?;
    let store = Store::open(&dir.path().join(FILE_NAME))?;
    Ok((dir, store))
}

/// Publishes the sample reports.
pub fn seed(publisher: &Publisher) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary::default();
    import_jsonl(publisher, SAMPLE_REPORTS, &mut summary)?;
    Ok(summary)
}
