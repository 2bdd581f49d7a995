//! The security headers every response carries: set by the edge layer on each response, and
//! already in the prepared headers of a cached page (`encoded.rs`), where setting them again
//! replaces a value without growing the map.

use axum::http::{HeaderMap, HeaderValue, header};

/// The site's own pages run no inline script and load nothing from elsewhere.
const SITE_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
);
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const REFERRER: HeaderValue = HeaderValue::from_static("strict-origin-when-cross-origin");
const SAMEORIGIN: HeaderValue = HeaderValue::from_static("SAMEORIGIN");
const PERMISSIONS_POLICY: header::HeaderName =
    header::HeaderName::from_static("permissions-policy");
const PERMISSIONS: HeaderValue =
    HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()");
const COOP: header::HeaderName = header::HeaderName::from_static("cross-origin-opener-policy");
const SAME_ORIGIN: HeaderValue = HeaderValue::from_static("same-origin");

/// Sets the security headers: the site's CSP unless the response has its own, and the
/// others.
pub fn secure(h: &mut HeaderMap) {
    // X-Frame-Options repeats `frame-ancestors` for old browsers; a handler's own CSP that
    // names no frame ancestors (the print source) means the response may be framed.
    let framable = match h.get(header::CONTENT_SECURITY_POLICY) {
        Some(own) => !own.as_bytes().windows(15).any(|w| w == b"frame-ancestors"),
        None => {
            h.insert(header::CONTENT_SECURITY_POLICY, SITE_CSP);
            false
        }
    };
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    h.insert(header::REFERRER_POLICY, REFERRER);
    if !framable {
        h.insert(header::X_FRAME_OPTIONS, SAMEORIGIN);
    }
    h.insert(PERMISSIONS_POLICY, PERMISSIONS);
    h.insert(COOP, SAME_ORIGIN);
}
