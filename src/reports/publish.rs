//! The one write path of reports. Every batch, whatever brings it (a JSONL file, the
//! PostgreSQL importer, the server's sync, a test), goes through [`Publisher::publish`]: it
//! commits the reports with the source's cursor in one store transaction, then tells every
//! subscriber (the page cache, live clients, anything added later) what changed, as data.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::outbox::Announcing;
use super::{InvalidReport, Report};
use crate::store::{Store, StoreError, UpsertOutcome};

/// Reports to write in one transaction, with where the source stands after them.
#[derive(Debug, Default)]
pub struct Batch {
    pub reports: Vec<Report>,
    /// The version of the source row of each report, in the same order (PostgreSQL's `xmin`);
    /// empty or `None` where the source has none.
    pub versions: Vec<Option<u64>>,
    /// Committed with the reports, so a resumed import starts after the last whole batch.
    pub cursor: Option<Cursor>,
}

impl Batch {
    pub fn of(reports: Vec<Report>) -> Batch {
        Batch {
            reports,
            ..Batch::default()
        }
    }
}

/// How far an import from `source` got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub source: String,
    pub position: u64,
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

/// Something that must hear of every committed change (a cache to invalidate, clients to
/// tell). Called after the commit, on the publishing thread: keep it short and non-blocking.
pub trait Subscriber: Send + Sync {
    fn published(&self, change: &Published);
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

/// The write side of the reports: the store and who to tell. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    store: Arc<Store>,
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
        Publisher {
            store,
            subscribers: Arc::new([]),
            announcing: Announcing::default(),
        }
    }

    /// The same publisher, also telling `subscriber`.
    pub fn with(self, subscriber: Arc<dyn Subscriber>) -> Publisher {
        let mut all = self.subscribers.to_vec();
        all.push(subscriber);
        Publisher {
            store: self.store,
            subscribers: all.into(),
            announcing: self.announcing,
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
        for r in &batch.reports {
            r.validate()
                .map_err(|reason| PublishError::Invalid { id: r.id, reason })?;
        }
        let cursor = batch
            .cursor
            .as_ref()
            .map(|c| (c.source.as_str(), c.position));
        let announce = self.announcing.targets_now();
        let committed = self.store.commit_reports_announcing(
            &batch.reports,
            &batch.versions,
            cursor,
            announce,
        )?;
        if !announce.is_empty() && committed.outcomes.contains(&UpsertOutcome::New) {
            self.announcing.wake();
        }
        let published = changes(&batch.reports, &committed.outcomes, committed.affected);
        if !published.is_empty() {
            for s in self.subscribers.iter() {
                s.published(&published);
            }
        }
        Ok(Outcome {
            outcomes: committed.outcomes,
            published,
        })
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
        fn published(&self, change: &Published) {
            self.0.lock().expect("lock").push(change.clone());
        }
    }

    #[test]
    fn subscribers_hear_exactly_what_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let recorder = Arc::new(Recorder::default());
        let publisher = Publisher::new(store.clone()).with(recorder.clone());
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
                cursor: Some(Cursor {
                    source: "pg".into(),
                    position: 2,
                }),
            })
            .expect("publish");
        assert_eq!(out.published.updated, vec![2]);
        assert!(out.published.new.is_empty());
        assert_eq!(out.published.affected, vec![1, 2, 3]);
        assert_eq!(store.cursor("pg").expect("cursor"), Some(2));
        assert_eq!(
            store.source_versions(0, 10).expect("versions"),
            vec![(2, 42)]
        );
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
