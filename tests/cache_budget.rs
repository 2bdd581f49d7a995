//! The second page cache tier keeps to its own budget: distinct pages rendered by the hundred
//! do not grow the reports' file (nor its backups), and the tier's file stays near its budget.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{get, noisy_report, publish};
use crypto_report::store::{CACHE_FILE_NAME, FILE_NAME, Store};
use crypto_report::{AppState, Settings};

const REPORTS: u64 = 120;
const BUDGET: u64 = 2 << 20;

fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_pages_stay_out_of_the_store_and_within_the_tiers_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join(FILE_NAME);
    let store = Store::open(&store_path).expect("store");
    let mut settings = Settings::new("https://reports.example");
    settings.cache_bytes = 1 << 20;
    settings.l2_cache_bytes = BUDGET;
    let state = AppState::new(store, settings).expect("state");
    // Reports of some size (their pages carry a summary, the frame their whole text).
    let mut noise = 0x9E37_79B9_7F4A_7C15_u64;
    let reports = (1..=REPORTS)
        .map(|id| noisy_report(id, 4000, 0xFF_FFFF, &mut noise))
        .collect();
    publish(&state, reports).await;
    let store_before = size(&store_path);
    let mut rendered = 0;
    for id in 1..=REPORTS {
        for path in [
            format!("/crypto_report/{id}/frame?lang=vi"),
            format!("/crypto_report/{id}/frame?lang=en"),
        ] {
            let r = get(&state, &path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            rendered += 1;
        }
    }
    // The tier is written in the background: wait for every write to land.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l2 = state.pages.stats().await.l2;
        if l2.puts + l2.skipped + l2.errors >= rendered {
            break;
        }
        assert!(Instant::now() < deadline, "{l2:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = state.pages.stats().await.l2;
    assert!(
        stats.puts >= rendered / 2,
        "pages went to the tier: {stats:?}"
    );
    let store_after = size(&store_path);
    assert!(
        store_after <= store_before + (1 << 20),
        "the store grew from {store_before} to {store_after} bytes"
    );
    let usage = stats.usage.expect("usage");
    assert!(usage.bytes <= BUDGET, "{usage:?}");
    let file = size(&dir.path().join(CACHE_FILE_NAME));
    assert!(
        file <= 8 * BUDGET + (8 << 20),
        "the tier's file grew to {file} bytes for a budget of {BUDGET}"
    );
}
