//! The one write path of reports, and the one way a change is told. Every batch, whatever
//! brings it (a JSONL file, the PostgreSQL importer, the server's sync, a test), goes through
//! [`Publisher::publish`]: it computes what is kept with each report (the [`Stamp`]: the
//! market at publication), commits the reports, those values and the source's row versions in
//! one store transaction, then tells every subscriber what changed, as a [`Change`]. A change that
//! is not a commit (values that became known later, an admin's clear, a change another
//! instance sent) goes through [`Publisher::notify`] to the same subscribers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::outbox::Announcing;
use super::{InvalidReport, Report};
use crate::store::{Beside, Prepared, Store, StoreError, UpsertOutcome};

/// Reports to write in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub reports: Vec<Report>,
    /// The version of the source row of each report, in the same order (PostgreSQL's `xmin`);
    /// empty or `None` where the source has none.
    /// Committed with the reports, so a rerun of a cut-short import skips the whole batches
    /// already stored.
    pub versions: Vec<Option<u64>>,
}

impl Batch {
    pub fn of(reports: Vec<Report>) -> Batch {
        Batch {
            reports,
            ..Batch::default()
        }
    }
}

/// A report that did not exist before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewReport {
    pub id: u64,
    pub created_at: DateTime<Utc>,
}

/// What one committed batch changed. Plain data, so it can cross a process boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Reports that did not exist before, oldest first (so the last one announced is the
    /// newest).
    pub new: Vec<NewReport>,
    /// Reports whose content or date changed.
    pub updated: Vec<u64>,
    /// Every report whose page shows something that changed, sorted: the new and updated
    /// ones and their neighbours in time (whose previous/next links moved). Pages of former
    /// neighbours name the changed report among what they show, so they are covered too.
    pub affected: Vec<u64>,
}

impl Published {
    pub fn is_empty(&self) -> bool {
        self.affected.is_empty()
    }
}

/// Something that changed what the pages show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A committed batch.
    Published(Published),
    /// Values shown on these reports' pages became known after their publication (the
    /// market history fetched for older reports); sorted.
    Refreshed { affected: Vec<u64> },
    /// An admin emptied the page caches.
    Cleared,
}

impl Change {
    /// The reports whose pages show something that changed (every page for [`Change::Cleared`]).
    pub fn affected(&self) -> &[u64] {
        match self {
            Change::Published(p) => &p.affected,
            Change::Refreshed { affected } => affected,
            Change::Cleared => &[],
        }
    }
}

/// Where a change happened: here, or on another instance that sent it over the cluster bus
/// (a subscriber that acts on a shared resource, such as the shared cache tier or the bus
/// itself, acts only on changes made here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Remote,
}

/// Something that must hear of every change (a cache to invalidate, clients to tell, other
/// instances). Called after the commit, on the publishing thread: keep it short and
/// non-blocking.
pub trait Subscriber: Send + Sync {
    fn changed(&self, change: &Change, origin: Origin);
}

/// Values kept with each report, computed before the commit and written in its transaction
/// (kept for the reports the commit finds new). Called on the publishing thread.
pub trait Stamp: Send + Sync {
    /// One per report of `reports`, in order: postcard bytes, or `None` for nothing to keep.
    fn stamp(&self, reports: &[Report]) -> Vec<Option<Vec<u8>>>;
}

/// A validated batch with what its commit keeps, computed ([`Publisher::prepare`]).
#[derive(Debug)]
pub struct Ready {
    batch: Batch,
    stamps: Vec<Option<Vec<u8>>>,
    prepared: Vec<Option<Prepared>>,
}

/// What [`Publisher::publish`] did with a batch.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One per report of the batch, in order.
    pub outcomes: Vec<UpsertOutcome>,
    pub published: Published,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("report {id} is invalid: {reason}")]
    Invalid { id: u64, reason: InvalidReport },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The write side of the reports: the store, what is kept with a report, and who to tell.
/// Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    store: Arc<Store>,
    stamp: Option<Arc<dyn Stamp>>,
    subscribers: Arc<[Arc<dyn Subscriber>]>,
    /// Where new reports are announced (an outbox record per target, in the commit).
    announcing: Announcing,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("store", &self.store)
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl Publisher {
    /// A publisher that only writes (the command-line import has nobody to tell).
    pub fn new(store: Arc<Store>) -> Publisher {
        Publisher::telling(store, None, Vec::new())
    }

    /// A publisher that keeps `stamp`'s values with new reports and tells `subscribers`, in
    /// this order, of every change.
    pub fn telling(
        store: Arc<Store>,
        stamp: Option<Arc<dyn Stamp>>,
        subscribers: Vec<Arc<dyn Subscriber>>,
    ) -> Publisher {
        Publisher {
            store,
            stamp,
            subscribers: subscribers.into(),
            announcing: Announcing::default(),
        }
    }

    /// The same publisher, queueing announcements of new reports as `announcing` says.
    pub fn announcing(self, announcing: Announcing) -> Publisher {
        Publisher { announcing, ..self }
    }

    pub fn announcements(&self) -> &Announcing {
        &self.announcing
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Validates and commits `batch`, then tells every subscriber. Blocks: async callers use
    /// [`Publisher::publish_async`]. Nothing is written when a report is invalid.
    pub fn publish(&self, batch: Batch) -> Result<Outcome, PublishError> {
        self.commit(self.prepare(batch)?)
    }

    /// The first half of [`Publisher::publish`]: validates `batch` and computes, outside the
    /// store's write lock, what its commit keeps (the market at publication, each report's
    /// card and record). An importer prepares a batch while the one before commits: a commit
    /// checks what was prepared against what it writes, so nothing depends on their order.
    pub fn prepare(&self, batch: Batch) -> Result<Ready, PublishError> {
        for r in &batch.reports {
            r.validate()
                .map_err(|reason| PublishError::Invalid { id: r.id, reason })?;
        }
        let stamps = self
            .stamp
            .as_ref()
            .map(|s| s.stamp(&batch.reports))
            .unwrap_or_default();
        let prepared = super::cards::prepare(&self.store, &batch.reports);
        Ok(Ready {
            batch,
            stamps,
            prepared,
        })
    }

    /// The second half of [`Publisher::publish`]: commits a prepared batch, then tells every
    /// subscriber.
    pub fn commit(&self, ready: Ready) -> Result<Outcome, PublishError> {
        let Ready {
            batch,
            stamps,
            prepared,
        } = ready;
        let announce = self.announcing.targets_now();
        let beside = Beside {
            market_at: &stamps,
            announce,
            card: Some(&super::cards::for_commit),
            prepared: &prepared,
        };
        let committed = self
            .store
            .commit_stamped(&batch.reports, &batch.versions, beside)?;
        if !announce.is_empty() && committed.outcomes.contains(&UpsertOutcome::New) {
            self.announcing.wake();
        }
        let published = changes(&batch.reports, &committed.outcomes, committed.affected);
        self.notify(&Change::Published(published.clone()), Origin::Local);
        Ok(Outcome {
            outcomes: committed.outcomes,
            published,
        })
    }

    /// Tells every subscriber of a change that is not a commit here (or of a commit on
    /// another instance). An empty change is told to nobody.
    pub fn notify(&self, change: &Change, origin: Origin) {
        if change.affected().is_empty() && *change != Change::Cleared {
            return;
        }
        for s in self.subscribers.iter() {
            s.changed(change, origin);
        }
    }

    /// [`Publisher::publish`] on the blocking pool.
    pub async fn publish_async(&self, batch: Batch) -> Result<Outcome, PublishError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.publish(batch))
            .await
            .map_err(|e| PublishError::Store(StoreError::Join(e.to_string())))?
    }
}

