//! Report import and export. Both importers, the JSONL backup format (one report per line
//! with the generator's column names) and the generator's PostgreSQL (`postgres`), stream
//! their input in batches bounded in bytes and write through the one publish path. A bad
//! record is named in the summary and skipped; the others still import.

mod batches;
mod passfile;
pub mod postgres;
mod rows;
pub mod skips;
mod tls;

use std::fmt;
use std::io::{BufRead, Read, Write};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use self::batches::Batches;
pub use self::skips::{Skipped, Skips};
use crate::reports::publish::{Batch, PublishError, Publisher, Ready};
use crate::reports::{MAX_REPORT_BYTES, Report};
use crate::store::{ReadOnlyStore, Store, StoreError, UpsertOutcome};

/// Most reports written per transaction.
pub const BATCH: usize = 100;
/// Most bytes of report text held for one transaction: memory stays bounded whatever the
/// input (a report larger than this gets a batch of its own). With one batch committing, the
/// next being prepared and the one after read, an import holds about three times this in
/// report text.
pub const BATCH_BYTES: usize = 4 << 20;
/// A line longer than this cannot hold a valid report (JSON escaping at most doubles it).
const MAX_LINE: usize = 2 * MAX_REPORT_BYTES + 4096;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the input: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Postgres(#[from] postgres::SourceError),
}

impl From<PublishError> for ImportError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Store(s) => ImportError::Store(s),
            // Importers validate before publishing; reaching this is a bug, reported plainly.
            invalid @ PublishError::Invalid { .. } => {
                ImportError::Store(StoreError::Join(invalid.to_string()))
            }
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: Skips,
}

impl ImportSummary {
    pub fn count(&mut self, outcomes: &[UpsertOutcome]) {
        for o in outcomes {
            match o {
                UpsertOutcome::New => self.new += 1,
                UpsertOutcome::Updated => self.updated += 1,
                UpsertOutcome::Unchanged => self.unchanged += 1,
            }
        }
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "new {}, updated {}, unchanged {}, skipped {}",
            self.new,
            self.updated,
            self.unchanged,
            self.skipped.total()
        )
    }
}

/// One line of the file, exactly the generator's columns.
#[derive(Deserialize, Serialize)]
struct Line {
    id: u64,
    html_content: String,
    css_content: Option<String>,
    js_content: Option<String>,
    html_content_en: Option<String>,
    js_content_en: Option<String>,
    created_at: String,
}

/// RFC 3339, or a timestamp without offset, which means UTC (as the legacy table stores it).
pub fn parse_created_at(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    Err(format!("created_at {s:?} is not an RFC 3339 timestamp"))
}

fn parse_line(text: &str) -> Result<Report, (Option<u64>, String)> {
    let line: Line = serde_json::from_str(text).map_err(|e| {
        let id = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64));
        (id, format!("invalid JSON: {e}"))
    })?;
    let created_at = parse_created_at(&line.created_at).map_err(|e| (Some(line.id), e))?;
    let report = Report {
        id: line.id,
        html_content: line.html_content,
        css_content: line.css_content,
        js_content: line.js_content,
        html_content_en: line.html_content_en,
        js_content_en: line.js_content_en,
        created_at,
    };
    report
        .validate()
        .map_err(|e| (Some(report.id), e.to_string()))?;
    Ok(report)
}

/// Reads up to and including the next newline, at most `MAX_LINE` bytes; an overlong line is
/// consumed and reported as `Err(len)`.
fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if n == MAX_LINE && buf.last() != Some(&b'\n') {
        let mut rest = 0;
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let (used, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            reader.consume(used);
            rest += used;
            if done {
                break;
            }
        }
        return Ok(Some(Err(n + rest)));
    }
    Ok(Some(Ok(())))
}

