//! The announcement outbox: one record per (report, target) to announce, written in the
//! transaction that publishes the report, removed once the target answered 2xx. What a
//! delivery says and where it goes belongs to the `announce` module; here it is records.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{OUTBOX, Result, Store, StoreError, db_err};

/// Failed deliveries kept for operators (the oldest go first beyond this).
pub const FAILED_KEEP: usize = 1000;

/// One announcement of one report to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub report: u64,
    pub target: String,
    /// 0 for the announcement of a new report; the time of the request (unix ms) for one
    /// queued again on purpose, so that it gets a delivery id of its own.
    pub round: i64,
    /// When it was queued (unix ms): the give-up age counts from here.
    pub queued_ms: i64,
    pub attempts: u32,
    /// Not to be tried before this (unix ms).
    pub next_ms: i64,
    pub failed: bool,
    pub last_error: Option<String>,
}

impl Delivery {
    pub fn new(report: u64, target: &str, round: i64, now_ms: i64) -> Delivery {
        Delivery {
            report,
            target: target.to_owned(),
            round,
            queued_ms: now_ms,
            attempts: 0,
            next_ms: now_ms,
            failed: false,
            last_error: None,
        }
    }

    /// The same for every instance and every retry: receivers drop a repeat by it.
    pub fn id(&self) -> String {
        format!("{}-{}-{}", self.report, self.target, self.round)
    }
}

/// Per target: deliveries waiting and deliveries given up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub failed: u64,
}

fn decode(seq: u64, bytes: &[u8]) -> Result<Delivery> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Decode {
        table: "outbox",
        key: seq.to_string(),
        source,
    })
}

/// Appends `deliveries` (in order) inside `tx`.
pub(super) fn append(tx: &WriteTransaction, deliveries: &[Delivery]) -> Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(OUTBOX).map_err(db_err)?;
    let first = match table.last().map_err(db_err)? {
        Some((k, _)) => k.value() + 1,
        None => 1,
    };
    for (seq, d) in (first..).zip(deliveries) {
        let bytes = postcard::to_allocvec(d)?;
        table.insert(seq, bytes.as_slice()).map_err(db_err)?;
    }
    Ok(())
}

