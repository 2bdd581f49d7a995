//! The three senders: Telegram Bot API `sendMessage` (HTML parse mode), a Discord webhook
//! embed, and a signed JSON webhook. Each turns one announcement into one request and the
//! answer into sent / retry later / give up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::json;

use super::Settings;
use super::target::{Kind, Target};
use crate::i18n::{self, Lang};
use crate::render::escape_html;
use crate::reports::Report;

/// Longest headline sent (Discord's embed title allows 256 characters).
const HEADLINE_MAX: usize = 250;
/// Most bytes of a target's answer kept for errors and `announce test`.
const ANSWER_MAX: usize = 2048;
/// Bytes of a target's answer read at most: what it says past them is never shown, and a
/// target that answers without end must not fill the memory.
const ANSWER_READ_MAX: usize = 16 * 1024;

/// What is announced about one report, in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub report: u64,
    pub lang: Lang,
    pub headline: String,
    pub summary: String,
    pub url: String,
    pub card: String,
    pub published_at: DateTime<Utc>,
    /// Stable across retries and instances (`Delivery::id`).
    pub delivery_id: String,
}

impl Announcement {
    /// The announcement of `report` for readers of `lang`, linking under `public_url`.
    pub fn of(report: &Report, lang: Lang, public_url: &str, delivery_id: String) -> Announcement {
        let lead = report.lead(lang);
        let headline = crate::reports::cut_on_word(&report.title(lang, &lead), HEADLINE_MAX);
        let query = match lang {
            Lang::Vi => "",
            Lang::En => "?lang=en",
        };
        let base = public_url.trim_end_matches('/');
        Announcement {
            report: report.id,
            lang,
            headline,
            summary: lead.summary,
            url: format!("{base}/crypto_report/{}{query}", report.id),
            card: format!("{base}/crypto_report/{}/card.png{query}", report.id),
            published_at: report.created_at,
            delivery_id,
        }
    }
}

/// How a send went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The target answered 2xx (status and the start of its body).
    Done { status: u16, answer: String },
    /// Worth another try, not before `after` when the target said so (429 `retry_after`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The target refused the message itself (a 4xx other than 408 and 429): retrying the
    /// same request cannot help; recorded as failed at once.
    Refused { reason: String },
}

/// Sends `a` to `target`. Never returns a secret in a reason (URLs are left out of errors).
pub async fn send(
    client: &reqwest::Client,
    settings: &Settings,
    target: &Target,
    a: &Announcement,
    now: DateTime<Utc>,
) -> Sent {
    let request = match &target.kind {
        Kind::Telegram {
            token,
            chat,
            thread,
        } => {
            let mut body = json!({
                "chat_id": chat,
                "text": telegram_text(a),
                "parse_mode": "HTML",
                "link_preview_options": {"url": a.url, "prefer_large_media": true},
            });
            if let Some(t) = thread {
                body["message_thread_id"] = json!(t);
            }
            let url = format!(
                "{}/bot{}/sendMessage",
                settings.telegram_api,
                token.expose()
            );
            client.post(url).json(&body)
        }
        Kind::Discord { id, token } => {
            let url = format!(
                "{}/api/webhooks/{id}/{}?wait=true",
                settings.discord_api,
                token.expose()
            );
            client.post(url).json(&discord_body(a))
        }
        Kind::Webhook { url, secret } => {
            let body = webhook_body(a);
            client
                .post(url)
                .header("content-type", "application/json")
                .header("idempotency-key", &a.delivery_id)
                .header(
                    SIGNATURE_HEADER,
                    signature(secret.expose().as_bytes(), now.timestamp(), &body),
                )
                .body(body)
        }
    };
    answer(request.timeout(settings.send_timeout).send().await).await
}

/// Reads an answer into a [`Sent`].
async fn answer(result: reqwest::Result<reqwest::Response>) -> Sent {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            return Sent::Retry {
                reason: e.without_url().to_string(),
                after: None,
            };
        }
    };
    let status = response.status();
    let header_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let body = match read_answer(response).await {
        Ok(b) => b,
        // The status came but the body broke off: the target may or may not have acted.
        Err(e) if status.is_success() => {
            return Sent::Retry {
                reason: format!(
                    "answered {status} but the body broke off: {}",
                    e.without_url()
                ),
                after: None,
            };
        }
        Err(_) => Default::default(),
    };
    let text = crate::reports::cut_on_word(&String::from_utf8_lossy(&body), ANSWER_MAX);
    if status.is_success() {
        return Sent::Done {
            status: status.as_u16(),
            answer: text,
        };
    }
    let reason = format!("answered {status}: {text}");
    match status.as_u16() {
        429 => Sent::Retry {
            reason,
            after: retry_after(&body).or(header_after).map(seconds),
        },
        408 | 500..=599 => Sent::Retry {
            reason,
            after: header_after.map(seconds),
        },
        _ => Sent::Refused { reason },
    }
}

/// Seconds (possibly fractional, as Discord sends them), bounded to an hour.
fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

/// `retry_after` in a JSON error body: Discord's top level, Telegram's `parameters`.
fn retry_after(body: &[u8]) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("retry_after")
        .or_else(|| v.get("parameters").and_then(|p| p.get("retry_after")))
        .and_then(serde_json::Value::as_f64)
}

