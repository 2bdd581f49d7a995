//! The indexing task: brings the index in line with the store at start (only what differs is
//! indexed again), then indexes each batch the publish path reports, committing every batch
//! so that it is searchable at once. A writer is opened for each pass and dropped after it
//! (its threads and buffer live only while it works). A pass that fails (a full disk, a write
//! error) is tried again after a growing pause, and `/health` says so meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use tantivy::indexer::{IndexWriterOptions, LogMergePolicy};
use tantivy::{IndexWriter, TantivyDocument, Term};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::text::ReportText;
use super::{Failing, Inner, Search, SearchError, TERM_HI, TERM_LO};
use crate::reports::cards::{self, Carded};
use crate::store::{Store, digest_of, digest_term};

/// Reports read from the store (with their cards) per read transaction.
const READ_CHUNK: usize = 64;
/// While catching up, a commit every this many reports or this long, whichever comes first:
/// each commit makes progress durable and visible (a stopped catch-up resumes after the last
/// one), and waits for the indexing thread to write what it was given, so a commit every few
/// hundred reports kept it idle half the time.
const COMMIT_DOCS: usize = 4_096;
const COMMIT_EVERY: Duration = Duration::from_secs(3);
/// Indexing threads while catching up with at least [`COMMIT_DOCS`] reports (at most one a
/// core; fewer reports, and a published batch, are indexed on one), each with its own
/// [`WRITER_BYTES`]. Which thread indexes a report decides its segment and so the order of
/// reports that score the same: a small index keeps one thread and one order.
const CATCH_UP_THREADS: usize = 2;
/// Segments of more reports than this are not merged again by the publish path (the
/// catch-up merges what it writes): a merge there makes the next published batch wait.
const PUBLISH_MERGE_DOCS: usize = 1_024;
/// Segments past which a publish pass merges large segments too.
const MANY_SEGMENTS: usize = 32;
/// Publish batches arriving together are indexed in one commit, up to this many.
const MAX_BATCHES: usize = 64;
/// Memory a writer may fill before it writes a segment (allocated as documents come, and
/// freed with the writer after its pass).
const WRITER_BYTES: usize = 32 << 20;
/// The pause before a failed pass is tried again; it doubles with each failure in a row, up
/// to [`RETRY_LONGEST`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LONGEST: Duration = Duration::from_secs(60);

