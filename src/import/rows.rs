//! What the importer accepts of a source row: the rules a row is checked against from the
//! listing alone (id, date, size) and once fetched (text, the report's own validation), and
//! how the wanted rows are split into fetches. A row that fails is skipped and named, never
//! fatal to the others.

use chrono::DateTime;
use tokio_postgres::Row;

use super::batches::Batches;
use super::{BATCH, BATCH_BYTES, Skipped};
use crate::reports::{MAX_REPORT_BYTES, Report};

/// `created_at` in microseconds since the epoch; NULL when missing, infinite, or outside the
/// years 1 to 9999 (further out the microseconds overflow a bigint, and no report is dated
/// there). A `timestamp` without time zone is read as UTC, as the generator meant it.
pub(super) const CREATED_US: &str = "CASE WHEN isfinite(created_at) \
     AND extract(epoch FROM created_at) BETWEEN -62135596800 AND 253402300799 \
     THEN floor(extract(epoch FROM created_at) * 1000000)::bigint END";

/// Why a row has no usable date.
const NO_DATE: &str =
    "created_at is missing, not a finite timestamp, or outside the years 1 to 9999";

/// One row of the listing.
pub(super) struct Listed {
    pub id: i64,
    pub version: i64,
    pub created_us: Option<i64>,
    pub bytes: i64,
}

impl Listed {
    pub fn of(r: &Row) -> Listed {
        Listed {
            id: r.get(0),
            version: r.get(1),
            created_us: r.get(2),
            bytes: r.get(3),
        }
    }
}

/// What is wrong with a row that can be told from the listing alone.
pub(super) fn listing_problem(row: &Listed) -> Option<String> {
    if row.id <= 0 {
        return Some(format!("id {} is not a positive integer", row.id));
    }
    if row.created_us.is_none() {
        return Some(NO_DATE.into());
    }
    let bytes = usize::try_from(row.bytes).unwrap_or(usize::MAX);
    if bytes > MAX_REPORT_BYTES {
        return Some(format!(
            "report is {bytes} bytes, more than the {MAX_REPORT_BYTES} allowed"
        ));
    }
    None
}

/// Text in one fetch: half a JSONL batch. Three are in memory at once (one fetched, one
/// prepared, one committing: see `postgres/pass.rs`), about half what a JSONL import holds.
const FETCH_BYTES: usize = BATCH_BYTES / 2;

/// Splits the wanted rows into fetches of at most `BATCH` rows and `FETCH_BYTES` of text.
pub(super) fn groups(wanted: &[(i64, i64)]) -> Vec<Vec<i64>> {
    let mut batches = Batches::new(BATCH, FETCH_BYTES, |&(_, size): &(i64, i64)| {
        usize::try_from(size).unwrap_or(0)
    });
    let mut out: Vec<Vec<i64>> = wanted
        .iter()
        .filter_map(|&row| batches.push(row))
        .map(|g| g.into_iter().map(|(id, _)| id).collect())
        .collect();
    out.extend(
        batches
            .finish()
            .map(|g| g.into_iter().map(|(id, _)| id).collect()),
    );
    out
}

/// A row whose text the server cannot send as UTF-8 (a `SQL_ASCII` database holding other
/// bytes): named with the server's words.
pub(super) fn not_utf8(id: i64, why: &str) -> Skipped {
    Skipped {
        line: None,
        id: u64::try_from(id).ok(),
        reason: format!("its text is not valid UTF-8 ({why})"),
    }
}

pub(super) fn report_of(row: &Row) -> Result<(Report, u64), Skipped> {
    let id: i64 = row.get(0);
    let skip = |reason: String| Skipped {
        line: None,
        id: u64::try_from(id).ok(),
        reason,
    };
    let version: i64 = row.get(1);
    let created_us: Option<i64> = row.get(2);
    let created_at = created_us
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| skip(NO_DATE.into()))?;
    let text = |i: usize| -> Result<Option<String>, Skipped> {
        row.try_get::<_, Option<String>>(i)
            .map_err(|e| skip(format!("column {i} is not valid text: {e}")))
    };
    let report = Report {
        id: u64::try_from(id).map_err(|_| skip(format!("id {id} is not a positive integer")))?,
        html_content: text(3)?.unwrap_or_default(),
        css_content: text(4)?,
        js_content: text(5)?,
        html_content_en: text(6)?,
        js_content_en: text(7)?,
        created_at,
    };
    report.validate().map_err(|e| skip(e.to_string()))?;
    Ok((report, version as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_are_bounded_in_rows_and_bytes() {
        let big = (FETCH_BYTES / 2) as i64;
        let wanted = [(1, big), (2, big), (3, 10), (4, big)];
        assert_eq!(groups(&wanted), vec![vec![1, 2], vec![3, 4]]);
        let many: Vec<(i64, i64)> = (1..=250).map(|i| (i, 10)).collect();
        let sizes: Vec<usize> = groups(&many).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![BATCH, BATCH, 50]);
        // A single row larger than a group still gets a group of its own.
        assert_eq!(groups(&[(9, FETCH_BYTES as i64)]), vec![vec![9]]);
    }
}
