//! The indexing task: brings the index in line with the store at start (only what differs is
//! indexed again), then indexes each batch the publish path reports, committing every batch
//! so that it is searchable at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Instant;

use tantivy::{IndexWriter, TantivyDocument, Term};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::text::ReportText;
use super::{Inner, Search, SearchError, TERM_HI, TERM_LO};
use crate::reports::Report;
use crate::store::{Store, digest_term};

/// Reports indexed per commit while catching up: each commit makes progress durable and
/// visible, so a stopped catch-up resumes where it was.
const CATCH_UP_CHUNK: usize = 256;
/// Publish batches arriving together are indexed in one commit, up to this many.
const MAX_BATCHES: usize = 64;

/// The task's body. It holds the index only while it works: once every [`Search`] handle is
/// gone the queue closes and the task ends, releasing the store and the index's lock.
pub(super) async fn run(
    search: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<Vec<u64>>,
    stop: CancellationToken,
) {
    let Some(strong) = search.upgrade() else {
        return;
    };
    let catch_up = {
        let search = Search(Arc::clone(&strong));
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || search.catch_up(&stop))
    };
    match catch_up.await {
        Ok(Ok(n)) if n > 0 => tracing::info!(indexed = n, "search index caught up with the store"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot bring the search index up to date"),
        Err(e) => tracing::error!(error = %e, "the search catch-up stopped"),
    }
    strong.catching_up.store(false, Ordering::Release);
    strong.done.send_modify(|_| {});
    drop(strong);
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => break,
            next = rx.recv() => match next {
                Some(ids) => ids,
                None => break,
            },
        };
        let mut ids = first;
        let mut batches = 1u64;
        while batches < MAX_BATCHES as u64 {
            match rx.try_recv() {
                Ok(more) => {
                    ids.extend(more);
                    batches += 1;
                }
                Err(_) => break,
            }
        }
        let Some(strong) = search.upgrade() else {
            break;
        };
        let this = Search(Arc::clone(&strong));
        let outcome = tokio::task::spawn_blocking(move || this.index_ids(&ids)).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot index published reports; the next start catches up")
            }
            Err(e) => tracing::error!(error = %e, "search indexing stopped"),
        }
        strong.done.send_modify(|d| *d += batches);
    }
}

impl Search {
    /// Makes the index hold exactly the store's reports, each in its current version;
    /// returns how many were (re)indexed. Cheap when nothing differs: the index's terms are
    /// compared with the store's digest first.
    fn catch_up(&self, stop: &CancellationToken) -> Result<usize, SearchError> {
        let inner = &self.0;
        let indexed = self.indexed_terms()?;
        let mut digest = [0u8; 16];
        for term in indexed.values() {
            xor(&mut digest, term);
        }
        let version = inner.store.version();
        if version.writers == 0 && version.digest == digest {
            return Ok(0);
        }
        let started = Instant::now();
        let stored: HashMap<u64, [u8; 16]> = inner.store.report_terms()?.into_iter().collect();
        let mut writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut gone = 0;
        for id in indexed.keys().filter(|id| !stored.contains_key(id)) {
            writer.delete_term(Term::from_field_u64(inner.fields.id, *id));
            gone += 1;
        }
        let mut todo: Vec<u64> = stored
            .iter()
            .filter(|(id, term)| indexed.get(id) != Some(term))
            .map(|(id, _)| *id)
            .collect();
        // Newest ids first: they are the likeliest to be searched for.
        todo.sort_unstable_by(|a, b| b.cmp(a));
        tracing::info!(
            to_index = todo.len(),
            to_remove = gone,
            "search index differs from the store; catching up"
        );
        if todo.is_empty() {
            writer.commit()?;
        }
        let mut done = 0;
        for chunk in todo.chunks(CATCH_UP_CHUNK) {
            if stop.is_cancelled() {
                break;
            }
            for id in chunk {
                self.put(&mut writer, *id, inner.store.report(*id))?;
            }
            writer.commit()?;
            inner.reader.reload()?;
            done += chunk.len();
        }
        inner.reader.reload()?;
        tracing::debug!(done, elapsed = ?started.elapsed(), "search catch-up pass");
        Ok(done)
    }

    /// Indexes the current version of each report in `ids` (one commit for all).
    fn index_ids(&self, ids: &[u64]) -> Result<(), SearchError> {
        let inner = &self.0;
        let mut writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = std::collections::HashSet::new();
        for id in ids.iter().filter(|id| seen.insert(**id)) {
            self.put(&mut writer, *id, inner.store.report(*id))?;
        }
        writer.commit()?;
        inner.reader.reload()?;
        Ok(())
    }

    /// Replaces report `id` in the index with `report` (or removes it when absent). A
    /// damaged report is left out (the store logs it); any other store error stops the pass.
    fn put(
        &self,
        writer: &mut IndexWriter,
        id: u64,
        report: Result<Option<Report>, crate::store::StoreError>,
    ) -> Result<(), SearchError> {
        let f = self.0.fields;
        writer.delete_term(Term::from_field_u64(f.id, id));
        let report = match report {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) if Store::is_record_damage(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        writer.add_document(document(&self.0, &report))?;
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

fn document(inner: &Inner, report: &Report) -> TantivyDocument {
    let f = inner.fields;
    let term = digest_term(report.id, &report.content_hash());
    let half = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    let text = ReportText::of(report);
    let mut doc = TantivyDocument::default();
    doc.add_u64(f.id, report.id);
    doc.add_i64(f.created, report.created_at.timestamp_micros());
    let schema = inner.index.schema();
    if let (Ok(hi), Ok(lo)) = (schema.get_field(TERM_HI), schema.get_field(TERM_LO)) {
        doc.add_u64(hi, half(&term[..8]));
        doc.add_u64(lo, half(&term[8..]));
    }
    doc.add_text(f.title_vi, &text.vi.title);
    doc.add_text(f.body_vi, &text.vi.body);
    doc.add_text(f.all, &text.vi.title);
    doc.add_text(f.all, &text.vi.body);
    if let Some(en) = &text.en {
        doc.add_text(f.title_en, &en.title);
        doc.add_text(f.body_en, &en.body);
        doc.add_text(f.all, &en.title);
        doc.add_text(f.all, &en.body);
    }
    doc
}

fn xor(digest: &mut [u8; 16], term: &[u8; 16]) {
    for (d, t) in digest.iter_mut().zip(term) {
        *d ^= t;
    }
}
