//! How a report is laid out in the store: what listings and the write path compare (date,
//! content hash) in the clear, the generator's text fields as one zstd frame.

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::{Result, StoreError, decode};
use crate::reports::{MAX_REPORT_BYTES, Report};

/// zstd level of report bodies: level 9 stores the bundled samples at about a seventh of their
/// size and still compresses well over 100 MB/s on one core; reading costs a fraction of a
/// millisecond.
const BODY_LEVEL: i32 = 9;

/// A report as stored (schema 2).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredReport<'a> {
    pub created_at_us: i64,
    /// [`Report::content_hash`] of the body: decides "updated" versus "unchanged" and proves
    /// on every read that the body is the one that was written.
    pub hash: [u8; 32],
    /// Length of the body before compression.
    pub raw_len: u32,
    /// zstd frame (with its checksum) of the postcard-encoded [`Body`].
    #[serde(borrow)]
    pub body: &'a [u8],
}

/// The generator's text fields, in its column order.
#[derive(Serialize, Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    html_content: &'a str,
    css_content: Option<&'a str>,
    js_content: Option<&'a str>,
    html_content_en: Option<&'a str>,
    js_content_en: Option<&'a str>,
}

/// Encodes reports for writing; holds one compression context for a whole batch.
pub(super) struct Encoder {
    zstd: zstd::bulk::Compressor<'static>,
}

impl Encoder {
    pub fn new() -> Result<Encoder> {
        let mut zstd = zstd::bulk::Compressor::new(BODY_LEVEL).map_err(codec_err)?;
        zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .map_err(codec_err)?;
        Ok(Encoder { zstd })
    }

    /// The stored bytes of `report`, whose content hash is `hash`.
    pub fn encode(&mut self, report: &Report, hash: [u8; 32]) -> Result<Vec<u8>> {
        let body = postcard::to_allocvec(&Body {
            html_content: &report.html_content,
            css_content: report.css_content.as_deref(),
            js_content: report.js_content.as_deref(),
            html_content_en: report.html_content_en.as_deref(),
            js_content_en: report.js_content_en.as_deref(),
        })?;
        let compressed = self.zstd.compress(&body).map_err(codec_err)?;
        Ok(postcard::to_allocvec(&StoredReport {
            created_at_us: report.created_at.timestamp_micros(),
            hash,
            raw_len: u32::try_from(body.len()).unwrap_or(u32::MAX),
            body: &compressed,
        })?)
    }
}

fn codec_err(e: std::io::Error) -> StoreError {
    StoreError::Codec(e.to_string())
}

/// The header of a stored report, without touching its body.
pub(super) fn header(id: u64, bytes: &[u8]) -> Result<StoredReport<'_>> {
    decode("reports", id, bytes)
}

/// Decodes, decompresses and verifies a stored report: a body that does not match its hash
/// is an error, never a report.
pub(super) fn decode_report(id: u64, bytes: &[u8]) -> Result<Report> {
    let stored = header(id, bytes)?;
    let damaged = |reason: String| StoreError::Damaged { id, reason };
    // The body can never be larger than a valid report plus its framing.
    let limit = 2 * MAX_REPORT_BYTES + 1024;
    if stored.raw_len as usize > limit {
        return Err(damaged(format!("body length {} is absurd", stored.raw_len)));
    }
    let raw = zstd::bulk::decompress(stored.body, stored.raw_len as usize)
        .map_err(|e| damaged(format!("body does not decompress: {e}")))?;
    let body: Body =
        postcard::from_bytes(&raw).map_err(|e| damaged(format!("body does not decode: {e}")))?;
    let created_at = DateTime::from_timestamp_micros(stored.created_at_us).ok_or_else(|| {
        damaged(format!(
            "created_at {} is out of range",
            stored.created_at_us
        ))
    })?;
    let report = Report {
        id,
        html_content: body.html_content.to_owned(),
        css_content: body.css_content.map(str::to_owned),
        js_content: body.js_content.map(str::to_owned),
        html_content_en: body.html_content_en.map(str::to_owned),
        js_content_en: body.js_content_en.map(str::to_owned),
        created_at,
    };
    if report.content_hash() != stored.hash {
        return Err(damaged("content does not match its hash".into()));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::sample;

    #[test]
    fn round_trip_and_damage_is_detected() {
        let report = sample(7, "2026-11-20T08:00:00Z");
        let bytes = Encoder::new()
            .expect("encoder")
            .encode(&report, report.content_hash())
            .expect("encode");
        assert_eq!(decode_report(7, &bytes).expect("decode"), report);

        // A wrong hash (a body that is not what was written) is refused.
        let lie = Encoder::new()
            .expect("encoder")
            .encode(&report, [0; 32])
            .expect("encode");
        assert!(matches!(
            decode_report(7, &lie),
            Err(StoreError::Damaged { id: 7, .. })
        ));
        // So is any flipped byte inside the compressed body.
        for at in [bytes.len() - 1, bytes.len() - 8, bytes.len() / 2 + 20] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x20;
            assert!(decode_report(7, &flipped).is_err(), "byte {at}");
        }
    }
}
