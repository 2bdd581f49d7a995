//! Response bodies compressed once, ahead of time, with an ETag per representation, and the
//! content negotiation and conditional GET that serve them.

use std::borrow::Cow;
use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

/// Bodies below this size are not worth compressing.
const MIN_COMPRESS: usize = 512;
/// From this size gzip and brotli run on two threads.
const PARALLEL_COMPRESS: usize = 32 * 1024;

/// One resource in every encoding we serve, with its response headers prepared once so that
/// serving it is one copy of a prepared header map and a few reference-count increments.
#[derive(Debug, Clone)]
pub struct Encoded {
    content_type: HeaderValue,
    cache_control: HeaderValue,
    /// Extra headers set by the producer (e.g. a sandboxing CSP).
    headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Hex digest of the identity body; each representation's ETag derives from it.
    tag: String,
    identity: Representation,
    gzip: Option<Representation>,
    br: Option<Representation>,
    /// Whether the body varies with language negotiation (cookie, Accept-Language).
    vary_language: bool,
    vary: Option<HeaderValue>,
}

#[derive(Debug, Clone)]
struct Representation {
    body: Bytes,
    etag: HeaderValue,
    /// Every header of a 200 answer with this body, the security headers and its length
    /// included (set again on the way out, they replace a value and grow nothing); filled by
    /// [`Encoded::prepare`].
    ok: HeaderMap,
}

impl Representation {
    /// The headers every answer with this body carries (a 200 adds its type and length).
    fn headers_into(
        &self,
        h: &mut HeaderMap,
        cache_control: &HeaderValue,
        coding: &'static str,
        vary: &Option<HeaderValue>,
        extra: &[(header::HeaderName, HeaderValue)],
    ) {
        h.insert(header::ETAG, self.etag.clone());
        h.insert(header::CACHE_CONTROL, cache_control.clone());
        if !coding.is_empty() {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        if let Some(vary) = vary {
            h.insert(header::VARY, vary.clone());
        }
        for (name, value) in extra {
            h.insert(name.clone(), value.clone());
        }
    }

    fn new(body: Bytes, tag: &str, suffix: &str) -> Self {
        let etag = HeaderValue::from_str(&format!("\"{tag}{suffix}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Representation {
            body,
            etag,
            ok: HeaderMap::new(),
        }
    }
}

/// Memory of one prepared header, for the cache's weigher (name, value and the map's slot).
const PREPARED_HEADER_BYTES: usize = 96;

/// An [`Encoded`] as plain data, to keep outside the process (the second cache tier): every
/// representation with its bytes, so whoever reads it back serves it without compressing.
/// Borrowed from the response when written (its bodies are copied once, into the stored
/// bytes), owned when read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EncodedParts<'a> {
    content_type: Cow<'a, str>,
    cache_control: Cow<'a, str>,
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    tag: Cow<'a, str>,
    identity: Cow<'a, [u8]>,
    gzip: Option<Cow<'a, [u8]>>,
    br: Option<Cow<'a, [u8]>>,
    vary_language: bool,
}

/// Why stored parts cannot be served (written by another version, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("stored response is not usable: {0}")]
pub struct PartsError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Br,
}

