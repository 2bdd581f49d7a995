//! Announcement targets as operators write them (Apprise-style URLs), parsed once at start-up,
//! with their secrets kept out of every `Debug`, log line and error message.

use std::fmt;

use crate::i18n::Lang;
use crate::secret::Secret;

/// Longest target name (`?name=`), so names stay usable as keys and labels.
const NAME_MAX: usize = 64;

/// Where one announcement goes.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// How the target is called in the outbox, `/health`, `/metrics` and `announce test`:
    /// `?name=`, else derived from the non-secret part of the URL.
    pub name: String,
    /// The language of the message (Vietnamese unless `?lang=en`).
    pub lang: Lang,
    pub kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Kind {
    /// Telegram Bot API `sendMessage`.
    Telegram {
        token: Secret,
        /// A numeric id (`-100…`) or `@channelname`.
        chat: String,
        /// A forum topic (`message_thread_id`).
        thread: Option<i64>,
    },
    /// A Discord webhook (`POST /api/webhooks/{id}/{token}`).
    Discord { id: String, token: Secret },
    /// A JSON POST signed with HMAC-SHA256 of the shared secret.
    Webhook { url: String, secret: Secret },
}

impl Kind {
    pub fn label(&self) -> &'static str {
        match self {
            Kind::Telegram { .. } => "telegram",
            Kind::Discord { .. } => "discord",
            Kind::Webhook { .. } => "webhook",
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("lang", &self.lang)
            .field("url", &self.redacted())
            .finish()
    }
}

impl Target {
    /// The URL with its secret replaced by `***`: what logs, errors and `/health` show.
    pub fn redacted(&self) -> String {
        let mut query = vec![format!("lang={}", self.lang.code())];
        let base = match &self.kind {
            Kind::Telegram { chat, thread, .. } => {
                if let Some(t) = thread {
                    query.push(format!("thread={t}"));
                }
                format!("tgram://***/{chat}")
            }
            Kind::Discord { id, .. } => format!("discord://{id}/***"),
            Kind::Webhook { url, .. } => {
                query.insert(0, "secret=***".into());
                format!("webhook+{url}")
            }
        };
        format!("{base}?{}", query.join("&"))
    }
}

/// Why a target URL cannot be used. Displays the URL redacted, never its secret.
#[derive(Debug, thiserror::Error)]
#[error("announce target {shown}: {reason}")]
pub struct TargetError {
    /// The URL as given, with whatever could be a secret replaced by `***`.
    pub shown: String,
    pub reason: String,
}

/// Parses every target, refusing two with the same name.
pub fn parse_all(urls: &[Secret]) -> Result<Vec<Target>, TargetError> {
    let mut out: Vec<Target> = Vec::new();
    for url in urls {
        let url = url.expose().trim();
        if url.is_empty() {
            continue;
        }
        let target = parse(url)?;
        if out.iter().any(|t| t.name == target.name) {
            return Err(TargetError {
                shown: redact(url),
                reason: format!(
                    "a second target named {:?}; give one of them another name with ?name=",
                    target.name
                ),
            });
        }
        out.push(target);
    }
    if out.len() > super::MAX_TARGETS {
        return Err(TargetError {
            shown: format!("{} targets", out.len()),
            reason: format!("at most {} are supported", super::MAX_TARGETS),
        });
    }
    Ok(out)
}

