//! "Since this report": the market at publication on the report page, from the snapshot
//! recorded as a report is published or from the providers' daily history (a fake provider
//! serving recorded formats), and "unknown" where neither gives a value.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake::{self, Fake, Fault};
use common::{get, publish, report, samples};
use crypto_report::market::Market;
use crypto_report::since::History;
use crypto_report::{AppState, Feed};

/// The row of `field` in the panel of a report page.
fn row<'a>(html: &'a str, field: &str) -> &'a str {
    let start = html
        .find(&format!("<tr data-field=\"{field}\""))
        .unwrap_or_else(|| panic!("no row {field}"));
    let end = html[start..].find("</tr>").expect("row end") + start;
    &html[start..end]
}

fn history(state: &AppState, fake: &Fake, seen: &Arc<Mutex<Vec<u64>>>) -> History {
    let seen = Arc::clone(seen);
    let mut h = History::new(
        &fake::config(fake),
        Arc::clone(&state.store),
        Arc::new(move |ids| seen.lock().expect("lock").extend(ids)),
    )
    .expect("history");
    h.retry_min = Duration::from_millis(50);
    h
}

#[tokio::test]
async fn old_reports_get_their_values_from_the_daily_history_once() {
    let fake = Fake::start().await;
    let (state, _dir) = samples();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let h = history(&state, &fake, &seen);
    let affected = h.pass().await.expect("pass");
    assert_eq!(affected, (101..=107).collect::<Vec<_>>());
    assert_eq!(
        *seen.lock().expect("lock"),
        affected,
        "their pages are rendered again"
    );
    assert_eq!(fake.hits("bn.history.BTCUSDT"), 1);
    assert_eq!(fake.hits("bn.history.ETHUSDT"), 1);
    assert_eq!(fake.hits("fng.history"), 1);
    assert!(fake.query("bn.history.BTCUSDT").contains("interval=1d"));

    // 106 was published on 20 Nov 2026 (08:00 UTC): that day's opens and index.
    let html = get(&state, "/crypto_report/106?lang=en").await.text();
    let btc = row(&html, "btc_price_usd");
    assert!(btc.contains("data-then=\"95728.52\""), "{btc}");
    assert!(btc.contains("$95,728.52"), "{btc}");
    assert!(
        btc.contains("start of Nov 20, 2026 (00:00 UTC) · binance"),
        "{btc}"
    );
    assert!(row(&html, "eth_price_usd").contains("data-then=\""));
    let fng = row(&html, "fng_value");
    assert!(
        fng.contains("data-then=\"34\"") && fng.contains("34 · Fear"),
        "{fng}"
    );
    // No keyless history of the total market cap or dominance: unknown, never made up.
    for field in ["market_cap_usd", "btc_market_cap_percentage"] {
        let r = row(&html, field);
        assert!(
            !r.contains("data-then") && r.contains("since-unknown"),
            "{r}"
        );
    }
    let vi = get(&state, "/crypto_report/106?lang=vi").await.text();
    assert!(row(&vi, "btc_price_usd").contains("95.728,52 USD"));
    assert!(row(&vi, "fng_value").contains("34 · Sợ hãi"));

    // Fetched once: a second pass asks nothing.
    assert!(h.pass().await.expect("pass").is_empty());
    assert_eq!(fake.hits("bn.history.BTCUSDT"), 1);
    assert_eq!(fake.hits("fng.history"), 1);
}

