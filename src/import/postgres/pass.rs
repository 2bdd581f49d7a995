//! One import pass over the source: every row listed in id order, only the rows whose
//! version changed fetched, in groups bounded in bytes, each published as one batch: a group
//! is fetched while the one before is prepared and the one before that commits.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
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
                pipeline
                    .push(publisher, move || reports_of(rows), summary)
                    .await?;
            }
            state.done += page.len() as u64;
            state.total = state.total.max(state.done);
            progress(state);
        }
        Ok(())
    }
}

/// The reports of `rows`, and the rows that are not reports.
fn reports_of(rows: Vec<Row>) -> (Batch, Vec<Skipped>) {
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
    (batch, skipped)
}

/// What one group of rows gave: the rows that were not reports, and the publish outcome of
/// the others (`None` when none was a report). `None` as a whole: the group was not committed
/// because a group before it failed, or the pass was given up.
type Committed = Option<(Vec<Skipped>, Result<Option<Outcome>, PublishError>)>;

/// Groups of rows on their way to the store while the next is fetched: the latest is
/// prepared ([`Publisher::prepare`]: cards and records, on every core) while the one before
/// commits, and commits only once that one has. At most two are in flight (with the one
/// being fetched, three groups of text in memory: see `rows::FETCH_BYTES`).
#[derive(Default)]
struct Pipeline {
    pending: VecDeque<(JoinHandle<Committed>, watch::Receiver<Option<bool>>)>,
    /// Set when the pipeline is dropped before it was drained (the pass was given up: the
    /// server is stopping): a group not committed yet is then not committed.
    abandoned: Arc<AtomicBool>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::Release);
    }
}

impl Pipeline {
    /// Hands on the group `make` builds (on a blocking thread), once fewer than two are in
    /// flight.
    async fn push(
        &mut self,
        publisher: &Publisher,
        make: impl FnOnce() -> (Batch, Vec<Skipped>) + Send + 'static,
        summary: &mut ImportSummary,
    ) -> Result<(), ImportError> {
        while self.pending.len() >= 2 {
            self.settle_first(summary).await?;
        }
        let publisher = publisher.clone();
        // Whether the group before this one committed (`None` while it has not finished).
        let mut before = self.pending.back().map(|(_, done)| done.clone());
        let (done, watched) = watch::channel(None);
        let abandoned = Arc::clone(&self.abandoned);
        // The reports are made, committed and freed on one thread: the allocator then reuses
        // their memory for a later group instead of holding it for a thread that freed it.
        let task = tokio::task::spawn_blocking(move || {
            let (batch, skipped) = make();
            let ready = (!batch.reports.is_empty()).then(|| publisher.prepare(batch));
            // Gone (its task failed) counts as failed.
            let committed_before = before.as_mut().is_none_or(|b| {
                matches!(
                    tokio::runtime::Handle::current().block_on(b.wait_for(Option::is_some)),
                    Ok(r) if *r == Some(true)
                )
            });
            if !committed_before || abandoned.load(Ordering::Acquire) {
                done.send_replace(Some(false));
                return None;
            }
            let outcome = match ready {
                None => Ok(None),
                Some(ready) => ready.and_then(|r| publisher.commit(r)).map(Some),
            };
            done.send_replace(Some(outcome.is_ok()));
            Some((skipped, outcome))
        });
        self.pending.push_back((task, watched));
        Ok(())
    }

    /// Waits for the oldest group and counts it into `summary`.
    async fn settle_first(&mut self, summary: &mut ImportSummary) -> Result<(), ImportError> {
        let Some((task, _)) = self.pending.pop_front() else {
            return Ok(());
        };
        let committed = task
            .await
            .map_err(|e| ImportError::Store(crate::store::StoreError::Join(e.to_string())))?;
        // Not committed: a group before it failed, and that failure was returned already.
        let Some((skipped, outcome)) = committed else {
            return Ok(());
        };
        summary.skipped.extend(skipped);
        if let Some(outcome) = outcome? {
            summary.count(&outcome.outcomes);
        }
        Ok(())
    }

