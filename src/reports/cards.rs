//! A report's card: what a list, a feed, an archive month or a neighbour link shows of it
//! (its headline and summary in both languages, its outline, whether it has English). Parsing
//! a report's HTML for its lead costs milliseconds, so the card is computed once, when the
//! report is published, and stored beside it in the same commit ([`for_commit`]); pages read
//! cards by range ([`newest`], [`between`], [`of`]) and never a report body.
//!
//! A store written before cards were kept has none: a page that meets a missing card computes
//! it from the report and writes it back ([`Store::put_cards`] keeps it only while the report
//! is unchanged), and [`fill_in_background`] fills in the rest in small batches after the
//! server starts, so a start never waits for a pass over every report (about 2 ms a report:
//! minutes at 200,000).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Lead, Report, Section};
use crate::i18n::Lang;
use crate::store::{CardRow, Prepared, ReportRef, Store, StoreError};

/// The shape of a stored card. A card of another format reads as missing and is computed
/// again (and written back), so a change in how leads are found reaches every card.
const FORMAT: u32 = 1;
/// Reports a background fill pass computes per store transaction.
pub const FILL_BATCH: usize = 32;
/// Most threads computing the cards of one published batch (fewer on a smaller machine).
pub const PREPARE_THREADS: usize = 4;
/// Pause between two batches of a background fill: pages and imports go first.
const FILL_PAUSE: Duration = Duration::from_millis(20);

/// What lists show of one report.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub id: u64,
    pub created_at: DateTime<Utc>,
    pub has_english: bool,
    pub lead_vi: Lead,
    /// `None` for a report without English (English readers see the Vietnamese).
    pub lead_en: Option<Lead>,
    pub sections_vi: Vec<Section>,
    pub sections_en: Vec<Section>,
}

/// A card as stored (its id and date are the date index's).
#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    lead_vi: Lead,
    lead_en: Option<Lead>,
    sections_vi: Vec<Section>,
    sections_en: Vec<Section>,
}

impl Card {
    /// Computes the card of `report` (parses its HTML in each language it has).
    pub fn of(report: &Report) -> Card {
        let has_english = report.has_english();
        Card {
            id: report.id,
            created_at: report.created_at,
            has_english,
            lead_vi: report.lead(Lang::Vi),
            lead_en: has_english.then(|| report.lead(Lang::En)),
            sections_vi: report.sections(Lang::Vi),
            sections_en: if has_english {
                report.sections(Lang::En)
            } else {
                Vec::new()
            },
        }
    }

    /// The lead a reader of `lang` is shown (English falls back to Vietnamese).
    pub fn lead(&self, lang: Lang) -> &Lead {
        match (lang, &self.lead_en) {
            (Lang::En, Some(en)) => en,
            _ => &self.lead_vi,
        }
    }

    /// The title a reader of `lang` is shown: the headline, else a date-based title.
    pub fn title(&self, lang: Lang) -> String {
        super::title(lang, self.lead(lang), self.created_at)
    }

    /// The outline a reader of `lang` is shown.
    pub fn sections(&self, lang: Lang) -> &[Section] {
        match lang {
            Lang::En if self.has_english => &self.sections_en,
            _ => &self.sections_vi,
        }
    }

    pub fn at(&self) -> ReportRef {
        ReportRef {
            id: self.id,
            created_at: self.created_at,
        }
    }

    fn encode(&self) -> Option<Vec<u8>> {
        postcard::to_allocvec(&Stored {
            format: FORMAT,
            lead_vi: self.lead_vi.clone(),
            lead_en: self.lead_en.clone(),
            sections_vi: self.sections_vi.clone(),
            sections_en: self.sections_en.clone(),
        })
        .ok()
    }

    fn decode(at: ReportRef, bytes: &[u8]) -> Option<Card> {
        let stored: Stored = postcard::from_bytes(bytes).ok()?;
        (stored.format == FORMAT).then(|| Card {
            id: at.id,
            created_at: at.created_at,
            has_english: stored.lead_en.is_some(),
            lead_vi: stored.lead_vi,
            lead_en: stored.lead_en,
            sections_vi: stored.sections_vi,
            sections_en: stored.sections_en,
        })
    }
}