/// Imports every valid line into `summary`, committing one transaction per batch (at most
/// `BATCH` reports and `BATCH_BYTES` of text). Three threads pass batches along: this one
/// reads and parses lines, the next prepares a batch ([`Publisher::prepare`]: cards and
/// records, on every core) while the last commits the batch before (at most one batch waits
/// between two of them). On an error, `summary` holds what was committed before it.
pub fn import_jsonl(
    publisher: &Publisher,
    reader: impl BufRead,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let (to_prepare, batches) = std::sync::mpsc::sync_channel::<Vec<Report>>(0);
    let (to_commit, ready) = std::sync::mpsc::sync_channel::<Ready>(0);
    let (read, prepared, committed) = std::thread::scope(|scope| {
        let preparer = scope.spawn(move || {
            for batch in batches {
                let ready = publisher.prepare(Batch::of(batch))?;
                // Fails only once the committer stopped on an error: it is reported below.
                if to_commit.send(ready).is_err() {
                    break;
                }
            }
            Ok::<(), ImportError>(())
        });
        let committer = scope.spawn(move || {
            let mut committed = ImportSummary::default();
            for ready in ready {
                match publisher.commit(ready) {
                    Ok(outcome) => committed.count(&outcome.outcomes),
                    Err(e) => return (committed, Err(ImportError::from(e))),
                }
            }
            (committed, Ok(()))
        });
        // A send fails only once a later stage stopped on an error: it is reported below.
        let read = read_jsonl(reader, summary, &mut |batch| to_prepare.send(batch).is_ok());
        drop(to_prepare);
        let panicked = |stage: &str| -> ImportError {
            StoreError::Join(format!("the import's {stage} thread panicked")).into()
        };
        let prepared = preparer.join().unwrap_or_else(|_| Err(panicked("prepare")));
        let committed = committer
            .join()
            .unwrap_or_else(|_| (ImportSummary::default(), Err(panicked("commit"))));
        (read, prepared, committed)
    });
    let (counted, commit) = committed;
    summary.new += counted.new;
    summary.updated += counted.updated;
    summary.unchanged += counted.unchanged;
    commit?;
    prepared?;
    read
}