impl Encoded {
    /// Compresses `body` with gzip and brotli (when it helps). `quality` trades build time for
    /// size: assets built once at start use the maximum, rendered pages a fast level.
    pub fn new(content_type: &'static str, body: impl Into<Bytes>, quality: Quality) -> Self {
        let identity: Bytes = body.into();
        let tag = tag_of(&identity);
        let (gzip, br) = if identity.len() >= MIN_COMPRESS && compressible(content_type) {
            // Large bodies compress both ways at once: a first render's latency is mostly
            // compression, and the machine has a second core for it.
            let (gz, br) = if identity.len() >= PARALLEL_COMPRESS {
                std::thread::scope(|scope| {
                    let br = scope.spawn(|| brotli(&identity, quality));
                    let gz = gzip(&identity, quality);
                    (gz, br.join().unwrap_or_default())
                })
            } else {
                (gzip(&identity, quality), brotli(&identity, quality))
            };
            (
                (gz.len() < identity.len()).then(|| Representation::new(gz.into(), &tag, "-gz")),
                (br.len() < identity.len()).then(|| Representation::new(br.into(), &tag, "-br")),
            )
        } else {
            (None, None)
        };
        let mut encoded = Encoded {
            content_type: HeaderValue::from_static(content_type),
            cache_control: HeaderValue::from_static("no-cache"),
            headers: Vec::new(),
            identity: Representation::new(identity, &tag, ""),
            tag,
            gzip,
            br,
            vary_language: false,
            vary: None,
        };
        encoded.prepare();
        encoded
    }

    pub fn with_cache_control(mut self, value: &'static str) -> Self {
        self.cache_control = HeaderValue::from_static(value);
        self.prepare();
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self.prepare();
        self
    }

    pub fn varying_by_language(mut self) -> Self {
        self.vary_language = true;
        self.prepare();
        self
    }

    /// Builds each representation's headers of a 200 answer, in the order they go out.
    fn prepare(&mut self) {
        self.vary = self.vary_header();
        let reps = [
            (Some(&mut self.identity), ""),
            (self.gzip.as_mut(), "gzip"),
            (self.br.as_mut(), "br"),
        ];
        for (rep, coding) in reps {
            let Some(rep) = rep else { continue };
            let mut h = HeaderMap::with_capacity(16);
            h.insert(header::CONTENT_TYPE, self.content_type.clone());
            rep.headers_into(
                &mut h,
                &self.cache_control,
                coding,
                &self.vary,
                &self.headers,
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(rep.body.len()));
            crate::headers::secure(&mut h);
            rep.ok = h;
        }
    }

    fn vary_header(&self) -> Option<HeaderValue> {
        let compressed = self.gzip.is_some() || self.br.is_some();
        match (compressed, self.vary_language) {
            (true, true) => Some("Accept-Encoding, Accept-Language, Cookie"),
            (true, false) => Some("Accept-Encoding"),
            (false, true) => Some("Accept-Language, Cookie"),
            (false, false) => None,
        }
        .map(HeaderValue::from_static)
    }

