//! The "since this report" panel's server side: the market at publication, formatted in both
//! languages (the page switches without a reload). The "now" side and the change are drawn in
//! the browser from the live snapshot (assets/js/since.js), so the cached page never freezes
//! them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::i18n::{self, Lang};
use crate::since::{AtPublication, FearGreed, Origin, Value};

#[derive(Debug, Serialize)]
pub(super) struct Row {
    /// The snapshot field the browser compares with (`btc_price_usd`, …).
    field: &'static str,
    /// i18n key of the row's label.
    label: &'static str,
    /// How values of the row are written and compared: `price`, `big`, `share`, `index`.
    kind: &'static str,
    /// Its name in the panel's one-line brief ("BTC"); empty when the brief leaves it out.
    short: &'static str,
    /// The value at publication, for the browser's comparison; absent when unknown.
    then: Option<String>,
    then_vi: Option<String>,
    then_en: Option<String>,
    /// When and where the value at publication is from.
    note_vi: Option<String>,
    note_en: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Panel {
    rows: Vec<Row>,
    /// Whether anything at publication is known.
    known: bool,
}

/// `1234567.891` with grouping: "1,234,567.89" (en) or "1.234.567,89" (vi).
pub(crate) fn number(v: f64, decimals: usize, lang: Lang) -> String {
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (group, point) = match lang {
        Lang::En => (',', '.'),
        Lang::Vi => ('.', ','),
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push(point);
        out.push_str(frac);
    }
    if v < 0.0 {
        out.insert(0, '−');
    }
    out
}

/// A dollar amount as each language writes it: "$95,728" / "95.728 USD".
pub(crate) fn usd(text: String, lang: Lang) -> String {
    match lang {
        Lang::En => format!("${text}"),
        Lang::Vi => format!("{text} USD"),
    }
}

fn big_usd(v: f64, lang: Lang) -> String {
    let units: [(f64, &str, &str); 3] = [
        (1e12, "T", " nghìn tỷ"),
        (1e9, "B", " tỷ"),
        (1e6, "M", " triệu"),
    ];
    for (size, en, vi) in units {
        if v.abs() >= size {
            let n = number(v / size, 2, lang);
            return usd(
                format!("{n}{}", if lang == Lang::En { en } else { vi }),
                lang,
            );
        }
    }
    usd(number(v, 0, lang), lang)
}

/// The index's classification in the reader's language.
pub(crate) fn fng_class(english: &str, lang: Lang) -> String {
    let vi = match english {
        "Extreme Fear" => "Sợ hãi tột độ",
        "Fear" => "Sợ hãi",
        "Neutral" => "Trung lập",
        "Greed" => "Tham lam",
        "Extreme Greed" => "Tham lam tột độ",
        other => other,
    };
    match lang {
        Lang::En => english.to_owned(),
        Lang::Vi => vi.to_owned(),
    }
}

fn note(at_ms: i64, origin: Origin, source: &str, lang: Lang) -> Option<String> {
    let at: DateTime<Utc> = DateTime::from_timestamp_millis(at_ms)?;
    Some(match (origin, lang) {
        (Origin::Snapshot, Lang::Vi) => {
            format!("{} · {source}", i18n::format_datetime(at, lang))
        }
        (Origin::Snapshot, Lang::En) => {
            format!("{} · {source}", i18n::format_datetime(at, lang))
        }
        (Origin::DailyOpen, Lang::Vi) => {
            format!("đầu ngày {} (00:00 UTC) · {source}", at.format("%d/%m/%Y"))
        }
        (Origin::DailyOpen, Lang::En) => format!(
            "start of {} (00:00 UTC) · {source}",
            at.format("%b %-d, %Y")
        ),
    })
}

fn row(
    (field, label, kind, short): (&'static str, &'static str, &'static str, &'static str),
    v: Option<&Value>,
    format: impl Fn(f64, Lang) -> String,
) -> Row {
    Row {
        field,
        label,
        kind,
        short,
        then: v.map(|v| v.value.to_string()),
        then_vi: v.map(|v| format(v.value, Lang::Vi)),
        then_en: v.map(|v| format(v.value, Lang::En)),
        note_vi: v.and_then(|v| note(v.at_ms, v.origin, &v.source, Lang::Vi)),
        note_en: v.and_then(|v| note(v.at_ms, v.origin, &v.source, Lang::En)),
    }
}

fn fng_row(f: Option<&FearGreed>) -> Row {
    let text =
        |f: &FearGreed, lang: Lang| format!("{} · {}", f.value, fng_class(&f.classification, lang));
    Row {
        field: "fng_value",
        label: "since_fng",
        kind: "index",
        short: "F&G",
        then: f.map(|f| f.value.to_string()),
        then_vi: f.map(|f| text(f, Lang::Vi)),
        then_en: f.map(|f| text(f, Lang::En)),
        note_vi: f.and_then(|f| note(f.at_ms, f.origin, &f.source, Lang::Vi)),
        note_en: f.and_then(|f| note(f.at_ms, f.origin, &f.source, Lang::En)),
    }
}

impl Panel {
    pub(super) fn new(at: &AtPublication) -> Panel {
        let price = |v: f64, l: Lang| usd(number(v, 2, l), l);
        let share = |v: f64, l: Lang| format!("{}%", number(v, 2, l));
        let rows = vec![
            row(
                ("btc_price_usd", "since_btc", "price", "BTC"),
                at.btc.as_ref(),
                price,
            ),
            row(
                ("eth_price_usd", "since_eth", "price", "ETH"),
                at.eth.as_ref(),
                price,
            ),
            row(
                ("market_cap_usd", "since_market_cap", "big", ""),
                at.market_cap.as_ref(),
                big_usd,
            ),
            row(
                ("btc_market_cap_percentage", "since_dominance", "share", ""),
                at.btc_dominance.as_ref(),
                share,
            ),
            fng_row(at.fng.as_ref()),
        ];
        let known = rows.iter().any(|r| r.then.is_some());
        Panel { rows, known }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_each_language() {
        assert_eq!(number(84251.374, 2, Lang::En), "84,251.37");
        assert_eq!(number(84251.374, 2, Lang::Vi), "84.251,37");
        assert_eq!(number(999.0, 0, Lang::En), "999");
        assert_eq!(big_usd(2.9e12, Lang::En), "$2.90T");
        assert_eq!(big_usd(2.9e12, Lang::Vi), "2,90 nghìn tỷ USD");
        assert_eq!(fng_class("Neutral", Lang::Vi), "Trung lập");
    }
}
