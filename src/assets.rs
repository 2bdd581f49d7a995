//! Static files embedded in the binary, served under content-hashed URLs with immutable
//! caching. Only their digests are computed at start (for the URLs); each is compressed the
//! first time it is asked for, on a render thread, and kept: a process that serves no asset
//! never runs the compressors nor keeps a compressed copy (`scripts/bench-idle`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::Response;
use rust_embed::RustEmbed;
use tokio::sync::OnceCell;

use crate::encoded::{Encoded, Quality, tag_of};
use crate::workers::{Pool, Refused};

#[derive(RustEmbed)]
#[folder = "assets/"]
#[exclude = "*.md"]
struct Embedded;

/// Maximum compression in release builds; unoptimized test builds would spend seconds on it.
const ASSET_QUALITY: Quality = if cfg!(debug_assertions) {
    Quality::Fast
} else {
    Quality::Best
};

/// Why an asset could not be served now.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("no such asset")]
    NotFound,
    /// Its first compression could not run (every render thread busy, or none).
    #[error("{0}")]
    Unavailable(Refused),
}

/// Every embedded asset, addressable by its plain and by its fingerprinted path.
pub struct Assets {
    by_path: HashMap<String, Arc<Asset>>,
    /// `css/site.3f2a9c01de.css` -> the same asset, cached as immutable.
    by_hashed: HashMap<String, Arc<Asset>>,
    /// `css/site.css` -> `/assets/css/site.3f2a9c01de.css`
    urls: HashMap<String, String>,
}

struct Asset {
    content_type: &'static str,
    /// The file as embedded (in a release build, borrowed from the program itself).
    data: Cow<'static, [u8]>,
    /// Compressed on first use: revalidated by ETag, and immutable (fingerprinted URL).
    encoded: OnceCell<(Encoded, Encoded)>,
}

impl Asset {
    fn encode(&self) -> (Encoded, Encoded) {
        let body = match &self.data {
            Cow::Borrowed(b) => Bytes::from_static(b),
            Cow::Owned(v) => Bytes::copy_from_slice(v),
        };
        let plain = Encoded::new(self.content_type, body, ASSET_QUALITY);
        let immutable = plain
            .clone()
            .with_cache_control("public, max-age=31536000, immutable");
        (plain, immutable)
    }
}

impl Assets {
    pub fn load() -> Assets {
        let mut by_path = HashMap::new();
        let mut by_hashed = HashMap::new();
        let mut urls = HashMap::new();
        for path in Embedded::iter() {
            let Some(file) = Embedded::get(&path) else {
                continue;
            };
            let tag = tag_of(&file.data);
            let hashed = fingerprint(&path, &tag[..10]);
            urls.insert(path.to_string(), format!("/assets/{hashed}"));
            let asset = Arc::new(Asset {
                content_type: content_type(&path),
                data: file.data,
                encoded: OnceCell::new(),
            });
            by_hashed.insert(hashed, Arc::clone(&asset));
            by_path.insert(path.to_string(), asset);
        }
        Assets {
            by_path,
            by_hashed,
            urls,
        }
    }

    /// The fingerprinted URL of an asset; a missing asset is a build error caught by tests.
    pub fn url(&self, path: &str) -> String {
        self.urls
            .get(path)
            .cloned()
            .unwrap_or_else(|| format!("/assets/{path}"))
    }

    pub fn urls(&self) -> &HashMap<String, String> {
        &self.urls
    }

    /// Serves `path` (relative to `/assets/`): fingerprinted paths are immutable for a year,
    /// plain paths revalidate by ETag. Nothing outside the embedded set can ever be named.
    /// An asset's first request compresses it on `pool` (every later one shares that).
    pub async fn respond(
        &self,
        path: &str,
        request: &HeaderMap,
        pool: &Pool,
    ) -> Result<Response, AssetError> {
        let (asset, immutable) = match self.by_hashed.get(path) {
            Some(asset) => (asset, true),
            None => (self.by_path.get(path).ok_or(AssetError::NotFound)?, false),
        };
        let (plain, fixed) = asset
            .encoded
            .get_or_try_init(|| {
                let asset = Arc::clone(asset);
                async move {
                    pool.run(move |_| asset.encode())
                        .await
                        .map_err(AssetError::Unavailable)
                }
            })
            .await?;
        let encoded = if immutable { fixed } else { plain };
        Ok(encoded.respond(request))
    }
}

fn fingerprint(path: &str, digest: &str) -> String {
    let (dir, file) = path.rsplit_once('/').map_or(("", path), |(d, f)| (d, f));
    let hashed_file = match file.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{digest}.{ext}"),
        None => format!("{file}.{digest}"),
    };
    if dir.is_empty() {
        hashed_file
    } else {
        format!("{dir}/{hashed_file}")
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_keep_directory_and_extension() {
        assert_eq!(fingerprint("css/site.css", "abc"), "css/site.abc.css");
        assert_eq!(fingerprint("favicon.svg", "abc"), "favicon.abc.svg");
        assert_eq!(fingerprint("LICENSE", "abc"), "LICENSE.abc");
    }
}
