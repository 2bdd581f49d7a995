//! How a report is laid out in the store: what listings and the write path compare (date,
//! content hash) in the clear, the generator's text fields as one zstd frame.
//!
//! Reports of one generator share most of their markup, CSS and script, so bodies are
//! compressed with a dictionary trained on the store's own first reports (kept in the meta
//! table, and never changed once written: every body names the dictionary it needs). Bodies
//! written before there was one carry none.

use std::sync::Arc;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use super::{Result, StoreError, decode};
use crate::reports::{MAX_REPORT_BYTES, Report};

/// zstd level of report bodies: level 3 compresses well over 100 MB/s on one core; higher
/// levels gain under 10 % on report HTML for several times the CPU.
const BODY_LEVEL: i32 = 3;
/// Size of the trained dictionary.
const DICTIONARY_BYTES: usize = 48 * 1024;
/// Training needs this many bodies; fewer teach the dictionary one report, not the genre.
pub(super) const TRAINING_BODIES: usize = 32;
/// Bodies are cut into pieces of this size for training: more, smaller samples suit zstd's
/// trainer better than a few large ones.
const TRAINING_PIECE: usize = 4096;

/// A report as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredReport<'a> {
    pub created_at_us: i64,
    /// [`Report::content_hash`] of the body: decides "updated" versus "unchanged" and proves
    /// on every read that the body is the one that was written.
    pub hash: [u8; 32],
    /// Length of the body before compression.
    pub raw_len: u32,
    /// The dictionary the body was compressed with; 0 for none.
    pub dictionary: u32,
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

/// The uncompressed body of `report`: what is compressed, and what dictionaries learn from.
pub(super) fn body_bytes(report: &Report) -> Result<Vec<u8>> {
    Ok(postcard::to_allocvec(&Body {
        html_content: &report.html_content,
        css_content: report.css_content.as_deref(),
        js_content: report.js_content.as_deref(),
        html_content_en: report.html_content_en.as_deref(),
        js_content_en: report.js_content_en.as_deref(),
    })?)
}

/// A trained compression dictionary, prepared for both directions.
pub(super) struct Dictionary {
    pub id: u32,
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary").field("id", &self.id).finish()
    }
}

impl Dictionary {
    /// Reads a dictionary as the meta table keeps it: its id, then its bytes.
    pub fn from_stored(stored: &[u8]) -> Result<Dictionary> {
        let (id, bytes) = stored
            .split_first_chunk::<4>()
            .ok_or_else(|| StoreError::Codec("the stored dictionary is truncated".into()))?;
        Dictionary::new(u32::from_le_bytes(*id), bytes)
    }

    fn new(id: u32, bytes: &[u8]) -> Result<Dictionary> {
        Ok(Dictionary {
            id,
            encoder: EncoderDictionary::try_copy(bytes, BODY_LEVEL).map_err(codec_err)?,
            decoder: DecoderDictionary::try_copy(bytes).map_err(codec_err)?,
        })
    }

    /// Trains dictionary `id` on `bodies`; returns it with the bytes to store, or `None` when
    /// they are too few or too alike to teach anything.
    pub fn train(id: u32, bodies: &[Vec<u8>]) -> Option<(Dictionary, Vec<u8>)> {
        if bodies.len() < TRAINING_BODIES {
            return None;
        }
        let pieces: Vec<&[u8]> = bodies
            .iter()
            .flat_map(|b| b.chunks(TRAINING_PIECE))
            .collect();
        let bytes = match zstd::dict::from_samples(&pieces, DICTIONARY_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::debug!(error = %e, "no compression dictionary this time");
                return None;
            }
        };
        let dictionary = Dictionary::new(id, &bytes).ok()?;
        let mut stored = id.to_le_bytes().to_vec();
        stored.extend_from_slice(&bytes);
        Some((dictionary, stored))
    }
}

/// Encodes reports for writing; holds one compression context for a whole batch.
pub(super) struct Encoder<'d> {
    zstd: zstd::bulk::Compressor<'d>,
    dictionary: u32,
}