/// What a committed batch changed, from its outcomes and the pages the commit found affected.
fn changes(reports: &[Report], outcomes: &[UpsertOutcome], affected: Vec<u64>) -> Published {
    let mut out = Published {
        affected,
        ..Published::default()
    };
    for (report, outcome) in reports.iter().zip(outcomes) {
        match outcome {
            UpsertOutcome::Unchanged => {}
            UpsertOutcome::New => out.new.push(NewReport {
                id: report.id,
                created_at: report.created_at,
            }),
            UpsertOutcome::Updated => out.updated.push(report.id),
        }
    }
    out.new.sort_by_key(|r| (r.created_at, r.id));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::reports::sample;
    use crate::store::FILE_NAME;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Published>>);

    impl Subscriber for Recorder {
        fn changed(&self, change: &Change, origin: Origin) {
            assert_eq!(origin, Origin::Local);
            if let Change::Published(p) = change {
                self.0.lock().expect("lock").push(p.clone());
            }
        }
    }

    #[test]
    fn subscribers_hear_exactly_what_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let recorder = Arc::new(Recorder::default());
        let publisher = Publisher::telling(store.clone(), None, vec![recorder.clone()]);
        let first = publisher
            .publish(Batch::of(vec![
                sample(1, "2026-11-18T08:00:00Z"),
                sample(2, "2026-11-19T08:00:00Z"),
                sample(3, "2026-11-20T08:00:00Z"),
            ]))
            .expect("publish");
        assert_eq!(first.published.new.len(), 3);
        assert_eq!(first.published.affected, vec![1, 2, 3]);

        // The same batch again: nothing changed, nobody is told.
        let again = publisher
            .publish(Batch::of(vec![sample(2, "2026-11-19T08:00:00Z")]))
            .expect("publish");
        assert_eq!(again.outcomes, vec![UpsertOutcome::Unchanged]);
        assert_eq!(recorder.0.lock().expect("lock").len(), 1);

        // A changed report affects itself and its neighbours, and is not announced as new.
        let mut changed = sample(2, "2026-11-19T08:00:00Z");
        changed.css_content = Some("p{}".into());
        let out = publisher
            .publish(Batch {
                reports: vec![changed],
                versions: vec![Some(42)],
            })
            .expect("publish");
        assert_eq!(out.published.updated, vec![2]);
        assert!(out.published.new.is_empty());
        assert_eq!(out.published.affected, vec![1, 2, 3]);
        assert_eq!(
            store.source_versions(0, 10).expect("versions"),
            vec![(2, 42)]
        );
    }

    /// Stamps each report with its id plus `.0`, as bytes.
    struct Ids(u64);

    impl Stamp for Ids {
        fn stamp(&self, reports: &[Report]) -> Vec<Option<Vec<u8>>> {
            reports
                .iter()
                .map(|r| Some((r.id + self.0).to_le_bytes().to_vec()))
                .collect()
        }
    }

    #[derive(Default)]
    struct Heard(Mutex<Vec<(Change, Origin)>>);

    impl Subscriber for Heard {
        fn changed(&self, change: &Change, origin: Origin) {
            self.0.lock().expect("lock").push((change.clone(), origin));
        }
    }

    #[test]
    fn stamps_are_committed_with_new_reports_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let publisher = Publisher::telling(store.clone(), Some(Arc::new(Ids(0))), Vec::new());
        publisher
            .publish(Batch::of(vec![sample(1, "2026-11-18T08:00:00Z")]))
            .expect("publish");
        assert_eq!(
            store.market_at(1).expect("read"),
            Some(1u64.to_le_bytes().to_vec())
        );
        // Updated, not new: what was kept at its publication stays, whatever a later stamp
        // says.
        let mut changed = sample(1, "2026-11-18T08:00:00Z");
        changed.css_content = Some("p{}".into());
        let later = Publisher::telling(store.clone(), Some(Arc::new(Ids(100))), Vec::new());
        later.publish(Batch::of(vec![changed])).expect("update");
        let direct = Publisher::telling(store.clone(), None, Vec::new());
        assert_eq!(
            store.market_at(1).expect("read"),
            Some(1u64.to_le_bytes().to_vec())
        );
        // Nothing stamped: nothing kept.
        direct
            .publish(Batch::of(vec![sample(2, "2026-11-19T08:00:00Z")]))
            .expect("publish");
        assert_eq!(store.market_at(2).expect("read"), None);
    }

    #[test]
    fn a_change_that_is_not_a_commit_reaches_every_subscriber_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let (a, b) = (Arc::new(Heard::default()), Arc::new(Heard::default()));
        let publisher = Publisher::telling(store, None, vec![a.clone(), b.clone()]);
        let refreshed = Change::Refreshed {
            affected: vec![4, 5],
        };
        publisher.notify(&refreshed, Origin::Local);
        publisher.notify(&Change::Cleared, Origin::Remote);
        // Nothing changed: nobody is told.
        publisher.notify(&Change::Refreshed { affected: vec![] }, Origin::Local);
        for heard in [&a, &b] {
            assert_eq!(
                *heard.0.lock().expect("lock"),
                vec![
                    (refreshed.clone(), Origin::Local),
                    (Change::Cleared, Origin::Remote)
                ]
            );
        }
    }

    #[test]
    fn an_invalid_report_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let publisher = Publisher::new(store.clone());
        let mut bad = sample(2, "2026-11-19T08:00:00Z");
        bad.html_content = " ".into();
        let err = publisher
            .publish(Batch::of(vec![sample(1, "2026-11-18T08:00:00Z"), bad]))
            .expect_err("invalid");
        assert!(matches!(err, PublishError::Invalid { id: 2, .. }), "{err}");
        assert_eq!(store.count().expect("count"), 0);
    }
}