    /// Waits for every group in flight, counting what committed; the first failure is
    /// returned.
    async fn drain(&mut self, summary: &mut ImportSummary) -> Result<(), ImportError> {
        let mut first = Ok(());
        while !self.pending.is_empty() {
            let settled = self.settle_first(summary).await;
            if first.is_ok() {
                first = settled;
            }
        }
        first
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::reports::publish::{Change, Origin, Subscriber};
    use crate::reports::sample;
    use crate::store::{FILE_NAME, Store};

    fn group(ids: &[u64]) -> impl FnOnce() -> (Batch, Vec<Skipped>) + Send + 'static {
        let reports: Vec<_> = ids
            .iter()
            .map(|&id| sample(id, "2026-11-18T08:00:00Z"))
            .collect();
        let skipped = vec![Skipped {
            line: None,
            id: Some(1_000 + ids[0]),
            reason: "not a report".into(),
        }];
        move || (Batch::of(reports), skipped)
    }

    fn publisher() -> (tempfile::TempDir, Publisher) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
        (dir, Publisher::new(Arc::new(store)))
    }

    fn held(publisher: &Publisher, ids: std::ops::RangeInclusive<u64>) -> Vec<u64> {
        ids.filter(|&id| publisher.store().report(id).expect("read").is_some())
            .collect()
    }

    /// The ids of every batch published, in the order they were committed.
    #[derive(Default)]
    struct Order(std::sync::Mutex<Vec<Vec<u64>>>);

    impl Subscriber for Order {
        fn changed(&self, change: &Change, _origin: Origin) {
            if let Change::Published(p) = change {
                let ids = p.new.iter().map(|r| r.id).collect();
                self.0.lock().expect("lock").push(ids);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_commit_in_order_and_are_all_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let order = Arc::new(Order::default());
        let publisher = Publisher::telling(store, None, vec![order.clone()]);
        let mut pipeline = Pipeline::default();
        let mut summary = ImportSummary::default();
        // A large group first: were the commits not kept in order, a small one after it
        // would commit first.
        let groups: Vec<Vec<u64>> = vec![(1..=60).collect(), vec![61], vec![62], vec![63, 64]];
        for ids in &groups {
            pipeline
                .push(&publisher, group(ids), &mut summary)
                .await
                .expect("push");
            assert!(pipeline.pending.len() <= 2, "bounded");
        }
        pipeline.drain(&mut summary).await.expect("drain");
        assert_eq!(summary.new, 64);
        assert_eq!(summary.skipped.total(), 4);
        assert_eq!(held(&publisher, 1..=70), (1..=64).collect::<Vec<_>>());
        assert_eq!(*order.0.lock().expect("lock"), groups);
    }

    /// A pass given up (its future dropped, as a stopping server drops a sync pass) commits
    /// no group that had not committed yet.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_pipeline_commits_nothing_more() {
        let (_dir, publisher) = publisher();
        let mut pipeline = Pipeline::default();
        let mut summary = ImportSummary::default();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        // The first group waits in its task until released; the second waits for the first.
        let first = group(&[1]);
        let held_first = move || {
            let _ = hold.recv();
            first()
        };
        pipeline
            .push(&publisher, held_first, &mut summary)
            .await
            .expect("push");
        pipeline
            .push(&publisher, group(&[2]), &mut summary)
            .await
            .expect("push");
        let tasks: Vec<_> = pipeline.pending.drain(..).map(|(task, _)| task).collect();
        drop(pipeline);
        release.send(()).expect("release");
        for task in tasks {
            assert!(task.await.expect("task").is_none(), "not committed");
        }
        assert_eq!(held(&publisher, 1..=2), Vec::<u64>::new());
    }

    /// A group that fails stops the import there: the groups before it are committed and
    /// counted, the ones after it (already made, maybe prepared) are not committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_group_stops_the_ones_after_it() {
        let (_dir, publisher) = publisher();
        let mut pipeline = Pipeline::default();
        let mut summary = ImportSummary::default();
        let mut pushed = Vec::new();
        for ids in [&[1, 2][..], &[3, 0], &[4], &[5]] {
            pushed.push(pipeline.push(&publisher, group(ids), &mut summary).await);
            if pushed.last().is_some_and(Result::is_err) {
                break;
            }
        }
        let drained = pipeline.drain(&mut summary).await;
        // The failure is returned once: by the push that met it, or by the drain.
        let failures = pushed.iter().filter(|r| r.is_err()).count() + usize::from(drained.is_err());
        assert_eq!(failures, 1, "{pushed:?} {drained:?}");
        assert_eq!(summary.new, 1 + 1, "reports 1 and 2");
        // The rows of the failed group that were not reports are named too.
        assert_eq!(summary.skipped.total(), 2, "the first two groups'");
        assert_eq!(held(&publisher, 1..=5), vec![1, 2]);
    }
}