impl<'d> Encoder<'d> {
    pub fn new(dictionary: Option<&'d Dictionary>) -> Result<Encoder<'d>> {
        let mut zstd = match dictionary {
            Some(d) => zstd::bulk::Compressor::with_prepared_dictionary(&d.encoder),
            None => zstd::bulk::Compressor::new(BODY_LEVEL),
        }
        .map_err(codec_err)?;
        zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .map_err(codec_err)?;
        Ok(Encoder {
            zstd,
            dictionary: dictionary.map_or(0, |d| d.id),
        })
    }

    /// The id of the dictionary it compresses with (0: none).
    pub fn dictionary(&self) -> u32 {
        self.dictionary
    }

    /// The stored bytes of `report`, whose content hash is `hash`.
    pub fn encode(&mut self, report: &Report, hash: [u8; 32]) -> Result<Vec<u8>> {
        let body = body_bytes(report)?;
        let compressed = self.zstd.compress(&body).map_err(codec_err)?;
        Ok(postcard::to_allocvec(&StoredReport {
            created_at_us: report.created_at.timestamp_micros(),
            hash,
            raw_len: u32::try_from(body.len()).unwrap_or(u32::MAX),
            dictionary: self.dictionary,
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

thread_local! {
    /// Each thread's decompression context, kept: making one costs about as much as
    /// decompressing a report.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses report `id`'s `body`, which must be at most `len` bytes once decompressed
/// (with `decoder`'s dictionary when given); a body that does not is damaged.
fn decompress(
    id: u64,
    body: &[u8],
    len: usize,
    decoder: Option<&DecoderDictionary<'static>>,
) -> Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|kept| {
        let context =
            match kept {
                Some(c) => c,
                None => kept.insert(zstd::zstd_safe::DCtx::try_create().ok_or_else(|| {
                    StoreError::Codec("cannot make a decompression context".into())
                })?),
            };
        let mut out = Vec::with_capacity(len);
        match decoder {
            Some(d) => context.decompress_using_ddict(&mut out, body, d.as_ddict()),
            None => context.decompress(&mut out, body),
        }
        .map_err(|code| StoreError::Damaged {
            id,
            reason: format!(
                "body does not decompress: {}",
                zstd::zstd_safe::get_error_name(code)
            ),
        })?;
        Ok(out)
    })
}

/// Decodes, decompresses and verifies a stored report: a body that does not match its hash
/// is an error, never a report.
pub(super) fn decode_report(
    id: u64,
    bytes: &[u8],
    dictionary: Option<&Arc<Dictionary>>,
) -> Result<Report> {
    let stored = header(id, bytes)?;
    let damaged = |reason: String| StoreError::Damaged { id, reason };
    // The body can never be larger than a valid report plus its framing.
    let limit = 2 * MAX_REPORT_BYTES + 1024;
    if stored.raw_len as usize > limit {
        return Err(damaged(format!("body length {} is absurd", stored.raw_len)));
    }
    let decoder = match (stored.dictionary, dictionary) {
        (0, _) => None,
        (want, Some(d)) if d.id == want => Some(&d.decoder),
        (want, _) => {
            return Err(damaged(format!(
                "needs dictionary {want}, which is missing"
            )));
        }
    };
    let raw = decompress(id, stored.body, stored.raw_len as usize, decoder)?;
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

    fn encode(report: &Report, hash: [u8; 32], dictionary: Option<&Dictionary>) -> Vec<u8> {
        Encoder::new(dictionary)
            .expect("encoder")
            .encode(report, hash)
            .expect("encode")
    }

    #[test]
    fn round_trip_and_damage_is_detected() {
        let report = sample(7, "2026-11-20T08:00:00Z");
        let bytes = encode(&report, report.content_hash(), None);
        assert_eq!(decode_report(7, &bytes, None).expect("decode"), report);

        // A wrong hash (a body that is not what was written) is refused.
        let lie = encode(&report, [0; 32], None);
        assert!(matches!(
            decode_report(7, &lie, None),
            Err(StoreError::Damaged { id: 7, .. })
        ));
        // So is any flipped byte inside the compressed body.
        for at in [bytes.len() - 1, bytes.len() - 8, bytes.len() / 2 + 20] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x20;
            assert!(decode_report(7, &flipped, None).is_err(), "byte {at}");
        }
    }

    #[test]
    fn a_trained_dictionary_shrinks_bodies_and_is_required_to_read_them() {
        let reports: Vec<Report> = (1..=40)
            .map(|i| {
                let mut r = sample(i, "2026-11-20T08:00:00Z");
                r.js_content = Some(format!(
                    "function initializeAllVisuals_report(lang) {{ createGauge(document.getElementById('fng-{i}'), {i}, {{ min: 0, max: 100 }}); }}"
                ));
                r
            })
            .collect();
        let bodies: Vec<Vec<u8>> = reports
            .iter()
            .map(|r| body_bytes(r).expect("body"))
            .collect();
        let (dictionary, stored) = Dictionary::train(1, &bodies).expect("trains");
        let loaded = Arc::new(Dictionary::from_stored(&stored).expect("loads"));
        let report = &reports[5];
        let plain = encode(report, report.content_hash(), None);
        let packed = encode(report, report.content_hash(), Some(&dictionary));
        assert!(
            packed.len() < plain.len(),
            "{} >= {}",
            packed.len(),
            plain.len()
        );
        assert_eq!(
            decode_report(report.id, &packed, Some(&loaded)).expect("decode"),
            *report
        );
        assert!(matches!(
            decode_report(report.id, &packed, None),
            Err(StoreError::Damaged { .. })
        ));
        assert!(Dictionary::train(1, &bodies[..3]).is_none());
    }
}