/// The stored form of `report`'s card, for the commit that writes the report (see
/// [`crate::store::Beside`]).
pub fn for_commit(report: &Report) -> Option<Vec<u8>> {
    Card::of(report).encode()
}

/// What the commit of `reports` will store, computed before it (outside the store's write
/// lock) on up to [`PREPARE_THREADS`] threads: one per report, its card and its encoded
/// record; `None` where the store already holds that content with its card (or where the
/// store could not say: the commit then computes what it needs itself).
pub fn prepare(store: &Store, reports: &[Report]) -> Vec<Option<Prepared>> {
    let hashes: Vec<[u8; 32]> = reports.iter().map(Report::content_hash).collect();
    let needs = match store.commit_needs(reports, &hashes) {
        Ok(needs) => needs,
        Err(e) => {
            tracing::debug!(error = %e, "cards of a batch left to its commit");
            return vec![None; reports.len()];
        }
    };
    let todo: Vec<usize> = (0..reports.len()).filter(|&i| needs[i].card).collect();
    if todo.is_empty() {
        return vec![None; reports.len()];
    }
    let threads = crate::workers::cores().min(PREPARE_THREADS).min(todo.len());
    // Reports are taken one at a time from a shared counter, so a long one holds up nobody.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        store.with_record_encoder(|encoder| {
            let mut mine = Vec::new();
            while let Some(&i) = todo.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                let report = &reports[i];
                let prepared = Prepared {
                    hash: hashes[i],
                    card: for_commit(report),
                    // Stored with this content already: the commit writes no record.
                    record: if needs[i].record {
                        encoder.encode(report, hashes[i])
                    } else {
                        None
                    },
                };
                mine.push((i, prepared));
            }
            mine
        })
    };
    let done: Vec<Vec<(usize, Prepared)>> = if threads <= 1 {
        vec![work()]
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            // A worker that panicked leaves its reports to the commit.
            workers.into_iter().filter_map(|w| w.join().ok()).collect()
        })
    };
    let mut out = vec![None; reports.len()];
    for (i, prepared) in done.into_iter().flatten() {
        out[i] = Some(prepared);
    }
    out
}

/// The newest cards, skipping `offset`, at most `limit`, with the number of reports.
pub fn newest(store: &Store, offset: u64, limit: usize) -> Result<(Vec<Card>, u64), StoreError> {
    let (rows, total) = store.newest_cards(offset, limit)?;
    Ok((resolve(store, rows)?.into_iter().flatten().collect(), total))
}

/// The cards of the reports published in `[from_ms, to_ms)`, oldest first, skipping
/// `offset`, at most `limit`.
pub fn between(
    store: &Store,
    from_ms: i64,
    to_ms: i64,
    offset: u64,
    limit: usize,
) -> Result<Vec<Card>, StoreError> {
    let rows = store.cards_between(from_ms, to_ms, offset, limit)?;
    Ok(resolve(store, rows)?.into_iter().flatten().collect())
}

/// The cards of `refs`, in order; `None` for a report that cannot be read.
pub fn of(store: &Store, refs: &[ReportRef]) -> Result<Vec<Option<Card>>, StoreError> {
    resolve(store, store.cards_of(refs)?)
}

/// Decodes stored cards; a missing one is computed from its report and written back. A
/// report that cannot be read (damaged, or gone) has no card.
fn resolve(store: &Store, rows: Vec<CardRow>) -> Result<Vec<Option<Card>>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    let mut computed = Vec::new();
    for row in rows {
        if let Some(card) = row.card.as_deref().and_then(|b| Card::decode(row.at, b)) {
            out.push(Some(card));
            continue;
        }
        out.push(compute(store, row.at.id, &mut computed)?);
    }
    // What was computed is kept for the next reader; a store that cannot take it now (a
    // full disk) still answers this one.
    if let Err(e) = store.put_cards(&computed) {
        tracing::warn!(error = %e, cards = computed.len(), "report cards computed for a page could not be stored");
    }
    Ok(out)
}

