//! The zero-dependency demo: a throw-away store seeded with the bundled sample reports.

use crate::import::{ImportError, ImportSummary, import_jsonl};
use crate::store::{FILE_NAME, Store, StoreError};

/// The bundled bilingual sample reports, in the JSONL backup format.
pub const SAMPLE_REPORTS: &[u8] = include_bytes!("../data/sample-reports.jsonl");

/// A store in a fresh temporary directory, removed when the returned guard drops.
pub fn open_seeded() -> Result<(tempfile::TempDir, Store, ImportSummary), ImportError> {
    let dir = tempfile::Builder::new()
        .prefix("crypto-report-demo-")
        .tempdir()
        .map_err(|source| StoreError::CreateDir {
            path: std::env::temp_dir(),
            source,
        })?;
    let store = Store::open(&dir.path().join(FILE_NAME))?;
    let summary = seed(&store)?;
    Ok((dir, store, summary))
}

/// Loads the sample reports into `store`.
pub fn seed(store: &Store) -> Result<ImportSummary, ImportError> {
    import_jsonl(store, SAMPLE_REPORTS, |_, _| {})
}
