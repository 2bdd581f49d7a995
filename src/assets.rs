//! Static files embedded in the binary, compressed once at start-up and served under
//! content-hashed URLs with immutable caching.

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::response::Response;
use rust_embed::RustEmbed;

use crate::encoded::{Encoded, Quality};

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

/// Every embedded asset, addressable by its plain and by its fingerprinted path.
pub struct Assets {
    by_path: HashMap<String, Encoded>,
    /// `css/site.3f2a9c01de.css` -> the same asset, cached as immutable.
    by_hashed: HashMap<String, Encoded>,
    /// `css/site.css` -> `/assets/css/site.3f2a9c01de.css`
    urls: HashMap<String, String>,
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
            let content_type = content_type(&path);
            let encoded = Encoded::new(content_type, file.data.into_owned(), ASSET_QUALITY);
            let hashed = fingerprint(&path, encoded.digest());
            urls.insert(path.to_string(), format!("/assets/{hashed}"));
            let immutable = encoded
                .clone()
                .with_cache_control("public, max-age=31536000, immutable");
            by_hashed.insert(hashed, immutable);
            by_path.insert(path.to_string(), encoded);
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
    /// plain paths revalidate by ETag. Unknown paths are `None`; nothing outside the embedded
    /// set can ever be named.
    pub fn respond(&self, path: &str, request: &HeaderMap) -> Option<Response> {
        self.by_hashed
            .get(path)
            .or_else(|| self.by_path.get(path))
            .map(|a| a.respond(request))
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