impl Store {
    /// The oldest pending delivery to `target`: deliveries to one target go in order.
    pub fn outbox_head(&self, target: &str) -> Result<Option<(u64, Delivery)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(OUTBOX).map_err(db_err)?;
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let d = decode(k.value(), v.value())?;
            if !d.failed && d.target == target {
                return Ok(Some((k.value(), d)));
            }
        }
        Ok(None)
    }

    /// Records pending deliveries to targets not in `known` (removed from the
    /// configuration) as failed; returns how many.
    pub fn outbox_orphans_failed(&self, known: &[String]) -> Result<usize> {
        let orphans: Vec<(u64, Delivery)> = self
            .outbox_all()?
            .into_iter()
            .filter(|(_, d)| !d.failed && !known.contains(&d.target))
            .collect();
        for (seq, mut d) in orphans.iter().cloned() {
            d.failed = true;
            d.last_error = Some("the target is no longer configured".into());
            self.outbox_update(seq, &d)?;
        }
        Ok(orphans.len())
    }

    /// Every record, oldest first (for tests and `/health`).
    pub fn outbox_all(&self) -> Result<Vec<(u64, Delivery)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(OUTBOX).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value(), decode(k.value(), v.value())?));
        }
        Ok(out)
    }

    /// Per target, what waits and what was given up.
    pub fn outbox_counts(&self) -> Result<std::collections::BTreeMap<String, OutboxCounts>> {
        let mut out = std::collections::BTreeMap::<String, OutboxCounts>::new();
        for (_, d) in self.outbox_all()? {
            let c = out.entry(d.target).or_default();
            if d.failed {
                c.failed += 1;
            } else {
                c.pending += 1;
            }
        }
        Ok(out)
    }

    /// The target answered 2xx: the record goes.
    pub fn outbox_done(&self, seq: u64) -> Result<()> {
        self.write(|tx| {
            tx.open_table(OUTBOX)
                .map_err(db_err)?
                .remove(seq)
                .map_err(db_err)?;
            Ok(())
        })
    }

    /// Replaces the record `seq` (a retry planned, or given up); a record already gone (done
    /// meanwhile) stays gone. Beyond [`FAILED_KEEP`] failed records, the oldest are dropped.
    pub fn outbox_update(&self, seq: u64, delivery: &Delivery) -> Result<()> {
        self.write(|tx| {
            let mut table = tx.open_table(OUTBOX).map_err(db_err)?;
            if table.get(seq).map_err(db_err)?.is_none() {
                return Ok(());
            }
            let bytes = postcard::to_allocvec(delivery)?;
            table.insert(seq, bytes.as_slice()).map_err(db_err)?;
            if delivery.failed {
                let mut failed = Vec::new();
                for entry in table.iter().map_err(db_err)? {
                    let (k, v) = entry.map_err(db_err)?;
                    if decode(k.value(), v.value())?.failed {
                        failed.push(k.value());
                    }
                }
                for old in failed.iter().take(failed.len().saturating_sub(FAILED_KEEP)) {
                    table.remove(*old).map_err(db_err)?;
                }
            }
            Ok(())
        })
    }

    /// Queues report `report` again for `targets` (`POST /admin/announce/{id}`), as round
    /// `now_ms`. Returns how many deliveries were queued; none for a report not stored.
    pub fn outbox_requeue(&self, report: u64, targets: &[String], now_ms: i64) -> Result<usize> {
        if !self.contains(report)? {
            return Ok(0);
        }
        let deliveries: Vec<Delivery> = targets
            .iter()
            .map(|t| Delivery::new(report, t, now_ms, now_ms))
            .collect();
        self.write(|tx| append(tx, &deliveries))?;
        Ok(deliveries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Beside;

    /// Nothing kept beside new reports but their announcements to `targets`.
    fn announcing(targets: &[String]) -> Beside<'_> {
        Beside {
            announce: targets,
            ..Beside::default()
        }
    }
    use crate::reports::sample;
    use crate::store::FILE_NAME;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn new_reports_queue_one_delivery_per_target_oldest_first_and_updates_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
        let targets = names(&["tg", "hook"]);
        // Written newest first: queued oldest first all the same.
        let batch = [
            sample(2, "2026-11-19T08:00:00Z"),
            sample(1, "2026-11-18T08:00:00Z"),
        ];
        store
            .commit_stamped(&batch, &[], announcing(&targets))
            .expect("commit");
        let queued: Vec<(u64, String)> = store
            .outbox_all()
            .expect("all")
            .into_iter()
            .map(|(_, d)| (d.report, d.target))
            .collect();
        assert_eq!(
            queued,
            vec![
                (1, "tg".into()),
                (1, "hook".into()),
                (2, "tg".into()),
                (2, "hook".into())
            ]
        );
        // The same reports again, one of them changed, and a new one without targets.
        let mut changed = sample(1, "2026-11-18T08:00:00Z");
        changed.css_content = Some("p{}".into());
        store
            .commit_stamped(
                &[changed, sample(2, "2026-11-19T08:00:00Z")],
                &[],
                announcing(&targets),
            )
            .expect("commit");
        store
            .commit_reports(&[sample(3, "2026-11-20T08:00:00Z")], &[])
            .expect("commit");
        assert_eq!(store.outbox_all().expect("all").len(), 4);

        let (seq, head) = store.outbox_head("hook").expect("head").expect("some");
        assert_eq!((head.report, head.id()), (1, "1-hook-0".to_owned()));
        store.outbox_done(seq).expect("done");
        let (seq, mut next) = store.outbox_head("hook").expect("head").expect("some");
        assert_eq!(next.report, 2);
        next.failed = true;
        next.last_error = Some("refused".into());
        store.outbox_update(seq, &next).expect("fail");
        assert!(store.outbox_head("hook").expect("head").is_none());
        let counts = store.outbox_counts().expect("counts");
        assert_eq!(
            counts["hook"],
            OutboxCounts {
                pending: 0,
                failed: 1
            }
        );
        assert_eq!(
            counts["tg"],
            OutboxCounts {
                pending: 2,
                failed: 0
            }
        );
        // Done stays done: an update after it does not bring the record back.
        store.outbox_done(seq).expect("done");
        store.outbox_update(seq, &next).expect("update");
        assert!(!store.outbox_counts().expect("counts").contains_key("hook"));
    }

    #[test]
    fn requeue_and_orphans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            let store = Store::open(&path).expect("open");
            store
                .commit_stamped(
                    &[sample(1, "2026-11-18T08:00:00Z")],
                    &[],
                    announcing(&names(&["gone"])),
                )
                .expect("commit");
        }
        // The outbox survives a restart.
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            store
                .outbox_orphans_failed(&names(&["tg"]))
                .expect("orphans"),
            1
        );
        assert_eq!(
            store
                .outbox_requeue(9, &names(&["tg"]), 5)
                .expect("requeue"),
            0
        );
        assert_eq!(
            store
                .outbox_requeue(1, &names(&["tg"]), 5)
                .expect("requeue"),
            1
        );
        let (_, d) = store.outbox_head("tg").expect("head").expect("some");
        assert_eq!((d.id(), d.queued_ms), ("1-tg-5".to_owned(), 5));
        let gone = store.outbox_counts().expect("counts");
        assert_eq!(
            gone["gone"],
            OutboxCounts {
                pending: 0,
                failed: 1
            }
        );
    }
}