    /// The parts of this response, to store elsewhere.
    pub fn to_parts(&self) -> EncodedParts<'_> {
        fn text(v: &HeaderValue) -> Cow<'_, str> {
            Cow::Borrowed(v.to_str().unwrap_or_default())
        }
        EncodedParts {
            content_type: text(&self.content_type),
            cache_control: text(&self.cache_control),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (Cow::Borrowed(n.as_str()), text(v)))
                .collect(),
            tag: Cow::Borrowed(&self.tag),
            identity: Cow::Borrowed(&self.identity.body),
            gzip: self.gzip.as_ref().map(|r| Cow::Borrowed(&r.body[..])),
            br: self.br.as_ref().map(|r| Cow::Borrowed(&r.body[..])),
            vary_language: self.vary_language,
        }
    }

    /// The response stored as `parts`, ready to serve (nothing is compressed again). The
    /// identity body must still hash to its tag (the compressed bodies carry no digest of
    /// their own; the tier's transport and Redis's own checks are trusted for them).
    pub fn from_parts(parts: EncodedParts<'_>) -> Result<Encoded, PartsError> {
        let value = |s: &str| HeaderValue::from_str(s).map_err(|e| PartsError(e.to_string()));
        if tag_of(&parts.identity) != parts.tag {
            return Err(PartsError("the body does not match its tag".into()));
        }
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| {
                let name = header::HeaderName::from_bytes(n.as_bytes())
                    .map_err(|e| PartsError(e.to_string()))?;
                Ok((name, value(v)?))
            })
            .collect::<Result<Vec<_>, PartsError>>()?;
        let tag = parts.tag.into_owned();
        let body = |b: Cow<'_, [u8]>| Bytes::from(b.into_owned());
        let mut encoded = Encoded {
            content_type: value(&parts.content_type)?,
            cache_control: value(&parts.cache_control)?,
            headers,
            identity: Representation::new(body(parts.identity), &tag, ""),
            gzip: parts
                .gzip
                .map(|b| Representation::new(body(b), &tag, "-gz")),
            br: parts.br.map(|b| Representation::new(body(b), &tag, "-br")),
            tag,
            vary_language: parts.vary_language,
            vary: None,
        };
        encoded.prepare();
        Ok(encoded)
    }

    /// Bytes held in memory by all representations, for the cache's weigher.
    pub fn weight(&self) -> usize {
        [Some(&self.identity), self.gzip.as_ref(), self.br.as_ref()]
            .into_iter()
            .flatten()
            .map(|r| r.body.len() + r.ok.capacity() * PREPARED_HEADER_BYTES)
            .sum::<usize>()
            + self.tag.len()
            + 512
    }

    pub fn identity(&self) -> &Bytes {
        &self.identity.body
    }

    /// Builds the response for a request: picks the encoding, answers 304 when the client's
    /// copy is current, and sets the caching headers.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let (coding, rep) = match self.choose(request) {
            Coding::Br => ("br", self.br.as_ref().unwrap_or(&self.identity)),
            Coding::Gzip => ("gzip", self.gzip.as_ref().unwrap_or(&self.identity)),
            Coding::Identity => ("", &self.identity),
        };
        let etag = rep.etag.as_bytes();
        let not_modified = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|t| {
                let t = t.trim_ascii();
                t.strip_prefix(b"W/").unwrap_or(t)
            })
            .any(|t| t == etag || t == b"*");
        if !not_modified {
            let mut response = Response::new(Body::from(rep.body.clone()));
            *response.headers_mut() = rep.ok.clone();
            return response;
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        rep.headers_into(
            response.headers_mut(),
            &self.cache_control,
            coding,
            &self.vary,
            &self.headers,
        );
        response
    }

    fn choose(&self, request: &HeaderMap) -> Coding {
        let accept = AcceptEncoding::parse(request);
        if self.br.is_some() && accept.br {
            Coding::Br
        } else if self.gzip.is_some() && accept.gzip {
            Coding::Gzip
        } else {
            Coding::Identity
        }
    }
}

/// The digest a body's ETags derive from (20 hex digits of its BLAKE3 hash); its first 10
/// fingerprint asset URLs.
pub fn tag_of(body: &[u8]) -> String {
    blake3::hash(body).to_hex()[..20].to_owned()
}

#[derive(Default)]
struct AcceptEncoding {
    gzip: bool,
    br: bool,
}

