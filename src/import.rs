//! Report import and export in the JSONL backup format: one report per line with the
//! generator's column names. A bad line is reported with its number and skipped.

use std::fmt;
use std::io::{BufRead, Read, Write};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::reports::{MAX_REPORT_BYTES, Report};
use crate::store::{Store, StoreError, UpsertOutcome};

/// Reports written per transaction.
pub const BATCH: usize = 100;
/// A line longer than this cannot hold a valid report (JSON escaping at most doubles it).
const MAX_LINE: usize = 2 * MAX_REPORT_BYTES + 4096;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the input: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: u64,
    pub id: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: Vec<Skipped>,
}

impl ImportSummary {
    fn count(&mut self, outcomes: &[UpsertOutcome]) {
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
            self.skipped.len()
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

/// Imports every valid line, committing one transaction per `BATCH` reports. `on_commit` sees
/// each committed batch with its outcomes (the server uses it to invalidate pages).
pub fn import_jsonl(
    store: &Store,
    mut reader: impl BufRead,
    mut on_commit: impl FnMut(&[Report], &[UpsertOutcome]),
) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut flush =
        |batch: &mut Vec<Report>, summary: &mut ImportSummary| -> Result<(), ImportError> {
            if batch.is_empty() {
                return Ok(());
            }
            let outcomes = store.upsert_reports(batch, None)?;
            summary.count(&outcomes);
            on_commit(batch, &outcomes);
            batch.clear();
            Ok(())
        };
    while let Some(read) = next_line(&mut reader, &mut buf)? {
        line_no += 1;
        if let Err(len) = read {
            summary.skipped.push(Skipped {
                line: line_no,
                id: None,
                reason: format!("line is {len} bytes, longer than any valid report"),
            });
            continue;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                summary.skipped.push(Skipped {
                    line: line_no,
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
                batch.retain(|r: &Report| r.id != report.id);
                batch.push(report);
                if batch.len() >= BATCH {
                    flush(&mut batch, &mut summary)?;
                }
            }
            Err((id, reason)) => summary.skipped.push(Skipped {
                line: line_no,
                id,
                reason,
            }),
        }
    }
    flush(&mut batch, &mut summary)?;
    Ok(summary)
}

/// Writes every report, in id order, one JSON object per line; returns how many.
pub fn export_jsonl(store: &Store, mut out: impl Write) -> Result<u64, ImportError> {
    let mut count = 0;
    let mut io_error = None;
    store
        .for_each_report(|r| {
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
            count += 1;
            Ok(())
        })
        .map_err(|e| match io_error.take() {
            Some(io) => ImportError::Io(io),
            None => ImportError::Store(e),
        })?;
    out.flush()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::sample;
    use crate::store::FILE_NAME;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join(FILE_NAME)).expect("open");
        (dir, store)
    }

    #[test]
    fn round_trip_with_bad_lines_reported_by_number() {
        let (_dir, source) = store();
        let reports = [
            sample(1, "2026-11-18T08:00:00Z"),
            sample(2, "2026-11-19T08:00:00Z"),
        ];
        source.upsert_reports(&reports, None).expect("seed");
        let mut file = Vec::new();
        assert_eq!(export_jsonl(&source, &mut file).expect("export"), 2);
        let mut text = String::from_utf8(file).expect("utf8");
        text.push_str("{not json\n\n");
        text.push_str(r#"{"id": 3, "html_content": "  ", "css_content": null, "js_content": null, "html_content_en": null, "js_content_en": null, "created_at": "2026-11-20T08:00:00Z"}"#);
        text.push('\n');
        text.push_str(r#"{"id": 4, "html_content": "<p>x</p>", "css_content": null, "js_content": null, "html_content_en": null, "js_content_en": null, "created_at": "yesterday"}"#);
        text.push('\n');
        text.push_str(r#"{"id": 5, "html_content": "<p>legacy</p>", "css_content": null, "js_content": null, "html_content_en": null, "js_content_en": null, "created_at": "2026-11-17T08:00:00"}"#);

        let (_dir2, target) = store();
        let mut committed = 0;
        let summary =
            import_jsonl(&target, text.as_bytes(), |b, _| committed += b.len()).expect("import");
        assert_eq!((summary.new, summary.updated, summary.unchanged), (3, 0, 0));
        let lines: Vec<u64> = summary.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![3, 5, 6]);
        assert_eq!(summary.skipped[1].id, Some(3));
        assert!(
            summary.skipped[1].reason.contains("empty"),
            "{:?}",
            summary.skipped
        );
        assert!(summary.skipped[2].reason.contains("yesterday"));
        assert_eq!(committed, 3);
        assert_eq!(target.report(1).expect("read"), Some(reports[0].clone()));
        let legacy = target.report(5).expect("read").expect("present");
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
        let again = import_jsonl(&target, text.as_bytes(), |_, _| {}).expect("import");
        assert_eq!((again.new, again.updated, again.unchanged), (0, 0, 3));
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
        let summary = import_jsonl(&target, &bytes[..], |_, _| {}).expect("import");
        assert_eq!(summary.new, 1);
        assert_eq!(
            summary.skipped.iter().map(|s| s.line).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let r = target.report(9).expect("read").expect("present");
        assert_eq!(r.created_at.to_rfc3339(), "2026-11-20T01:00:00+00:00");
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
            .upsert_reports(&[sample(1, "2026-11-18T08:00:00Z")], None)
            .expect("seed");
        assert!(matches!(
            export_jsonl(&source, Full),
            Err(ImportError::Io(_))
        ));
    }
}