/// A report with its card, for what is derived from both (the search index).
#[derive(Debug, Clone)]
pub struct Carded {
    pub report: Report,
    /// The content hash the store verified the report against.
    pub hash: [u8; 32],
    pub card: Card,
}

/// One report of [`with_reports`]: `None` when it is gone, an error when it is damaged.
pub type CardedRead = Result<Option<Carded>, StoreError>;

/// Reports `ids` with their cards, read together, in order. A missing card is computed from
/// the report and stored, as a page does. Per report: `None` when it is gone, an error when
/// it is damaged (logged once by the store).
pub fn with_reports(store: &Store, ids: &[u64]) -> Result<Vec<(u64, CardedRead)>, StoreError> {
    let mut keep = Vec::new();
    let out = store
        .reports_with_cards(ids)?
        .into_iter()
        .map(|(id, read)| {
            let carded = read.map(|found| {
                found.map(|w| {
                    let at = ReportRef {
                        id,
                        created_at: w.report.created_at,
                    };
                    let stored = w.card.as_deref().and_then(|b| Card::decode(at, b));
                    let card = stored.unwrap_or_else(|| computed(&w.report, w.hash, &mut keep));
                    Carded {
                        report: w.report,
                        hash: w.hash,
                        card,
                    }
                })
            });
            (id, carded)
        })
        .collect();
    if let Err(e) = store.put_cards(&keep) {
        tracing::warn!(error = %e, cards = keep.len(), "report cards computed for the search index could not be stored");
    }
    Ok(out)
}

/// Computes and stores the cards of up to `limit` reports after id `after` that have none;
/// returns the last id looked at and how many cards were stored (`None` when no report
/// after `after` lacks its card).
pub fn fill_some(
    store: &Store,
    after: u64,
    limit: usize,
) -> Result<Option<(u64, usize)>, StoreError> {
    let ids = store.reports_without_cards(after, limit)?;
    let Some(&last) = ids.last() else {
        return Ok(None);
    };
    let mut computed = Vec::with_capacity(ids.len());
    for id in ids {
        compute(store, id, &mut computed)?;
    }
    Ok(Some((last, store.put_cards(&computed)?)))
}

