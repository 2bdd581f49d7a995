//! crypto-report: AI-written crypto market reports next to a live market dashboard, served
//! from one binary over one embedded redb store.

pub mod api;
pub mod assets;
pub mod cache;
pub mod config;
pub mod connections;
pub mod demo;
pub mod encoded;
pub mod error;
pub mod i18n;
pub mod import;
pub mod live;
pub mod market;
pub mod metrics;
pub mod pages;
pub mod render;
pub mod reports;
pub mod routes;
pub mod secret;
pub mod server;
pub mod state;
pub mod store;
pub mod systemd;
pub mod tasks;

use crate::cache::Change;
use crate::store::{ReportRef, Store, StoreError, UpsertOutcome};

pub use crate::routes::app;
pub use crate::server::{SHUTDOWN_GRACE, serve, shutdown_signal};
pub use crate::state::{AppState, Settings, Shared};

impl AppState {
    /// Stores reports and invalidates exactly the cached pages they affect.
    pub async fn publish(
        &self,
        batch: Vec<reports::Report>,
        cursor: Option<(String, u64)>,
    ) -> Result<Vec<UpsertOutcome>, StoreError> {
        let batch_refs: Vec<_> = batch.iter().map(|r| (r.id, r.created_at)).collect();
        let (outcomes, change) = self
            .store
            .call(move |s| {
                let outcomes =
                    s.upsert_reports(&batch, cursor.as_ref().map(|(k, v)| (k.as_str(), *v)))?;
                let change = affected(s, &batch, &outcomes)?;
                Ok((outcomes, change))
            })
            .await?;
        self.pages.invalidate(&change);
        for (report, outcome) in batch_refs.iter().zip(&outcomes) {
            if *outcome == UpsertOutcome::New {
                self.live.report_published(report.0, report.1);
            }
        }
        Ok(outcomes)
    }
}

/// The reports whose pages change when `batch` lands: the changed ones and their new
/// neighbours. Pages of former neighbours list the changed id among their dependencies, so a
/// report moving in time invalidates them too.
pub fn affected(
    store: &Store,
    batch: &[reports::Report],
    outcomes: &[UpsertOutcome],
) -> Result<Change, StoreError> {
    let mut ids = Vec::new();
    for (report, outcome) in batch.iter().zip(outcomes) {
        if *outcome == UpsertOutcome::Unchanged {
            continue;
        }
        ids.push(report.id);
        let (older, newer) = store.neighbours(report)?;
        ids.extend(
            [older, newer]
                .into_iter()
                .flatten()
                .map(|r: ReportRef| r.id),
        );
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Change { reports: ids })
}
