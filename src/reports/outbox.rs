//! Which targets the publish path queues announcements for, and whether it does yet: a first
//! import of an existing archive announces nothing, so announcing is armed only once the
//! store holds what was there before (see `serve --sync-from` and `import --announce-new`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Shared by every clone of the publisher; cheap to clone.
#[derive(Clone, Default)]
pub struct Announcing {
    targets: Arc<[String]>,
    armed: Arc<AtomicBool>,
    /// Woken after a commit queued deliveries (the delivery task waits on it).
    queued: Arc<Notify>,
}

impl std::fmt::Debug for Announcing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcing")
            .field("targets", &self.targets)
            .field("armed", &self.is_armed())
            .finish()
    }
}

impl Announcing {
    /// Announcements to `targets` (names), queued from now on if `armed`, else once
    /// [`Announcing::arm`] is called.
    pub fn new(targets: Vec<String>, armed: bool) -> Announcing {
        Announcing {
            targets: targets.into(),
            armed: Arc::new(AtomicBool::new(armed)),
            queued: Arc::default(),
        }
    }

    /// New reports are announced from now on.
    pub fn arm(&self) {
        if !self.targets.is_empty() && !self.armed.swap(true, Ordering::AcqRel) {
            tracing::info!("new reports are announced from now on");
        }
    }

    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// The targets a commit queues deliveries for now: none until armed.
    pub fn targets_now(&self) -> &[String] {
        if self.is_armed() { &self.targets } else { &[] }
    }

    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// Wakes every worker waiting in [`Announcing::queued`] (one that is busy looks again
    /// within its poll period).
    pub fn wake(&self) {
        self.queued.notify_waiters();
    }

    /// Resolves when deliveries are queued.
    pub async fn queued(&self) {
        self.queued.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::reports::publish::{Batch, Publisher};
    use crate::reports::sample;
    use crate::store::{FILE_NAME, Store};

    #[test]
    fn nothing_is_queued_until_armed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let announcing = Announcing::new(vec!["tg".into()], false);
        let publisher = Publisher::new(store.clone()).announcing(announcing.clone());
        // The first import of an archive.
        publisher
            .publish(Batch::of(vec![sample(1, "2026-11-18T08:00:00Z")]))
            .expect("publish");
        assert!(store.outbox_all().expect("all").is_empty());
        announcing.arm();
        // A clone made before arming queues as well: they share the switch.
        let clone = publisher.clone();
        clone
            .publish(Batch::of(vec![
                sample(1, "2026-11-18T08:00:00Z"),
                sample(2, "2026-11-19T08:00:00Z"),
            ]))
            .expect("publish");
        let queued: Vec<u64> = store
            .outbox_all()
            .expect("all")
            .iter()
            .map(|(_, d)| d.report)
            .collect();
        assert_eq!(queued, vec![2]);
        // Without targets arming changes nothing.
        let none = Announcing::new(Vec::new(), false);
        none.arm();
        assert!(!none.is_armed() && none.targets_now().is_empty());
    }
}