/// The card of report `id`, computed from the report; what to store is pushed on `keep`
/// (id, the hash of the report it was computed from, the card). `None` for a report that
/// cannot be read (damaged: logged once by the store, left out of lists) or is gone.
fn compute(
    store: &Store,
    id: u64,
    keep: &mut Vec<(u64, [u8; 32], Vec<u8>)>,
) -> Result<Option<Card>, StoreError> {
    match store.report(id) {
        Ok(Some(report)) => Ok(Some(computed(&report, report.content_hash(), keep))),
        Ok(None) => Ok(None),
        Err(e) if Store::is_record_damage(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The card of `report` (whose content hash is `hash`) computed from it; what to store is
/// pushed on `keep`.
fn computed(report: &Report, hash: [u8; 32], keep: &mut Vec<(u64, [u8; 32], Vec<u8>)>) -> Card {
    let card = Card::of(report);
    if let Some(bytes) = card.encode() {
        keep.push((report.id, hash, bytes));
    }
    card
}

/// Fills in the cards of a store written before cards were kept, one batch of
/// [`FILL_BATCH`] reports at a time on the blocking pool, pausing between batches; returns
/// how many cards it stored. Stops early when `stop` is cancelled.
pub async fn fill_in_background(
    store: Arc<Store>,
    stop: CancellationToken,
) -> Result<u64, StoreError> {
    if store.call(|s| s.cards_complete()).await? {
        return Ok(0);
    }
    let started = std::time::Instant::now();
    tracing::info!(
        "computing the cards of reports stored without one (lists compute a missing one meanwhile)"
    );
    let mut after = 0;
    let mut stored = 0u64;
    while let Some((last, n)) = store.call(move |s| fill_some(s, after, FILL_BATCH)).await? {
        after = last;
        stored += n as u64;
        tokio::select! {
            () = stop.cancelled() => return Ok(stored),
            () = tokio::time::sleep(FILL_PAUSE) => {}
        }
    }
    tracing::info!(
        cards = stored,
        seconds = started.elapsed().as_secs(),
        "every report has its card"
    );
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::{Batch, Publisher, sample};
    use crate::store::FILE_NAME;

    /// `n` reports, one every 6 hours from 2026-11-01 (all in November at UTC+7 while
    /// n ≤ 116), published through the publish path.
    fn published(n: u64) -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join(FILE_NAME)).expect("open"));
        let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().expect("date");
        let reports: Vec<Report> = (1..=n)
            .map(|i| {
                let mut r = sample(i, "2026-11-01T00:00:00Z");
                r.created_at = start + chrono::TimeDelta::hours(6 * i as i64);
                r.html_content = format!(
                    "<h1>Bitcoin holds its ground in report number {i}.</h1><p>The market moved sideways through the day while traders waited for the next macro print, number {i}.</p>"
                );
                r
            })
            .collect();
        Publisher::new(Arc::clone(&store))
            .publish(Batch::of(reports))
            .expect("publish");
        (dir, store)
    }

    #[test]
    fn lists_read_cards_and_no_report_body() {
        let (_dir, store) = published(60);
        let before = store.reports_decoded();
        let (newest, total) = newest(&store, 0, 20).expect("newest");
        assert_eq!(total, 60);
        assert_eq!(newest.len(), 20);
        assert_eq!(newest[0].id, 60);
        assert_eq!(
            newest[0].lead(Lang::Vi).headline.as_deref(),
            Some("Bitcoin holds its ground in report number 60")
        );
        let month = between(&store, 0, i64::MAX / 1000, 50, 50).expect("between");
        assert_eq!(
            month.iter().map(|c| c.id).collect::<Vec<_>>(),
            (51..=60).collect::<Vec<_>>(),
            "oldest first, from the offset"
        );
        let around = of(&store, &[newest[1].at(), newest[2].at()]).expect("of");
        assert_eq!(around.iter().flatten().count(), 2);
        assert_eq!(store.reports_decoded(), before, "no report body was read");
        // A card is exactly what the report gives.
        let report = store.report(60).expect("read").expect("stored");
        assert_eq!(newest[0], Card::of(&report));
    }

    #[test]
    fn cards_are_prepared_in_parallel_for_what_the_commit_will_write() {
        let (_dir, store) = published(3);
        let mut batch: Vec<Report> = (1..=3)
            .map(|id| store.report(id).expect("read").expect("stored"))
            .collect();
        batch[1].html_content = "<h1>A changed headline for the second report.</h1>".into();
        batch.extend((10..30).map(|i| sample(i, "2026-12-01T00:00:00Z")));
        let prepared = prepare(&store, &batch);
        assert_eq!(prepared.len(), batch.len());
        assert!(
            prepared[0].is_none() && prepared[2].is_none(),
            "stored as they are"
        );
        for (report, prepared) in batch.iter().zip(&prepared).skip(1) {
            if report.id == 3 {
                continue;
            }
            let prepared = prepared.as_ref().expect("prepared");
            assert_eq!(prepared.hash, report.content_hash(), "report {}", report.id);
            assert_eq!(prepared.card, for_commit(report), "report {}", report.id);
            assert!(prepared.record.is_some(), "report {} encoded", report.id);
        }
        // Published (the batch prepared again, as above), every report reads back as given.
        // That a commit keeps what was prepared, and only when it may, is
        // `a_prepared_record_is_kept_only_for_its_content_and_dictionary` in store/cards.rs.
        let publisher = crate::reports::publish::Publisher::new(store.clone());
        publisher
            .publish(crate::reports::publish::Batch::of(batch.clone()))
            .expect("publish");
        for report in &batch {
            assert_eq!(
                store.report(report.id).expect("read").as_ref(),
                Some(report)
            );
        }
    }

    #[test]
    fn an_updated_report_gets_its_new_card() {
        let (_dir, store) = published(3);
        let mut changed = store.report(2).expect("read").expect("stored");
        changed.html_content =
            "<h1>Ether takes the lead while bitcoin rests for a day.</h1><p>Flows turned.</p>"
                .into();
        changed.html_content_en = None;
        Publisher::new(Arc::clone(&store))
            .publish(Batch::of(vec![changed]))
            .expect("update");
        let before = store.reports_decoded();
        let (cards, _) = newest(&store, 0, 3).expect("newest");
        let card = cards.iter().find(|c| c.id == 2).expect("listed");
        assert_eq!(
            card.title(Lang::En),
            "Ether takes the lead while bitcoin rests for a day",
            "the English reader sees the Vietnamese, the only language left"
        );
        assert!(!card.has_english);
        assert_eq!(store.reports_decoded(), before, "read from the stored card");
    }

    #[test]
    fn a_store_from_before_cards_is_listed_at_once_and_filled_in() {
        let (dir, store) = published(70);
        let path = Arc::into_inner(store).expect("one owner").into_schema_2();
        let store = Arc::new(Store::open(&path).expect("upgrade"));
        assert!(!store.cards_complete().expect("count"));
        let months = store.month_counts().expect("months");
        assert_eq!(
            months
                .iter()
                .map(|m| (m.year, m.month, m.reports))
                .collect::<Vec<_>>(),
            vec![(2026, 11, 70)],
            "counted from the date index by the upgrade"
        );
        // A list meets missing cards: it computes them from the reports and keeps them.
        let (first, _) = newest(&store, 0, 20).expect("newest");
        assert_eq!(first.len(), 20);
        let read = store.reports_decoded();
        assert_eq!(newest(&store, 0, 20).expect("again").0, first);
        assert_eq!(store.reports_decoded(), read, "kept from the first reading");
        // The background pass fills in the rest, a batch at a time.
        let mut after = 0;
        let mut filled = 0;
        while let Some((last, n)) = fill_some(&store, after, FILL_BATCH).expect("fill") {
            after = last;
            filled += n;
        }
        assert_eq!(filled, 50);
        assert!(store.cards_complete().expect("count"));
        drop(dir);
    }

    #[test]
    fn reports_come_with_their_cards_and_a_missing_card_is_kept() {
        let (dir, store) = published(5);
        let path = Arc::into_inner(store).expect("one owner").into_schema_2();
        let store = Arc::new(Store::open(&path).expect("upgrade"));
        assert!(!store.cards_complete().expect("count"));
        let read = with_reports(&store, &[2, 99, 4]).expect("read");
        assert_eq!(
            read.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [2, 99, 4]
        );
        assert!(matches!(read[1].1, Ok(None)), "a report that is not there");
        for (id, carded) in [&read[0], &read[2]] {
            let carded = carded.as_ref().expect("readable").as_ref().expect("stored");
            assert_eq!(carded.report.id, *id);
            assert_eq!(carded.hash, carded.report.content_hash());
            assert_eq!(carded.card, Card::of(&carded.report));
        }
        // The cards computed on the way were kept: read again, no report is parsed for one.
        let refs: Vec<ReportRef> = [&read[0], &read[2]]
            .map(|(_, c)| {
                c.as_ref()
                    .expect("readable")
                    .as_ref()
                    .expect("stored")
                    .card
                    .at()
            })
            .to_vec();
        let decoded = store.reports_decoded();
        assert_eq!(of(&store, &refs).expect("of").iter().flatten().count(), 2);
        assert_eq!(store.reports_decoded(), decoded);
        let filled = fill_some(&store, 0, FILL_BATCH).expect("fill");
        assert_eq!(filled.map(|(_, n)| n), Some(3), "reports 1, 3 and 5 only");
        drop(dir);
    }

    #[test]
    fn a_card_computed_from_a_report_since_updated_is_not_kept() {
        let (_dir, store) = published(2);
        let old = store.report(1).expect("read").expect("stored");
        let mut changed = old.clone();
        changed.html_content = "<h1>A new headline for the first report.</h1>".into();
        Publisher::new(Arc::clone(&store))
            .publish(Batch::of(vec![changed.clone()]))
            .expect("update");
        let stale = Card::of(&old).encode().expect("encode");
        let kept = store
            .put_cards(&[(1, old.content_hash(), stale)])
            .expect("put");
        assert_eq!(kept, 0, "the report changed since");
        let (cards, _) = newest(&store, 0, 2).expect("newest");
        assert_eq!(cards[1], Card::of(&changed));
    }
}