/// Parses one target URL.
pub fn parse(url: &str) -> Result<Target, TargetError> {
    let fail = |reason: &str| TargetError {
        shown: redact(url),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| fail("must look like tgram://…, discord://… or webhook+https://…"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.contains(char::is_whitespace) || query.contains(char::is_whitespace) {
        return Err(fail("contains white space"));
    }
    let params = Params::parse(query).map_err(|r| fail(&r))?;
    let lang = match params.get("lang") {
        None => Lang::Vi,
        Some(l) => Lang::parse(l).ok_or_else(|| fail("lang must be vi or en"))?,
    };
    let (kind, derived) = match scheme.to_ascii_lowercase().as_str() {
        "tgram" => {
            params
                .only(&["lang", "thread", "name"])
                .map_err(|r| fail(&r))?;
            let (token, chat) =
                two_segments(path).ok_or_else(|| fail("must be tgram://BOT_TOKEN/CHAT_ID"))?;
            let (bot, key) = token
                .split_once(':')
                .ok_or_else(|| fail("the bot token must look like 123456:ABC…"))?;
            if bot.is_empty() || !bot.bytes().all(|b| b.is_ascii_digit()) || key.is_empty() {
                return Err(fail("the bot token must look like 123456:ABC…"));
            }
            let chat_ok = chat
                .strip_prefix('@')
                .map(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .unwrap_or_else(|| chat.trim_start_matches('-').parse::<u64>().is_ok());
            if !chat_ok {
                return Err(fail(
                    "the chat must be a numeric id (-100…) or @channelname",
                ));
            }
            let thread = match params.get("thread") {
                None => None,
                Some(t) => Some(
                    t.parse::<i64>()
                        .ok()
                        .filter(|t| *t > 0)
                        .ok_or_else(|| fail("thread must be a positive number"))?,
                ),
            };
            (
                Kind::Telegram {
                    token: Secret::new(token),
                    chat: chat.to_owned(),
                    thread,
                },
                format!("telegram-{}", chat.trim_start_matches(['@', '-'])),
            )
        }
        "discord" => {
            params.only(&["lang", "name"]).map_err(|r| fail(&r))?;
            let (id, token) = two_segments(path)
                .ok_or_else(|| fail("must be discord://WEBHOOK_ID/WEBHOOK_TOKEN"))?;
            if !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail("the webhook id must be a number"));
            }
            if !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(fail(
                    "the webhook token must be letters, digits, '-' or '_'",
                ));
            }
            (
                Kind::Discord {
                    id: id.to_owned(),
                    token: Secret::new(token),
                },
                format!("discord-{id}"),
            )
        }
        "webhook+https" | "webhook+http" => {
            params
                .only(&["lang", "secret", "name"])
                .map_err(|r| fail(&r))?;
            let secret = params
                .get("secret")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| fail("needs ?secret=… (the key the receiver verifies with)"))?;
            let host = path.split('/').next().unwrap_or_default();
            if host.is_empty() {
                return Err(fail("needs a host"));
            }
            if host.contains('@') {
                return Err(fail(
                    "no user:password@ in a webhook URL; the secret signs instead",
                ));
            }
            let plain = scheme.eq_ignore_ascii_case("webhook+http");
            if plain && !is_loopback(host) {
                return Err(fail(
                    "webhook+http:// is for loopback only (127.0.0.1, [::1], localhost); use webhook+https://",
                ));
            }
            let http = if plain { "http" } else { "https" };
            (
                Kind::Webhook {
                    url: format!("{http}://{path}"),
                    secret: Secret::new(secret),
                },
                format!("webhook-{}", host.split(':').next().unwrap_or(host)),
            )
        }
        _ => {
            return Err(fail(
                "unknown kind; use tgram://, discord://, webhook+https:// or webhook+http://",
            ));
        }
    };
    let name = match params.get("name") {
        Some(n) => {
            let ok = !n.is_empty()
                && n.len() <= NAME_MAX
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(fail(
                    "name must be 1 to 64 letters, digits, '-', '_' or '.'",
                ));
            }
            n.to_owned()
        }
        None => derived.chars().take(NAME_MAX).collect(),
    };
    Ok(Target { name, lang, kind })
}

/// `a/b` with both non-empty (a trailing slash allowed).
fn two_segments(path: &str) -> Option<(&str, &str)> {
    let (a, b) = path.trim_end_matches('/').split_once('/')?;
    (!a.is_empty() && !b.is_empty() && !b.contains('/')).then_some((a, b))
}

fn is_loopback(host: &str) -> bool {
    let bare = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The query of a target URL: `key=value` pairs, each key once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Params, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| format!("the value of {k} is not UTF-8"))?;
            if out.iter().any(|(seen, _)| seen == k) {
                return Err(format!("{k} is given twice"));
            }
            out.push((k.to_owned(), v.into_owned()));
        }
        Ok(Params(out))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(format!(
                "unknown option {k:?} (this kind takes {})",
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    }
}

