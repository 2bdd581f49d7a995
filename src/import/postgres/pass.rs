//! One import pass over the source: every row listed in id order, only the rows whose
//! version changed fetched, in groups bounded in bytes, each published as one batch while the
//! next is fetched.

use std::collections::HashMap;

use tokio::task::JoinHandle;
use tokio_postgres::Row;

use super::super::rows::{Listed, groups, listing_problem, report_of};
use super::super::{ImportError, ImportSummary, Skipped};
use super::{Connection, Progress};
use crate::reports::publish::{Batch, Outcome, PublishError, Publisher};

impl Connection {
    /// One import pass into `summary`: every row of the table, fetching and publishing only
    /// what changed since the store last saw it. On an error, `summary` holds what was
    /// committed before it, and the store is as of the last committed batch.
    pub async fn import(
        &self,
        publisher: &Publisher,
        summary: &mut ImportSummary,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(), ImportError> {
        let mut pipeline = Pipeline::default();
        let result = self.walk(publisher, &mut pipeline, summary, progress).await;
        // Whatever happened, what is already committing lands and is counted.
        let drained = pipeline.drain(summary).await;
        result.and(drained)
    }

    async fn walk(
        &self,
        publisher: &Publisher,
        pipeline: &mut Pipeline,
        summary: &mut ImportSummary,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(), ImportError> {
        let mut state = Progress {
            done: 0,
            total: self.count().await?,
        };
        progress(state);
        let mut from = Some(i64::MIN);
        while let Some(start) = from {
            let page = self.list(start).await?;
            let Some(last) = page.last() else { break };
            from = last.id.checked_add(1);
            let known = known_versions(publisher, &page).await?;
            let mut wanted = Vec::new();
            for row in &page {
                if let Some(reason) = listing_problem(row) {
                    summary.skipped.push(Skipped {
                        line: None,
                        id: u64::try_from(row.id).ok(),
                        reason,
                    });
                } else if known.get(&(row.id as u64)) == Some(&(row.version as u64)) {
                    summary.unchanged += 1;
                } else {
                    wanted.push((row.id, row.bytes));
                }
            }
            for group in groups(&wanted) {
                let rows = self.fetch_readable(&group, &mut summary.skipped).await?;
                pipeline.push(publisher, rows, summary).await?;
            }
            state.done += page.len() as u64;
            state.total = state.total.max(state.done);
            progress(state);
        }
        Ok(())
    }
}

/// What committing one group of rows gave: the rows that were not reports, and the
/// publish outcome of the others.
type Committed = (Vec<Skipped>, Result<Option<Outcome>, PublishError>);

/// Publishes one group of rows while the next is fetched: at most one commits at a time.
#[derive(Default)]
struct Pipeline {
    pending: Option<JoinHandle<Committed>>,
}

impl Pipeline {
    async fn push(
        &mut self,
        publisher: &Publisher,
        rows: Vec<Row>,
        summary: &mut ImportSummary,
    ) -> Result<(), ImportError> {
        self.drain(summary).await?;
        let publisher = publisher.clone();
        // The reports are made, committed and freed on one thread: the allocator then reuses
        // their memory for the next group instead of holding it for a thread that freed it.
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let mut batch = Batch::default();
            let mut skipped = Vec::new();
            for row in &rows {
                match report_of(row) {
                    Ok((report, version)) => {
                        batch.reports.push(report);
                        batch.versions.push(Some(version));
                    }
                    Err(skip) => skipped.push(skip),
                }
            }
            drop(rows);
            if batch.reports.is_empty() {
                return (skipped, Ok(None));
            }
            (skipped, publisher.publish(batch).map(Some))
        }));
        Ok(())
    }

    async fn drain(&mut self, summary: &mut ImportSummary) -> Result<(), ImportError> {
        let Some(task) = self.pending.take() else {
            return Ok(());
        };
        let (skipped, outcome) = task
            .await
            .map_err(|e| ImportError::Store(crate::store::StoreError::Join(e.to_string())))?;
        summary.skipped.extend(skipped);
        if let Some(outcome) = outcome? {
            summary.count(&outcome.outcomes);
        }
        Ok(())
    }
}

async fn known_versions(
    publisher: &Publisher,
    page: &[Listed],
) -> Result<HashMap<u64, u64>, ImportError> {
    let from = page.iter().map(|r| r.id).filter(|&id| id > 0).min();
    let to = page.iter().map(|r| r.id).max();
    let (Some(from), Some(to)) = (from, to) else {
        return Ok(HashMap::new());
    };
    let (versions, damaged) = publisher
        .store()
        .call(move |s| Ok((s.source_versions(from as u64, to as u64)?, s.damaged_ids())))
        .await?;
    let mut known: HashMap<u64, u64> = versions.into_iter().collect();
    // A report found damaged is fetched again, whatever its version: the write repairs it.
    for id in damaged {
        known.remove(&id);
    }
    Ok(known)
}
