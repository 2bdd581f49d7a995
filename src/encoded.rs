//! Response bodies compressed once, ahead of time, with an ETag per representation, and the
//! content negotiation and conditional GET that serve them.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

/// Bodies below this size are not worth compressing.
const MIN_COMPRESS: usize = 512;

/// One resource in every encoding we serve.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub content_type: &'static str,
    pub cache_control: &'static str,
    /// Extra headers set by the producer (e.g. a sandboxing CSP).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Hex digest of the identity body; each representation's ETag derives from it.
    tag: String,
    identity: Bytes,
    gzip: Option<Bytes>,
    br: Option<Bytes>,
    /// Whether the body varies with language negotiation (cookie, Accept-Language).
    vary_language: bool,
}

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
        let tag = blake3::hash(&identity).to_hex()[..20].to_owned();
        let (gzip, br) = if identity.len() >= MIN_COMPRESS && compressible(content_type) {
            let gz = gzip(&identity, quality);
            let br = brotli(&identity, quality);
            (
                (gz.len() < identity.len()).then(|| Bytes::from(gz)),
                (br.len() < identity.len()).then(|| Bytes::from(br)),
            )
        } else {
            (None, None)
        };
        Encoded {
            content_type,
            cache_control: "no-cache",
            headers: Vec::new(),
            tag,
            identity,
            gzip,
            br,
            vary_language: false,
        }
    }

    pub fn with_cache_control(mut self, value: &'static str) -> Self {
        self.cache_control = value;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn varying_by_language(mut self) -> Self {
        self.vary_language = true;
        self
    }

    /// Short content digest, used to fingerprint asset URLs.
    pub fn digest(&self) -> &str {
        &self.tag[..10]
    }

    /// Bytes held in memory by all representations, for the cache's weigher.
    pub fn weight(&self) -> usize {
        self.identity.len()
            + self.gzip.as_ref().map_or(0, Bytes::len)
            + self.br.as_ref().map_or(0, Bytes::len)
            + self.tag.len()
            + 256
    }

    pub fn identity(&self) -> &Bytes {
        &self.identity
    }

    /// Builds the response for a request: picks the encoding, answers 304 when the client's
    /// copy is current, and sets the caching headers.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let coding = self.choose(request);
        let etag = match coding {
            Coding::Identity => format!("\"{}\"", self.tag),
            Coding::Gzip => format!("\"{}-gz\"", self.tag),
            Coding::Br => format!("\"{}-br\"", self.tag),
        };
        let not_modified = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*");
        let (status, body) = if not_modified {
            (StatusCode::NOT_MODIFIED, Bytes::new())
        } else {
            let body = match coding {
                Coding::Identity => self.identity.clone(),
                Coding::Gzip => self.gzip.clone().unwrap_or_default(),
                Coding::Br => self.br.clone().unwrap_or_default(),
            };
            (StatusCode::OK, body)
        };
        let mut builder = Response::builder()
            .status(status)
            .header(header::ETAG, etag)
            .header(header::CACHE_CONTROL, self.cache_control);
        if !not_modified {
            builder = builder.header(header::CONTENT_TYPE, self.content_type);
        }
        match coding {
            Coding::Identity => {}
            Coding::Gzip => builder = builder.header(header::CONTENT_ENCODING, "gzip"),
            Coding::Br => builder = builder.header(header::CONTENT_ENCODING, "br"),
        }
        let vary = match (self.gzip.is_some() || self.br.is_some(), self.vary_language) {
            (true, true) => Some("Accept-Encoding, Accept-Language, Cookie"),
            (true, false) => Some("Accept-Encoding"),
            (false, true) => Some("Accept-Language, Cookie"),
            (false, false) => None,
        };
        if let Some(vary) = vary {
            builder = builder.header(header::VARY, vary);
        }
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        // Every header above is built from valid static or hex text.
        builder
            .body(Body::from(body))
            .unwrap_or_else(|_| Response::new(Body::empty()))
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
    let params = brotli::enc::BrotliEncoderParams {
        quality: q,
        lgwin: 22,
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
        flate2::read::GzDecoder::new(&e.gzip.clone().expect("gz")[..])
            .read_to_string(&mut out)
            .expect("gunzip");
        assert_eq!(out, body_text());
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &e.br.clone().expect("br")[..], &mut out).expect("unbrotli");
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
    fn tiny_bodies_are_not_compressed() {
        let e = Encoded::new("text/plain", "ok", Quality::Best);
        let r = e.respond(&req(&[("accept-encoding", "br, gzip")]));
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(r.headers().get(header::VARY).is_none());
    }
}