/// Reads every line of `reader`, records the ones that cannot be imported in `summary`, and
/// hands the valid reports to `commit` in batches; stops when `commit` returns false.
fn read_jsonl(
    mut reader: impl BufRead,
    summary: &mut ImportSummary,
    commit: &mut dyn FnMut(Vec<Report>) -> bool,
) -> Result<(), ImportError> {
    let mut batches = Batches::new(BATCH, BATCH_BYTES, Report::byte_len);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut flush = |batch: Option<Vec<Report>>| batch.is_none_or(&mut *commit);
    while let Some(read) = next_line(&mut reader, &mut buf)? {
        line_no += 1;
        if let Err(len) = read {
            summary.skipped.push(Skipped {
                line: Some(line_no),
                id: None,
                reason: format!("line is {len} bytes, longer than any valid report"),
            });
            continue;
        }
        // A file saved by some editors starts with a byte order mark.
        let bytes = match line_no {
            1 => buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf),
            _ => &buf[..],
        };
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim(),
            Err(e) => {
                summary.skipped.push(Skipped {
                    line: Some(line_no),
                    id: None,
                    reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match parse_line(text) {
            Ok(report) => {
                // A later line with the same id wins, as a rerun of the import would.
                batches.remove(|r| r.id == report.id);
                if !flush(batches.push(report)) {
                    return Ok(());
                }
            }
            Err((id, reason)) => summary.skipped.push(Skipped {
                line: Some(line_no),
                id,
                reason,
            }),
        }
    }
    flush(batches.finish());
    Ok(())
}

/// What an export wrote, and the records it could not read.
#[derive(Debug, Default)]
pub struct ExportSummary {
    pub written: u64,
    /// Damaged records, by id, with what is wrong with them; every other record was written.
    pub unreadable: Vec<(u64, String)>,
    /// Damaged pages the walk went around (see `Store::scan_reports`).
    pub gaps: Vec<String>,
}

/// Writes every readable report, in id order, one JSON object per line. A damaged record is
/// named in the summary and skipped, and the walk goes past damaged pages; only a failing
/// writer (disk full, closed pipe) or a store that cannot be read at all stops the export.
pub fn export_jsonl(store: &Store, out: impl Write) -> Result<ExportSummary, ImportError> {
    export_with(|f| store.scan_reports(f), out)
}

/// [`export_jsonl`] from a store that could only be opened for reading.
pub fn export_jsonl_read_only(
    store: &ReadOnlyStore,
    out: impl Write,
) -> Result<ExportSummary, ImportError> {
    export_with(|f| store.scan_reports(f), out)
}

type Visit<'a> = &'a mut dyn FnMut(u64, Result<Report, StoreError>) -> Result<(), StoreError>;

fn export_with(
    scan: impl FnOnce(Visit<'_>) -> Result<Vec<String>, StoreError>,
    mut out: impl Write,
) -> Result<ExportSummary, ImportError> {
    let mut summary = ExportSummary::default();
    let mut io_error = None;
    let walked = scan(&mut |id, report| {
        let r = match report {
            Ok(r) => r,
            Err(e) => {
                summary.unreadable.push((id, e.to_string()));
                return Ok(());
            }
        };
        let line = Line {
            id: r.id,
            html_content: r.html_content,
            css_content: r.css_content,
            js_content: r.js_content,
            html_content_en: r.html_content_en,
            js_content_en: r.js_content_en,
            created_at: r.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        };
        let written = serde_json::to_writer(&mut out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = written {
            io_error = Some(e);
            // Stop the walk: the disk is full or the pipe closed.
            return Err(StoreError::Join("export interrupted".into()));
        }
        summary.written += 1;
        Ok(())
    });
    match (walked, io_error) {
        (Ok(gaps), _) => summary.gaps = gaps,
        (Err(_), Some(io)) => return Err(ImportError::Io(io)),
        (Err(e), None) => return Err(ImportError::Store(e)),
    }
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::sample;
    use crate::store::FILE_NAME;

    fn store() -> (tempfile::TempDir, Publisher) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
        (dir, Publisher::new(std::sync::Arc::new(store)))
    }

    fn import(publisher: &Publisher, input: &[u8]) -> ImportSummary {
        let mut summary = ImportSummary::default();
        import_jsonl(publisher, input, &mut summary).expect("import");
        summary
    }

    #[test]
    fn round_trip_with_bad_lines_reported_by_number() {
        let (_dir, source) = store();
        let reports = [
            sample(1, "2026-11-18T08:00:00Z"),
            sample(2, "2026-11-19T08:00:00Z"),
        ];
        source.publish(Batch::of(reports.to_vec())).expect("seed");
        let mut file = Vec::new();
        assert_eq!(
            export_jsonl(source.store(), &mut file)
                .expect("export")
                .written,
            2
        );
        let mut text = String::from_utf8(file).expect("utf8");
        text.push_str("{not json\n\n");
        text.push_str(r#"{"id": 3, "html_content": "  ", "css_content": null, "js_content": null, "html_content_en": null, "js_content_en": null, "created_at": "2026-11-20T08:00:00Z"}"#);
        text.push('\n');
        text.push_str(r#"{"id": 4, "html_content": "<p>x</p>", "css_content": null, "js_content": null, "html_content_en": null, "js_content_en": null, "created_at": "yesterday"}"#);
        text.push('\n');
        text.push_str(r#"{"id": 5, "html_content": "<p>legacy</p>", "css_content": null, "js_content": null, "html_content_en": null, "js_content_en": null, "created_at": "2026-11-17T08:00:00"}"#);

        let (_dir2, target) = store();
        // A byte order mark before the first line does not cost the first report.
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let summary = import(&target, &with_bom);
        assert_eq!((summary.new, summary.updated, summary.unchanged), (3, 0, 0));
        let skipped = summary.skipped.named();
        let lines: Vec<Option<u64>> = skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![Some(3), Some(5), Some(6)]);
        assert_eq!(skipped[1].id, Some(3));
        assert!(skipped[1].reason.contains("empty"), "{skipped:?}");
        assert!(skipped[2].reason.contains("yesterday"));
        let store = target.store();
        assert_eq!(store.report(1).expect("read"), Some(reports[0].clone()));
        let legacy = store.report(5).expect("read").expect("present");
        assert_eq!(
            legacy.created_at,
            "2026-11-17T08:00:00Z"
                .parse::<DateTime<Utc>>()
                .expect("date")
        );
        assert_eq!(
            summary.to_string(),
            "new 3, updated 0, unchanged 0, skipped 3"
        );

        // Importing the same file again changes nothing.
        let again = import(&target, text.as_bytes());
        assert_eq!((again.new, again.updated, again.unchanged), (0, 0, 3));
    }

    #[test]
    fn a_report_changed_in_consecutive_batches_ends_as_its_last_line_says() {
        // A batch is prepared while the one before commits: report 7 changes in every batch
        // and comes back to what the store holds, so what a batch prepared was read from a
        // store its predecessor was about to change.
        let (_dir, publisher, original, changed) = seven_stored_and_changed();
        let mut lines = Vec::new();
        for round in 0..6 {
            let seven = if round % 2 == 0 { &changed } else { &original };
            // Each round fills a batch: report 7 and BATCH - 1 others.
            let others = (0..BATCH as u64 - 1)
                .map(|i| sample(1000 + round * 1000 + i, "2026-11-19T08:00:00Z"));
            for r in std::iter::once(seven.clone()).chain(others) {
                lines.push(serde_json::to_string(&line_of(&r)).expect("json"));
            }
        }
        let text = lines.join("\n");
        let summary = import(&publisher, text.as_bytes());
        assert_eq!(summary.updated, 6, "{summary}");
        assert_stored_with_its_card(&publisher, &original);
        assert_eq!(
            (summary.new, summary.unchanged),
            (6 * (BATCH as u64 - 1), 0)
        );
    }

    /// The same case without threads: both batches prepared before either commits. The
    /// second was prepared while the store held its content already (nothing prepared for
    /// report 7); by its commit the first has changed it, so the commit computes the card and
    /// record itself.
    #[test]
    fn a_batch_prepared_before_the_one_ahead_commits_writes_what_it_holds() {
        let (_dir, publisher, original, changed) = seven_stored_and_changed();
        let first = publisher
            .prepare(Batch::of(vec![changed.clone()]))
            .expect("prepare");
        let second = publisher
            .prepare(Batch::of(vec![original.clone()]))
            .expect("prepare");
        let outcomes = |o: crate::reports::publish::Outcome| o.outcomes;
        assert_eq!(
            outcomes(publisher.commit(first).expect("commit")),
            vec![UpsertOutcome::Updated]
        );
        assert_eq!(
            outcomes(publisher.commit(second).expect("commit")),
            vec![UpsertOutcome::Updated]
        );
        assert_stored_with_its_card(&publisher, &original);
    }

    /// A store holding report 7, the report, and the same report with another text.
    fn seven_stored_and_changed() -> (tempfile::TempDir, Publisher, Report, Report) {
        let (dir, publisher) = store();
        let original = sample(7, "2026-11-18T08:00:00Z");
        publisher
            .publish(Batch::of(vec![original.clone()]))
            .expect("seed");
        let mut changed = original.clone();
        changed.html_content = "<h1>Ether leads the market while bitcoin rests today.</h1>".into();
        (dir, publisher, original, changed)
    }

    /// The store holds `report` as it is, and the card made from it.
    fn assert_stored_with_its_card(publisher: &Publisher, report: &Report) {
        let store = publisher.store();
        assert_eq!(
            store.report(report.id).expect("read").as_ref(),
            Some(report)
        );
        let card = crate::reports::cards::of(
            store,
            &[crate::store::ReportRef {
                id: report.id,
                created_at: report.created_at,
            }],
        )
        .expect("cards")
        .remove(0)
        .expect("card");
        assert_eq!(card, crate::reports::Card::of(report));
    }

    fn line_of(r: &Report) -> Line {
        Line {
            id: r.id,
            html_content: r.html_content.clone(),
            css_content: r.css_content.clone(),
            js_content: r.js_content.clone(),
            html_content_en: r.html_content_en.clone(),
            js_content_en: r.js_content_en.clone(),
            created_at: r.created_at.to_rfc3339(),
        }
    }

    #[test]
    fn invalid_utf8_and_overlong_lines_are_skipped_not_fatal() {
        let (_dir, target) = store();
        let mut bytes = b"\xff\xfe garbage\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
        bytes.push(b'\n');
        let good = serde_json::to_string(&Line {
            id: 9,
            html_content: "<p>ok</p>".into(),
            css_content: None,
            js_content: None,
            html_content_en: None,
            js_content_en: None,
            created_at: "2026-11-20T08:00:00+07:00".into(),
        })
        .expect("json");
        bytes.extend(good.as_bytes());
        let summary = import(&target, &bytes);
        assert_eq!(summary.new, 1);
        assert_eq!(
            summary
                .skipped
                .named()
                .iter()
                .map(|s| s.line)
                .collect::<Vec<_>>(),
            vec![Some(1), Some(2)]
        );
        let r = target.store().report(9).expect("read").expect("present");
        assert_eq!(r.created_at.to_rfc3339(), "2026-11-20T01:00:00+00:00");
    }

    #[test]
    fn a_file_of_bad_lines_costs_a_bounded_summary() {
        let (_dir, target) = store();
        let lines = skips::KEPT + 500;
        // Every line is bad, each with a long field its reason would quote.
        let bad = format!(
            r#"{{"id": 1, "html_content": "<p>x</p>", "css_content": null, "js_content": null, "html_content_en": null, "js_content_en": null, "created_at": "{}"}}"#,
            "9".repeat(10_000)
        );
        let text = format!("{bad}\n").repeat(lines);
        let summary = import(&target, text.as_bytes());
        assert_eq!(summary.new, 0);
        assert_eq!(summary.skipped.total(), lines as u64);
        assert_eq!(summary.skipped.named().len(), skips::KEPT);
        let longest = summary.skipped.named().iter().map(|s| s.reason.len());
        assert!(longest.max().unwrap_or(0) < 4 * skips::REASON_CHARS);
        assert!(summary.to_string().ends_with(&format!("skipped {lines}")));
    }

    #[test]
    fn export_reports_a_failing_writer() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "disk full",
                ))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (_dir, source) = store();
        source
            .publish(Batch::of(vec![sample(1, "2026-11-18T08:00:00Z")]))
            .expect("seed");
        assert!(matches!(
            export_jsonl(source.store(), Full),
            Err(ImportError::Io(_))
        ));
    }
}