/// The task's body. It holds the index only while it works: once every [`Search`] handle is
/// gone the queue closes and the task ends, releasing the store and the index's lock.
pub(super) async fn run(
    search: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<Vec<u64>>,
    stop: CancellationToken,
) {
    // The first catch-up, tried again until it succeeds.
    let mut failures = 0u32;
    loop {
        let Some(strong) = search.upgrade() else {
            return;
        };
        let this = Search(Arc::clone(&strong));
        let stop_pass = stop.clone();
        let outcome = tokio::task::spawn_blocking(move || this.catch_up(&stop_pass)).await;
        let error = match outcome {
            Ok(Ok(n)) => {
                if n > 0 {
                    tracing::info!(indexed = n, "search index caught up with the store");
                }
                strong.recovered(failures);
                strong.catching_up.store(false, Ordering::Release);
                strong.done.send_modify(|_| {});
                break;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the catch-up stopped: {e}"),
        };
        failures += 1;
        let wait = strong.failed("cannot bring the search index up to date", error, failures);
        drop(strong);
        if !pause(&stop, wait).await {
            return;
        }
    }
    // Reports waiting to be indexed (a failed pass keeps its own), and how many published
    // batches they finish.
    let mut ids = BTreeSet::new();
    let mut batches = 0u64;
    let mut failures = 0u32;
    loop {
        if ids.is_empty() {
            tokio::select! {
                () = stop.cancelled() => break,
                next = rx.recv() => match next {
                    Some(more) => {
                        ids.extend(more);
                        batches += 1;
                    }
                    None => break,
                },
            }
        }
        let mut taken = 0;
        while taken < MAX_BATCHES {
            match rx.try_recv() {
                Ok(more) => {
                    ids.extend(more);
                    batches += 1;
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        let Some(strong) = search.upgrade() else {
            break;
        };
        let this = Search(Arc::clone(&strong));
        let list: Vec<u64> = ids.iter().copied().collect();
        let outcome = tokio::task::spawn_blocking(move || this.index_ids(&list)).await;
        let error = match outcome {
            Ok(Ok(())) => {
                strong.recovered(failures);
                failures = 0;
                ids.clear();
                strong.done.send_modify(|d| *d += batches);
                batches = 0;
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("indexing stopped: {e}"),
        };
        failures += 1;
        let wait = strong.failed("cannot index published reports", error, failures);
        drop(strong);
        if !pause(&stop, wait).await {
            break;
        }
    }
}

/// Waits `wait`; false when the task is stopped first.
async fn pause(stop: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// The pause after `failures` failed passes in a row.
fn backoff(failures: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RETRY_LONGEST)
}

impl Inner {
    /// Records a failed pass (logged, and shown in `/health`); returns the pause before the
    /// next attempt.
    fn failed(&self, what: &str, error: String, failures: u32) -> Duration {
        let wait = backoff(failures);
        tracing::error!(%error, attempt = failures, retry_in = ?wait, "{what}; trying again");
        let now = chrono::Utc::now();
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let since = failing.as_ref().map_or(now, |f| f.since);
        *failing = Some(Failing {
            error,
            attempts: failures,
            since,
            next_attempt: now + wait,
        });
        wait
    }

    /// Clears the failure after a pass that worked.
    fn recovered(&self, failures: u32) {
        if failures > 0 {
            tracing::info!(failed_before = failures, "search indexing works again");
        }
        *self.failing.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A writer for one pass, on `threads` indexing threads and one merge thread.
    fn writer(&self, threads: usize) -> Result<IndexWriter, SearchError> {
        let options = IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_BYTES)
            .num_worker_threads(threads)
            .num_merge_threads(1)
            .build();
        Ok(self.index.writer_with_options(options)?)
    }
}

/// Ends a pass: lets the merges its commits started finish, then drops the writer and its
/// threads.
fn close(writer: IndexWriter) -> Result<(), SearchError> {
    writer.wait_merging_threads()?;
    Ok(())
}

impl Search {
    /// Makes the index hold exactly the store's reports, each in its current version;
    /// returns how many were (re)indexed. Cheap when nothing differs: the index's terms are
    /// compared with the store's digest first.
    fn catch_up(&self, stop: &CancellationToken) -> Result<usize, SearchError> {
        let inner = &self.0;
        let indexed = self.indexed_terms()?;
        let digest = digest_of(indexed.values());
        let version = inner.store.version();
        if version.writers == 0 && version.digest == digest {
            return Ok(0);
        }
        let started = Instant::now();
        let stored: HashMap<u64, [u8; 16]> = inner.store.report_terms()?.into_iter().collect();
        let _writing = inner.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut todo: Vec<u64> = stored
            .iter()
            .filter(|(id, term)| indexed.get(id) != Some(term))
            .map(|(id, _)| *id)
            .collect();
        // Newest ids first: they are the likeliest to be searched for.
        todo.sort_unstable_by(|a, b| b.cmp(a));
        let threads = if todo.len() >= COMMIT_DOCS {
            CATCH_UP_THREADS.min(crate::workers::cores())
        } else {
            1
        };
        let mut writer = inner.writer(threads)?;
        let mut gone = 0;
        for id in indexed.keys().filter(|id| !stored.contains_key(id)) {
            writer.delete_term(Term::from_field_u64(inner.fields.id, *id));
            gone += 1;
        }
        tracing::info!(
            to_index = todo.len(),
            to_remove = gone,
            "search index differs from the store; catching up"
        );
        let (mut done, mut pending) = (0, 0);
        let mut committed = Instant::now();
        for chunk in todo.chunks(READ_CHUNK) {
            if stop.is_cancelled() {
                break;
            }
            self.put(&mut writer, chunk)?;
            pending += chunk.len();
            if pending >= COMMIT_DOCS || committed.elapsed() >= COMMIT_EVERY {
                writer.commit()?;
                inner.reader.reload()?;
                (done, pending, committed) = (done + pending, 0, Instant::now());
            }
        }
        // Stopped: what was not committed is dropped with the writer (the next start
        // indexes it).
        if !stop.is_cancelled() {
            writer.commit()?;
            done += pending;
        }
        close(writer)?;
        inner.reader.reload()?;
        tracing::debug!(done, elapsed = ?started.elapsed(), "search catch-up pass");
        Ok(done)
    }

    /// Indexes the current version of each report in `ids` (one commit for all).
    fn index_ids(&self, ids: &[u64]) -> Result<(), SearchError> {
        let inner = &self.0;
        let _writing = inner.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut writer = inner.writer(1)?;
        // The pass waits for the merges its commit starts: on the publish path only small
        // segments are merged, so a published report is searchable in milliseconds, until
        // the segments are many (each costs every query a little): then this pass merges as
        // a catch-up does.
        if inner.reader.searcher().segment_readers().len() < MANY_SEGMENTS {
            let mut small_only = LogMergePolicy::default();
            small_only.set_max_docs_before_merge(PUBLISH_MERGE_DOCS);
            writer.set_merge_policy(Box::new(small_only));
        }
        let mut seen = std::collections::HashSet::new();
        let ids: Vec<u64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        for chunk in ids.chunks(READ_CHUNK) {
            self.put(&mut writer, chunk)?;
        }
        writer.commit()?;
        inner.reader.reload()?;
        close(writer)?;
        inner.reader.reload()?;
        Ok(())
    }

    /// Replaces each report of `ids` in the index with its current version (or removes it
    /// when gone). A damaged report is left out (the store logs it); any other store error
    /// stops the pass.
    fn put(&self, writer: &mut IndexWriter, ids: &[u64]) -> Result<(), SearchError> {
        let f = self.0.fields;
        for (id, read) in cards::with_reports(&self.0.store, ids)? {
            writer.delete_term(Term::from_field_u64(f.id, id));
            match read {
                Ok(Some(carded)) => {
                    writer.add_document(document(&self.0, &carded))?;
                }
                Ok(None) => {}
                Err(e) if Store::is_record_damage(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The digest term of every report in the index, by id.
    fn indexed_terms(&self) -> Result<HashMap<u64, [u8; 16]>, SearchError> {
        let searcher = self.0.reader.searcher();
        let mut out = HashMap::new();
        for segment in searcher.segment_readers() {
            let fast = segment.fast_fields();
            let (ids, hi, lo) = (fast.u64(super::ID)?, fast.u64(TERM_HI)?, fast.u64(TERM_LO)?);
            for doc in segment.doc_ids_alive() {
                if let (Some(id), Some(h), Some(l)) = (ids.first(doc), hi.first(doc), lo.first(doc))
                {
                    let mut term = [0u8; 16];
                    term[..8].copy_from_slice(&h.to_be_bytes());
                    term[8..].copy_from_slice(&l.to_be_bytes());
                    out.insert(id, term);
                }
            }
        }
        Ok(out)
    }
}

fn document(inner: &Inner, carded: &Carded) -> TantivyDocument {
    let f = inner.fields;
    let report = &carded.report;
    let term = digest_term(report.id, &carded.hash);
    let half = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    let text = ReportText::of(report, &carded.card);
    let mut doc = TantivyDocument::default();
    doc.add_u64(f.id, report.id);
    doc.add_i64(f.created, report.created_at.timestamp_micros());
    let schema = inner.index.schema();
    if let (Ok(hi), Ok(lo)) = (schema.get_field(TERM_HI), schema.get_field(TERM_LO)) {
        doc.add_u64(hi, half(&term[..8]));
        doc.add_u64(lo, half(&term[8..]));
    }
    doc.add_text(f.title_vi, &text.vi.title);
    doc.add_text(f.all, &text.vi.title);
    doc.add_text(f.all, &text.vi.body);
    if let Some(en) = &text.en {
        doc.add_text(f.title_en, &en.title);
        doc.add_text(f.all, &en.title);
        doc.add_text(f.all, &en.body);
    }
    doc
}