/// Text for the Bot API's HTML parse mode: everything from the report escaped.
pub fn telegram_text(a: &Announcement) -> String {
    let read = match a.lang {
        Lang::Vi => "Đọc báo cáo",
        Lang::En => "Read the report",
    };
    let mut text = format!(
        "<b>{}</b>\n<i>{}</i>",
        escape_html(&a.headline),
        escape_html(&i18n::format_date(a.published_at, a.lang))
    );
    if !a.summary.is_empty() {
        text.push_str("\n\n");
        text.push_str(&escape_html(&a.summary));
    }
    text.push_str(&format!(
        "\n\n<a href=\"{}\">{read}</a>",
        escape_html(&a.url)
    ));
    text
}

/// Escapes Discord's Markdown, so a headline reads as written.
pub fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\*_~`|>[]()#-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Discord webhook message with one embed; mentions in the text ping nobody.
pub fn discord_body(a: &Announcement) -> serde_json::Value {
    json!({
        "embeds": [{
            "title": a.headline,
            "description": markdown_escape(&a.summary),
            "url": a.url,
            "timestamp": a.published_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "image": {"url": a.card},
        }],
        "allowed_mentions": {"parse": []},
    })
}

/// The JSON body of a webhook delivery.
pub fn webhook_body(a: &Announcement) -> String {
    json!({
        "id": a.report,
        "lang": a.lang.code(),
        "headline": a.headline,
        "summary": a.summary,
        "url": a.url,
        "published_at": a.published_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "delivery_id": a.delivery_id,
    })
    .to_string()
}

pub const SIGNATURE_HEADER: &str = "x-crypto-report-signature";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe's scheme).
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    format!("t={t},v1={}", hex(&mac(secret, t, body)))
}

fn mac(secret: &[u8], t: i64, body: &str) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no valid signature header")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signature is {0} s from now: a replay, or a clock far off")]
    Stale(i64),
}

/// What a receiver does with a delivery: checks the signature against `secret` in constant
/// time and refuses a timestamp more than `tolerance_secs` from `now` (five minutes is usual).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_owned()),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if v1.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let expected = hex(&mac(secret, t, body));
    let matches = v1.iter().any(|v| {
        use subtle::ConstantTimeEq;
        v.len() == expected.len() && bool::from(v.as_bytes().ct_eq(expected.as_bytes()))
    });
    if !matches {
        return Err(VerifyError::Mismatch);
    }
    if (now - t).abs() > tolerance_secs {
        return Err(VerifyError::Stale(now - t));
    }
    Ok(())
}

/// The start of `response`'s body, at most [`ANSWER_READ_MAX`] bytes; the rest is not read.
async fn read_answer(mut response: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while body.len() < ANSWER_READ_MAX {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        let room = ANSWER_READ_MAX - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(headline: &str) -> Announcement {
        Announcement {
            report: 7,
            lang: Lang::En,
            headline: headline.into(),
            summary: "BTC <up> & *away*".into(),
            url: "https://r.example/crypto_report/7?lang=en".into(),
            card: "https://r.example/crypto_report/7/card.png?lang=en".into(),
            published_at: "2026-11-20T08:00:00Z".parse().expect("date"),
            delivery_id: "7-x-0".into(),
        }
    }

    #[test]
    fn telegram_text_escapes_everything_from_the_report() {
        let text = telegram_text(&announcement("BTC < 100k & *_[fall]"));
        assert!(
            text.starts_with("<b>BTC &lt; 100k &amp; *_[fall]</b>\n<i>"),
            "{text}"
        );
        assert!(text.contains("BTC &lt;up&gt; &amp; *away*"), "{text}");
        assert!(text.ends_with(
            "<a href=\"https://r.example/crypto_report/7?lang=en\">Read the report</a>"
        ));
    }

    #[test]
    fn discord_escapes_markdown_and_pings_nobody() {
        let body = discord_body(&announcement("x"));
        assert_eq!(body["embeds"][0]["description"], "BTC <up\\> & \\*away\\*");
        assert_eq!(body["embeds"][0]["timestamp"], "2026-11-20T08:00:00Z");
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn signatures_verify_and_old_ones_are_refused() {
        let body = webhook_body(&announcement("x"));
        let header = signature(b"s3cret", 1_000_000, &body);
        assert_eq!(verify(b"s3cret", &header, &body, 1_000_100, 300), Ok(()));
        assert_eq!(
            verify(b"s3cret", &header, &body, 1_000_301, 300),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            verify(b"other", &header, &body, 1_000_100, 300),
            Err(VerifyError::Mismatch)
        );
        let tampered = body.replace("\"x\"", "\"y\"");
        assert_eq!(
            verify(b"s3cret", &header, &tampered, 1_000_100, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", "v1=00", &body, 0, 300),
            Err(VerifyError::Malformed)
        );
        // A known vector: HMAC-SHA256("key", "1.{}").
        let v = signature(b"key", 1, "{}");
        assert!(v.starts_with("t=1,v1=") && v.len() == "t=1,v1=".len() + 64);
    }
}