#[tokio::test]
async fn a_failing_history_leaves_the_values_unknown_until_it_answers() {
    let fake = Fake::start().await;
    for key in ["bn.history.BTCUSDT", "bn.history.ETHUSDT", "fng.history"] {
        fake.sticky(key, Fault::Status(500, "{}", None));
    }
    // The server's own wiring: the task, the recorder that wakes it, the page cache.
    let (state, _dir) = common::samples_with(|p| p.history = Some(fake::config(&fake)));
    let started = Instant::now();
    while fake.hits("bn.history.BTCUSDT") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no history call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing known at publication: one line that says so, no table of unknowns.
    let html = get(&state, "/crypto_report/104?lang=en").await.text();
    assert!(
        html.contains("class=\"since since-none\"") && !html.contains("<tr data-field="),
        "{html}"
    );
    // The provider is back; the next report published without its market wakes the task,
    // which fills the history and has the cached pages rendered again.
    for key in ["bn.history.BTCUSDT", "bn.history.ETHUSDT", "fng.history"] {
        fake.heal(key);
    }
    publish(&state, vec![report(300, "2026-11-19T08:00:00Z")]).await;
    // The pass stores one series after another, and the publication rendered the page anew:
    // a request between two series can see Bitcoin filled and the index not yet. Both, then.
    loop {
        let html = get(&state, "/crypto_report/104?lang=en").await.text();
        if html.contains("<tr data-field=\"btc_price_usd\"")
            && row(&html, "btc_price_usd").contains("data-then=")
            && row(&html, "fng_value").contains("data-then=")
        {
            assert!(row(&html, "market_cap_usd").contains(">unknown<"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never filled: {:?} {:?}",
            fake.all_hits(),
            html.find("id=\"since\"").and_then(|i| html.get(i..i + 400))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = state.background().shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_report_published_now_keeps_the_market_of_its_publication() {
    let fake = Fake::start().await;
    let (state, _dir) = common::samples_with(|p| {
        p.feed = Feed::Running(Market::start(
            fake::config(&fake),
            Arc::clone(&p.store),
            &p.background,
        ));
    });
    let market = state.market.clone();
    let started = Instant::now();
    while market.current().values.global.is_none()
        || market.current().values.fng.is_none()
        || market.current().values.prices[1].is_none()
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no market");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = chrono::Utc::now();
    let mut fresh = report(200, "2026-11-01T00:00:00Z");
    fresh.created_at = now - chrono::TimeDelta::minutes(2);
    // Published late: an old report does not get today's market.
    let mut late = report(201, "2026-11-01T00:00:00Z");
    late.created_at = now - chrono::TimeDelta::days(3);
    publish(&state, vec![fresh, late]).await;
    let html = get(&state, "/crypto_report/200?lang=en").await.text();
    let btc = row(&html, "btc_price_usd");
    assert!(btc.contains("data-then=\"84250\""), "{btc}");
    assert!(btc.contains("coingecko"), "{btc}");
    assert!(row(&html, "market_cap_usd").contains("data-then=\"2893417720518.4\""));
    assert!(row(&html, "fng_value").contains("38 · Fear"));
    let late = get(&state, "/crypto_report/201?lang=en").await.text();
    assert!(
        late.contains("class=\"since since-none\"") && !late.contains("<tr data-field="),
        "{late}"
    );
    // The now side is drawn in the browser: the page carries no live number for it.
    assert!(row(&html, "btc_price_usd").contains("since-pending"));
    market.stop().await;
    let _ = state.background().shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn one_failing_provider_does_not_keep_the_other_history_out() {
    let fake = Fake::start().await;
    // Binance refuses this host (as it does some locations); alternative.me answers.
    for key in ["bn.history.BTCUSDT", "bn.history.ETHUSDT"] {
        fake.sticky(
            key,
            Fault::Status(451, "binance_error_451_restricted_location.json", None),
        );
    }
    let (state, _dir) = samples();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let h = history(&state, &fake, &seen);
    assert!(h.pass().await.is_err(), "the pass says Binance failed");
    assert_eq!(fake.hits("fng.history"), 1);
    let html = get(&state, "/crypto_report/106?lang=en").await.text();
    assert!(row(&html, "fng_value").contains("data-then=\"34\""));
    assert!(row(&html, "btc_price_usd").contains(">unknown<"));
    assert_eq!(
        seen.lock().expect("lock").len(),
        7,
        "pages with the new values are rendered again"
    );
}