impl AcceptEncoding {
    fn parse(headers: &HeaderMap) -> Self {
        let mut out = AcceptEncoding::default();
        for value in headers.get_all(header::ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                let refused = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .any(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0));
                match coding.as_str() {
                    "gzip" | "x-gzip" => out.gzip = !refused,
                    "br" => out.br = !refused,
                    "*" if !refused => {
                        out.gzip = true;
                        out.br = true;
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Quality {
    /// Built once at start-up: smallest output.
    Best,
    /// Built on a cache miss: fast.
    Fast,
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.contains("json")
        || content_type.contains("javascript")
        || content_type.contains("xml")
        || content_type.contains("svg")
}

fn gzip(data: &[u8], quality: Quality) -> Vec<u8> {
    let level = match quality {
        Quality::Best => flate2::Compression::best(),
        Quality::Fast => flate2::Compression::new(6),
    };
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 3), level);
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn brotli(data: &[u8], quality: Quality) -> Vec<u8> {
    let q = match quality {
        Quality::Best => 11,
        Quality::Fast => 5,
    };
    let mut out = Vec::with_capacity(data.len() / 3);
    // Assets (compressed once, at maximum quality) get a window no larger than the input: the
    // same output without 4 MiB buffers that the allocator then keeps. Pages keep the default
    // window, which the fast quality levels need to stay fast.
    let lgwin = match quality {
        Quality::Best => (usize::BITS - data.len().max(1).leading_zeros()).clamp(16, 22) as i32,
        Quality::Fast => 22,
    };
    let params = brotli::enc::BrotliEncoderParams {
        quality: q,
        lgwin,
        ..Default::default()
    };
    let mut input = data;
    match brotli::BrotliCompress(&mut input, &mut out, &params) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn req(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn body_text() -> String {
        "<p>crypto market report</p>\n".repeat(200)
    }

    #[test]
    fn negotiates_and_decodes_back_to_identity() {
        let e = Encoded::new("text/html; charset=utf-8", body_text(), Quality::Fast);
        let r = e.respond(&req(&[("accept-encoding", "gzip, deflate, br")]));
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
        let r = e.respond(&req(&[("accept-encoding", "gzip, br;q=0")]));
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        let r = e.respond(&req(&[]));
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        let mut out = String::new();
        flate2::read::GzDecoder::new(&e.gzip.clone().expect("gz").body[..])
            .read_to_string(&mut out)
            .expect("gunzip");
        assert_eq!(out, body_text());
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &e.br.clone().expect("br").body[..], &mut out)
            .expect("unbrotli");
        assert_eq!(out, body_text().as_bytes());
    }

    #[test]
    fn if_none_match_gives_304_for_the_same_representation_only() {
        let e = Encoded::new("text/html; charset=utf-8", body_text(), Quality::Fast);
        let first = e.respond(&req(&[("accept-encoding", "gzip")]));
        let etag = first.headers()[header::ETAG]
            .to_str()
            .expect("ascii")
            .to_owned();
        let again = e.respond(&req(&[
            ("accept-encoding", "gzip"),
            ("if-none-match", &etag),
        ]));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let weak = format!("\"other\", W/{etag}");
        let again = e.respond(&req(&[
            ("accept-encoding", "gzip"),
            ("if-none-match", &weak),
        ]));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let other = e.respond(&req(&[("if-none-match", &etag)]));
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[test]
    fn large_bodies_compressed_in_parallel_decode_back() {
        let text = "<tr><td>BTC</td><td>84,250</td></tr>\n".repeat(4000);
        let e = Encoded::new("text/html; charset=utf-8", text.clone(), Quality::Fast);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&e.gzip.clone().expect("gz").body[..])
            .read_to_string(&mut out)
            .expect("gunzip");
        assert_eq!(out, text);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &e.br.clone().expect("br").body[..], &mut out)
            .expect("unbrotli");
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn parts_round_trip_to_the_same_responses() {
        let original = Encoded::new("text/html; charset=utf-8", body_text(), Quality::Fast)
            .with_header(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            )
            .varying_by_language();
        let parts = original.to_parts();
        let bytes = postcard::to_allocvec(&parts).expect("encode");
        let back =
            Encoded::from_parts(postcard::from_bytes(&bytes).expect("decode")).expect("parts");
        for accept in ["br", "gzip", "identity"] {
            let a = original.respond(&req(&[("accept-encoding", accept)]));
            let b = back.respond(&req(&[("accept-encoding", accept)]));
            assert_eq!(a.headers(), b.headers(), "{accept}");
        }
        let mut damaged = parts;
        damaged.identity.to_mut()[3] ^= 1;
        assert!(Encoded::from_parts(damaged).is_err());
    }

    #[test]
    fn tiny_bodies_are_not_compressed() {
        let e = Encoded::new("text/plain", "ok", Quality::Best);
        let r = e.respond(&req(&[("accept-encoding", "br, gzip")]));
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(r.headers().get(header::VARY).is_none());
    }
}