/// Any target URL, well-formed or not, with what could be a secret replaced: the first path
/// segment of `tgram://`, the second of `discord://`, a `secret=` value and any user info;
/// of an unknown kind only the scheme is shown.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = match scheme.to_ascii_lowercase().as_str() {
        "tgram" => match path.split_once('/') {
            Some((_, chat)) => format!("***/{chat}"),
            None => "***".into(),
        },
        "discord" => match path.split_once('/') {
            Some((id, _)) => format!("{id}/***"),
            None => path.to_owned(),
        },
        "webhook+https" | "webhook+http" => match path.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => path.to_owned(),
        },
        _ => return format!("{scheme}://…"),
    };
    let query: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some(("lang" | "thread" | "name", _)) => p.to_owned(),
            Some((k, _)) => format!("{k}=***"),
            None => p.to_owned(),
        })
        .collect();
    if query.is_empty() {
        format!("{scheme}://{path}")
    } else {
        format!("{scheme}://{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_discord_and_webhook_parse_with_defaults() {
        let t = parse("tgram://123456:AAH-secret_x/-1001234?lang=en&thread=7").expect("tgram");
        assert_eq!(t.name, "telegram-1001234");
        assert_eq!(t.lang, Lang::En);
        assert!(
            matches!(&t.kind, Kind::Telegram { chat, thread: Some(7), .. } if chat == "-1001234")
        );
        let d = parse("discord://987/tok-EN_x").expect("discord");
        assert_eq!((d.name.as_str(), d.lang), ("discord-987", Lang::Vi));
        let w = parse("webhook+http://127.0.0.1:9000/hook?secret=s3cr%26t&name=ops").expect("hook");
        assert_eq!(w.name, "ops");
        assert!(
            matches!(&w.kind, Kind::Webhook { url, secret } if url == "http://127.0.0.1:9000/hook" && secret.expose() == "s3cr&t")
        );
        assert!(parse("tgram://1:a/@my_channel").is_ok());
    }

    #[test]
    fn secrets_never_show_in_debug_redaction_or_errors() {
        let t = parse("tgram://123456:TOPSECRET/42").expect("tgram");
        let d = parse("discord://987/TOPSECRET").expect("discord");
        let w = parse("webhook+https://h.example/x?secret=TOPSECRET").expect("hook");
        for t in [&t, &d, &w] {
            assert!(!format!("{t:?}").contains("TOPSECRET"), "{t:?}");
            assert!(!t.redacted().contains("TOPSECRET"));
        }
        assert_eq!(t.redacted(), "tgram://***/42?lang=vi");
        assert_eq!(
            w.redacted(),
            "webhook+https://h.example/x?secret=***&lang=vi"
        );
        for bad in [
            "tgram://123456:TOPSECRET",
            "tgram://TOPSECRET/42",
            "tgram://123456:TOPSECRET/42?lang=fr",
            "tgram://123456:TOPSECRET/42?thread=x",
            "discord://abc/TOPSECRET",
            "discord://1/TOPSECRET?colour=red",
            "webhook+https://h.example/x?secret=TOPSECRET&secret=TOPSECRET",
            "webhook+http://10.0.0.1/x?secret=TOPSECRET",
            "webhook+https://user:TOPSECRET@h/x",
            "mailto://TOPSECRET@x",
            "TOPSECRET",
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("TOPSECRET"), "{bad} -> {e}");
            assert!(e.starts_with("announce target "), "{e}");
        }
        let e = parse("discord://abc/TOPSECRET")
            .expect_err("id")
            .to_string();
        assert!(e.contains("discord://abc/***"), "{e}");
    }

    #[test]
    fn two_targets_with_one_name_are_refused() {
        let urls = [
            Secret::new("discord://1/a"),
            Secret::new(" "),
            Secret::new("discord://1/b"),
        ];
        let e = parse_all(&urls).expect_err("duplicate").to_string();
        assert!(e.contains("discord-1") && !e.contains("/b"), "{e}");
        let urls = [
            Secret::new("discord://1/a"),
            Secret::new("discord://1/b?name=two"),
        ];
        assert_eq!(parse_all(&urls).expect("named").len(), 2);
    }
}
